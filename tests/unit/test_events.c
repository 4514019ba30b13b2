/* events: a task's stdout read as JSON lines ("jsonl") or one document
 * ("json"), with a bounded memory of kept events and a summary taken from
 * the last {"type":"result"} event. */
#include "testutil.h"

#include <jansson.h>
#include <sys/wait.h>

#include "events.h"

#define BIG_BUDGET (1u << 20)

/* Feeds data in one call, finishes, and returns the result object. */
static json_t *run_once(enum output_mode mode, size_t budget, const char *data, size_t len,
			const char *how)
{
	struct events ev;
	events_init(&ev, mode, budget);
	events_feed(&ev, data, len);
	events_finish(&ev);
	json_t *r = json_object();
	assert_non_null(r);
	events_add_to_result(&ev, r, how);
	events_clear(&ev);
	return r;
}

/* The same, one byte per events_feed call. */
static json_t *run_bytewise(enum output_mode mode, size_t budget, const char *data, size_t len,
			    const char *how)
{
	struct events ev;
	events_init(&ev, mode, budget);
	for (size_t i = 0; i < len; i++)
		events_feed(&ev, data + i, 1);
	events_finish(&ev);
	json_t *r = json_object();
	assert_non_null(r);
	events_add_to_result(&ev, r, how);
	events_clear(&ev);
	return r;
}

/* The same, in chunks of random sizes (including empty ones). */
static json_t *run_chunked(enum output_mode mode, size_t budget, const char *data, size_t len,
			   const char *how, uint64_t seed)
{
	struct tu_rng rng = { seed };
	struct events ev;
	events_init(&ev, mode, budget);
	size_t off = 0;
	while (off < len) {
		size_t n = (size_t)tu_rand_range(&rng, 0, 17);
		if (n > len - off)
			n = len - off;
		events_feed(&ev, data + off, n);
		off += n;
	}
	events_finish(&ev);
	json_t *r = json_object();
	assert_non_null(r);
	events_add_to_result(&ev, r, how);
	events_clear(&ev);
	return r;
}

static json_t *jsonl(const char *s)
{
	return run_once(OUTPUT_JSONL, BIG_BUDGET, s, strlen(s), "it exited");
}

