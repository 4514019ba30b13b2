#define _GNU_SOURCE
#include "apilimit.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "timeutil.h"
#include "tzfile.h"

#define DAY 86400

const char *api_limit_kind_name(enum api_limit_kind k)
{
	switch (k) {
	case LIMIT_USAGE: return "usage_limit";
	case LIMIT_RATE: return "rate_limited";
	case LIMIT_OVERLOADED: return "overloaded";
	default: return "none";
	}
}

/* A JSON number that may be a Unix time: whole seconds in range, else 0. */
static int64_t epoch_value(const json_t *v)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		return n >= 1 && n <= API_LIMIT_EPOCH_MAX ? (int64_t)n : 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		return isfinite(d) && d >= 1 && d <= (double)API_LIMIT_EPOCH_MAX ? (int64_t)d : 0;
	}
	return 0;
}

static void set_type(struct api_limit *l, const char *type)
{
	if (type)
		snprintf(l->type, sizeof l->type, "%s", type);
}

static bool from_rate_limit_event(const json_t *ev, struct api_limit *l)
{
	const json_t *info = json_object_get(ev, "rate_limit_info");
	const char *status = json_string_value(json_object_get(info, "status"));
	if (!status || strcmp(status, "rejected") != 0)
		return false;
	int64_t at = epoch_value(json_object_get(info, "resetsAt"));
	if (l->kind == LIMIT_USAGE && l->resets_at && !at)
		return false; /* keep the better one */
	l->kind = LIMIT_USAGE;
	l->resets_at = at;
	l->type[0] = '\0';
	set_type(l, json_string_value(json_object_get(info, "rateLimitType")));
	l->source = "rate_limit_event";
	return true;
}

static bool from_result_event(const json_t *ev, struct api_limit *l)
{
	if (!json_is_true(json_object_get(ev, "is_error")))
		return false;
	json_int_t status = json_integer_value(json_object_get(ev, "api_error_status"));
	if (status != 429 && status != 529)
		return false;
	l->api_status = (int)status;
	if (l->kind == LIMIT_USAGE)
		return true; /* the rate_limit_event said more */
	l->kind = status == 429 ? LIMIT_RATE : LIMIT_OVERLOADED;
	l->resets_at = 0;
	l->source = "result event";
	return true;
}

bool api_limit_from_event(const json_t *ev, struct api_limit *l)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (!type)
		return false;
	if (!strcmp(type, "rate_limit_event"))
		return from_rate_limit_event(ev, l);
	if (!strcmp(type, "result"))
		return from_result_event(ev, l);
	return false;
}

/* --- the text: "<x> limit · resets <when>" ------------------------------- */

struct cursor {
	const char *p, *end;
};

