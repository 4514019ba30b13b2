/* apilimit: Claude Code's limit reports as data. Tables of event -> limit,
 * text -> Unix time (time zones, DST, dates, hostile numbers) and
 * limit -> next time (the policy). */
#include "testutil.h"

#include "apilimit.h"
#include "tzfile.h"

/* Unix time of a UTC date, as a constant expression for the tables (the
 * civil-days formula tzfile uses; test_tzfile checks it). */
#define Y_(y, m) ((int64_t)(y) - ((m) <= 2))
#define YOE_(y, m) (Y_(y, m) - Y_(y, m) / 400 * 400)
#define DAYS_(y, m, d) (Y_(y, m) / 400 * 146097 + YOE_(y, m) * 365 + YOE_(y, m) / 4 - \
	YOE_(y, m) / 100 + (153 * ((m) + ((m) > 2 ? -3 : 9)) + 2) / 5 + (d) - 1 - 719468)
#define utc(y, mo, d, h, mi) (DAYS_(y, mo, d) * 86400 + (h) * 3600 + (mi) * 60)

/* --- event -> limit -------------------------------------------------------- */

static const struct {
	const char *events[3];        /* fed in order */
	enum api_limit_kind kind;
	int64_t resets_at;
	const char *type;
	int api_status;
} event_cases[] = {
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":1796086365,\"rateLimitType\":\"five_hour\",\"isUsingOverage\":false}}" },
	  LIMIT_USAGE, 1796086365, "five_hour", 0 },
	/* the real CLI's order: the event, then a 429 result */
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":1796086365,\"rateLimitType\":\"seven_day\"}}",
	    "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":429}" },
	  LIMIT_USAGE, 1796086365, "seven_day", 429 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed\","
	    "\"resetsAt\":1796086365}}" }, LIMIT_NONE, 0, "", 0 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed_warning\"}}" },
	  LIMIT_NONE, 0, "", 0 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":1796086365.75}}" }, LIMIT_USAGE, 1796086365, "", 0 },
	/* hostile resetsAt: not a time, so no reset is known */
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":1e300}}" }, LIMIT_USAGE, 0, "", 0 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":9223372036854775807}}" }, LIMIT_USAGE, 0, "", 0 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":-5}}" }, LIMIT_USAGE, 0, "", 0 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":\"1796086365\",\"rateLimitType\":\"a-very-long-limit-type-name-that-goes-on\"}}" },
	  LIMIT_USAGE, 0, "a-very-long-limit-type-name-tha", 0 },
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":\"rejected\"}" }, LIMIT_NONE, 0, "", 0 },
	/* a later rejected event without a time does not lose the known one */
	{ { "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\","
	    "\"resetsAt\":1796086365}}",
	    "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\"}}" },
	  LIMIT_USAGE, 1796086365, "", 0 },
	{ { "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":429}" }, LIMIT_RATE, 0, "", 429 },
	{ { "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":529}" },
	  LIMIT_OVERLOADED, 0, "", 529 },
	{ { "{\"type\":\"result\",\"is_error\":false,\"api_error_status\":429}" }, LIMIT_NONE, 0, "", 0 },
	{ { "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":500}" }, LIMIT_NONE, 0, "", 0 },
	{ { "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":null}" }, LIMIT_NONE, 0, "", 0 },
	{ { "{\"type\":\"result\",\"is_error\":true,\"api_error_status\":429.0}" }, LIMIT_NONE, 0, "", 0 },
	{ { "[1,2]", "\"result\"", "{\"type\":7}" }, LIMIT_NONE, 0, "", 0 },
};

static void test_event_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof event_cases / sizeof *event_cases; i++) {
		struct api_limit l = { .kind = LIMIT_NONE };
		for (int k = 0; k < 3 && event_cases[i].events[k]; k++) {
			json_t *ev = json_loads(event_cases[i].events[k], JSON_DECODE_ANY, NULL);
			assert_non_null(ev);
			api_limit_from_event(ev, &l);
			json_decref(ev);
		}
		if (l.kind != event_cases[i].kind || l.resets_at != event_cases[i].resets_at)
			print_error("case %zu: kind %d resets_at %lld\n", i, l.kind,
				    (long long)l.resets_at);
		assert_int_equal(l.kind, event_cases[i].kind);
		assert_int_equal(l.resets_at, event_cases[i].resets_at);
		assert_string_equal(l.type, event_cases[i].type);
		assert_int_equal(l.api_status, event_cases[i].api_status);
	}
}

