/* tzfile: wall-clock time in a named time zone, from the system's tz
 * database, without touching the process's TZ.
 *
 * Claude Code prints when a usage limit lifts as a wall-clock time in a
 * zone it names ("resets 7:17pm (America/New_York)"). Turning that into an
 * absolute time with setenv("TZ") + mktime would change the time zone of
 * the whole runner (its log, every localtime call) while it runs; instead
 * this module reads the zone's TZif file (RFC 8536) itself: the table of
 * transitions and, past the last one, the POSIX TZ rule in its footer
 * (the "M" month.week.day form that every zone in use has).
 *
 * tz_parse is pure (bytes in, struct out) and is what the unit tests
 * drive; tz_load reads <TZDIR or /usr/share/zoneinfo>/<name>. Names are
 * checked first: only [A-Za-z0-9_+-] components separated by single '/',
 * no "." component, at most 64 bytes, so a hostile name can never leave
 * the zone directory. "UTC", "GMT" and "Z" need no file. */
#ifndef SPOOLRUN_TZFILE_H
#define SPOOLRUN_TZFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_NAME_MAX 64
#define TZ_FILE_MAX (256 * 1024)

struct tz_rule {         /* Mm.w.d/time: day d (0 Sunday) of week w (5 last) of month m */
	int month, week, day;
	int32_t time;        /* seconds after local midnight (may be < 0 or > 24 h) */
};

struct tz {
	int64_t *trans;      /* transition instants, ascending, Unix seconds */
	unsigned char *idx;  /* the type in force from each transition */
	size_t ntrans;
	int32_t *utoff;      /* UTC offset of each type, seconds east */
	size_t ntypes;
	bool has_rule;       /* a footer rule applies after the last transition */
	int32_t std_off, dst_off; /* footer: seconds east */
	bool rule_dst;       /* footer has daylight saving time */
	struct tz_rule start, end;
};

/* Whether name may name a zone file (see above). */
bool tz_name_ok(const char *name);

/* Parses a TZif file (version 1, 2, 3 or 4). -1 when it is not one. */
int tz_parse(const unsigned char *data, size_t len, struct tz *z);

/* Loads a zone by name: -1 (errno EINVAL for a bad name, or the open's)
 * when there is none. */
int tz_load(const char *name, struct tz *z);

void tz_clear(struct tz *z);

/* Seconds east of UTC in force at Unix time t. */
int32_t tz_offset_at(const struct tz *z, int64_t t);

/* The earliest Unix time whose wall clock in z reads local (seconds since
 * 1970-01-01 00:00 as if in UTC), and in *later the other one when the
 * wall clock reads local twice (a clock set back), else the same. A time
 * skipped by a clock set forward maps to where the clock jumped to (like
 * mktime). */
int64_t tz_local_to_utc(const struct tz *z, int64_t local, int64_t *later);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
