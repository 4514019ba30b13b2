/* utf8: repair of arbitrary bytes into valid UTF-8, and cutting text at
 * character boundaries. */
#include "testutil.h"

#include "utf8.h"

#define FFFD "\xEF\xBF\xBD"

/* Repairs in[0..inlen) and checks the output is exactly want[0..wantlen). */
static void check_repair(const char *in, size_t inlen, const char *want, size_t wantlen,
			 bool want_repaired)
{
	size_t outlen = 12345;
	bool repaired = !want_repaired;
	char *out = utf8_repair(in, inlen, &outlen, &repaired);
	assert_non_null(out);
	assert_int_equal(outlen, wantlen);
	assert_memory_equal(out, want, wantlen);
	assert_int_equal(out[outlen], '\0');
	assert_int_equal(repaired, want_repaired);
	free(out);
}

#define REPAIR(in, want, rep) check_repair(in, LIT_LEN(in), want, LIT_LEN(want), rep)

static void test_ascii_untouched(void **state)
{
	(void)state;
	REPAIR("hello, world\n\t~", "hello, world\n\t~", false);
}

static void test_empty(void **state)
{
	(void)state;
	REPAIR("", "", false);
}

static void test_multibyte_untouched(void **state)
{
	(void)state;
	/* U+00E9, U+20AC, U+1F600, and the extremes of each length. */
	const char s[] = "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 "
			 "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF "
			 "\xED\x9F\xBF \xEE\x80\x80 \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF";
	check_repair(s, LIT_LEN(s), s, LIT_LEN(s), false);
}

static void test_replacement_char_itself_untouched(void **state)
{
	(void)state;
	REPAIR(FFFD, FFFD, false);
}

static void test_lone_continuation(void **state)
{
	(void)state;
	REPAIR("a\x80z", "a" FFFD "z", true);
	REPAIR("\xBF", FFFD, true);
}

static void test_overlong_two_byte(void **state)
{
	(void)state;
	/* C0 80 is an overlong NUL: neither byte is part of a valid sequence. */
	REPAIR("x\xC0\x80y", "x" FFFD FFFD "y", true);
	REPAIR("\xC1\xBF", FFFD FFFD, true);
}

static void test_overlong_three_byte(void **state)
{
	(void)state;
	REPAIR("\xE0\x80\x80", FFFD FFFD FFFD, true);
	REPAIR("\xE0\x9F\xBF", FFFD FFFD FFFD, true);
}

