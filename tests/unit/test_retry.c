/* retry: the decision after a run (none, back-off, usage limit) and the
 * back-off delays. Pure functions: tasks come from task_parse, outcomes
 * are built by hand, the clock and the jitter are supplied. */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>

#include "retry.h"
#include "timeutil.h"
#include "run.h"
#include "task.h"

static const struct task_defaults dflt = {
	.timeout = 3600, .kill_grace = 5, .retry_backoff = 10, .retry_backoff_max = 600,
};

#define NOW_MS INT64_C(1700000000000) /* 2023-11-14 */

static void parse(const char *json, struct task *t)
{
	struct task_error e;
	int rc = task_parse(json, strlen(json), "r1.json", &dflt, t, &e);
	if (rc != 0)
		print_error("task refused: %s: %s\n", json, e.message);
	assert_int_equal(rc, 0);
}

static struct run_outcome exited(int code)
{
	struct run_outcome o;
	memset(&o, 0, sizeof o);
	o.status = RUN_EXITED;
	o.exit_code = code;
	return o;
}

static struct run_outcome with_status(enum run_status st)
{
	struct run_outcome o;
	memset(&o, 0, sizeof o);
	o.status = st;
	o.exit_code = -1;
	if (st == RUN_SIGNALED)
		o.term_signal = SIGSEGV;
	if (st == RUN_TIMEOUT)
		o.term_signal = SIGTERM;
	return o;
}

/* retry_decide with no output and no usage-limit pattern. */
static void decide(const struct task *t, const struct run_outcome *o, unsigned used,
		   struct retry_decision *d)
{
	retry_decide(t, o, "", 0, "", 0, used, NULL, NOW_MS, 0.0, d);
}

static void decide_out(const struct task *t, const struct run_outcome *o, const char *out,
		       size_t outlen, const char *err, size_t errlen, struct retry_decision *d)
{
	retry_decide(t, o, out, outlen, err, errlen, 0, NULL, NOW_MS, 0.0, d);
}

static void expect_backoff(const struct retry_decision *d, unsigned used,
			   const struct task *t)
{
	assert_int_equal(d->action, RETRY_BACKOFF);
	assert_int_equal(d->not_before_ms, NOW_MS + retry_backoff_ms(&t->retry, used, 0.0));
	assert_true(strlen(d->reason) > 0);
}

/* --- when a run is retried ---------------------------------------------- */

static void test_success_not_retried(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"true\",\"retries\":3}", &t);
	struct run_outcome o = exited(0);
	struct retry_decision d;
	memset(&d, 0x5a, sizeof d);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_no_retries_configured(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"false\"}", &t);
	assert_int_equal(t.retry.retries, 0);
	struct run_outcome o = exited(1);
	struct retry_decision d;
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);

	parse("{\"command\":\"false\",\"retries\":0}", &t);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_retries_counted(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"false\",\"retries\":2}", &t);
	struct run_outcome o = exited(1);
	struct retry_decision d;
	decide(&t, &o, 0, &d);
	expect_backoff(&d, 0, &t);
	assert_int_equal(d.not_before_ms, NOW_MS + 5000); /* 10 s, jitter 0: half */
	decide(&t, &o, 1, &d);
	expect_backoff(&d, 1, &t);
	assert_int_equal(d.not_before_ms, NOW_MS + 10000);
	decide(&t, &o, 2, &d);
	assert_int_equal(d.action, RETRY_NONE);
	decide(&t, &o, 3, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_without_retry_on_every_failure(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":1}", &t);
	assert_false(t.retry.has_retry_on);
	struct run_outcome outcomes[] = {
		exited(1), exited(2), exited(255), with_status(RUN_TIMEOUT),
		with_status(RUN_SIGNALED), with_status(RUN_SPAWN_ERROR),
	};
	for (size_t i = 0; i < sizeof outcomes / sizeof *outcomes; i++) {
		struct retry_decision d;
		decide(&t, &outcomes[i], 0, &d);
		expect_backoff(&d, 0, &t);
		assert_contains(d.reason, "retry_on");
	}
	task_clear(&t);
}

