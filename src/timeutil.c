#include "timeutil.h"

#include <ctype.h>
#include <stdio.h>
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
