/* result: the result document built from a run (or a refusal), its
 * serialisation, its exit code, and timestamps. */
#include "testutil.h"

#include <ctype.h>
#include <signal.h>

#include "result.h"
#include "timeutil.h"

static const struct task_defaults dflt = { .timeout = 30, .kill_grace = 5 };

static void make_task(const char *json, struct task *t)
{
	struct task_error e;
	int rc = task_parse(json, strlen(json), "job-1.json", &dflt, t, &e);
	if (rc)
		print_error("%s\n", e.message);
	assert_int_equal(rc, 0);
}

/* Fills one stream with len bytes of text. The limit is the text's length
 * unless given: a limit >= 2 * len would make the whole text land in the
 * head, which trips the capture_append() UB documented in test_capture.c
 * and would abort this whole suite under UBSan instead of testing result.c. */
static void set_stream(struct run_stream *s, const char *text, size_t len, size_t limit)
{
	capture_init(&s->cap, limit ? limit : len);
	if (len)
		assert_int_equal(capture_append(&s->cap, text, len), 0);
	s->bytes = len;
	s->log_bytes = len;
}

/* A zeroed outcome of a process that exited with code. */
static void exited(struct run_outcome *o, int code)
{
	memset(o, 0, sizeof *o);
	o->status = RUN_EXITED;
	o->pid = 4242;
	o->exit_code = code;
	o->started_ms = INT64_C(1700000000123);
	o->finished_ms = INT64_C(1700000001456);
	o->duration_ms = 1333;
	o->usage.ru_utime.tv_sec = 1;
	o->usage.ru_utime.tv_usec = 250000;
	o->usage.ru_stime.tv_usec = 3999;
	o->usage.ru_maxrss = 2048;
	set_stream(&o->out, "hello\n", 6, 0);
	set_stream(&o->err, "", 0, 0);
}

static const struct result_context ctx = {
	.task_file = "job-1.json",
	.task_file_stamp = "123:456:789",
	.stdout_log = "/spool/logs/job-1.stdout",
	.stderr_log = NULL,
	.attempt = 1,
};