static bool eat(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* Spaces as Intl formats them: ' ', U+00A0, U+202F. */
static bool eat_space(struct cursor *c)
{
	bool any = false;
	while (eat(c, " ") || eat(c, "\xc2\xa0") || eat(c, "\xe2\x80\xaf"))
		any = true;
	return any;
}

/* 1 to max_digits decimal digits. */
static bool eat_number(struct cursor *c, int max_digits, int *out)
{
	int v = 0, n = 0;
	while (c->p < c->end && isdigit((unsigned char)*c->p) && n < max_digits) {
		v = v * 10 + (*c->p++ - '0');
		n++;
	}
	if (n == 0 || (c->p < c->end && isdigit((unsigned char)*c->p)))
		return false;
	*out = v;
	return true;
}

static int eat_month(struct cursor *c)
{
	static const char *const names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	for (int i = 0; i < 12; i++)
		if (eat(c, names[i])) {
			while (c->p < c->end && isalpha((unsigned char)*c->p))
				c->p++; /* "Sept", "December" */
			return i + 1;
		}
	return 0;
}

struct when {
	int year, month, day; /* 0: not given */
	int hour, minute;     /* 0-23, 0-59 */
	char zone[TZ_NAME_MAX + 1];
};

static bool parse_clock(struct cursor *c, struct when *w)
{
	int h, m = 0;
	if (!eat_number(c, 2, &h) || h < 1 || h > 12)
		return false;
	if (eat(c, ":") && (!eat_number(c, 2, &m) || m > 59))
		return false;
	eat_space(c);
	bool pm = eat(c, "pm");
	if (!pm && !eat(c, "am"))
		return false;
	w->hour = h % 12 + (pm ? 12 : 0);
	w->minute = m;
	return true;
}

static bool parse_when(struct cursor *c, struct when *w)
{
	memset(w, 0, sizeof *w);
	struct cursor save = *c;
	if ((w->month = eat_month(c))) {
		if (!eat_space(c) || !eat_number(c, 2, &w->day) || w->day < 1 || !eat(c, ","))
			return false;
		eat_space(c);
		save = *c;
		int y;
		if (eat_number(c, 4, &y) && eat(c, ",") && y >= 1970) {
			w->year = y;
			eat_space(c);
		} else
			*c = save;
	}
	if (!parse_clock(c, w))
		return false;
	snprintf(w->zone, sizeof w->zone, "UTC");
	save = *c;
	eat_space(c);
	if (eat(c, "(")) {
		const char *z = c->p;
		while (c->p < c->end && *c->p != ')' && c->p - z <= TZ_NAME_MAX)
			c->p++;
		if (c->p >= c->end || *c->p != ')' || c->p - z > TZ_NAME_MAX)
			return false;
		snprintf(w->zone, sizeof w->zone, "%.*s", (int)(c->p - z), z);
		c->p++;
	} else
		*c = save;
	return true;
}

static int days_in_month(int64_t y, int m)
{
	return (int)(tz_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
		     tz_days_from_civil(y, m, 1));
}

/* The first instant after now_s - 60 whose wall clock in z reads the
 * minute local (so that a limit lifting later in this very minute is
 * still found), or -1. */
static int64_t next_instant(const struct tz *z, int64_t local, int64_t now_s)
{
	int64_t later, first = tz_local_to_utc(z, local, &later);
	if (first + 60 > now_s)
		return first;
	return later + 60 > now_s ? later : -1;
}

int api_limit_parse_when(const char *text, size_t len, int64_t now_s, int64_t *epoch)
{
	struct cursor c = { text, text + len };
	struct when w;
	if (now_s < 0 || now_s > API_LIMIT_EPOCH_MAX - 400 * DAY || !parse_when(&c, &w))
		return -1;
	struct tz z;
	if (tz_load(w.zone, &z) < 0)
		return -1;
	int64_t now_local = now_s + tz_offset_at(&z, now_s), y;
	int m, d, tries = w.year ? 1 : w.month ? 2 : 3;
	tz_civil_from_days(now_local / DAY, &y, &m, &d);
	int64_t hms = w.hour * 3600 + w.minute * 60, at = -1, first = -1;
	for (int i = 0; i < tries && at < 0; i++) {
		int64_t local;
		if (w.month) {
			int64_t year = w.year ? w.year : y + i;
			if (w.day > days_in_month(year, w.month))
				continue;
			local = tz_days_from_civil(year, w.month, w.day) * DAY + hms;
			if (first < 0)
				first = tz_local_to_utc(&z, local, NULL);
		} else
			local = (now_local / DAY + i) * DAY + hms;
		at = next_instant(&z, local, now_s);
	}
	tz_clear(&z);
	if (at < 0)
		at = first; /* a date with its year, already past: said as it is */
	if (at < 0)
		return -1;
	*epoch = at + 60;
	return 0;
}

/* The limit's name in "You've hit your <name> · resets", e.g. "session limit". */
static void limit_name(const char *line, const char *resets, char *out, size_t outlen)
{
	const char *hit = memmem(line, (size_t)(resets - line), "hit your ", 9);
	out[0] = '\0';
	if (!hit)
		return;
	hit += 9;
	size_t n = 0;
	while (hit + n < resets && hit[n] != '\xc2' && hit[n] != '\xe2' && n < outlen - 1)
		n++;
	while (n && hit[n - 1] == ' ')
		n--;
	snprintf(out, outlen, "%.*s", (int)n, hit);
}

bool api_limit_from_text(const char *text, size_t len, int64_t now_s, struct api_limit *l)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *r = memmem(p, (size_t)(eol - p), "resets ", 7);
		if (r && (memmem(p, (size_t)(r - p), "hit your ", 9) ||
			  memmem(p, (size_t)(r - p), "out of usage", 12))) {
			l->kind = LIMIT_USAGE;
			l->source = "text";
			l->resets_at = 0;
			limit_name(p, r, l->type, sizeof l->type);
			int64_t at;
			if (api_limit_parse_when(r + 7, (size_t)(eol - r - 7), now_s, &at) == 0)
				l->resets_at = at;
			return true;
		}
		p = eol + 1;
	}
	return false;
}

/* --- the policy ------------------------------------------------------------ */


bool api_limit_decide(const struct api_limit_policy *p, const struct api_limit *l,
		      unsigned deferrals, int64_t now_ms, double jitter, int64_t *until_ms,
		      char *reason, size_t rlen)
{
	if (l->kind == LIMIT_NONE || deferrals >= p->max_deferrals)
		return false;
	const char *what = l->kind == LIMIT_OVERLOADED ? "the API is overloaded (529)"
			 : l->kind == LIMIT_RATE ? "rate limited (429)" : "usage limit reached";
	char name[48] = "";
	if (l->type[0])
		snprintf(name, sizeof name, " (%s)", l->type);
	int64_t max_ms = (int64_t)(p->max_wait * 1000.0);
	int64_t reset_ms = l->resets_at * 1000; /* resets_at <= API_LIMIT_EPOCH_MAX: no overflow */
	char when[32];
	if (l->kind == LIMIT_USAGE && reset_ms > now_ms) {
		bool cut = reset_ms - now_ms > max_ms;
		*until_ms = cut ? now_ms + max_ms : reset_ms;
		time_format_rfc3339(reset_ms, when, sizeof when);
		snprintf(reason, rlen, "%s%s, from the %s; it lifts at %s (Unix time %lld)%s; "
			 "no retry spent", what, name, l->source, when, (long long)l->resets_at,
			 cut ? ", later than usage_limit_max_wait: tried again at the cut-off" : "");
		return true;
	}
	*until_ms = now_ms + time_backoff_ms(p->backoff, p->backoff_max, deferrals, jitter);
	time_format_rfc3339(*until_ms, when, sizeof when);
	snprintf(reason, rlen, "%s%s, from the %s; %s: tried again at %s (deferral %u of %u); "
		 "no retry spent", what, name, l->source,
		 l->kind != LIMIT_USAGE ? "no reset time given"
		 : l->resets_at ? "the reset named has passed" : "its reset time was unreadable",
		 when, deferrals + 1, p->max_deferrals);
	return true;
}

json_t *api_limit_to_json(const struct api_limit *l, int64_t until_ms)
{
	char when[32];
	time_format_rfc3339(until_ms, when, sizeof when);
	return json_pack("{s:s, s:s?, s:o, s:s?, s:o, s:s}", "kind", api_limit_kind_name(l->kind),
			 "type", l->type[0] ? l->type : NULL,
			 "api_error_status", l->api_status ? json_integer(l->api_status) : json_null(),
			 "source", l->source,
			 "resets_at", l->resets_at ? json_integer(l->resets_at) : json_null(),
			 "until", when);
}