static void test_program_that_cannot_run_never_retried(void **state)
{
	(void)state;
	struct task t;
	struct retry_decision d;
	parse("{\"command\":\"x\",\"retries\":5}", &t);
	struct run_outcome o = with_status(RUN_SPAWN_ERROR);
	o.spawn_error.stage = "exec";
	o.spawn_error.err = ENOENT;
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o.spawn_error.err = EACCES;
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o.spawn_error.stage = "fork";
	o.spawn_error.err = EAGAIN;
	decide(&t, &o, 0, &d);
	expect_backoff(&d, 0, &t);
	task_clear(&t);
}

static void test_aborted_never_retried(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":5,\"limit_key\":\"k\"}", &t);
	struct run_outcome o = with_status(RUN_ABORTED);
	struct retry_decision d;
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);

	parse("{\"command\":\"x\",\"retries\":5,\"retry_on\":{\"timeout\":true,\"signal\":true}}", &t);
	o.term_signal = SIGTERM;
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_retry_on_exit_codes(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":3,\"retry_on\":{\"exit_codes\":[1,75]}}", &t);
	assert_true(t.retry.has_retry_on);
	struct retry_decision d;
	struct run_outcome o = exited(75);
	decide(&t, &o, 0, &d);
	expect_backoff(&d, 0, &t);
	assert_contains(d.reason, "75");
	assert_contains(d.reason, "exit_codes");
	o = exited(1);
	decide(&t, &o, 2, &d);
	expect_backoff(&d, 2, &t);
	o = exited(2);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o = with_status(RUN_TIMEOUT);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o = with_status(RUN_SIGNALED);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o = with_status(RUN_SPAWN_ERROR);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_retry_on_timeout(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":1,\"retry_on\":{\"timeout\":true}}", &t);
	struct retry_decision d;
	struct run_outcome o = with_status(RUN_TIMEOUT);
	decide(&t, &o, 0, &d);
	expect_backoff(&d, 0, &t);
	assert_contains(d.reason, "timeout");
	o = exited(1);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o = with_status(RUN_SIGNALED);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);

	parse("{\"command\":\"x\",\"retries\":1,\"retry_on\":{\"timeout\":false}}", &t);
	o = with_status(RUN_TIMEOUT);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_retry_on_signal(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":1,\"retry_on\":{\"signal\":true}}", &t);
	struct retry_decision d;
	struct run_outcome o = with_status(RUN_SIGNALED);
	decide(&t, &o, 0, &d);
	expect_backoff(&d, 0, &t);
	assert_contains(d.reason, "signal");
	o = with_status(RUN_TIMEOUT);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	o = exited(1);
	decide(&t, &o, 0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
}

static void test_retry_on_output_patterns(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":1,\"retry_on\":{\"output_patterns\":"
	      "[\"connection (reset|refused)\",\"HTTP 5[0-9]{2}\"]}}", &t);
	struct retry_decision d;
	struct run_outcome o = exited(1);

	const char out1[] = "fetching...\nerror: connection refused by peer\n";
	decide_out(&t, &o, out1, LIT_LEN(out1), "", 0, &d);
	expect_backoff(&d, 0, &t);
	assert_contains(d.reason, "connection (reset|refused)");

	const char err2[] = "warning\nserver said HTTP 503\n";
	decide_out(&t, &o, "all fine\n", 9, err2, LIT_LEN(err2), &d);
	expect_backoff(&d, 0, &t);
	assert_contains(d.reason, "HTTP 5[0-9]{2}");

	const char out3[] = "HTTP 404 and connection closed\n";
	decide_out(&t, &o, out3, LIT_LEN(out3), out3, LIT_LEN(out3), &d);
	assert_int_equal(d.action, RETRY_NONE);

	decide_out(&t, &o, "", 0, "", 0, &d);
	assert_int_equal(d.action, RETRY_NONE);

	/* Only the bytes given count: a match past outlen is not seen. */
	const char out4[] = "ok\nconnection reset";
	decide_out(&t, &o, out4, 3, "", 0, &d);
	assert_int_equal(d.action, RETRY_NONE);

	/* A timeout whose output matches is retried too. */
	o = with_status(RUN_TIMEOUT);
	decide_out(&t, &o, "", 0, err2, LIT_LEN(err2), &d);
	expect_backoff(&d, 0, &t);
	task_clear(&t);
}

