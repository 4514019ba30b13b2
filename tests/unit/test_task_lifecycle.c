/* task: the lifecycle fields (after, after_policy, not_before, label,
 * timeout "auto", history_key), and the time formats not_before takes. */
#include "testutil.h"

#include "task.h"
#include "timeutil.h"

static const struct task_defaults dflt = {
	.timeout = 3600, .kill_grace = 5, .auto_timeout_factor = 3, .auto_timeout_min = 60,
	.auto_timeout_default = 1800,
};

static int parse_with(const char *s, const struct task_defaults *d, struct task *t,
		      struct task_error *e)
{
	return task_parse(s, strlen(s), "t1.json", d, t, e);
}

static void ok(const char *s, struct task *t)
{
	struct task_error e;
	int rc = parse_with(s, &dflt, t, &e);
	if (rc != 0)
		print_error("unexpected error for %s: %s\n", s, e.message);
	assert_int_equal(rc, 0);
}

/* Refused as invalid_task, the error naming the field and the file. */
static void refused(const char *s, const char *field, const char *says)
{
	struct task t;
	struct task_error e;
	int rc = parse_with(s, &dflt, &t, &e);
	if (rc == 0)
		print_error("accepted: %s\n", s);
	assert_int_equal(rc, -1);
	assert_string_equal(e.code, "invalid_task");
	assert_string_equal(e.field, field);
	assert_contains(e.message, "t1.json");
	assert_contains(e.message, field);
	assert_contains(e.message, says);
	task_clear(&t);
}

#define CMD "\"command\": [\"true\"]"

static void test_after_accepted(void **state)
{
	(void)state;
	struct task t;
	ok("{" CMD ", \"id\": \"c\", \"after\": [\"a\", \"b\"], \"after_policy\": \"finished\"}", &t);
	assert_int_equal(t.n_after, 2);
	assert_string_equal(t.after[0], "a");
	assert_string_equal(t.after[1], "b");
	assert_true(t.after_finished);
	task_clear(&t);
	ok("{" CMD ", \"after\": [\"a\"]}", &t);
	assert_false(t.after_finished); /* default "succeeded" */
	task_clear(&t);
	/* A task after itself is a cycle the scheduler publishes, not a bad file. */
	ok("{" CMD ", \"id\": \"self\", \"after\": [\"self\"]}", &t);
	assert_int_equal(t.n_after, 1);
	task_clear(&t);
	ok("{" CMD "}", &t);
	assert_null(t.after);
	assert_int_equal(t.n_after, 0);
	task_clear(&t);
}

static void test_after_refused(void **state)
{
	(void)state;
	refused("{" CMD ", \"after\": []}", "after", "1 to 100");
	refused("{" CMD ", \"after\": \"a\"}", "after", "a string");
	refused("{" CMD ", \"after\": [\"a\", 5]}", "after", "[1]");
	refused("{" CMD ", \"after\": [\"has space\"]}", "after", "invalid string");
	refused("{" CMD ", \"after\": [\".hidden\"]}", "after", "invalid string");
	refused("{" CMD ", \"after\": [\"a\", \"a\"]}", "after", "listed twice");
	char big[4096] = "{" CMD ", \"after\": [";
	for (int i = 0; i < 101; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"t%d\"", i ? ", " : "", i);
	strcat(big, "]}");
	refused(big, "after", "1 to 100");
	refused("{" CMD ", \"after\": [\"a\"], \"after_policy\": \"always\"}", "after_policy",
		"\"succeeded\" or \"finished\"");
	refused("{" CMD ", \"after_policy\": true}", "after_policy", "a boolean");
}

static void test_after_hundred_ids(void **state)
{
	(void)state;
	char big[4096] = "{" CMD ", \"after\": [";
	for (int i = 0; i < 100; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"t%d\"", i ? ", " : "", i);
	strcat(big, "]}");
	struct task t;
	ok(big, &t);
	assert_int_equal(t.n_after, 100);
	assert_string_equal(t.after[99], "t99");
	task_clear(&t);
}

static void test_not_before(void **state)
{
	(void)state;
	struct task t;
	ok("{" CMD ", \"not_before\": \"2026-12-01T08:00:00Z\"}", &t);
	assert_int_equal(t.not_before_ms, INT64_C(1796112000000));
	task_clear(&t);
	ok("{" CMD ", \"not_before\": \"2026-12-01T10:00:00.250+02:00\"}", &t);
	assert_int_equal(t.not_before_ms, INT64_C(1796112000250));
	task_clear(&t);
	ok("{" CMD ", \"not_before\": 1796112000}", &t);
	assert_int_equal(t.not_before_ms, INT64_C(1796112000000));
	task_clear(&t);
	ok("{" CMD ", \"not_before\": 1796112000.5}", &t);
	assert_int_equal(t.not_before_ms, INT64_C(1796112000500));
	task_clear(&t);
	ok("{" CMD "}", &t);
	assert_int_equal(t.not_before_ms, 0);
	task_clear(&t);
	refused("{" CMD ", \"not_before\": \"tomorrow\"}", "not_before", "RFC 3339");
	refused("{" CMD ", \"not_before\": \"2026-02-30T00:00:00Z\"}", "not_before", "RFC 3339");
	refused("{" CMD ", \"not_before\": \"2026-12-01T08:00:00\"}", "not_before", "RFC 3339");
	refused("{" CMD ", \"not_before\": -1}", "not_before", "out of range");
	refused("{" CMD ", \"not_before\": 1e20}", "not_before", "out of range");
	refused("{" CMD ", \"not_before\": [1]}", "not_before", "an array");
}