static const char *str(const json_t *r, const char *key)
{
	const json_t *v = json_object_get(r, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static json_int_t integer(const json_t *r, const char *key)
{
	const json_t *v = json_object_get(r, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static bool boolean(const json_t *r, const char *key)
{
	const json_t *v = json_object_get(r, key);
	assert_true(json_is_boolean(v));
	return json_is_true(v);
}

static void assert_is_null(const json_t *r, const char *key)
{
	const json_t *v = json_object_get(r, key);
	assert_non_null(v); /* present, */
	assert_true(json_is_null(v)); /* and null */
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static void assert_timestamp(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	assert_int_equal(strlen(s), LIT_LEN(shape));
	for (size_t i = 0; i < LIT_LEN(shape); i++) {
		if (shape[i] == 'd')
			assert_true(isdigit((unsigned char)s[i]));
		else
			assert_int_equal(s[i], shape[i]);
	}
}

/* Dumps r, checks the text, and parses it back. */
static void assert_round_trip(const json_t *r)
{
	size_t len = 0;
	char *s = result_dump(r, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	assert_true(len >= 2);
	assert_int_equal(s[len - 1], '\n');
	assert_true(s[len - 2] != '\n');
	json_error_t jerr;
	json_t *back = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!back)
		print_error("%s\n", jerr.text);
	assert_non_null(back);
	assert_true(json_equal(back, r));
	json_decref(back);
	free(s);
}

static void test_succeeded(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"echo\", \"hello\"], \"meta\": {\"k\": [1]}}", &t);
	struct run_outcome o;
	exited(&o, 0);
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_non_null(r);
	assert_int_equal(integer(r, "format"), 1);
	assert_string_equal(str(r, "id"), "job-1");
	assert_string_equal(str(r, "status"), "succeeded");
	assert_string_equal(result_status(r), "succeeded");
	assert_int_equal(integer(r, "exit_code"), 0);
	assert_is_null(r, "signal");
	assert_is_null(r, "error");
	assert_string_equal(str(r, "started_at"), "2023-11-14T22:13:20.123Z");
	assert_string_equal(str(r, "finished_at"), "2023-11-14T22:13:21.456Z");
	assert_int_equal(integer(r, "duration_ms"), 1333);
	assert_int_equal(integer(r, "pid"), 4242);
	assert_int_equal(integer(r, "attempt"), 1);
	assert_string_equal(str(r, "stdout"), "hello\n");
	assert_string_equal(str(r, "stderr"), "");
	assert_int_equal(integer(r, "stdout_bytes"), 6);
	assert_int_equal(integer(r, "stderr_bytes"), 0);
	assert_false(boolean(r, "stdout_truncated"));
	assert_false(boolean(r, "stdout_invalid_utf8"));
	assert_false(boolean(r, "stderr_invalid_utf8"));
	assert_string_equal(str(r, "stdout_log"), "/spool/logs/job-1.stdout");
	assert_is_null(r, "stderr_log");
	assert_false(boolean(r, "stdout_log_truncated"));
	json_t *ru = json_object_get(r, "rusage");
	assert_int_equal(integer(ru, "user_ms"), 1250);
	assert_int_equal(integer(ru, "system_ms"), 3);
	assert_int_equal(integer(ru, "max_rss_kib"), 2048);
	assert_true(json_is_array(json_object_get(r, "warnings")));
	assert_int_equal(json_array_size(json_object_get(r, "warnings")), 0);
	assert_true(json_equal(json_object_get(r, "task"), t.json));
	assert_string_equal(str(r, "task_file"), "job-1.json");
	assert_string_equal(str(r, "task_file_stamp"), "123:456:789");
	json_t *runner = json_object_get(r, "runner");
	assert_true(json_is_object(runner));
	assert_true(strlen(str(runner, "version")) > 0);
	assert_true(strlen(str(runner, "host")) > 0);
	assert_int_equal(integer(runner, "pid"), getpid());
	assert_int_equal(result_exit_code(r), 0);
	assert_round_trip(r);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_failed(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": \"exit 3\"}", &t);
	struct run_outcome o;
	exited(&o, 3);
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_non_null(r);
	assert_string_equal(str(r, "status"), "failed");
	assert_int_equal(integer(r, "exit_code"), 3);
	assert_is_null(r, "signal");
	assert_is_null(r, "error");
	assert_int_equal(result_exit_code(r), 3);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_failed_255(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": \"exit 255\"}", &t);
	struct run_outcome o;
	exited(&o, 255);
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_string_equal(str(r, "status"), "failed");
	assert_int_equal(result_exit_code(r), 255);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_signaled(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"x\"]}", &t);
	const int sigs[] = { SIGKILL, SIGSEGV, SIGTERM, SIGABRT };
	const char *names[] = { "SIGKILL", "SIGSEGV", "SIGTERM", "SIGABRT" };
	for (size_t i = 0; i < 4; i++) {
		struct run_outcome o;
		exited(&o, -1);
		o.status = RUN_SIGNALED;
		o.term_signal = sigs[i];
		json_t *r = result_from_run(&t, &o, &ctx);
		assert_non_null(r);
		assert_string_equal(str(r, "status"), "killed");
		assert_is_null(r, "exit_code");
		json_t *sig = json_object_get(r, "signal");
		assert_true(json_is_object(sig));
		assert_int_equal(integer(sig, "number"), sigs[i]);
		assert_string_equal(str(sig, "name"), names[i]);
		assert_int_equal(result_exit_code(r), 128 + sigs[i]);
		assert_round_trip(r);
		json_decref(r);
		run_outcome_clear(&o);
	}
	task_clear(&t);
}

static void test_timeout(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"sleep\", \"100\"], \"timeout\": 1.5}", &t);
	struct run_outcome o;
	exited(&o, -1);
	o.status = RUN_TIMEOUT;
	o.term_signal = SIGTERM;
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_non_null(r);
	assert_string_equal(str(r, "status"), "timeout");
	assert_is_null(r, "exit_code");
	json_t *err = json_object_get(r, "error");
	assert_true(json_is_object(err));
	assert_string_equal(str(err, "code"), "timeout");
	assert_contains(str(err, "message"), "1.5");
	assert_int_equal(result_exit_code(r), 124);
	assert_round_trip(r);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_aborted(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"x\"]}", &t);
	struct run_outcome o;
	exited(&o, -1);
	o.status = RUN_ABORTED;
	o.term_signal = SIGTERM;
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_string_equal(str(r, "status"), "killed");
	assert_string_equal(str(json_object_get(r, "error"), "code"), "runner_stopped");
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

/* A task that never started: no pid, no exit code, an error naming why. */
static json_t *spawn_failure(const struct task *t, struct run_outcome *o, const char *stage, int err)
{
	memset(o, 0, sizeof *o);
	o->status = RUN_SPAWN_ERROR;
	o->exit_code = -1;
	o->spawn_error.stage = stage;
	o->spawn_error.err = err;
	set_stream(&o->out, "", 0, 0);
	set_stream(&o->err, "", 0, 0);
	json_t *r = result_from_run(t, o, &ctx);
	assert_non_null(r);
	assert_string_equal(str(r, "status"), "error");
	assert_is_null(r, "exit_code");
	assert_is_null(r, "signal");
	assert_is_null(r, "pid");
	return r;
}

static void test_spawn_exec_failed(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"/no/such/program\"]}", &t);
	struct run_outcome o;
	json_t *r = spawn_failure(&t, &o, "exec", ENOENT);
	json_t *err = json_object_get(r, "error");
	assert_string_equal(str(err, "code"), "exec_failed");
	assert_contains(str(err, "message"), "/no/such/program");
	assert_contains(str(err, "message"), strerror(ENOENT));
	assert_int_equal(result_exit_code(r), 127);
	assert_round_trip(r);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_spawn_cwd_failed(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"true\"], \"cwd\": \"/no/such/dir\"}", &t);
	struct run_outcome o;
	json_t *r = spawn_failure(&t, &o, "chdir", ENOENT);
	json_t *err = json_object_get(r, "error");
	assert_string_equal(str(err, "code"), "cwd_failed");
	assert_contains(str(err, "message"), "/no/such/dir");
	assert_int_equal(result_exit_code(r), 126);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_spawn_other_stage(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"true\"]}", &t);
	struct run_outcome o;
	json_t *r = spawn_failure(&t, &o, "fork", EAGAIN);
	json_t *err = json_object_get(r, "error");
	assert_string_equal(str(err, "code"), "spawn_failed");
	assert_contains(str(err, "message"), "fork");
	assert_int_equal(result_exit_code(r), 126);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

/* Output that is not UTF-8 still makes a valid JSON document. */
static void test_invalid_utf8_output(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"x\"]}", &t);
	struct run_outcome o;
	exited(&o, 0);
	run_outcome_clear(&o);
	set_stream(&o.out, "ok\xff\xfe\xc3(\0end", 10, 0);
	set_stream(&o.err, "caf\xc3\xa9", 5, 0);
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_non_null(r);
	json_t *out = json_object_get(r, "stdout");
	assert_true(json_is_string(out));
	const char want[] = "ok\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD(\0end";
	assert_int_equal(json_string_length(out), LIT_LEN(want));
	assert_memory_equal(json_string_value(out), want, LIT_LEN(want));
	assert_true(boolean(r, "stdout_invalid_utf8"));
	assert_string_equal(str(r, "stderr"), "caf\xc3\xa9");
	assert_false(boolean(r, "stderr_invalid_utf8"));
	assert_int_equal(integer(r, "stdout_bytes"), 10);
	assert_round_trip(r);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_truncated_output(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"x\"]}", &t);
	struct run_outcome o;
	exited(&o, 0);
	run_outcome_clear(&o);
	char big[1000];
	memset(big, 'q', sizeof big);
	set_stream(&o.out, big, sizeof big, 100);
	set_stream(&o.err, "e", 1, 0);
	o.out.log_truncated = true;
	json_t *r = result_from_run(&t, &o, &ctx);
	assert_true(boolean(r, "stdout_truncated"));
	assert_true(boolean(r, "stdout_log_truncated"));
	assert_false(boolean(r, "stderr_truncated"));
	assert_int_equal(integer(r, "stdout_bytes"), 1000);
	assert_contains(str(r, "stdout"), "[... spoolrun: 900 bytes omitted ...]");
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

static void test_warnings(void **state)
{
	(void)state;
	struct task t;
	make_task("{\"command\": [\"x\"], \"stdin\": \"data\"}", &t);
	struct run_outcome o;
	exited(&o, 0);
	o.stdin_unwritten = 4;
	o.leftovers_killed = true;
	o.err.log_errno = ENOSPC;
	struct result_context c = ctx;
	c.recovered = true;
	c.attempt = 2;
	json_t *r = result_from_run(&t, &o, &c);
	json_t *w = json_object_get(r, "warnings");
	assert_int_equal(json_array_size(w), 4);
	for (size_t i = 0; i < json_array_size(w); i++)
		assert_true(json_is_string(json_array_get(w, i)));
	assert_int_equal(integer(r, "attempt"), 2);
	assert_round_trip(r);
	json_decref(r);
	run_outcome_clear(&o);
	task_clear(&t);
}

/* --- rejected --------------------------------------------------------- */

static void test_rejected(void **state)
{
	(void)state;
	struct task t;
	struct task_error e;
	const char *bad = "{\"command\": [\"x\"], \"bogus\": true}";
	assert_int_equal(task_parse(bad, strlen(bad), "b.json", &dflt, &t, &e), -1);
	struct result_context c = { .task_file = "b.json", .attempt = 1 };
	json_t *r = result_rejected("b", &e, t.json, &c, "rejected/b.json");
	assert_non_null(r);
	assert_int_equal(integer(r, "format"), 1);
	assert_string_equal(str(r, "id"), "b");
	assert_string_equal(str(r, "status"), "rejected");
	assert_is_null(r, "exit_code");
	assert_is_null(r, "signal");
	assert_is_null(r, "pid");
	json_t *err = json_object_get(r, "error");
	assert_string_equal(str(err, "code"), "invalid_task");
	assert_string_equal(str(err, "field"), "bogus");
	assert_string_equal(str(err, "message"), e.message);
	assert_timestamp(str(r, "started_at"));
	assert_timestamp(str(r, "finished_at"));
	assert_int_equal(integer(r, "duration_ms"), 0);
	assert_string_equal(str(r, "stdout"), "");
	assert_string_equal(str(r, "stderr"), "");
	assert_int_equal(integer(r, "stdout_bytes"), 0);
	assert_true(json_equal(json_object_get(r, "task"), t.json));
	assert_string_equal(str(r, "task_file"), "b.json");
	assert_is_null(r, "task_file_stamp");
	assert_string_equal(str(r, "rejected_file"), "rejected/b.json");
	assert_int_equal(result_exit_code(r), 65);
	assert_round_trip(r);
	json_decref(r);
	task_clear(&t);
}

static void test_rejected_not_json(void **state)
{
	(void)state;
	struct task t;
	struct task_error e;
	const char *bad = "{oops \xff";
	assert_int_equal(task_parse(bad, strlen(bad), "caf\xc3\xa9 \xff.json", &dflt, &t, &e), -1);
	struct result_context c = { .attempt = 1 };
	char id[TASK_ID_MAX + 1];
	task_id_from_filename("caf\xc3\xa9 \xff.json", id);
	json_t *r = result_rejected(id, &e, t.json, &c, NULL);
	assert_non_null(r);
	json_t *err = json_object_get(r, "error");
	assert_string_equal(str(err, "code"), "invalid_json");
	/* No field: no "field" key (or an empty one). */
	json_t *field = json_object_get(err, "field");
	assert_true(!field || (json_is_string(field) && !*json_string_value(field)));
	assert_is_null(r, "task");
	assert_is_null(r, "rejected_file");
	assert_is_null(r, "task_file");
	assert_int_equal(result_exit_code(r), 65);
	/* The message quotes a file name that is not UTF-8: still valid JSON. */
	assert_round_trip(r);
	json_decref(r);
	task_clear(&t);
}

/* --- exit codes and status from documents ----------------------------- */

static int code_of(const char *doc)
{
	json_t *r = json_loads(doc, 0, NULL);
	assert_non_null(r);
	int code = result_exit_code(r);
	json_decref(r);
	return code;
}

static void test_exit_code_mapping(void **state)
{
	(void)state;
	assert_int_equal(code_of("{\"status\": \"succeeded\", \"exit_code\": 0}"), 0);
	assert_int_equal(code_of("{\"status\": \"failed\", \"exit_code\": 7}"), 7);
	assert_int_equal(code_of("{\"status\": \"timeout\", \"exit_code\": null}"), 124);
	assert_int_equal(code_of("{\"status\": \"killed\", \"signal\": {\"number\": 9, \"name\": \"SIGKILL\"}}"), 137);
	assert_int_equal(code_of("{\"status\": \"killed\", \"signal\": {\"number\": 15, \"name\": \"SIGTERM\"}}"), 143);
	assert_int_equal(code_of("{\"status\": \"rejected\"}"), 65);
	assert_int_equal(code_of("{\"status\": \"error\", \"error\": {\"code\": \"exec_failed\", \"not_found\": true}}"), 127);
	assert_int_equal(code_of("{\"status\": \"error\", \"error\": {\"code\": \"exec_failed\", \"not_found\": false}}"), 126);
	assert_int_equal(code_of("{\"status\": \"cancelled\"}"), 125);
	assert_int_equal(code_of("{\"status\": \"interrupted\"}"), 75);
	assert_int_equal(code_of("{\"status\": \"error\", \"error\": {\"code\": \"cwd_failed\"}}"), 126);
}

static void test_status_missing(void **state)
{
	(void)state;
	json_t *r = json_object();
	assert_string_equal(result_status(r), "error");
	json_decref(r);
}

/* --- timestamps ------------------------------------------------------- */

static void test_timestamps(void **state)
{
	(void)state;
	char buf[32];
	time_format_rfc3339(0, buf, sizeof buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	time_format_rfc3339(1, buf, sizeof buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.001Z");
	time_format_rfc3339(999, buf, sizeof buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.999Z");
	time_format_rfc3339(INT64_C(1700000000123), buf, sizeof buf);
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
	time_format_rfc3339(INT64_C(951782400000), buf, sizeof buf); /* leap day */
	assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
	time_format_rfc3339(INT64_C(253402300799999), buf, sizeof buf);
	assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
	/* Exactly 25 bytes are enough. */
	char tight[25];
	time_format_rfc3339(INT64_C(1700000000123), tight, sizeof tight);
	assert_string_equal(tight, "2023-11-14T22:13:20.123Z");
	time_format_rfc3339(time_realtime_ms(), buf, sizeof buf);
	assert_timestamp(buf);
}

/* Milliseconds before the epoch must floor, not truncate toward zero. */
static void test_timestamp_before_epoch(void **state)
{
	(void)state;
	char buf[32];
	time_format_rfc3339(-1, buf, sizeof buf);
	assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
	time_format_rfc3339(-1000, buf, sizeof buf);
	assert_string_equal(buf, "1969-12-31T23:59:59.000Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_succeeded),
		cmocka_unit_test(test_failed),
		cmocka_unit_test(test_failed_255),
		cmocka_unit_test(test_signaled),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_aborted),
		cmocka_unit_test(test_spawn_exec_failed),
		cmocka_unit_test(test_spawn_cwd_failed),
		cmocka_unit_test(test_spawn_other_stage),
		cmocka_unit_test(test_invalid_utf8_output),
		cmocka_unit_test(test_truncated_output),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_rejected_not_json),
		cmocka_unit_test(test_exit_code_mapping),
		cmocka_unit_test(test_status_missing),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_timestamp_before_epoch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