static void test_output_with_nul_bytes(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":1,\"retry_on\":{\"output_patterns\":[\"try again\"]}}",
	      &t);
	struct retry_decision d;
	struct run_outcome o = exited(3);
	const char out[] = "bin\0ary\0\0 junk\xff then: try again later\n";
	decide_out(&t, &o, out, LIT_LEN(out), "", 0, &d);
	expect_backoff(&d, 0, &t);
	assert_contains(d.reason, "try again");
	decide_out(&t, &o, "", 0, out, LIT_LEN(out), &d);
	expect_backoff(&d, 0, &t);
	task_clear(&t);
}

/* --- usage limits ------------------------------------------------------- */

static void compile_usage_limit(regex_t *re)
{
	assert_int_equal(regcomp(re, "usage limit reached\\|([0-9]{9,12})", REG_EXTENDED), 0);
}

static const struct api_limit_policy policy = {
	.backoff = 60, .backoff_max = 1800, .max_wait = 8 * 86400, .max_deferrals = 100,
};

/* The limits of a runner with this usage_limit_pattern and no deferral yet. */
static const struct retry_limits *limits(const regex_t *re)
{
	static struct retry_limits l;
	l = (struct retry_limits){ re, &policy, 0 };
	return &l;
}

static void test_usage_limit_future(void **state)
{
	(void)state;
	regex_t re;
	compile_usage_limit(&re);
	struct task t;
	parse("{\"command\":\"claude\",\"retries\":2}", &t);
	const char err[] = "Claude AI usage limit reached|1700003600\n";
	struct run_outcome o = exited(1);
	struct retry_decision d;
	for (unsigned used = 0; used <= 2; used++) {
		retry_decide(&t, &o, "", 0, err, LIT_LEN(err), used, limits(&re), NOW_MS, 0.5, &d);
		assert_int_equal(d.action, RETRY_USAGE_LIMIT);
		assert_int_equal(d.not_before_ms, INT64_C(1700003600) * 1000);
		assert_contains(d.reason, "1700003600");
	}
	/* In stdout as well. */
	retry_decide(&t, &o, err, LIT_LEN(err), "", 0, 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_USAGE_LIMIT);
	assert_int_equal(d.not_before_ms, INT64_C(1700003600) * 1000);
	/* Whatever retry_on says. */
	task_clear(&t);
	parse("{\"command\":\"claude\",\"retries\":1,\"retry_on\":{\"exit_codes\":[9]}}", &t);
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 1, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_USAGE_LIMIT);
	task_clear(&t);
	regfree(&re);
}

static void test_usage_limit_needs_retries_or_key(void **state)
{
	(void)state;
	regex_t re;
	compile_usage_limit(&re);
	const char err[] = "usage limit reached|1700003600";
	struct run_outcome o = exited(1);
	struct retry_decision d;
	struct task t;

	parse("{\"command\":\"claude\"}", &t);
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);

	parse("{\"command\":\"claude\",\"limit_key\":\"anthropic\"}", &t);
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_USAGE_LIMIT);
	assert_int_equal(d.not_before_ms, INT64_C(1700003600000));
	task_clear(&t);

	/* Without the compiled pattern there is no usage limit. */
	parse("{\"command\":\"claude\",\"retries\":1}", &t);
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 0, NULL, NOW_MS, 0.0, &d);
	expect_backoff(&d, 0, &t);
	/* A success that mentions a usage limit is still a success. */
	o = exited(0);
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	task_clear(&t);
	regfree(&re);
}

