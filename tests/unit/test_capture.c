/* capture: the bounded head + tail copy of an output stream. */
#include "testutil.h"

#include <inttypes.h>

#include "capture.h"
#include "utf8.h"

/* The render of a capture, as a malloc'ed string; length in *len. */
static char *render(const struct capture *c, size_t *len)
{
	*len = SIZE_MAX;
	char *r = capture_render(c, len);
	assert_non_null(r);
	assert_true(*len != SIZE_MAX);
	assert_int_equal(r[*len], '\0');
	return r;
}

/* What a capture with this limit must render for stream s[0..n) when
 * every byte is ASCII (no UTF-8 adjustment): malloc'ed. */
static char *reference(const char *s, size_t n, size_t limit, size_t *len)
{
	if (n <= limit) {
		char *r = malloc(n + 1);
		assert_non_null(r);
		memcpy(r, s, n);
		r[n] = '\0';
		*len = n;
		return r;
	}
	size_t head = limit / 2, tail = limit - head;
	char marker[96];
	snprintf(marker, sizeof marker, "\n[... spoolrun: %zu bytes omitted ...]\n",
		 n - head - tail);
	size_t m = strlen(marker);
	char *r = malloc(head + m + tail + 1);
	assert_non_null(r);
	memcpy(r, s, head);
	memcpy(r + head, marker, m);
	memcpy(r + head + m, s + n - tail, tail);
	r[head + m + tail] = '\0';
	*len = head + m + tail;
	return r;
}

static void assert_render_is_reference(const struct capture *c, const char *s, size_t n,
				       size_t limit)
{
	size_t got_len, want_len;
	char *got = render(c, &got_len);
	char *want = reference(s, n, limit, &want_len);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	assert_int_equal(capture_truncated(c), n > limit);
	free(got);
	free(want);
}

/* n printable ASCII bytes that never repeat with a short period, so a
 * misplaced byte shows. */
static char *ascii_stream(size_t n, uint64_t seed)
{
	struct tu_rng rng = { seed };
	char *s = malloc(n + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)tu_rand_range(&rng, 0x21, 0x7E);
	s[n] = '\0';
	return s;
}

/* An append that lands wholly in the head, while the tail buffer is still
 * unallocated, must not touch the tail: append_tail() must not call
 * memcpy(NULL + 0, ..., 0), which is undefined behaviour (UBSan aborts on
 * it in the sanitizer build). Same for a zero-length first append. */
static void test_append_into_head_only(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 1 << 20);
	assert_int_equal(capture_append(&c, "hi", 2), 0);
	assert_null(c.tail);
	size_t len;
	char *r = render(&c, &len);
	assert_string_equal(r, "hi");
	free(r);
	capture_clear(&c);
	capture_init(&c, 64);
	assert_int_equal(capture_append(&c, "", 0), 0);
	assert_int_equal(c.total, 0);
	capture_clear(&c);
}

static void test_empty(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 100);
	size_t len;
	char *r = render(&c, &len);
	assert_int_equal(len, 0);
	assert_false(capture_truncated(&c));
	free(r);
	capture_clear(&c);
}

static void test_small_output_whole(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 1 << 20);
	assert_int_equal(capture_append(&c, "hello\n", 6), 0);
	assert_int_equal(capture_append(&c, "", 0), 0);
	assert_int_equal(capture_append(&c, "world\n", 6), 0);
	size_t len;
	char *r = render(&c, &len);
	assert_int_equal(len, 12);
	assert_memory_equal(r, "hello\nworld\n", 12);
	assert_false(capture_truncated(&c));
	assert_int_equal(c.total, 12);
	free(r);
	/* Memory grows with what was written, not with the limit. */
	assert_true(c.head_cap + c.tail_cap <= 8192);
	capture_clear(&c);
}