/* --- text -> Unix time ------------------------------------------------------ */

#define NOW_DEC1 utc(2026, 12, 1, 0, 17) + 15 /* 2026-12-01T00:17:15Z */

static const struct {
	const char *text;
	int64_t now;
	bool found;
	int64_t resets_at; /* 0: found, but no time */
	const char *type;
} text_cases[] = {
	/* as the real CLI 2.1.197 prints it (the end of the minute named) */
	{ "You've hit your session limit \xc2\xb7 resets 12:52am (UTC)", NOW_DEC1, true,
	  utc(2026, 12, 1, 0, 53), "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 1am (UTC)\n", NOW_DEC1, true,
	  utc(2026, 12, 1, 1, 1), "session limit" },
	/* a time already past today: tomorrow */
	{ "You've hit your session limit \xc2\xb7 resets 12:10am (UTC)", NOW_DEC1, true,
	  utc(2026, 12, 2, 0, 11), "session limit" },
	/* this very minute: it lifts at its end, not tomorrow */
	{ "You've hit your session limit \xc2\xb7 resets 12:17am (UTC)", NOW_DEC1, true,
	  utc(2026, 12, 1, 0, 18), "session limit" },
	{ "You've hit your weekly limit \xc2\xb7 resets Dec 3, 7:17pm (America/New_York)", NOW_DEC1,
	  true, utc(2026, 12, 4, 0, 18), "weekly limit" },
	{ "You've hit your weekly limit \xc2\xb7 resets Jan 2, 2027, 7pm (Asia/Kolkata)", NOW_DEC1,
	  true, utc(2027, 1, 2, 13, 31), "weekly limit" },
	/* a date without a year already past: next year */
	{ "You've hit your Opus limit \xc2\xb7 resets Nov 30, 7pm (UTC)", NOW_DEC1, true,
	  utc(2027, 11, 30, 19, 1), "Opus limit" },
	/* Intl's narrow no-break space, upper-case AM, another zone */
	{ "You've hit your session limit \xc2\xb7 resets 5:57\xe2\x80\xaf" "AM (Asia/Kolkata)", NOW_DEC1,
	  true, utc(2026, 12, 1, 0, 28), "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 9:15pm (Pacific/Chatham)", NOW_DEC1, true,
	  utc(2026, 12, 1, 7, 31), "session limit" },
	/* no zone: UTC */
	{ "You've hit your session limit \xc2\xb7 resets 3pm", NOW_DEC1, true, utc(2026, 12, 1, 15, 1),
	  "session limit" },
	/* in the middle of a log, on stderr */
	{ "starting\nerror: You've hit your session limit \xc2\xb7 resets 2:05am (UTC)\nbye\n", NOW_DEC1,
	  true, utc(2026, 12, 1, 2, 6), "session limit" },
	{ "You're out of usage credits \xc2\xb7 resets 2am (UTC)", NOW_DEC1, true, utc(2026, 12, 1, 2, 1),
	  "" },
	/* DST: the evening before the clocks go forward (2026-03-08 in New York) */
	{ "You've hit your session limit \xc2\xb7 resets 3:30am (America/New_York)",
	  utc(2026, 3, 8, 4, 0), true, utc(2026, 3, 8, 7, 31), "session limit" },
	/* a time the clock skips: where it jumped to */
	{ "You've hit your session limit \xc2\xb7 resets 2:30am (America/New_York)",
	  utc(2026, 3, 8, 4, 0), true, utc(2026, 3, 8, 7, 31), "session limit" },
	/* clocks going back (2026-11-01): the first 1:30, then, once past, the second */
	{ "You've hit your session limit \xc2\xb7 resets 1:30am (America/New_York)",
	  utc(2026, 11, 1, 4, 0), true, utc(2026, 11, 1, 5, 31), "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 1:30am (America/New_York)",
	  utc(2026, 11, 1, 5, 45), true, utc(2026, 11, 1, 6, 31), "session limit" },
	/* southern hemisphere summer time */
	{ "You've hit your session limit \xc2\xb7 resets Jan 10, 9am (Australia/Sydney)", NOW_DEC1,
	  true, utc(2027, 1, 9, 22, 1), "session limit" },
	/* found, but the time cannot be read */
	{ "You've hit your session limit \xc2\xb7 resets 1:17am (Mars/Olympus_Mons)", NOW_DEC1, true, 0,
	  "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 1:17am (../../../etc/passwd)", NOW_DEC1, true,
	  0, "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 13:17am (UTC)", NOW_DEC1, true, 0,
	  "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 1:77am (UTC)", NOW_DEC1, true, 0,
	  "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets Feb 30, 1pm (UTC)", NOW_DEC1, true, 0,
	  "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 99999999999999999999:00am (UTC)", NOW_DEC1,
	  true, 0, "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets Dec 99999999999999, 1pm (UTC)", NOW_DEC1,
	  true, 0, "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets 1:17am (UTC", NOW_DEC1, true, 0,
	  "session limit" },
	{ "You've hit your session limit \xc2\xb7 resets soon", NOW_DEC1, true, 0, "session limit" },
	/* not the CLI's limit message */
	{ "API Error: Request rejected (429)", NOW_DEC1, false, 0, "" },
	{ "the counter resets 1am (UTC)", NOW_DEC1, false, 0, "" },
	{ "You've hit your", NOW_DEC1, false, 0, "" },
	{ "", NOW_DEC1, false, 0, "" },
};

