/* cliopt: one option table per command; errors name the option; a value
 * is never the "--" separator. status_format_duration: durations for
 * people. */
#include "testutil.h"

#include "cliopt.h"
#include "status.h"

enum { K_ID, K_WAIT };

static const struct cliopt opts[] = { { "id", 'i', true, K_ID }, { "wait", 'w', false, K_WAIT } };

struct seen {
	const char *id;
	bool wait;
};

static int handle(void *ctx, const struct cliopt *o, const char *value)
{
	struct seen *s = ctx;
	if (o->key == K_ID && !strcmp(value, "bad"))
		return cliopt_bad_value("submit", o, value, "is bad");
	if (o->key == K_ID)
		s->id = value;
	else
		s->wait = true;
	return 0;
}

static int parse(int argc, char **argv, struct seen *s, struct cliopt_common *c, bool *sep)
{
	memset(s, 0, sizeof *s);
	memset(c, 0, sizeof *c);
	return cliopt_parse(argc, argv, opts, 2, "usage\n", c, handle, s, sep);
}

static void test_options_and_operands(void **state)
{
	(void)state;
	struct seen s;
	struct cliopt_common c;
	bool sep;
	char *argv[] = { "submit", "--id", "x", "-w", "--spool", "/s", "-c", "f.ini", "--", "echo",
			 "hi", NULL };
	assert_int_equal(parse(11, argv, &s, &c, &sep), 9);
	assert_string_equal(s.id, "x");
	assert_true(s.wait);
	assert_string_equal(c.spool, "/s");
	assert_string_equal(c.config, "f.ini");
	assert_true(sep);
	char *file[] = { "submit", "-i", "y", "task.json", NULL };
	assert_int_equal(parse(4, file, &s, &c, &sep), 3);
	assert_false(sep);
	assert_string_equal(s.id, "y");
}

static void test_usage_errors(void **state)
{
	(void)state;
	struct seen s;
	struct cliopt_common c;
	bool sep;
	char *separator[] = { "submit", "--id", "--", "true", NULL };
	assert_int_equal(parse(4, separator, &s, &c, &sep), -1);
	char *missing[] = { "submit", "--id", NULL };
	assert_int_equal(parse(2, missing, &s, &c, &sep), -1);
	char *unknown[] = { "submit", "--colour", NULL };
	assert_int_equal(parse(2, unknown, &s, &c, &sep), -1);
	char *bad[] = { "submit", "--id", "bad", NULL };
	assert_int_equal(parse(3, bad, &s, &c, &sep), -1);
	char *help[] = { "submit", "--help", NULL };
	assert_int_equal(parse(2, help, &s, &c, &sep), -2);
}

static void test_durations(void **state)
{
	(void)state;
	char b[32];
	static const struct { int64_t ms; const char *text; } cases[] = {
		{ -1, "-" }, { 0, "0.0 s" }, { 1234, "1.2 s" }, { 59000, "59 s" },
		{ 125000, "2 min" }, { 3 * 3600000 + 5 * 60000, "3 h 5 min" },
		{ 5 * 86400000LL, "5 d" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		status_format_duration(cases[i].ms, b, sizeof b);
		assert_string_equal(b, cases[i].text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_and_operands),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