static void test_exactly_limit(void **state)
{
	(void)state;
	const size_t limits[] = { 1, 2, 3, 10, 11, 4096, 8193 };
	for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
		size_t limit = limits[i];
		char *s = ascii_stream(limit, limit);
		struct capture c;
		/* In one append and byte by byte. */
		capture_init(&c, limit);
		assert_int_equal(capture_append(&c, s, limit), 0);
		assert_false(capture_truncated(&c));
		assert_render_is_reference(&c, s, limit, limit);
		capture_clear(&c);
		capture_init(&c, limit);
		for (size_t j = 0; j < limit; j++)
			assert_int_equal(capture_append(&c, s + j, 1), 0);
		assert_false(capture_truncated(&c));
		assert_render_is_reference(&c, s, limit, limit);
		/* One byte more truncates. */
		assert_int_equal(capture_append(&c, "!", 1), 0);
		assert_true(capture_truncated(&c));
		capture_clear(&c);
		free(s);
	}
}

static void test_over_limit(void **state)
{
	(void)state;
	const size_t limit = 100, n = 1000;
	char *s = ascii_stream(n, 7);
	struct capture c;
	capture_init(&c, limit);
	assert_int_equal(capture_append(&c, s, n), 0);
	assert_true(capture_truncated(&c));
	size_t len;
	char *r = render(&c, &len);
	const char marker[] = "\n[... spoolrun: 900 bytes omitted ...]\n";
	assert_int_equal(len, 50 + LIT_LEN(marker) + 50);
	assert_memory_equal(r, s, 50);
	assert_memory_equal(r + 50, marker, LIT_LEN(marker));
	assert_memory_equal(r + 50 + LIT_LEN(marker), s + n - 50, 50);
	free(r);
	capture_clear(&c);
	free(s);
}

static void test_odd_limit_split(void **state)
{
	(void)state;
	/* limit/2 in the head, limit - limit/2 in the tail. */
	const size_t limit = 11, n = 50;
	char *s = ascii_stream(n, 11);
	struct capture c;
	capture_init(&c, limit);
	assert_int_equal(capture_append(&c, s, n), 0);
	size_t len;
	char *r = render(&c, &len);
	const char marker[] = "\n[... spoolrun: 39 bytes omitted ...]\n";
	assert_int_equal(len, 5 + LIT_LEN(marker) + 6);
	assert_memory_equal(r, s, 5);
	assert_memory_equal(r + 5, marker, LIT_LEN(marker));
	assert_memory_equal(r + 5 + LIT_LEN(marker), s + n - 6, 6);
	free(r);
	capture_clear(&c);
	free(s);
}

static void test_large_omitted_count(void **state)
{
	(void)state;
	/* More than 4 GiB written is counted exactly (64-bit total). */
	struct capture c;
	capture_init(&c, 8);
	char block[65536];
	memset(block, 'z', sizeof block);
	c.total = UINT64_C(5) << 30; /* pretend 5 GiB went by already */
	c.head_len = 0;
	assert_int_equal(capture_append(&c, block, sizeof block), 0);
	size_t len;
	char *r = render(&c, &len);
	char want[128];
	uint64_t total = (UINT64_C(5) << 30) + sizeof block;
	snprintf(want, sizeof want, "zzzz\n[... spoolrun: %" PRIu64 " bytes omitted ...]\nzzzz",
		 total - 8);
	assert_string_equal(r, want);
	free(r);
	capture_clear(&c);
}

