/* eventlog: the JSON-lines history of every task's life ([log] events).
 *
 * One JSON object per line, appended with one write(2) per line on an
 * O_APPEND descriptor, so lines from one writer never interleave and a
 * reader (tail -F, a log shipper) sees whole lines. Every line has "time"
 * (RFC 3339, ms, UTC) and "event"; the other fields appear where they
 * apply (docs/events.schema.json). Reopened on SIGHUP, so logrotate can
 * move the file away. A write that fails is logged once and the line
 * dropped: the event log never stops a task or a result. */
#ifndef SPOOLRUN_EVENTLOG_H
#define SPOOLRUN_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one line says. NULL strings, and numbers whose has_ flag is false,
 * are left out (exit_code: has_exit_code false writes null). */
struct event {
	const char *event;     /* queued, started, retry_scheduled, deferred, published,
				  rejected, cancelled, recovered, requeued,
				  watcher_started, watcher_stopped */
	const char *id;
	const char *task_file;
	bool has_attempt;
	int attempt;
	const char *status;    /* published */
	bool has_exit_code;    /* published: false writes "exit_code": null */
	int exit_code;
	bool has_duration;
	int64_t duration_ms;   /* published */
	const char *code;      /* rejected: error code; published: error.code */
	const char *reason;    /* retry_scheduled, deferred, rejected: why */
	int64_t not_before_ms; /* retry_scheduled, deferred: when it runs again; 0: absent */
	const char *result_file; /* published: where */
	int pid;               /* watcher_*: the watcher's pid; 0: absent */
};

struct eventlog {
	char *path;   /* NULL: no event log */
	int fd;       /* -1 while closed */
	bool failing; /* a write failed; said once until one succeeds */
};

/* The line for ev at time_ms, with its final newline, malloc'ed; NULL when
 * out of memory. */
char *eventlog_render(int64_t time_ms, const struct event *ev, size_t *len);

/* Opens path for appending (created 0640 if missing); path NULL means no
 * event log. -1 with errno when it cannot be opened (logged by the caller). */
int eventlog_open(struct eventlog *l, const char *path);

/* Closes and opens the path again (logrotate); with a new path, switches. */
int eventlog_reopen(struct eventlog *l, const char *path);

void eventlog_emit(struct eventlog *l, const struct event *ev);

void eventlog_close(struct eventlog *l);

#endif
