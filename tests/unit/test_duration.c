/* time_parse_duration: the durations of `clean --older-than` and
 * [spool] keep_results. */
#include "testutil.h"

#include "timeutil.h"

static void test_units(void **state)
{
	(void)state;
	static const struct { const char *in; int64_t want; } ok[] = {
		{ "0", 0 }, { "90", 90 }, { "90s", 90 }, { "30m", 1800 }, { "12h", 43200 },
		{ "7d", 604800 }, { "0d", 0 }, { "36500d", INT64_C(36500) * 86400 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		int64_t v = -1;
		assert_int_equal(time_parse_duration(ok[i].in, &v), 0);
		assert_true(v == ok[i].want);
	}
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "s", "-1", "+5", "1.5h", " 5", "5 ", "5x", "5ss", "5S", "1d2h", "99999999999999999999",
		"40000d", "9223372036854775807s",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int64_t v = 42;
		if (time_parse_duration(bad[i], &v) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(v == 42); /* untouched */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
