/* apilimit: the API limits Claude Code reports, and what to do about them.
 *
 * Claude Code (`claude -p`) tells of a limit in three ways, and this module
 * reads each into one struct api_limit:
 *   - stream-json events: {"type":"rate_limit_event","rate_limit_info":
 *     {"status":"rejected","resetsAt":<Unix s>,"rateLimitType":"five_hour"}}
 *     (a subscriber's usage limit), and a final {"type":"result",
 *     "is_error":true,"api_error_status":429|529} (a rate limit with no
 *     reset time, or the API overloaded): api_limit_from_event;
 *   - text, when there are no events: "You've hit your session limit ·
 *     resets 12:52am (UTC)", "… resets Dec 3, 7:17pm (America/New_York)",
 *     "… resets Jan 2, 2027, 7pm (Asia/Kolkata)": api_limit_from_text turns
 *     the wall-clock time into the next such instant in that zone (through
 *     tzfile, never the process's TZ), at the end of the named minute
 *     since the CLI drops the seconds;
 *   - the configured usage_limit_pattern (retry.c, as before).
 * api_limit_decide is the policy: until when the task (and its limit_key)
 * waits, spending no retry. Every number comes from a child's output and
 * is bounded before any arithmetic. All functions are pure: the clock is a
 * parameter (tzfile reads the zone database, which is data). */
#ifndef SPOOLRUN_APILIMIT_H
#define SPOOLRUN_APILIMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum api_limit_kind {
	LIMIT_NONE,
	LIMIT_USAGE,      /* a usage limit; resets_at says when it lifts (0: not said) */
	LIMIT_RATE,       /* HTTP 429 without a reset time */
	LIMIT_OVERLOADED, /* HTTP 529: the API is overloaded */
};

struct api_limit {
	enum api_limit_kind kind;
	int64_t resets_at;  /* Unix seconds, 0 when unknown; bounded to [1, API_LIMIT_EPOCH_MAX] */
	char type[32];      /* rateLimitType ("five_hour", "seven_day", …) or the text's
			       limit ("session limit"); "" when unknown */
	int api_status;     /* the result event's api_error_status (429, 529) or 0 */
	const char *source; /* "rate_limit_event", "result event", "text", "usage_limit_pattern" */
};

/* Year 9999: any later "Unix time" is not a time. */
#define API_LIMIT_EPOCH_MAX INT64_C(253402300799)

/* [retry] keys: how long to wait when no (usable) reset time is given. */
struct api_limit_policy {
	double backoff;          /* rate_limit_backoff: first wait after a 429/529, s */
	double backoff_max;      /* rate_limit_backoff_max: the doubling stops here, s */
	double max_wait;         /* usage_limit_max_wait: a reset further away is cut to this, s */
	unsigned max_deferrals;  /* limit_deferrals: then a limit counts as a failure */
};

/* Updates l from one stream event (anything else is ignored); true when it
 * changed. A usage limit with its reset time is never downgraded by a later
 * 429 result: that result only adds api_status. */
bool api_limit_from_event(const json_t *ev, struct api_limit *l);

/* Looks in text for the CLI's "hit your … limit · resets <when>" message;
 * true when found. l becomes LIMIT_USAGE with resets_at from <when>, or 0
 * when <when> cannot be read (a bad zone, a bad date). now_s: Unix time. */
bool api_limit_from_text(const char *text, size_t len, int64_t now_s, struct api_limit *l);

/* The Unix time <when> names ("12:52am (UTC)", "Dec 3, 7:17pm (Europe/Paris)",
 * "Jan 2, 2027, 7pm (UTC)"; no zone: UTC): the end of that minute, the next
 * time it comes after now_s unless a year is given. -1 when unreadable. */
int api_limit_parse_when(const char *when, size_t len, int64_t now_s, int64_t *epoch);

/* Until when a run that hit limit l waits (wall-clock ms in *until_ms), and
 * why (reason); false when it is not deferred (no limit, or deferrals
 * already reached max_deferrals: the run then counts as an ordinary
 * failure). A reset in the future is waited for, cut to max_wait; a reset
 * in the past or unknown (429, 529) waits backoff doubled per earlier
 * deferral up to backoff_max, times (1 + jitter) / 2, jitter in [0, 1). */
bool api_limit_decide(const struct api_limit_policy *p, const struct api_limit *l,
		      unsigned deferrals, int64_t now_ms, double jitter, int64_t *until_ms,
		      char *reason, size_t rlen);

/* {"kind", "type", "api_error_status", "source", "resets_at", "until"} for
 * attempts[].retry_limit. */
json_t *api_limit_to_json(const struct api_limit *l, int64_t until_ms);

const char *api_limit_kind_name(enum api_limit_kind k);

#endif