static void test_rfc3339(void **state)
{
	(void)state;
	static const struct { const char *text; int64_t ms; } good[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-12-01t08:00:00z", INT64_C(1796112000000) },
		{ "2026-12-01 08:00:00Z", INT64_C(1796112000000) },
		{ "2026-12-01T08:00:00.1Z", INT64_C(1796112000100) },
		{ "2026-12-01T08:00:00.123456Z", INT64_C(1796112000123) },
		{ "2026-12-01T03:30:00-04:30", INT64_C(1796112000000) },
		{ "2024-02-29T00:00:00Z", INT64_C(1709164800000) },
	};
	static const char *const bad[] = {
		"", "2026", "2026-12-01", "2026-12-01T08:00Z", "2026-13-01T00:00:00Z",
		"2026-12-01T24:00:00Z", "2025-02-29T00:00:00Z", "2026-12-01T08:00:00.Z",
		"2026-12-01T08:00:00+0200", "2026-12-01T08:00:00Z junk", "1969-12-31T23:59:59Z",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		int64_t ms = -1;
		assert_int_equal(time_parse_rfc3339(good[i].text, &ms), 0);
		assert_int_equal(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int64_t ms;
		if (time_parse_rfc3339(bad[i], &ms) == 0)
			print_error("accepted %s\n", bad[i]);
		assert_int_equal(time_parse_rfc3339(bad[i], &ms), -1);
	}
	int64_t ms;
	assert_int_equal(time_parse_when("1796112000", &ms), 0);
	assert_int_equal(ms, INT64_C(1796112000000));
	assert_int_equal(time_parse_when("2026-12-01T08:00:00Z", &ms), 0);
	assert_int_equal(time_parse_when("-5", &ms), -1);
	assert_int_equal(time_parse_when("soon", &ms), -1);
	assert_int_equal(time_parse_when("", &ms), -1);
}

static void test_label(void **state)
{
	(void)state;
	struct task t;
	ok("{" CMD ", \"label\": \"nightly build\"}", &t);
	assert_string_equal(t.label, "nightly build");
	task_clear(&t);
	char label[160 * 2 + 64], doc[512];
	/* 128 characters of two bytes each: counted as characters. */
	label[0] = '\0';
	for (int i = 0; i < 128; i++)
		strcat(label, "\xc3\xa9");
	snprintf(doc, sizeof doc, "{" CMD ", \"label\": \"%s\"}", label);
	ok(doc, &t);
	task_clear(&t);
	strcat(label, "x");
	snprintf(doc, sizeof doc, "{" CMD ", \"label\": \"%s\"}", label);
	refused(doc, "label", "1 to 128 characters");
	refused("{" CMD ", \"label\": \"\"}", "label", "1 to 128");
	refused("{" CMD ", \"label\": \"a\\nb\"}", "label", "control");
	refused("{" CMD ", \"label\": 7}", "label", "an integer");
}

static void test_timeout_auto(void **state)
{
	(void)state;
	struct task t;
	ok("{" CMD ", \"timeout\": \"auto\"}", &t);
	assert_true(t.timeout_auto);
	assert_false(t.timeout_given);
	assert_int_equal(t.timeout_source, TIMEOUT_AUTO_DEFAULT);
	assert_true(t.timeout == 1800); /* until the history is read */
	task_clear(&t);
	ok("{" CMD ", \"timeout\": 5}", &t);
	assert_false(t.timeout_auto);
	assert_true(t.timeout_given);
	assert_int_equal(t.timeout_source, TIMEOUT_TASK);
	task_clear(&t);
	ok("{" CMD "}", &t);
	assert_int_equal(t.timeout_source, TIMEOUT_DEFAULT);
	assert_true(t.timeout == 3600);
	task_clear(&t);
	/* [task] timeout = auto applies to tasks without their own. */
	struct task_defaults d = dflt;
	d.timeout_auto = true;
	struct task_error e;
	assert_int_equal(parse_with("{" CMD "}", &d, &t, &e), 0);
	assert_true(t.timeout_auto);
	assert_int_equal(t.timeout_source, TIMEOUT_AUTO_DEFAULT);
	task_clear(&t);
	assert_int_equal(parse_with("{" CMD ", \"timeout\": 7}", &d, &t, &e), 0);
	assert_false(t.timeout_auto);
	assert_true(t.timeout == 7);
	task_clear(&t);
	refused("{" CMD ", \"timeout\": \"soon\"}", "timeout", "\"auto\"");
	assert_string_equal(timeout_source_name(TIMEOUT_TASK), "task");
	assert_string_equal(timeout_source_name(TIMEOUT_DEFAULT), "default");
	assert_string_equal(timeout_source_name(TIMEOUT_AUTO), "auto");
	assert_string_equal(timeout_source_name(TIMEOUT_AUTO_DEFAULT), "auto_default");
}

static void test_history_key(void **state)
{
	(void)state;
	struct task t;
	ok("{" CMD ", \"history_key\": \"build:linux\"}", &t);
	assert_string_equal(t.history_key, "build:linux");
	task_clear(&t);
	refused("{" CMD ", \"history_key\": \"\"}", "history_key", "1 to 4096");
	refused("{" CMD ", \"history_key\": 1}", "history_key", "an integer");
	refused("{" CMD ", \"history_key\": \"a\\u0000b\"}", "history_key", "NUL");
}

static void test_unknown_field_lists_new_ones(void **state)
{
	(void)state;
	refused("{" CMD ", \"afer\": [\"a\"]}", "afer", "after, after_policy, not_before, label, history_key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_after_accepted),
		cmocka_unit_test(test_after_refused),
		cmocka_unit_test(test_after_hundred_ids),
		cmocka_unit_test(test_not_before),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_label),
		cmocka_unit_test(test_timeout_auto),
		cmocka_unit_test(test_history_key),
		cmocka_unit_test(test_unknown_field_lists_new_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
