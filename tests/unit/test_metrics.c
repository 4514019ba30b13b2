/* metrics: the Prometheus text a set of counters renders to, and the
 * histogram's cumulative buckets. */
#include "testutil.h"

#include "metrics.h"

static char *render(const struct metrics *m)
{
	size_t len;
	char *t = metrics_render(m, &len);
	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	return t;
}

static void test_every_family_has_help_and_type(void **state)
{
	(void)state;
	struct metrics m;
	metrics_init(&m, 1700000000123);
	char *t = render(&m);
	static const char *const fams[][2] = {
		{ "spoolrun_tasks_published_total", "counter" }, { "spoolrun_tasks_queued", "gauge" },
		{ "spoolrun_tasks_running", "gauge" }, { "spoolrun_tasks_deferred", "gauge" },
		{ "spoolrun_slots", "gauge" }, { "spoolrun_task_duration_seconds", "histogram" },
		{ "spoolrun_task_retries_total", "counter" },
		{ "spoolrun_usage_limit_deferrals_total", "counter" },
		{ "spoolrun_last_result_timestamp_seconds", "gauge" },
		{ "spoolrun_watcher_start_time_seconds", "gauge" },
	};
	for (size_t i = 0; i < sizeof fams / sizeof *fams; i++) {
		char want[200];
		snprintf(want, sizeof want, "# HELP %s ", fams[i][0]);
		assert_contains(t, want);
		snprintf(want, sizeof want, "# TYPE %s %s\n", fams[i][0], fams[i][1]);
		assert_contains(t, want);
	}
	assert_contains(t, "\nspoolrun_watcher_start_time_seconds 1700000000.123\n");
	assert_contains(t, "\nspoolrun_last_result_timestamp_seconds 0.000\n");
	/* Every status from the start, at 0. */
	assert_contains(t, "spoolrun_tasks_published_total{status=\"interrupted\"} 0\n");
	assert_int_equal(t[strlen(t) - 1], '\n');
	free(t);
}

static void test_counts_and_gauges(void **state)
{
	(void)state;
	struct metrics m;
	metrics_init(&m, 0);
	metrics_published(&m, "succeeded", 2000, 1700000001000);
	metrics_published(&m, "succeeded", 50, 1700000002500);
	metrics_published(&m, "rejected", -1, 1700000003000);
	metrics_published(&m, "no-such-status", 10, 1700000004000);
	m.queued = 7;
	m.running = 2;
	m.deferred = 1;
	m.slots = 3;
	m.retries = 4;
	char *t = render(&m);
	assert_contains(t, "spoolrun_tasks_published_total{status=\"succeeded\"} 2\n");
	assert_contains(t, "spoolrun_tasks_published_total{status=\"rejected\"} 1\n");
	assert_contains(t, "\nspoolrun_tasks_queued 7\n");
	assert_contains(t, "\nspoolrun_tasks_running 2\n");
	assert_contains(t, "\nspoolrun_tasks_deferred 1\n");
	assert_contains(t, "\nspoolrun_slots 3\n");
	assert_contains(t, "\nspoolrun_task_retries_total 4\n");
	/* An unknown status still moves the last result time. */
	assert_contains(t, "\nspoolrun_last_result_timestamp_seconds 1700000004.000\n");
	/* A result that never ran is counted, not timed. */
	assert_contains(t, "spoolrun_task_duration_seconds_count{status=\"rejected\"} 0\n");
	free(t);
}

static void test_histogram_buckets_are_cumulative(void **state)
{
	(void)state;
	struct metrics m;
	metrics_init(&m, 0);
	int64_t durations_ms[] = { 100, 101, 999, 1000, 4000, 7200000, 100000000 };
	for (size_t i = 0; i < sizeof durations_ms / sizeof *durations_ms; i++)
		metrics_published(&m, "failed", durations_ms[i], 1);
	char *t = render(&m);
	const char *h = "spoolrun_task_duration_seconds_bucket{status=\"failed\",le=";
	char want[200];
	static const struct { const char *le; int n; } b[] = {
		{ "0.1", 1 }, { "0.5", 2 }, { "1", 4 }, { "5", 5 }, { "3600", 5 }, { "86400", 6 },
		{ "+Inf", 7 },
	};
	for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
		snprintf(want, sizeof want, "%s\"%s\"} %d\n", h, b[i].le, b[i].n);
		assert_contains(t, want);
	}
	assert_contains(t, "spoolrun_task_duration_seconds_count{status=\"failed\"} 7\n");
	/* 0.1 + 0.101 + 0.999 + 1 + 4 + 7200 + 100000 */
	assert_contains(t, "spoolrun_task_duration_seconds_sum{status=\"failed\"} 107206.2");
	/* Buckets never decrease, for every status. */
	for (int s = 0; s < METRICS_STATUSES; s++)
		for (int i = 1; i < METRICS_BUCKETS; i++)
			assert_true(m.buckets[s][i] >= m.buckets[s][i - 1]);
	free(t);
}

static void test_write_replaces_atomically(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp(), *path = tu_join(dir, "spoolrun.prom");
	struct metrics m;
	metrics_init(&m, 0);
	tu_write_file(path, "old\n", 4);
	assert_int_equal(metrics_write(&m, path), 0);
	char *text = tu_read_file(path, NULL);
	assert_contains(text, "# TYPE spoolrun_slots gauge");
	assert_int_equal(tu_count_entries(dir), 1); /* no temporary left */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	free(text);
	/* A directory that does not exist: an error, nothing written. */
	char *bad = tu_join(dir, "missing/x.prom");
	assert_int_equal(metrics_write(&m, bad), -1);
	assert_int_equal(errno, ENOENT);
	free(bad);
	free(path);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_family_has_help_and_type),
		cmocka_unit_test(test_counts_and_gauges),
		cmocka_unit_test(test_histogram_buckets_are_cumulative),
		cmocka_unit_test(test_write_replaces_atomically),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