static json_int_t int_field(const json_t *r, const char *key)
{
	json_t *v = json_object_get(r, key);
	if (!json_is_integer(v))
		print_error("field %s is not an integer\n", key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static json_t *events_of(const json_t *r)
{
	json_t *a = json_object_get(r, "events");
	assert_true(json_is_array(a));
	return a;
}

/* Asserts that v equals the JSON text expect. */
static void assert_json_eq(const json_t *v, const char *expect)
{
	json_error_t je;
	json_t *e = json_loads(expect, JSON_DECODE_ANY, &je);
	assert_non_null(e);
	if (!json_equal(v, e)) {
		char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		print_error("got %s, expected %s\n", got ? got : "(null)", expect);
		free(got);
	}
	assert_true(json_equal(v, e));
	json_decref(e);
}

static void assert_results_equal(const json_t *a, const json_t *b)
{
	if (!json_equal(a, b)) {
		char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
		print_error("results differ:\n%s\n%s\n", sa ? sa : "(null)", sb ? sb : "(null)");
		free(sa);
		free(sb);
	}
	assert_true(json_equal(a, b));
}

/* --- jsonl lines -------------------------------------------------------- */

static void test_lines_in_order(void **state)
{
	(void)state;
	json_t *r = jsonl("{\"type\":\"a\",\"n\":1}\n[1,2]\n\"s\"\n42\n{\"type\":\"b\"}\n");
	assert_json_eq(events_of(r), "[{\"type\":\"a\",\"n\":1},[1,2],\"s\",42,{\"type\":\"b\"}]");
	assert_int_equal(int_field(r, "events_total"), 5);
	assert_int_equal(int_field(r, "events_omitted"), 0);
	assert_int_equal(int_field(r, "non_json_lines"), 0);
	assert_json_eq(json_object_get(r, "output"), "\"jsonl\"");
	assert_true(json_is_null(json_object_get(r, "output_error")));
	assert_true(json_is_object(json_object_get(r, "summary")));
	json_decref(r);
}

static void test_non_json_line_kept_as_string(void **state)
{
	(void)state;
	json_t *r = jsonl("{\"a\":1}\nnot json at all\n{\"b\":\n{\"c\":3}\n");
	assert_json_eq(events_of(r), "[{\"a\":1},\"not json at all\",\"{\\\"b\\\":\",{\"c\":3}]");
	assert_int_equal(int_field(r, "events_total"), 4);
	assert_int_equal(int_field(r, "non_json_lines"), 2);
	assert_int_equal(int_field(r, "events_omitted"), 0);
	json_decref(r);
}

static void test_blank_lines_skipped(void **state)
{
	(void)state;
	/* (Blank lines first: test_leading_blank_line_no_ub.) */
	json_t *r = jsonl("{\"a\":1}\n\n  \n\t\n\r\n \t \r\n{\"b\":2}\n\n");
	assert_json_eq(events_of(r), "[{\"a\":1},{\"b\":2}]");
	assert_int_equal(int_field(r, "events_total"), 2);
	assert_int_equal(int_field(r, "non_json_lines"), 0);
	json_decref(r);
}

static void test_crlf_endings(void **state)
{
	(void)state;
	json_t *r = jsonl("{\"a\":1}\r\nplain text\r\n{\"b\":\"x\"}\r\n");
	assert_json_eq(events_of(r), "[{\"a\":1},\"plain text\",{\"b\":\"x\"}]");
	assert_int_equal(int_field(r, "non_json_lines"), 1);
	json_decref(r);
}

static void test_last_line_without_newline(void **state)
{
	(void)state;
	struct events ev;
	events_init(&ev, OUTPUT_JSONL, BIG_BUDGET);
	const char *s = "{\"a\":1}\n{\"type\":\"result\",\"result\":\"done\"}";
	events_feed(&ev, s, strlen(s));
	assert_int_equal(ev.total, 1); /* the last line is not complete yet */
	events_finish(&ev);
	assert_int_equal(ev.total, 2);
	json_t *r = json_object();
	events_add_to_result(&ev, r, "it exited");
	assert_json_eq(events_of(r), "[{\"a\":1},{\"type\":\"result\",\"result\":\"done\"}]");
	assert_json_eq(json_object_get(json_object_get(r, "summary"), "complete"), "true");
	assert_json_eq(json_object_get(json_object_get(r, "summary"), "result"), "\"done\"");
	json_decref(r);
	events_clear(&ev);

	/* A non-JSON last line without a newline, after CR too. */
	r = jsonl("{\"a\":1}\ntrailing words\r");
	assert_json_eq(events_of(r), "[{\"a\":1},\"trailing words\"]");
	assert_int_equal(int_field(r, "non_json_lines"), 1);
	json_decref(r);
}

static void test_clear_without_finish(void **state)
{
	(void)state;
	struct events ev;
	events_init(&ev, OUTPUT_JSONL, 64);
	const char *s = "{\"a\":1}\n{\"type\":\"result\"}\n{\"partial\":";
	events_feed(&ev, s, strlen(s));
	events_clear(&ev); /* ASan: nothing leaks */
	events_clear(&ev); /* twice is harmless */
}

static const char mixed_stream[] =
	"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"abc\"}\n"
	"\n"
	"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9llo\"}]}}\r\n"
	"some stderr-ish noise \xc3\xa9\n"
	"   \n"
	"{\"type\":\"user\",\"n\":[1,2,3,{\"deep\":null}]}\n"
	"{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\",\"num_turns\":3}\r\n"
	"after the result\n"
	"{\"type\":\"tail\"}";

static void test_bytewise_same_as_one_feed(void **state)
{
	(void)state;
	size_t len = LIT_LEN(mixed_stream);
	json_t *whole = run_once(OUTPUT_JSONL, BIG_BUDGET, mixed_stream, len, "x");
	json_t *bytes = run_bytewise(OUTPUT_JSONL, BIG_BUDGET, mixed_stream, len, "x");
	assert_results_equal(whole, bytes);
	assert_int_equal(int_field(whole, "events_total"), 7);
	assert_int_equal(int_field(whole, "non_json_lines"), 2);
	for (uint64_t seed = 1; seed <= 50; seed++) {
		json_t *chunks = run_chunked(OUTPUT_JSONL, BIG_BUDGET, mixed_stream, len, "x", seed);
		assert_results_equal(whole, chunks);
		json_decref(chunks);
	}
	json_decref(whole);
	json_decref(bytes);
}

static void test_bytewise_same_with_small_budget(void **state)
{
	(void)state;
	/* Many lines and one long one, with a budget that drops some. */
	char *buf = malloc(20000);
	assert_non_null(buf);
	size_t len = 0;
	for (int i = 0; i < 200; i++)
		len += (size_t)sprintf(buf + len, "{\"i\":%d}\n", i);
	memset(buf + len, 'z', 700);
	len += 700;
	buf[len++] = '\n';
	for (int i = 200; i < 260; i++)
		len += (size_t)sprintf(buf + len, "line %d\r\n", i);
	json_t *whole = run_once(OUTPUT_JSONL, 512, buf, len, "x");
	json_t *bytes = run_bytewise(OUTPUT_JSONL, 512, buf, len, "x");
	assert_results_equal(whole, bytes);
	for (uint64_t seed = 100; seed < 110; seed++) {
		json_t *chunks = run_chunked(OUTPUT_JSONL, 512, buf, len, "x", seed);
		assert_results_equal(whole, chunks);
		json_decref(chunks);
	}
	assert_int_equal(int_field(whole, "events_total"), 261);
	json_decref(whole);
	json_decref(bytes);
	free(buf);
}

/* --- summary ------------------------------------------------------------ */

static void test_summary_from_last_result(void **state)
{
	(void)state;
	json_t *r = jsonl(
		"{\"type\":\"result\",\"result\":\"first\",\"is_error\":true}\n"
		"{\"type\":\"assistant\"}\n"
		"{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"final\","
		"\"num_turns\":4,\"duration_ms\":1234,\"total_cost_usd\":0.25,"
		"\"usage\":{\"input_tokens\":10,\"output_tokens\":20},\"session_id\":\"s-1\","
		"\"extra\":\"ignored\"}\n"
		"{\"type\":\"system\",\"note\":\"after\"}\n");
	json_t *s = json_object_get(r, "summary");
	assert_json_eq(s, "{\"complete\":true,\"result\":\"final\",\"is_error\":false,"
			  "\"subtype\":\"success\",\"num_turns\":4,\"duration_ms\":1234,"
			  "\"total_cost_usd\":0.25,"
			  "\"usage\":{\"input_tokens\":10,\"output_tokens\":20},"
			  "\"session_id\":\"s-1\",\"api_error_status\":null,\"stop_reason\":null,"
			  "\"terminal_reason\":null,\"model\":null,\"models\":[],\"rate_limit_info\":null}");
	json_decref(r);
}

static void test_summary_missing_fields_null(void **state)
{
	(void)state;
	json_t *r = jsonl("{\"type\":\"result\",\"result\":\"r\"}\n");
	json_t *s = json_object_get(r, "summary");
	assert_json_eq(s, "{\"complete\":true,\"result\":\"r\",\"is_error\":null,\"subtype\":null,"
			  "\"num_turns\":null,\"duration_ms\":null,\"total_cost_usd\":null,"
			  "\"usage\":null,\"session_id\":null,\"api_error_status\":null,\"stop_reason\":null,"
			  "\"terminal_reason\":null,\"model\":null,\"models\":[],\"rate_limit_info\":null}");
	json_decref(r);
}

/* What Claude Code 2.1 streams: the fields an orchestrator decides on. */
static void test_summary_claude_fields(void **state)
{
	(void)state;
	json_t *r = jsonl(
		"{\"type\":\"system\",\"subtype\":\"init\",\"model\":\"claude-opus-4-8[1m]\"}\n"
		"{\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-4-8\"}}\n"
		"{\"type\":\"assistant\",\"message\":{\"model\":\"claude-haiku-4-5\"}}\n"
		"{\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-4-8\"}}\n"
		"{\"type\":\"assistant\",\"message\":{\"model\":\"<synthetic>\"}}\n"
		"{\"type\":\"assistant\",\"message\":{\"model\":7}}\n"
		"{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed\"}}\n"
		"{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
		"\"resetsAt\":1796086365,\"rateLimitType\":\"five_hour\"}}\n"
		"{\"type\":\"result\",\"is_error\":true,\"api_error_status\":429,"
		"\"stop_reason\":\"stop_sequence\",\"terminal_reason\":\"completed\",\"modelUsage\":{}}\n");
	json_t *s = json_object_get(r, "summary");
	assert_json_eq(json_object_get(s, "api_error_status"), "429");
	assert_json_eq(json_object_get(s, "stop_reason"), "\"stop_sequence\"");
	assert_json_eq(json_object_get(s, "terminal_reason"), "\"completed\"");
	assert_json_eq(json_object_get(s, "model"), "\"claude-opus-4-8[1m]\"");
	assert_json_eq(json_object_get(s, "models"), "[\"claude-opus-4-8\",\"claude-haiku-4-5\"]");
	assert_json_eq(json_object_get(s, "rate_limit_info"),
		       "{\"status\":\"rejected\",\"resetsAt\":1796086365,\"rateLimitType\":\"five_hour\"}");
	json_decref(r);
	/* The CLI's own accounting wins when it has one; and a run cut short
	 * still says what it knew. */
	r = jsonl("{\"type\":\"assistant\",\"message\":{\"model\":\"a\"}}\n"
		  "{\"type\":\"result\",\"modelUsage\":{\"m1\":{},\"m2\":{}}}\n");
	assert_json_eq(json_object_get(json_object_get(r, "summary"), "models"), "[\"m1\",\"m2\"]");
	json_decref(r);
	r = jsonl("{\"type\":\"system\",\"subtype\":\"init\",\"model\":\"m\"}\n");
	s = json_object_get(r, "summary");
	assert_json_eq(json_object_get(s, "complete"), "false");
	assert_json_eq(json_object_get(s, "model"), "\"m\"");
	json_decref(r);
}

static void test_summary_incomplete(void **state)
{
	(void)state;
	const char *s = "{\"type\":\"assistant\"}\n{\"type\":\"results\"}\n[{\"type\":\"result\"}]\n"
			"\"type\":\"result\"\n";
	json_t *r = run_once(OUTPUT_JSONL, BIG_BUDGET, s, strlen(s), "it timed out after 5 s");
	json_t *sum = json_object_get(r, "summary");
	assert_json_eq(json_object_get(sum, "complete"), "false");
	assert_true(json_is_string(json_object_get(sum, "reason")));
	assert_contains(json_string_value(json_object_get(sum, "reason")), "it timed out after 5 s");
	json_decref(r);

	/* No output at all. */
	r = run_once(OUTPUT_JSONL, BIG_BUDGET, "", 0, "it was killed by SIGKILL");
	sum = json_object_get(r, "summary");
	assert_json_eq(json_object_get(sum, "complete"), "false");
	assert_contains(json_string_value(json_object_get(sum, "reason")), "it was killed by SIGKILL");
	assert_json_eq(events_of(r), "[]");
	assert_int_equal(int_field(r, "events_total"), 0);
	json_decref(r);
}

/* --- budget ------------------------------------------------------------- */

/* n (< 90000) lines {"i":10000+k} of the same length (11 bytes + newline). */
static char *numbered_lines(int n, size_t *len)
{
	char *buf = malloc((size_t)n * 16 + 1);
	assert_non_null(buf);
	size_t off = 0;
	for (int i = 0; i < n; i++)
		off += (size_t)sprintf(buf + off, "{\"i\":%d}\n", 10000 + i);
	*len = off;
	return buf;
}

static void check_head_and_tail(int n, size_t budget, bool bytewise)
{
	size_t len;
	char *buf = numbered_lines(n, &len);
	json_t *r = bytewise ? run_bytewise(OUTPUT_JSONL, budget, buf, len, "x")
			     : run_once(OUTPUT_JSONL, budget, buf, len, "x");
	json_t *a = events_of(r);
	size_t kept = json_array_size(a);
	assert_int_equal(int_field(r, "events_total"), n);
	assert_int_equal(int_field(r, "events_omitted"), (json_int_t)((size_t)n - kept));
	assert_int_equal(int_field(r, "non_json_lines"), 0);
	assert_true(kept > 2);
	assert_true(kept < (size_t)n);
	assert_true(kept * 11 <= budget);
	/* The head: 0, 1, 2, ... up to a gap; then the tail runs to n - 1. */
	size_t h = 0;
	while (h < kept && json_integer_value(json_object_get(json_array_get(a, h), "i")) ==
				   (json_int_t)h + 10000)
		h++;
	assert_true(h >= 1);
	assert_true(h < kept);
	size_t tail = kept - h;
	for (size_t i = 0; i < tail; i++) {
		json_int_t want = (json_int_t)((size_t)n - tail + i) + 10000;
		json_int_t got = json_integer_value(json_object_get(json_array_get(a, h + i), "i"));
		if (got != want)
			print_error("tail event %zu: got i=%lld, want %lld\n", i, (long long)got,
				    (long long)want);
		assert_int_equal(got, want);
	}
	/* Each half of the budget is used to most of its capacity. */
	assert_true(h * 11 <= budget / 2 && (h + 1) * 11 > budget / 2);
	assert_true(tail * 11 <= budget - budget / 2 && (tail + 1) * 11 > budget - budget / 2);
	json_decref(r);
	free(buf);
}

static void test_budget_keeps_head_and_tail(void **state)
{
	(void)state;
	check_head_and_tail(1000, 600, false);
	check_head_and_tail(1000, 600, true);
	check_head_and_tail(5000, 4001, false);
	check_head_and_tail(20000, 1000, false);
}

static void test_budget_not_reached(void **state)
{
	(void)state;
	size_t len;
	char *buf = numbered_lines(50, &len);
	json_t *r = run_once(OUTPUT_JSONL, 1200, buf, len, "x"); /* 50 * 11 = 550 <= 1200 / 2 */
	assert_int_equal(json_array_size(events_of(r)), 50);
	assert_int_equal(int_field(r, "events_omitted"), 0);
	json_decref(r);
	free(buf);
}

static void test_result_kept_whatever_the_budget(void **state)
{
	(void)state;
	/* The result event sits in the middle, among events that are dropped. */
	size_t len1, len2;
	char *a = numbered_lines(500, &len1), *b = numbered_lines(500, &len2);
	const char *res = "{\"type\":\"result\",\"result\":\"middle\",\"num_turns\":7}\n";
	size_t lr = strlen(res);
	char *buf = malloc(len1 + lr + len2);
	assert_non_null(buf);
	memcpy(buf, a, len1);
	memcpy(buf + len1, res, lr);
	memcpy(buf + len1 + lr, b, len2);
	json_t *r = run_once(OUTPUT_JSONL, 300, buf, len1 + lr + len2, "x");
	json_t *s = json_object_get(r, "summary");
	assert_json_eq(json_object_get(s, "complete"), "true");
	assert_json_eq(json_object_get(s, "result"), "\"middle\"");
	assert_json_eq(json_object_get(s, "num_turns"), "7");
	assert_int_equal(int_field(r, "events_total"), 1001);
	json_decref(r);
	free(a);
	free(b);
	free(buf);
}

static void test_line_over_budget_replaced(void **state)
{
	(void)state;
	size_t big = 5000;
	char *buf = malloc(big + 64);
	assert_non_null(buf);
	size_t len = (size_t)sprintf(buf, "{\"a\":1}\n");
	/* A JSON string line of exactly big bytes. */
	buf[len] = '"';
	memset(buf + len + 1, 'x', big - 2);
	buf[len + big - 1] = '"';
	len += big;
	len += (size_t)sprintf(buf + len, "\n{\"b\":2}\n");
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		json_t *r = bytewise ? run_bytewise(OUTPUT_JSONL, 1000, buf, len, "x")
				     : run_once(OUTPUT_JSONL, 1000, buf, len, "x");
		json_t *a = events_of(r);
		assert_int_equal(json_array_size(a), 3);
		assert_json_eq(json_array_get(a, 0), "{\"a\":1}");
		assert_true(json_is_string(json_array_get(a, 1)));
		assert_contains(json_string_value(json_array_get(a, 1)), "5000");
		assert_true(json_string_length(json_array_get(a, 1)) < 200);
		assert_json_eq(json_array_get(a, 2), "{\"b\":2}");
		assert_int_equal(int_field(r, "events_total"), 3);
		assert_int_equal(int_field(r, "events_omitted"), 0);
		json_decref(r);
	}
	free(buf);

	/* As the last line, without a newline. */
	char *last = malloc(3000);
	assert_non_null(last);
	memset(last, 'y', 3000);
	json_t *r = run_once(OUTPUT_JSONL, 1000, last, 3000, "x");
	assert_int_equal(json_array_size(events_of(r)), 1);
	assert_contains(json_string_value(json_array_get(events_of(r), 0)), "3000");
	json_decref(r);
	free(last);
}

static void test_invalid_utf8_gives_valid_string(void **state)
{
	(void)state;
	const char s[] = "abc\xff\xfe def \xc3\x28 \xed\xa0\x80 end\n{\"ok\":true}\n";
	json_t *r = run_once(OUTPUT_JSONL, BIG_BUDGET, s, LIT_LEN(s), "x");
	json_t *a = events_of(r);
	assert_int_equal(json_array_size(a), 2);
	json_t *e = json_array_get(a, 0);
	assert_true(json_is_string(e));
	assert_contains(json_string_value(e), "abc");
	assert_contains(json_string_value(e), "end");
	assert_int_equal(int_field(r, "non_json_lines"), 1);
	/* The whole result serialises and parses back. */
	char *text = json_dumps(r, JSON_COMPACT);
	assert_non_null(text);
	json_error_t je;
	json_t *back = json_loads(text, 0, &je);
	assert_non_null(back);
	assert_true(json_equal(back, r));
	json_decref(back);
	free(text);
	json_decref(r);
}

static void test_json_line_with_nul_escape(void **state)
{
	(void)state;
	json_t *r = jsonl("{\"a\":\"x\\u0000y\"}\n");
	json_t *v = json_object_get(json_array_get(events_of(r), 0), "a");
	assert_true(json_is_string(v));
	assert_int_equal(json_string_length(v), 3);
	assert_int_equal(int_field(r, "non_json_lines"), 0);
	json_decref(r);
}

/* --- json mode ---------------------------------------------------------- */

static void test_json_document(void **state)
{
	(void)state;
	const char *s = "{\n  \"type\": \"result\",\n  \"result\": \"hi\",\n  \"num_turns\": 1\n}\n";
	json_t *whole = run_once(OUTPUT_JSON, BIG_BUDGET, s, strlen(s), "x");
	json_t *bytes = run_bytewise(OUTPUT_JSON, BIG_BUDGET, s, strlen(s), "x");
	assert_results_equal(whole, bytes);
	assert_json_eq(json_object_get(whole, "output"), "\"json\"");
	assert_json_eq(events_of(whole), "[{\"type\":\"result\",\"result\":\"hi\",\"num_turns\":1}]");
	assert_true(json_is_null(json_object_get(whole, "output_error")));
	json_t *sum = json_object_get(whole, "summary");
	assert_json_eq(json_object_get(sum, "complete"), "true");
	assert_json_eq(json_object_get(sum, "result"), "\"hi\"");
	assert_int_equal(int_field(whole, "events_total"), 1);
	assert_int_equal(int_field(whole, "non_json_lines"), 0);
	json_decref(whole);
	json_decref(bytes);
}

static void test_json_invalid_document(void **state)
{
	(void)state;
	const char *s = "{\n  \"a\": 1,\n  \"b\": oops\n}\n";
	json_t *r = run_once(OUTPUT_JSON, BIG_BUDGET, s, strlen(s), "it exited with status 1");
	json_t *err = json_object_get(r, "output_error");
	assert_true(json_is_string(err));
	assert_contains(json_string_value(err), "line 3");
	assert_contains(json_string_value(err), "column");
	assert_json_eq(events_of(r), "[]");
	json_t *sum = json_object_get(r, "summary");
	assert_json_eq(json_object_get(sum, "complete"), "false");
	assert_contains(json_string_value(json_object_get(sum, "reason")), "it exited with status 1");
	json_decref(r);

	/* Two documents are not one. */
	s = "{\"a\":1}\n{\"b\":2}\n";
	r = run_once(OUTPUT_JSON, BIG_BUDGET, s, strlen(s), "x");
	assert_true(json_is_string(json_object_get(r, "output_error")));
	assert_contains(json_string_value(json_object_get(r, "output_error")), "line 2");
	json_decref(r);

	/* Empty stdout (nothing fed) is not a document either. */
	struct events ev;
	events_init(&ev, OUTPUT_JSON, BIG_BUDGET);
	events_finish(&ev);
	r = json_object();
	events_add_to_result(&ev, r, "x");
	events_clear(&ev);
	assert_true(json_is_string(json_object_get(r, "output_error")));
	assert_json_eq(events_of(r), "[]");
	json_decref(r);
}

/* A document that fits max_output but is more than half of it is still
 * one document within the budget, so it is expected among the events. */
static void test_json_document_over_half_budget(void **state)
{
	(void)state;
	size_t budget = 1000;
	char *doc = malloc(budget);
	assert_non_null(doc);
	size_t len = (size_t)sprintf(doc, "{\"type\":\"result\",\"result\":\"");
	memset(doc + len, 'q', 700 - len);
	len = 700;
	len += (size_t)sprintf(doc + len, "\"}");
	json_t *r = run_once(OUTPUT_JSON, budget, doc, len, "x");
	/* Read everything, free, then assert: a failure leaks nothing. */
	bool no_error = json_is_null(json_object_get(r, "output_error"));
	bool complete = json_is_true(json_object_get(json_object_get(r, "summary"), "complete"));
	json_int_t total = int_field(r, "events_total"), omitted = int_field(r, "events_omitted");
	size_t kept = json_array_size(events_of(r));
	json_decref(r);
	free(doc);
	assert_true(no_error);
	assert_true(complete);
	assert_int_equal(total, 1);
	if (kept != 1)
		print_error("a %zu-byte document within a %zu-byte budget was dropped "
			    "(events_omitted=%lld)\n", len, budget, (long long)omitted);
	assert_int_equal(kept, 1);
	assert_int_equal(omitted, 0);
}

static void test_json_document_over_budget(void **state)
{
	(void)state;
	char *doc = malloc(4000);
	assert_non_null(doc);
	doc[0] = '[';
	memset(doc + 1, ' ', 3998);
	doc[3999] = ']';
	json_t *r = run_once(OUTPUT_JSON, 1000, doc, 4000, "x");
	assert_true(json_is_string(json_object_get(r, "output_error")));
	assert_contains(json_string_value(json_object_get(r, "output_error")), "4000");
	json_decref(r);
	free(doc);
}

/* A stream whose first byte is a newline (or a zero-length first feed in
 * json mode) must not pass a NULL buffer to memcpy (append_line, when
 * ev->line is still NULL): under UBSan that aborts the runner. Run in a
 * child, so that an abort is reported as this test failing and the rest
 * of the suite still runs. */
static void leading_blank_line_child(void)
{
	json_t *r = jsonl("\n{\"a\":1}\n");
	assert_json_eq(events_of(r), "[{\"a\":1}]");
	json_decref(r);

	struct events ev;
	events_init(&ev, OUTPUT_JSON, BIG_BUDGET);
	events_feed(&ev, "", 0);
	events_feed(&ev, "[1]", 3);
	events_finish(&ev);
	assert_int_equal(ev.total, 1);
	events_clear(&ev);
}

static void test_leading_blank_line_no_ub(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		leading_blank_line_child();
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		print_error("events_feed on a leading newline / empty first feed: child %s %d\n",
			    WIFEXITED(status) ? "exited with" : "killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- text mode ---------------------------------------------------------- */

static void test_text_mode_adds_nothing(void **state)
{
	(void)state;
	const char *s = "{\"type\":\"result\",\"result\":\"x\"}\nplain\n";
	json_t *r = json_object();
	json_object_set_new(r, "status", json_string("succeeded"));
	struct events ev;
	events_init(&ev, OUTPUT_TEXT, BIG_BUDGET);
	events_feed(&ev, s, strlen(s));
	events_finish(&ev);
	events_add_to_result(&ev, r, "x");
	events_clear(&ev);
	assert_json_eq(r, "{\"status\":\"succeeded\"}");
	json_decref(r);
}

static void test_mode_names(void **state)
{
	(void)state;
	enum output_mode m = OUTPUT_TEXT;
	assert_int_equal(output_mode_parse("jsonl", &m), 0);
	assert_int_equal(m, OUTPUT_JSONL);
	assert_int_equal(output_mode_parse("json", &m), 0);
	assert_int_equal(m, OUTPUT_JSON);
	assert_int_equal(output_mode_parse("text", &m), 0);
	assert_int_equal(m, OUTPUT_TEXT);
	assert_int_equal(output_mode_parse("JSON", &m), -1);
	assert_int_equal(output_mode_parse("", &m), -1);
	assert_string_equal(output_mode_name(OUTPUT_JSONL), "jsonl");
	assert_string_equal(output_mode_name(OUTPUT_JSON), "json");
	assert_string_equal(output_mode_name(OUTPUT_TEXT), "text");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_in_order),
		cmocka_unit_test(test_non_json_line_kept_as_string),
		cmocka_unit_test(test_blank_lines_skipped),
		cmocka_unit_test(test_crlf_endings),
		cmocka_unit_test(test_last_line_without_newline),
		cmocka_unit_test(test_clear_without_finish),
		cmocka_unit_test(test_bytewise_same_as_one_feed),
		cmocka_unit_test(test_bytewise_same_with_small_budget),
		cmocka_unit_test(test_summary_from_last_result),
		cmocka_unit_test(test_summary_missing_fields_null),
		cmocka_unit_test(test_summary_claude_fields),
		cmocka_unit_test(test_summary_incomplete),
		cmocka_unit_test(test_budget_keeps_head_and_tail),
		cmocka_unit_test(test_budget_not_reached),
		cmocka_unit_test(test_result_kept_whatever_the_budget),
		cmocka_unit_test(test_line_over_budget_replaced),
		cmocka_unit_test(test_invalid_utf8_gives_valid_string),
		cmocka_unit_test(test_json_line_with_nul_escape),
		cmocka_unit_test(test_json_document),
		cmocka_unit_test(test_json_invalid_document),
		cmocka_unit_test(test_json_document_over_half_budget),
		cmocka_unit_test(test_json_document_over_budget),
		cmocka_unit_test(test_text_mode_adds_nothing),
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_leading_blank_line_no_ub),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
