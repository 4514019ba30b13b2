/* eventlog: one line of JSON per event, the fields that apply, and
 * appending with one write per line. */
#include "testutil.h"

#include <jansson.h>

#include "eventlog.h"

static char *line_of(const struct event *ev)
{
	size_t len;
	char *l = eventlog_render(1796084564123, ev, &len);
	assert_non_null(l);
	assert_int_equal(strlen(l), len);
	assert_int_equal(l[len - 1], '\n');
	assert_null(memchr(l, '\n', len - 1)); /* one line */
	return l;
}

static void test_published_line(void **state)
{
	(void)state;
	struct event ev = { .event = "published", .id = "a1", .task_file = "a1.json",
			    .has_attempt = true, .attempt = 2, .status = "failed",
			    .has_exit_code = true, .exit_code = 3, .has_duration = true,
			    .duration_ms = 1500, .result_file = "a1.json" };
	char *l = line_of(&ev);
	assert_string_equal(l, "{\"time\":\"2026-12-01T00:22:44.123Z\",\"event\":\"published\","
			    "\"id\":\"a1\",\"task_file\":\"a1.json\",\"attempt\":2,\"status\":\"failed\","
			    "\"exit_code\":3,\"duration_ms\":1500,\"result_file\":\"a1.json\"}\n");
	free(l);
}

static void test_absent_fields_are_left_out(void **state)
{
	(void)state;
	struct event ev = { .event = "watcher_started", .pid = 42 };
	char *l = line_of(&ev);
	assert_string_equal(l, "{\"time\":\"2026-12-01T00:22:44.123Z\",\"event\":\"watcher_started\","
			    "\"pid\":42}\n");
	free(l);
	/* A published result without an exit code says null, not nothing. */
	struct event p = { .event = "published", .id = "x", .status = "timeout" };
	l = line_of(&p);
	assert_contains(l, "\"status\":\"timeout\",\"exit_code\":null");
	free(l);
}

static void test_deferred_and_escaping(void **state)
{
	(void)state;
	struct event ev = { .event = "retry_scheduled", .id = "q", .reason = "exit \"3\"\nagain",
			    .not_before_ms = 1796084565000, .has_attempt = true, .attempt = 1 };
	char *l = line_of(&ev);
	json_error_t err;
	json_t *doc = json_loads(l, 0, &err);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "reason")), "exit \"3\"\nagain");
	assert_string_equal(json_string_value(json_object_get(doc, "not_before")),
			    "2026-12-01T00:22:45.000Z");
	json_decref(doc);
	free(l);
}

static void test_append_and_reopen(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp(), *path = tu_join(dir, "events.jsonl"),
	     *moved = tu_join(dir, "events.jsonl.1");
	struct eventlog l;
	assert_int_equal(eventlog_open(&l, path), 0);
	struct event ev = { .event = "queued", .id = "a" };
	eventlog_emit(&l, &ev);
	/* logrotate moves the file, then SIGHUP: the next line goes to a new one. */
	assert_int_equal(rename(path, moved), 0);
	eventlog_emit(&l, &ev);
	assert_int_equal(eventlog_reopen(&l, path), 0);
	eventlog_emit(&l, &ev);
	eventlog_close(&l);
	char *a = tu_read_file(moved, NULL), *b = tu_read_file(path, NULL);
	int lines_a = 0, lines_b = 0;
	for (char *p = a; *p; p++)
		lines_a += *p == '\n';
	for (char *p = b; *p; p++)
		lines_b += *p == '\n';
	assert_int_equal(lines_a, 2);
	assert_int_equal(lines_b, 1);
	free(a);
	free(b);
	/* No path: no event log, and emitting is harmless. */
	assert_int_equal(eventlog_open(&l, NULL), 0);
	eventlog_emit(&l, &ev);
	eventlog_close(&l);
	/* A path that cannot be opened is an error for the caller to log. */
	char *bad = tu_join(dir, "no/such/dir");
	assert_int_equal(eventlog_open(&l, bad), -1);
	eventlog_close(&l);
	free(bad);
	free(path);
	free(moved);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_published_line),
		cmocka_unit_test(test_absent_fields_are_left_out),
		cmocka_unit_test(test_deferred_and_escaping),
		cmocka_unit_test(test_append_and_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
