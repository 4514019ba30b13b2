#define _GNU_SOURCE
#include "eventlog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

char *eventlog_render(int64_t time_ms, const struct event *ev, size_t *len)
{
	char when[32], nb[32];
	time_format_rfc3339(time_ms, when, sizeof when);
	json_t *o = json_object();
	if (!o)
		return NULL;
	set_str(o, "time", when);
	set_str(o, "event", ev->event);
	set_str(o, "id", ev->id);
	set_str(o, "task_file", ev->task_file);
	if (ev->has_attempt)
		json_object_set_new(o, "attempt", json_integer(ev->attempt));
	if (ev->status) {
		set_str(o, "status", ev->status);
		json_object_set_new(o, "exit_code", ev->has_exit_code ? json_integer(ev->exit_code)
								       : json_null());
	}
	if (ev->has_duration)
		json_object_set_new(o, "duration_ms", json_integer(ev->duration_ms));
	set_str(o, "code", ev->code);
	set_str(o, "reason", ev->reason);
	if (ev->not_before_ms > 0) {
		time_format_rfc3339(ev->not_before_ms, nb, sizeof nb);
		set_str(o, "not_before", nb);
	}
	set_str(o, "result_file", ev->result_file);
	if (ev->pid > 0)
		json_object_set_new(o, "pid", json_integer(ev->pid));
	/* Strings that are not UTF-8 were refused above (json_string gives
	 * NULL): the line is still written, without them. */
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return NULL;
	size_t n = strlen(text);
	char *line = realloc(text, n + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

int eventlog_open(struct eventlog *l, const char *path)
{
	l->fd = -1;
	l->failing = false;
	l->path = path ? strdup(path) : NULL;
	if (!path)
		return 0;
	if (!l->path)
		return -1;
	l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		     0640);
	return l->fd < 0 ? -1 : 0;
}

int eventlog_reopen(struct eventlog *l, const char *path)
{
	eventlog_close(l);
	return eventlog_open(l, path);
}

void eventlog_emit(struct eventlog *l, const struct event *ev)
{
	if (l->fd < 0)
		return;
	size_t len;
	char *line = eventlog_render(time_realtime_ms(), ev, &len);
	if (!line)
		return;
	/* One write: with O_APPEND the kernel places the whole line at the
	 * end at once. A short write (disk full) leaves a partial line, which
	 * the next successful line's reader sees as invalid JSON: say so. */
	ssize_t n;
	do
		n = write(l->fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len) {
		if (!l->failing && n < 0)
			log_warn("event log %s: cannot append the %s event", l->path, ev->event);
		else if (!l->failing)
			log_warnx("event log %s: short write of the %s event", l->path, ev->event);
		l->failing = true;
	} else
		l->failing = false;
	free(line);
}

void eventlog_close(struct eventlog *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}