static void test_text_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof text_cases / sizeof *text_cases; i++) {
		struct api_limit l = { .kind = LIMIT_NONE };
		const char *t = text_cases[i].text;
		bool found = api_limit_from_text(t, strlen(t), text_cases[i].now, &l);
		if (found != text_cases[i].found || l.resets_at != text_cases[i].resets_at)
			print_error("case %zu (%s): found %d resets_at %lld, expected %lld\n", i, t,
				    found, (long long)l.resets_at, (long long)text_cases[i].resets_at);
		assert_int_equal(found, text_cases[i].found);
		assert_int_equal(l.resets_at, text_cases[i].resets_at);
		assert_string_equal(l.type, text_cases[i].type);
		assert_int_equal(l.kind, found ? LIMIT_USAGE : LIMIT_NONE);
	}
}

static void test_when_with_year_in_the_past(void **state)
{
	(void)state;
	int64_t at;
	const char w[] = "Jan 2, 2020, 7pm (UTC)";
	assert_int_equal(api_limit_parse_when(w, LIT_LEN(w), NOW_DEC1, &at), 0);
	assert_int_equal(at, utc(2020, 1, 2, 19, 1));
	/* a clock out of range is refused, not overflowed */
	assert_int_equal(api_limit_parse_when(w, LIT_LEN(w), INT64_MAX, &at), -1);
	assert_int_equal(api_limit_parse_when(w, LIT_LEN(w), -1, &at), -1);
	/* bytes after the zone do not matter; bytes are not NUL-terminated */
	const char v[] = "2am (UTC) and more";
	assert_int_equal(api_limit_parse_when(v, 3, NOW_DEC1, &at), 0);
	assert_int_equal(at, utc(2026, 12, 1, 2, 1));
	assert_int_equal(utc(2026, 3, 8, 7, 30), tz_days_from_civil(2026, 3, 8) * 86400 + 27000);
}

/* --- limit -> next time ------------------------------------------------------ */

#define NOW_MS (INT64_C(1796084235) * 1000)

static const struct api_limit_policy policy = {
	.backoff = 60, .backoff_max = 1800, .max_wait = 8 * 86400, .max_deferrals = 5,
};

