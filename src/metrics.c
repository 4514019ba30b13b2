#define _GNU_SOURCE
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

static const char *const status_names[METRICS_STATUSES] = {
	"succeeded", "failed", "timeout", "killed", "error", "rejected", "cancelled", "interrupted",
};

/* From a second to a day: agent runs and builds span that range. */
const double metrics_bucket_bounds[METRICS_BUCKETS] = {
	0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 86400,
};

void metrics_init(struct metrics *m, int64_t start_ms)
{
	memset(m, 0, sizeof *m);
	m->start_ms = start_ms;
	m->slots = 1;
}

int metrics_status_index(const char *status)
{
	for (int i = 0; status && i < METRICS_STATUSES; i++)
		if (!strcmp(status, status_names[i]))
			return i;
	return -1;
}

void metrics_published(struct metrics *m, const char *status, int64_t duration_ms,
		       int64_t when_ms)
{
	int i = metrics_status_index(status);
	m->last_result_ms = when_ms;
	if (i < 0)
		return;
	m->published[i]++;
	if (duration_ms < 0)
		return;
	double s = (double)duration_ms / 1000.0;
	for (int b = 0; b < METRICS_BUCKETS; b++)
		if (s <= metrics_bucket_bounds[b])
			m->buckets[i][b]++;
	m->count[i]++;
	m->sum[i] += s;
}

/* A growing text buffer; on allocation failure it stays failed. */
struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	if (t->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n + 1;
		char *grown = realloc(t->buf, cap);
		if (!grown) {
			t->failed = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct text *t, const char *name, const char *help, double v)
{
	family(t, name, "gauge", help);
	put(t, "%s %.17g\n", name, v);
}

static void timestamp(struct text *t, const char *name, const char *help, int64_t ms)
{
	family(t, name, "gauge", help);
	put(t, "%s %lld.%03lld\n", name, (long long)(ms / 1000), (long long)(ms % 1000));
}

static void counter(struct text *t, const char *name, const char *help, uint64_t v)
{
	family(t, name, "counter", help);
	put(t, "%s %llu\n", name, (unsigned long long)v);
}

static void histogram(struct text *t, const struct metrics *m)
{
	const char *h = "spoolrun_task_duration_seconds";
	family(t, h, "histogram", "Run time of published tasks (start to exit of the main "
	       "process), by status.");
	for (int i = 0; i < METRICS_STATUSES; i++) {
		for (int b = 0; b < METRICS_BUCKETS; b++)
			put(t, "%s_bucket{status=\"%s\",le=\"%g\"} %llu\n", h, status_names[i],
			    metrics_bucket_bounds[b], (unsigned long long)m->buckets[i][b]);
		put(t, "%s_bucket{status=\"%s\",le=\"+Inf\"} %llu\n", h, status_names[i],
		    (unsigned long long)m->count[i]);
		put(t, "%s_sum{status=\"%s\"} %.17g\n", h, status_names[i], m->sum[i]);
		put(t, "%s_count{status=\"%s\"} %llu\n", h, status_names[i],
		    (unsigned long long)m->count[i]);
	}
}

char *metrics_render(const struct metrics *m, size_t *len)
{
	struct text t = { malloc(4096), 0, 4096, false };
	if (!t.buf)
		return NULL;
	family(&t, "spoolrun_tasks_published_total", "counter",
	       "Results published since the watcher started, by status.");
	for (int i = 0; i < METRICS_STATUSES; i++)
		put(&t, "spoolrun_tasks_published_total{status=\"%s\"} %llu\n", status_names[i],
		    (unsigned long long)m->published[i]);
	gauge(&t, "spoolrun_tasks_queued", "Task files waiting in incoming/.", (double)m->queued);
	gauge(&t, "spoolrun_tasks_running", "Tasks running now.", (double)m->running);
	gauge(&t, "spoolrun_tasks_deferred", "Tasks waiting in deferred/ for a retry or a usage "
	      "limit.", (double)m->deferred);
	gauge(&t, "spoolrun_slots", "How many tasks may run at once.", (double)m->slots);
	histogram(&t, m);
	counter(&t, "spoolrun_task_retries_total", "Retries scheduled after a failed attempt.",
		m->retries);
	counter(&t, "spoolrun_usage_limit_deferrals_total", "Tasks deferred until a usage limit "
		"lifts (no retry spent).", m->usage_limit_deferrals);
	counter(&t, "spoolrun_hook_failures_total", "on_result hooks that failed, timed out or "
		"could not start.", m->hooks_failed);
	timestamp(&t, "spoolrun_last_result_timestamp_seconds", "Unix time of the last published "
		  "result; 0 before the first.", m->last_result_ms);
	timestamp(&t, "spoolrun_watcher_start_time_seconds", "Unix time the watcher started.",
		  m->start_ms);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

int metrics_write(const struct metrics *m, const char *path)
{
	size_t len;
	char *text = metrics_render(m, &len), *tmp = NULL;
	if (!text || asprintf(&tmp, "%s.tmp", path) < 0) {
		free(text);
		errno = ENOMEM;
		return -1;
	}
	/* node_exporter reads only *.prom: the temporary name is never read. */
	int rc = -1, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		rc = xwrite_all(fd, text, len) == 0 && fchmod(fd, 0644) == 0 ? 0 : -1;
		int saved = errno;
		if (close(fd) < 0 && rc == 0)
			rc = -1;
		else
			errno = saved;
		if (rc == 0 && rename(tmp, path) < 0)
			rc = -1;
		if (rc < 0) {
			saved = errno;
			unlink(tmp);
			errno = saved;
		}
	}
	free(tmp);
	free(text);
	return rc;
}
