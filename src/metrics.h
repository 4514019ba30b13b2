/* metrics: the watcher's numbers in the Prometheus text format, kept in a
 * file for node_exporter's textfile collector ([metrics] textfile).
 *
 * The counters live in struct metrics (the watcher owns one); the file is
 * rewritten whole, under a temporary name in its own directory then
 * renamed, so the collector never reads half a file. metrics_render() is
 * pure (the same counters always give the same text), which is what the
 * unit tests check; metrics_write() is the only I/O. Every family has HELP
 * and TYPE lines; every status of the result schema has its series from
 * the start (0 until it happens), so rate() works from the first scrape. */
#ifndef SPOOLRUN_METRICS_H
#define SPOOLRUN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_STATUSES 8  /* succeeded failed timeout killed error rejected cancelled interrupted */
#define METRICS_BUCKETS 12  /* upper bounds of the duration histogram, +Inf excluded */

/* Upper bounds (seconds) of spoolrun_task_duration_seconds' buckets. */
extern const double metrics_bucket_bounds[METRICS_BUCKETS];

struct metrics {
	uint64_t published[METRICS_STATUSES];
	/* Cumulative counts per bucket (the +Inf bucket is the count). */
	uint64_t buckets[METRICS_STATUSES][METRICS_BUCKETS];
	uint64_t count[METRICS_STATUSES];
	double sum[METRICS_STATUSES];
	uint64_t retries, usage_limit_deferrals, hooks_failed;
	uint64_t queued, running, deferred, slots;
	int64_t last_result_ms;  /* 0: none yet */
	int64_t start_ms;
};

void metrics_init(struct metrics *m, int64_t start_ms);

/* The index of a status name, -1 for an unknown one. */
int metrics_status_index(const char *status);

/* A result was published: counts it, and its run time when it ran
 * (duration_ms >= 0). */
void metrics_published(struct metrics *m, const char *status, int64_t duration_ms,
		       int64_t when_ms);

/* The whole file's text, malloc'ed, NUL-terminated; NULL when out of memory. */
char *metrics_render(const struct metrics *m, size_t *len);

/* Renders and replaces path atomically (path.tmp in the same directory,
 * mode 0644, then rename). -1 with errno on failure. */
int metrics_write(const struct metrics *m, const char *path);

#endif