/* The reset time is task output, so hostile: whatever number a task prints,
 * the decision is bounded (no overflow in ms or ns, under UBSan too): a
 * limit at most usage_limit_max_wait away, or an ordinary failure
 * (issue 10 point 7). */
static void test_usage_limit_hostile_numbers(void **state)
{
	(void)state;
	regex_t re;
	assert_int_equal(regcomp(&re, "usage limit reached\\|([0-9]+)", REG_EXTENDED), 0);
	const char *texts[] = {
		"usage limit reached|10000000000",          /* year 2286 */
		"usage limit reached|999999999999",
		"usage limit reached|9223372036854775807",  /* INT64_MAX */
		"usage limit reached|9223372036854775808",
		"usage limit reached|99999999999999999999999",
		"usage limit reached|253402300800",         /* just past year 9999 */
		"usage limit reached|0",
		"usage limit reached|0001700000001",
	};
	const int64_t latest = NOW_MS + (int64_t)(policy.max_wait * 1000) + 1000;
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		struct task t;
		parse("{\"command\":\"claude\",\"retries\":1}", &t);
		struct run_outcome o = exited(1);
		struct retry_decision d;
		retry_decide(&t, &o, "", 0, texts[i], strlen(texts[i]), 0, limits(&re), NOW_MS, 0.5, &d);
		if (d.action == RETRY_USAGE_LIMIT) {
			assert_true(d.not_before_ms > NOW_MS);
			assert_true(d.not_before_ms <= latest);
		} else
			assert_int_equal(d.action, RETRY_BACKOFF);
		/* What the runner and status compute from it never overflows. */
		assert_true(time_ms_to_ns(d.not_before_ms) > 0);
		task_clear(&t);
	}
	regfree(&re);
}

static void test_usage_limit_past(void **state)
{
	(void)state;
	regex_t re;
	compile_usage_limit(&re);
	struct task t;
	parse("{\"command\":\"claude\",\"retries\":1}", &t);
	const char err[] = "usage limit reached|1600000000\n";
	struct run_outcome o = exited(1);
	struct retry_decision d;
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 0, limits(&re), NOW_MS, 0.0, &d);
	expect_backoff(&d, 0, &t);
	retry_decide(&t, &o, "", 0, err, LIT_LEN(err), 1, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	/* Exactly now is not in the future either. */
	const char now[] = "usage limit reached|1700000000";
	retry_decide(&t, &o, "", 0, now, LIT_LEN(now), 0, limits(&re), NOW_MS, 0.0, &d);
	expect_backoff(&d, 0, &t);
	task_clear(&t);
	regfree(&re);
}

/* --- back-off ----------------------------------------------------------- */

static void test_backoff_values(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":1000,\"retry_backoff\":10,\"retry_backoff_max\":600}",
	      &t);
	const struct retry_policy *p = &t.retry;
	assert_int_equal(retry_backoff_ms(p, 0, 0.0), 5000);
	int64_t hi = retry_backoff_ms(p, 0, 0.999);
	assert_true(hi >= 9994 && hi <= 9995);
	assert_int_equal(retry_backoff_ms(p, 1, 0.0), 10000);
	assert_int_equal(retry_backoff_ms(p, 2, 0.0), 20000);
	assert_int_equal(retry_backoff_ms(p, 3, 0.0), 40000);
	assert_int_equal(retry_backoff_ms(p, 5, 0.0), 160000);  /* 320 s */
	assert_int_equal(retry_backoff_ms(p, 6, 0.0), 300000);  /* 640 s, capped at 600 */
	assert_int_equal(retry_backoff_ms(p, 7, 0.0), 300000);
	assert_int_equal(retry_backoff_ms(p, 1000, 0.0), 300000);
	assert_int_equal(retry_backoff_ms(p, UINT_MAX, 0.0), 300000);
	int64_t top = retry_backoff_ms(p, UINT_MAX, 0.999);
	assert_true(top >= 599699 && top <= 599700);
	/* Monotonic in n and in jitter. */
	for (unsigned n = 0; n < 64; n++) {
		assert_true(retry_backoff_ms(p, n + 1, 0.0) >= retry_backoff_ms(p, n, 0.0));
		assert_true(retry_backoff_ms(p, n, 0.5) >= retry_backoff_ms(p, n, 0.0));
		assert_true(retry_backoff_ms(p, n, 0.5) > 0);
	}
	task_clear(&t);
}

