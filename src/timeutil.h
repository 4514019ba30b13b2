/* timeutil: clocks and timestamps.
 *
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds, so a change of the
 * wall clock never shortens or lengthens a timeout. Timestamps written into
 * results are CLOCK_REALTIME milliseconds, formatted as RFC 3339 UTC. */
#ifndef SPOOLRUN_TIMEUTIL_H
#define SPOOLRUN_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_SEC INT64_C(1000000000)

int64_t time_monotonic_ns(void);
int64_t time_realtime_ms(void);

/* Writes "2026-11-24T05:32:56.123Z" (24 chars + NUL) into buf; needs size >= 25. */
void time_format_rfc3339(int64_t epoch_ms, char *buf, size_t size);

/* Parses an RFC 3339 time ("2026-12-01T08:00:00Z", "…T08:00:00.250+02:00";
 * 'T' may be 't' or a space, 'Z' may be 'z') into epoch_ms. Returns 0, or
 * -1 when s is not one. Years 1970 to 9999 only. */
int time_parse_rfc3339(const char *s, int64_t *epoch_ms);

/* A point in time as users write it: RFC 3339, or Unix seconds (a decimal
 * number, possibly fractional). Returns 0, or -1 when s is neither. */
int time_parse_when(const char *s, int64_t *epoch_ms);

/* Seconds (as configured, possibly fractional) to nanoseconds, saturating;
 * 0 only for 0 (or less): a positive value is at least 1 ns, since 0 is
 * what disables a timeout. */
int64_t time_seconds_to_ns(double seconds);

/* Milliseconds (from a state file, a task's output) to nanoseconds,
 * saturating instead of overflowing. */
int64_t time_ms_to_ns(int64_t ms);

/* Parses a retention duration: a whole number with an optional unit, s
 * (the default), m, h or d: "90s", "30m", "12h", "7d", "0". At most
 * 100 years. 0 and *seconds set, or -1 (nothing set) for anything else:
 * a sign, a fraction, spaces, an unknown unit, an overflow. */
int time_parse_duration(const char *s, int64_t *seconds);

/* An exponential back-off: first_s seconds doubled n times, at most max_s,
 * then scaled by a jitter in [0, 1) to between half and all of it; in ms.
 * Shared by task retries and API-limit back-offs. */
int64_t time_backoff_ms(double first_s, double max_s, unsigned n, double jitter);

#endif
