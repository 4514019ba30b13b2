/* service: what an operator sees of a running watcher, behind one small
 * interface the loop calls at each step of a task's life: the event log
 * ([log] events), the metrics file ([metrics] textfile), the result hook
 * ([hooks] on_result), retention ([spool] keep_results) and systemd's
 * notify socket (READY=1, STATUS=...).
 *
 * The loop tells it what happened (service_queued, service_started, ...,
 * service_published) and how many tasks wait and run (service_counts, from
 * the loop's own counts); it calls service_tick() when service_next_ms()
 * says: the metrics file is rewritten at most once a second, so a change
 * just after a write is written by that tick. None of it can delay, change or lose a task: every failure here is a
 * log line. A NULL struct service * makes every call do nothing. */
#ifndef SPOOLRUN_SERVICE_H
#define SPOOLRUN_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eventlog.h"
#include "metrics.h"
#include "spool.h"

struct service {
	const struct config *cfg;   /* the runner's; re-read at service_reload */
	struct spool *spool;
	struct eventlog events;
	struct metrics metrics;
	bool metrics_dirty;
	int64_t metrics_written_ms; /* monotonic ms of the last write; 0: never */
	bool metrics_failing;       /* a write failed: said once */
	bool notifying;             /* NOTIFY_SOCKET was set */
	char status_line[160];      /* the last STATUS= sent */
	int64_t next_clean_ms;      /* wall clock; 0: keep_results = 0 */
};

/* At start, after the spool is open and locked: opens the event log,
 * writes watcher_started, runs the first clean. Never fails the watcher. */
void service_start(struct service *sv, const struct config *cfg, struct spool *spool);

/* Recovery and the first scan are done: READY=1 to systemd. */
void service_ready(struct service *sv);

/* SIGHUP: cfg was replaced; reopen the event log (logrotate). */
void service_reload(struct service *sv, const struct config *cfg);

/* The loop's counts, whenever they may have changed. */
void service_counts(struct service *sv, size_t queued, size_t running, size_t deferred,
		    size_t slots);

void service_queued(struct service *sv, const char *id, const char *task_file);
void service_started(struct service *sv, const char *id, const char *task_file, int attempt);
/* Deferred until not_before_ms: retry is true for a retry after a failed
 * attempt (a retry spent), false for a usage limit or a blocked key. */
void service_deferred(struct service *sv, const char *id, const char *task_file, int attempt,
		      bool retry, int64_t not_before_ms, const char *reason);
void service_requeued(struct service *sv, const char *id, const char *task_file);
void service_recovered(struct service *sv, const char *task_file);

/* A result is published as published_name in results/: the rejected or
 * cancelled event where it applies, then published; counters; the hook. */
void service_published(struct service *sv, const char *task_file, const json_t *result,
		       const char *published_name);

/* Does what is due: the metrics file, STATUS=, the hourly clean. */
void service_tick(struct service *sv);

/* Milliseconds until service_tick() has something to do; -1: nothing. */
int service_next_ms(const struct service *sv);

/* At stop: waits for running hooks, writes the metrics file a last time,
 * watcher_stopped, STOPPING=1; closes the event log. */
void service_stop(struct service *sv, const char *why);

#endif