static void test_backoff_no_overflow(void **state)
{
	(void)state;
	struct retry_policy p;
	memset(&p, 0, sizeof p);
	p.backoff = 1;
	p.backoff_max = 1e9; /* about 31 years */
	for (unsigned n = 0; n < 200; n++) {
		int64_t ms = retry_backoff_ms(&p, n, 0.999);
		assert_true(ms > 0);
		assert_true(ms <= INT64_C(1000000000000));
	}
	assert_int_equal(retry_backoff_ms(&p, UINT_MAX, 0.0), INT64_C(500000000000));
	p.backoff = 0.001;
	p.backoff_max = 0.001;
	assert_int_equal(retry_backoff_ms(&p, UINT_MAX, 0.0), 0); /* 0.5 ms */
	assert_true(retry_backoff_ms(&p, 0, 0.999) <= 1);
	/* A maximum below the first delay caps it too. */
	p.backoff = 10;
	p.backoff_max = 4;
	assert_int_equal(retry_backoff_ms(&p, 0, 0.0), 2000);
	assert_int_equal(retry_backoff_ms(&p, 9, 0.0), 2000);
}

static void test_decision_uses_jitter(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"x\",\"retries\":3,\"retry_backoff\":2,\"retry_backoff_max\":100}", &t);
	struct run_outcome o = exited(1);
	struct retry_decision d;
	retry_decide(&t, &o, "", 0, "", 0, 1, NULL, NOW_MS, 0.5, &d);
	assert_int_equal(d.action, RETRY_BACKOFF);
	assert_int_equal(d.not_before_ms, NOW_MS + 3000); /* 4 s * 1.5 / 2 */
	task_clear(&t);
}

/* A failed run whose stdout streamed these jsonl events. */
static struct run_outcome with_events(const char *jsonl)
{
	struct run_outcome o = exited(1);
	events_init(&o.events, OUTPUT_JSONL, 1 << 20);
	events_feed(&o.events, jsonl, strlen(jsonl));
	events_finish(&o.events);
	return o;
}

#define RATE_LIMIT_EVENT(at) "{\"type\":\"rate_limit_event\",\"rate_limit_info\":" \
	"{\"status\":\"rejected\",\"resetsAt\":" at ",\"rateLimitType\":\"five_hour\"}}\n"
#define RESULT_429 "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":429," \
	"\"result\":\"You've hit your session limit \u00b7 resets 12:52am (UTC)\"}\n"

/* The real CLI's events: the reset is waited for with no retry spent, by a
 * task with a limit_key and none left; a 429/529 alone backs off. */