static void test_small_vs_big_appends(void **state)
{
	(void)state;
	const size_t limit = 1000, n = 10007;
	char *s = ascii_stream(n, 3);
	struct capture big, small;
	capture_init(&big, limit);
	capture_init(&small, limit);
	assert_int_equal(capture_append(&big, s, n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(capture_append(&small, s + i, 1), 0);
	size_t blen, slen;
	char *b = render(&big, &blen);
	char *sm = render(&small, &slen);
	assert_int_equal(blen, slen);
	assert_memory_equal(b, sm, blen);
	free(b);
	free(sm);
	assert_render_is_reference(&big, s, n, limit);
	capture_clear(&big);
	capture_clear(&small);
	free(s);
}

/* The ring, against the reference, over random chunk sizes (some larger
 * than the tail, some zero) and many limits, rendering as it goes. */
static void test_ring_random(void **state)
{
	(void)state;
	struct tu_rng rng = { 20240611 };
	const size_t limits[] = { 1, 2, 3, 4, 5, 7, 8, 16, 33, 100, 255, 1024, 4097, 10000 };
	for (size_t li = 0; li < sizeof limits / sizeof *limits; li++) {
		size_t limit = limits[li];
		for (int round = 0; round < 8; round++) {
			size_t n = (size_t)tu_rand_range(&rng, 0, limit * 6 + 50);
			char *s = ascii_stream(n, tu_rand64(&rng));
			struct capture c;
			capture_init(&c, limit);
			for (size_t off = 0; off < n;) {
				size_t max_chunk = round % 2 ? limit + 3 : limit * 2 + 10;
				size_t k = (size_t)tu_rand_range(&rng, 0, max_chunk);
				if (k > n - off)
					k = n - off;
				assert_int_equal(capture_append(&c, s + off, k), 0);
				off += k;
				if (tu_rand_range(&rng, 0, 7) == 0)
					assert_render_is_reference(&c, s, off, limit);
				/* Memory never grows past the limit. */
				assert_true(c.head_cap <= c.head_max);
				assert_true(c.tail_cap <= c.tail_max);
			}
			assert_int_equal(c.total, n);
			assert_render_is_reference(&c, s, n, limit);
			capture_clear(&c);
			free(s);
		}
	}
}

static void test_limit_zero(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 0);
	size_t len;
	char *r = render(&c, &len);
	assert_int_equal(len, 0);
	assert_false(capture_truncated(&c));
	free(r);
	assert_int_equal(capture_append(&c, "abc", 3), 0);
	assert_int_equal(capture_append(&c, "de", 2), 0);
	assert_true(capture_truncated(&c));
	r = render(&c, &len);
	assert_string_equal(r, "\n[... spoolrun: 5 bytes omitted ...]\n");
	free(r);
	assert_int_equal(c.head_cap + c.tail_cap, 0);
	capture_clear(&c);
}

static void test_limit_one(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 1);
	assert_int_equal(capture_append(&c, "a", 1), 0);
	size_t len;
	char *r = render(&c, &len);
	assert_string_equal(r, "a");
	free(r);
	assert_int_equal(capture_append(&c, "bc", 2), 0);
	r = render(&c, &len);
	assert_string_equal(r, "\n[... spoolrun: 2 bytes omitted ...]\nc");
	free(r);
	capture_clear(&c);
}

/* A character cut by the head limit goes to the omitted part, and so does
 * one cut at the start of the tail; the count stays exact. */
static void test_utf8_boundaries(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 10); /* head 5, tail 5 */
	/* head: "abcd" + first byte of U+00E9 */
	assert_int_equal(capture_append(&c, "abcd\xC3\xA9", 6), 0);
	assert_int_equal(capture_append(&c, "0123456789", 10), 0);
	/* tail: last two bytes of U+20AC, then "xyz" */
	assert_int_equal(capture_append(&c, "\xE2\x82\xACxyz", 6), 0);
	size_t len;
	char *r = render(&c, &len);
	/* 22 written, 4 + 3 shown. */
	assert_string_equal(r, "abcd\n[... spoolrun: 15 bytes omitted ...]\nxyz");
	assert_int_equal(len, strlen(r));
	free(r);
	capture_clear(&c);
}

