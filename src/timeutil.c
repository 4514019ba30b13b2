#define _GNU_SOURCE
#include "timeutil.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t time_realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

void time_format_rfc3339(int64_t epoch_ms, char *buf, size_t size)
{
	/* Floor division: -1 ms is 23:59:59.999 of the day before. */
	int64_t ms = epoch_ms % 1000;
	if (ms < 0)
		ms += 1000;
	time_t secs = (time_t)((epoch_ms - ms) / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)ms);
}

int64_t time_seconds_to_ns(double seconds)
{
	/* Callers validate ranges; saturate anyway so no input is UB. */
	if (!(seconds > 0))
		return 0;
	if (seconds >= 9.2e9)
		return INT64_MAX;
	/* 0 means "none" to every caller: a positive value, however small,
	 * must never round to it (idle_timeout 1e-10 is 1 ns, not "off"). */
	int64_t ns = (int64_t)(seconds * 1e9);
	return ns > 0 ? ns : 1;
}

int64_t time_ms_to_ns(int64_t ms)
{
	if (ms > INT64_MAX / NS_PER_MS)
		return INT64_MAX;
	if (ms < INT64_MIN / NS_PER_MS)
		return INT64_MIN;
	return ms * NS_PER_MS;
}

/* n decimal digits at *p, advancing p; -1 when they are not all digits. */
static int digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

static bool expect(const char **p, const char *any_of)
{
	if (!**p || !strchr(any_of, **p))
		return false;
	(*p)++;
	return true;
}

/* The UTC offset at p ("Z", "+HH:MM", "-HH:MM") in seconds; false if none. */
static bool parse_offset(const char *p, int64_t *offset_s)
{
	if (expect(&p, "Zz"))
		return *offset_s = 0, *p == '\0';
	int sign = *p == '-' ? -1 : 1;
	if (!expect(&p, "+-"))
		return false;
	int hh = digits(&p, 2), mm = expect(&p, ":") ? digits(&p, 2) : -1;
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || *p)
		return false;
	*offset_s = sign * (hh * 3600 + mm * 60);
	return true;
}

int time_parse_rfc3339(const char *s, int64_t *epoch_ms)
{
	const char *p = s;
	struct tm tm = { 0 };
	int year = digits(&p, 4), mon = expect(&p, "-") ? digits(&p, 2) : -1;
	int day = expect(&p, "-") ? digits(&p, 2) : -1;
	int hh = expect(&p, "Tt ") ? digits(&p, 2) : -1;
	int mi = expect(&p, ":") ? digits(&p, 2) : -1;
	int ss = expect(&p, ":") ? digits(&p, 2) : -1;
	if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hh < 0 || hh > 23 ||
	    mi < 0 || mi > 59 || ss < 0 || ss > 60)
		return -1;
	int64_t ms = 0, scale = 100;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	int64_t offset_s;
	if (!parse_offset(p, &offset_s))
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mi;
	tm.tm_sec = ss == 60 ? 59 : ss; /* a leap second is the second before */
	time_t t = timegm(&tm);
	if (tm.tm_mday != day) /* 31 of a 30-day month, 29 Feb of a common year */
		return -1;
	*epoch_ms = ((int64_t)t - offset_s) * 1000 + ms;
	return 0;
}

int time_parse_when(const char *s, int64_t *epoch_ms)
{
	if (time_parse_rfc3339(s, epoch_ms) == 0)
		return 0;
	char *end;
	double secs = strtod(s, &end);
	if (!isdigit((unsigned char)*s) || *end || !isfinite(secs) || secs > 253402300799.0)
		return -1;
	*epoch_ms = (int64_t)(secs * 1000 + 0.5);
	return 0;
}

int time_parse_duration(const char *s, int64_t *seconds)
{
	const int64_t max = INT64_C(100) * 366 * 86400;
	int64_t n = 0, unit = 1;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		n = n * 10 + (*p - '0');
		if (n > max)
			return -1;
	}
	switch (*p) {
	case '\0': break;
	case 's': unit = 1; p++; break;
	case 'm': unit = 60; p++; break;
	case 'h': unit = 3600; p++; break;
	case 'd': unit = 86400; p++; break;
	default: return -1;
	}
	if (*p || n > max / unit)
		return -1;
	*seconds = n * unit;
	return 0;
}

int64_t time_backoff_ms(double first_s, double max_s, unsigned n, double jitter)
{
	double delay = first_s;
	for (unsigned i = 0; i < n && delay < max_s; i++)
		delay *= 2;
	if (delay > max_s)
		delay = max_s;
	return (int64_t)(delay * 1000.0 * (1.0 + jitter) / 2.0);
}