static void test_claude_events_decide(void **state)
{
	(void)state;
	regex_t re;
	compile_usage_limit(&re);
	struct task t;
	parse("{\"command\":\"claude\",\"limit_key\":\"claude\"}", &t);
	struct retry_decision d;
	struct run_outcome o = with_events(RATE_LIMIT_EVENT("1700003600") RESULT_429);
	retry_decide(&t, &o, "", 0, "", 0, 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_USAGE_LIMIT);
	assert_int_equal(d.not_before_ms, INT64_C(1700003600000));
	assert_string_equal(d.limit.type, "five_hour");
	assert_int_equal(d.limit.api_status, 429);
	assert_contains(d.reason, "five_hour");
	assert_contains(d.reason, "2023-11-14T23:13:20.000Z");
	events_clear(&o.events);

	o = with_events("{\"type\":\"result\",\"is_error\":true,\"api_error_status\":529}\n");
	retry_decide(&t, &o, "", 0, "", 0, 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_USAGE_LIMIT);
	assert_int_equal(d.not_before_ms, NOW_MS + 30000);
	assert_int_equal(d.limit.kind, LIMIT_OVERLOADED);
	/* Deferrals used up: an ordinary failure (no retries here: published). */
	struct retry_limits spent = { &re, &policy, policy.max_deferrals };
	retry_decide(&t, &o, "", 0, "", 0, 0, &spent, NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	events_clear(&o.events);

	/* Without retries or limit_key: not the runner's business. */
	task_clear(&t);
	parse("{\"command\":\"claude\"}", &t);
	o = with_events(RATE_LIMIT_EVENT("1700003600"));
	retry_decide(&t, &o, "", 0, "", 0, 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_NONE);
	events_clear(&o.events);
	task_clear(&t);
	regfree(&re);
}

/* output: text: the CLI's message, and the old pattern first when both. */
static void test_claude_text_decides(void **state)
{
	(void)state;
	regex_t re;
	compile_usage_limit(&re);
	struct task t;
	parse("{\"command\":\"claude\",\"retries\":1}", &t);
	struct retry_decision d;
	struct run_outcome o = exited(1);
	const char out[] = "You've hit your session limit \xc2\xb7 resets 12:52am (UTC)\n";
	/* NOW_MS is 2023-11-14T22:13:20Z: the next 00:52 is the 15th's. */
	retry_decide(&t, &o, out, LIT_LEN(out), "", 0, 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.action, RETRY_USAGE_LIMIT);
	assert_int_equal(d.not_before_ms, INT64_C(1700009580000));
	assert_string_equal(d.limit.source, "text");
	const char both[] = "usage limit reached|1700003600\nYou've hit your session limit "
			    "\xc2\xb7 resets 12:52am (UTC)\n";
	retry_decide(&t, &o, "", 0, both, LIT_LEN(both), 0, limits(&re), NOW_MS, 0.0, &d);
	assert_int_equal(d.not_before_ms, INT64_C(1700003600000));
	/* A user's pattern capturing a number too big for a time: no limit, no overflow. */
	const char huge[] = "usage limit reached|999999999999";
	regex_t wide;
	assert_int_equal(regcomp(&wide, "usage limit reached\\|([0-9]+)", REG_EXTENDED), 0);
	retry_decide(&t, &o, "", 0, huge, LIT_LEN(huge), 0, limits(&wide), NOW_MS, 0.0, &d);
	expect_backoff(&d, 0, &t);
	const char huger[] = "usage limit reached|99999999999999999999999";
	retry_decide(&t, &o, "", 0, huger, LIT_LEN(huger), 0, limits(&wide), NOW_MS, 0.0, &d);
	expect_backoff(&d, 0, &t);
	regfree(&wide);
	task_clear(&t);
	regfree(&re);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_not_retried),
		cmocka_unit_test(test_no_retries_configured),
		cmocka_unit_test(test_retries_counted),
		cmocka_unit_test(test_without_retry_on_every_failure),
		cmocka_unit_test(test_aborted_never_retried),
		cmocka_unit_test(test_retry_on_exit_codes),
		cmocka_unit_test(test_retry_on_timeout),
		cmocka_unit_test(test_retry_on_signal),
		cmocka_unit_test(test_retry_on_output_patterns),
		cmocka_unit_test(test_output_with_nul_bytes),
		cmocka_unit_test(test_usage_limit_future),
		cmocka_unit_test(test_usage_limit_needs_retries_or_key),
		cmocka_unit_test(test_usage_limit_past),
		cmocka_unit_test(test_program_that_cannot_run_never_retried),
		cmocka_unit_test(test_usage_limit_hostile_numbers),
		cmocka_unit_test(test_claude_events_decide),
		cmocka_unit_test(test_claude_text_decides),
		cmocka_unit_test(test_backoff_values),
		cmocka_unit_test(test_backoff_no_overflow),
		cmocka_unit_test(test_decision_uses_jitter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