static void test_utf8_boundaries_four_byte(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 12); /* head 6, tail 6 */
	/* "ab" + U+1F600 (4 bytes) fits the head exactly; then "c" + U+1F600
	 * starts the omitted part. */
	assert_int_equal(capture_append(&c, "ab\xF0\x9F\x98\x80" "c\xF0\x9F\x98\x80", 11), 0);
	/* tail will start 3 bytes into a U+1F600. */
	assert_int_equal(capture_append(&c, "\xF0\x9F\x98\x80" "12345", 9), 0);
	size_t len;
	char *r = render(&c, &len);
	assert_string_equal(r, "ab\xF0\x9F\x98\x80\n[... spoolrun: 9 bytes omitted ...]\n12345");
	free(r);
	capture_clear(&c);
}

/* Whatever the limit and however UTF-8 text is chunked, the render is the
 * stream's prefix, a marker, and its suffix, with an exact count, and holds
 * no broken character. */
static void test_utf8_render_invariant(void **state)
{
	(void)state;
	static const char *const pieces[] = { "a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\n" };
	struct tu_rng rng = { 99 };
	for (size_t limit = 0; limit <= 48; limit++) {
		char s[400];
		size_t n = 0;
		while (n < sizeof s - 8) {
			const char *p = pieces[tu_rand_range(&rng, 0, 4)];
			memcpy(s + n, p, strlen(p));
			n += strlen(p);
		}
		struct capture c;
		capture_init(&c, limit);
		for (size_t off = 0; off < n;) {
			size_t k = (size_t)tu_rand_range(&rng, 1, 9);
			if (k > n - off)
				k = n - off;
			assert_int_equal(capture_append(&c, s + off, k), 0);
			off += k;
		}
		size_t len;
		char *r = render(&c, &len);
		bool repaired;
		size_t rlen;
		char *fixed = utf8_repair(r, len, &rlen, &repaired);
		assert_non_null(fixed);
		assert_false(repaired);
		free(fixed);
		if (n <= limit) {
			assert_int_equal(len, n);
			assert_memory_equal(r, s, n);
		} else {
			char *m = strstr(r, "\n[... spoolrun: ");
			assert_non_null(m);
			size_t head = (size_t)(m - r);
			uint64_t omitted;
			int used = 0;
			assert_int_equal(sscanf(m, "\n[... spoolrun: %" SCNu64 " bytes omitted ...]%n",
						&omitted, &used), 1);
			assert_true(used > 0);
			const char *tail = m + used + 1;
			size_t tail_len = len - (size_t)(tail - r);
			assert_true(head <= limit / 2);
			assert_true(tail_len <= limit - limit / 2);
			/* At most 3 bytes of a cut character lost on each side. */
			assert_true(head + 3 >= limit / 2);
			assert_true(tail_len + 3 >= limit - limit / 2);
			assert_memory_equal(r, s, head);
			assert_memory_equal(tail, s + n - tail_len, tail_len);
			assert_int_equal(head + omitted + tail_len, n);
		}
		free(r);
		capture_clear(&c);
	}
}

static void test_clear_then_reuse(void **state)
{
	(void)state;
	struct capture c;
	capture_init(&c, 4);
	assert_int_equal(capture_append(&c, "abcdefgh", 8), 0);
	capture_clear(&c);
	capture_init(&c, 4);
	assert_int_equal(capture_append(&c, "xy", 2), 0);
	size_t len;
	char *r = render(&c, &len);
	assert_string_equal(r, "xy");
	free(r);
	capture_clear(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_into_head_only),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_small_output_whole),
		cmocka_unit_test(test_exactly_limit),
		cmocka_unit_test(test_over_limit),
		cmocka_unit_test(test_odd_limit_split),
		cmocka_unit_test(test_large_omitted_count),
		cmocka_unit_test(test_small_vs_big_appends),
		cmocka_unit_test(test_ring_random),
		cmocka_unit_test(test_limit_zero),
		cmocka_unit_test(test_limit_one),
		cmocka_unit_test(test_utf8_boundaries),
		cmocka_unit_test(test_utf8_boundaries_four_byte),
		cmocka_unit_test(test_utf8_render_invariant),
		cmocka_unit_test(test_clear_then_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