static void test_overlong_four_byte(void **state)
{
	(void)state;
	REPAIR("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD, true);
}

static void test_surrogate(void **state)
{
	(void)state;
	REPAIR("\xED\xA0\x80", FFFD FFFD FFFD, true);
	REPAIR("\xED\xBF\xBF", FFFD FFFD FFFD, true);
}

static void test_above_max_code_point(void **state)
{
	(void)state;
	REPAIR("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD, true);
	REPAIR("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD, true);
	REPAIR("\xFF", FFFD, true);
	REPAIR("\xFE", FFFD, true);
}

static void test_truncated_at_end(void **state)
{
	(void)state;
	REPAIR("ok\xE2\x82", "ok" FFFD FFFD, true);
	REPAIR("ok\xF0\x9F\x98", "ok" FFFD FFFD FFFD, true);
	REPAIR("ok\xC3", "ok" FFFD, true);
}

static void test_truncated_in_middle(void **state)
{
	(void)state;
	/* A lead byte followed by ASCII: the ASCII survives. */
	REPAIR("\xE2\x82z", FFFD FFFD "z", true);
	REPAIR("\xC3z\xC3\xA9", FFFD "z\xC3\xA9", true);
}

static void test_embedded_nul_kept(void **state)
{
	(void)state;
	const char in[] = "a\0b\0";
	check_repair(in, sizeof in, in, sizeof in, false); /* includes the final NUL */
}

static void test_worst_case_growth(void **state)
{
	(void)state;
	char in[300];
	memset(in, 0x80, sizeof in);
	size_t outlen;
	bool repaired;
	char *out = utf8_repair(in, sizeof in, &outlen, &repaired);
	assert_non_null(out);
	assert_true(repaired);
	assert_int_equal(outlen, 3 * sizeof in);
	for (size_t i = 0; i < sizeof in; i++)
		assert_memory_equal(out + 3 * i, FFFD, 3);
	free(out);
}

/* --- utf8_trim_incomplete_tail ---------------------------------------- */

#define TRIM(s) utf8_trim_incomplete_tail(s, LIT_LEN(s))

static void test_trim_complete_text(void **state)
{
	(void)state;
	assert_int_equal(TRIM(""), 0);
	assert_int_equal(TRIM("abc"), 3);
	assert_int_equal(TRIM("a\xC3\xA9"), 3);
	assert_int_equal(TRIM("a\xE2\x82\xAC"), 4);
	assert_int_equal(TRIM("a\xF0\x9F\x98\x80"), 5);
	assert_int_equal(TRIM("\xF0\x9F\x98\x80"), 4);
}

static void test_trim_cut_two_byte(void **state)
{
	(void)state;
	assert_int_equal(TRIM("ab\xC3"), 2);
	assert_int_equal(TRIM("\xC3"), 0);
}

static void test_trim_cut_three_byte(void **state)
{
	(void)state;
	assert_int_equal(TRIM("ab\xE2"), 2);
	assert_int_equal(TRIM("ab\xE2\x82"), 2);
}

static void test_trim_cut_four_byte(void **state)
{
	(void)state;
	assert_int_equal(TRIM("ab\xF0"), 2);
	assert_int_equal(TRIM("ab\xF0\x9F"), 2);
	assert_int_equal(TRIM("ab\xF0\x9F\x98"), 2);
	assert_int_equal(TRIM("\xF0\x9F\x98"), 0);
}

/* Cutting a string of 4-byte characters at every offset leaves whole
 * characters only. */
static void test_trim_every_cut(void **state)
{
	(void)state;
	const char s[] = "\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9z\xF0\x9F\x98\x81";
	/* Character boundaries of s. */
	const size_t bounds[] = { 0, 4, 7, 9, 10, 14 };
	for (size_t cut = 0; cut <= LIT_LEN(s); cut++) {
		size_t want = 0;
		for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++)
			if (bounds[i] <= cut)
				want = bounds[i];
		assert_int_equal(utf8_trim_incomplete_tail(s, cut), want);
	}
}

/* --- utf8_skip_partial_head ------------------------------------------- */

#define SKIP(s) utf8_skip_partial_head(s, LIT_LEN(s))

static void test_skip_head(void **state)
{
	(void)state;
	assert_int_equal(SKIP(""), 0);
	assert_int_equal(SKIP("abc"), 0);
	assert_int_equal(SKIP("\xC3\xA9x"), 0);
	assert_int_equal(SKIP("\xA9x"), 1);          /* tail of U+00E9 */
	assert_int_equal(SKIP("\x82\xACx"), 2);      /* tail of U+20AC */
	assert_int_equal(SKIP("\x9F\x98\x80x"), 3);  /* tail of U+1F600 */
	assert_int_equal(SKIP("\x98\x80x"), 2);
	/* At most 3: more continuation bytes are garbage, not a cut char. */
	assert_int_equal(SKIP("\x80\x80\x80\x80\x80"), 3);
	/* Never past len. */
	assert_int_equal(utf8_skip_partial_head("\x80\x80", 1), 1);
}

static void test_skip_every_cut(void **state)
{
	(void)state;
	const char s[] = "\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9z\xF0\x9F\x98\x81";
	const size_t bounds[] = { 0, 4, 7, 9, 10, 14 };
	for (size_t cut = 0; cut <= LIT_LEN(s); cut++) {
		size_t next = LIT_LEN(s);
		for (size_t i = sizeof bounds / sizeof *bounds; i-- > 0;)
			if (bounds[i] >= cut)
				next = bounds[i];
		assert_int_equal(utf8_skip_partial_head(s + cut, LIT_LEN(s) - cut), next - cut);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_untouched),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_multibyte_untouched),
		cmocka_unit_test(test_replacement_char_itself_untouched),
		cmocka_unit_test(test_lone_continuation),
		cmocka_unit_test(test_overlong_two_byte),
		cmocka_unit_test(test_overlong_three_byte),
		cmocka_unit_test(test_overlong_four_byte),
		cmocka_unit_test(test_surrogate),
		cmocka_unit_test(test_above_max_code_point),
		cmocka_unit_test(test_truncated_at_end),
		cmocka_unit_test(test_truncated_in_middle),
		cmocka_unit_test(test_embedded_nul_kept),
		cmocka_unit_test(test_worst_case_growth),
		cmocka_unit_test(test_trim_complete_text),
		cmocka_unit_test(test_trim_cut_two_byte),
		cmocka_unit_test(test_trim_cut_three_byte),
		cmocka_unit_test(test_trim_cut_four_byte),
		cmocka_unit_test(test_trim_every_cut),
		cmocka_unit_test(test_skip_head),
		cmocka_unit_test(test_skip_every_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
