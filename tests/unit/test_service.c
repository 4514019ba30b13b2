/* service: the facade's schedule (metrics file at most once a second, the
 * hourly clean of keep_results) and what a published result does to the
 * counters and the event log, on a real spool. */
#include "spool_fixture.h"

#include <jansson.h>

#include "clean.h"
#include "service.h"

static json_t *result(const char *id, const char *status, int exit_code)
{
	return json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:n}", "id", id, "status", status,
			 "exit_code", exit_code, "duration_ms", 1500, "attempt", 1,
			 "finished_at", "2020-01-01T00:00:00.000Z", "error");
}

static void test_metrics_written_at_most_once_a_second(void **state)
{
	struct fixture *f = *state;
	char *prom = tu_join(f->dir, "m.prom"), *events = tu_join(f->dir, "ev.jsonl");
	f->cfg.metrics_path = strdup(prom);
	f->cfg.events_path = strdup(events);
	struct service sv;
	service_start(&sv, &f->cfg, &f->s);
	service_tick(&sv); /* first write: at once */
	assert_int_equal(access(prom, F_OK), 0);
	assert_int_equal(service_next_ms(&sv), -1); /* nothing due */
	json_t *r = result("a", "failed", 3);
	service_published(&sv, "a.json", r, "a.json");
	json_decref(r);
	/* Written less than a second ago: the change waits for the next tick. */
	int ms = service_next_ms(&sv);
	assert_true(ms > 0 && ms <= 1001);
	char *text = tu_read_file(prom, NULL);
	assert_non_null(strstr(text, "spoolrun_tasks_published_total{status=\"failed\"} 0\n"));
	free(text);
	sv.metrics_written_ms -= 1000; /* a second later */
	assert_int_equal(service_next_ms(&sv), 0);
	service_tick(&sv);
	text = tu_read_file(prom, NULL);
	assert_non_null(strstr(text, "spoolrun_tasks_published_total{status=\"failed\"} 1\n"));
	assert_non_null(strstr(text, "spoolrun_task_duration_seconds_bucket{status=\"failed\",le=\"5\"} 1\n"));
	free(text);
	service_counts(&sv, 4, 1, 2, 3);
	sv.metrics_written_ms -= 1000;
	service_stop(&sv, "done"); /* writes a last time */
	text = tu_read_file(prom, NULL);
	assert_non_null(strstr(text, "\nspoolrun_tasks_queued 4\n"));
	assert_non_null(strstr(text, "\nspoolrun_slots 3\n"));
	assert_non_null(strstr(text, "\nspoolrun_tasks_running 0\n")); /* stopped */
	free(text);
	text = tu_read_file(events, NULL);
	assert_non_null(strstr(text, "\"event\":\"watcher_started\""));
	assert_non_null(strstr(text, "\"event\":\"published\",\"id\":\"a\",\"task_file\":\"a.json\","
				     "\"attempt\":1,\"status\":\"failed\",\"exit_code\":3"));
	assert_non_null(strstr(text, "\"event\":\"watcher_stopped\",\"reason\":\"done\""));
	free(text);
	free(prom);
	free(events);
}

static void put_old_result(struct fixture *f, const char *id)
{
	char rel[256], text[256];
	snprintf(rel, sizeof rel, "results/%s.json", id);
	snprintf(text, sizeof text, "{\"id\":\"%s\",\"status\":\"succeeded\","
		 "\"finished_at\":\"2020-01-01T00:00:00.000Z\"}", id);
	char *p = tu_join(f->dir, rel);
	tu_write_file(p, text, strlen(text));
	free(p);
}

static void test_keep_results_cleans_at_start_and_hourly(void **state)
{
	struct fixture *f = *state;
	f->cfg.keep_results = 86400;
	put_old_result(f, "old1");
	struct service sv;
	service_start(&sv, &f->cfg, &f->s);
	int64_t when;
	assert_int_equal(clean_marker(&f->s, "old1", &when), 0); /* cleaned at start */
	service_tick(&sv); /* the first metrics write (no file: only STATUS) */
	int ms = service_next_ms(&sv);
	if (!(ms > 3500000 && ms <= 3600000)) /* next: in an hour */
		fail_msg("next_ms %d, dirty %d", ms, sv.metrics_dirty);
	put_old_result(f, "old2");
	service_tick(&sv);
	assert_int_equal(clean_marker(&f->s, "old2", &when), -1); /* not yet */
	sv.next_clean_ms -= 3600 * 1000; /* an hour later */
	service_tick(&sv);
	assert_int_equal(clean_marker(&f->s, "old2", &when), 0);
	/* A result of a cleaned id, published again, drops its marker. */
	json_t *r = result("old2", "succeeded", 0);
	service_published(&sv, "old2.json", r, "old2.json");
	json_decref(r);
	assert_int_equal(clean_marker(&f->s, "old2", &when), -1);
	service_stop(&sv, "done");
}

static void test_keep_results_zero_never_cleans(void **state)
{
	struct fixture *f = *state;
	put_old_result(f, "kept");
	struct service sv;
	service_start(&sv, &f->cfg, &f->s);
	service_tick(&sv);
	assert_int_equal(service_next_ms(&sv), -1);
	char *p = tu_join(f->dir, "results/kept.json");
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	service_stop(&sv, "done");
	/* A NULL service is a no-op everywhere. */
	service_counts(NULL, 1, 1, 1, 1);
	service_published(NULL, "x", NULL, "x.json");
	assert_int_equal(service_next_ms(NULL), -1);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_written_at_most_once_a_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_results_cleans_at_start_and_hourly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_results_zero_never_cleans, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