static const struct {
	struct api_limit l;
	unsigned deferrals;
	double jitter;
	bool defer;
	int64_t until_ms;
	const char *says;
} policy_cases[] = {
	{ { LIMIT_USAGE, 1796086365, "five_hour", 429, "rate_limit_event" }, 0, 0.3, true,
	  INT64_C(1796086365000), "usage limit reached (five_hour), from the rate_limit_event; "
	  "it lifts at 2026-12-01T00:52:45.000Z (Unix time 1796086365)" },
	/* a reset past usage_limit_max_wait: cut to it */
	{ { LIMIT_USAGE, 1796084235 + 30 * 86400, "", 0, "text" }, 0, 0, true,
	  NOW_MS + INT64_C(8) * 86400 * 1000, "later than usage_limit_max_wait" },
	{ { LIMIT_USAGE, API_LIMIT_EPOCH_MAX, "", 0, "text" }, 0, 0, true,
	  NOW_MS + INT64_C(8) * 86400 * 1000, "usage_limit_max_wait" },
	/* a reset already past, or unknown: the back-off */
	{ { LIMIT_USAGE, 1796084000, "", 0, "rate_limit_event" }, 0, 0, true, NOW_MS + 30000,
	  "the reset named has passed" },
	{ { LIMIT_USAGE, 0, "session limit", 0, "text" }, 1, 0, true, NOW_MS + 60000,
	  "unreadable" },
	/* 429 and 529: 60 s doubling to 1800 s, with jitter */
	{ { LIMIT_RATE, 0, "", 429, "result event" }, 0, 0.0, true, NOW_MS + 30000,
	  "rate limited (429), from the result event; no reset time given: tried again at "
	  "2026-12-01T00:17:45.000Z (deferral 1 of 5)" },
	{ { LIMIT_RATE, 0, "", 429, "result event" }, 0, 0.5, true, NOW_MS + 45000, "deferral 1 of 5" },
	{ { LIMIT_RATE, 0, "", 429, "result event" }, 3, 0.0, true, NOW_MS + 240000, "deferral 4 of 5" },
	{ { LIMIT_OVERLOADED, 0, "", 529, "result event" }, 4, 0.999999, true, NOW_MS + 959999,
	  "overloaded (529)" },
	/* deferrals used up: an ordinary failure */
	{ { LIMIT_OVERLOADED, 0, "", 529, "result event" }, 5, 0, false, 0, "" },
	{ { LIMIT_USAGE, 1796086365, "", 0, "text" }, 5, 0, false, 0, "" },
	{ { LIMIT_NONE, 0, "", 0, NULL }, 0, 0, false, 0, "" },
};

static void test_policy_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof policy_cases / sizeof *policy_cases; i++) {
		int64_t until = 0;
		char reason[384] = "";
		bool defer = api_limit_decide(&policy, &policy_cases[i].l, policy_cases[i].deferrals,
					      NOW_MS, policy_cases[i].jitter, &until, reason,
					      sizeof reason);
		if (defer != policy_cases[i].defer || until != policy_cases[i].until_ms)
			print_error("case %zu: %d until %lld: %s\n", i, defer, (long long)until, reason);
		assert_int_equal(defer, policy_cases[i].defer);
		assert_int_equal(until, policy_cases[i].until_ms);
		assert_contains(reason, policy_cases[i].says);
	}
	/* The cap: many deferrals never overflow the doubling. */
	struct api_limit_policy many = policy;
	many.max_deferrals = 100000;
	struct api_limit l = { .kind = LIMIT_RATE, .source = "result event" };
	int64_t until;
	char reason[384];
	assert_true(api_limit_decide(&many, &l, 99999, NOW_MS, 0.0, &until, reason, sizeof reason));
	assert_int_equal(until, NOW_MS + 900000);
}

static void test_to_json(void **state)
{
	(void)state;
	struct api_limit l = { LIMIT_USAGE, 1796086365, "five_hour", 429, "rate_limit_event" };
	json_t *j = api_limit_to_json(&l, INT64_C(1796086365000));
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"api_error_status\":429,\"kind\":\"usage_limit\",\"resets_at\":"
			    "1796086365,\"source\":\"rate_limit_event\",\"type\":\"five_hour\","
			    "\"until\":\"2026-12-01T00:52:45.000Z\"}");
	free(s);
	json_decref(j);
	struct api_limit r = { LIMIT_OVERLOADED, 0, "", 529, "result event" };
	j = api_limit_to_json(&r, INT64_C(1796086365000));
	assert_true(json_is_null(json_object_get(j, "type")));
	assert_true(json_is_null(json_object_get(j, "resets_at")));
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "overloaded");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_table),
		cmocka_unit_test(test_text_table),
		cmocka_unit_test(test_when_with_year_in_the_past),
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_to_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
