#define _GNU_SOURCE
#include "tzfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY 86400

bool tz_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c == '/') {
			if (name[i + 1] == '/')
				return false;
		} else if (!isalnum((unsigned char)c) && c != '_' && c != '+' && c != '-')
			return false; /* '.' too: no "." or ".." component can appear */
	}
	return true;
}

void tz_clear(struct tz *z)
{
	free(z->trans);
	free(z->idx);
	free(z->utoff);
	memset(z, 0, sizeof *z);
}

static int64_t be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	if (bytes == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

/* POSIX TZ footer pieces: a zone abbreviation, an offset, a rule. */
static const char *skip_name(const char *s)
{
	if (*s == '<') {
		const char *e = strchr(s, '>');
		return e ? e + 1 : NULL;
	}
	const char *b = s;
	while (isalpha((unsigned char)*s))
		s++;
	return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to 167, as seconds. */
static const char *parse_hms(const char *s, int32_t *out)
{
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	int32_t part[3] = { 0, 0, 0 };
	for (int i = 0; i < 3; i++) {
		if (i && *s != ':')
			break;
		if (i)
			s++;
		if (!isdigit((unsigned char)*s))
			return NULL;
		int32_t v = 0;
		for (int d = 0; isdigit((unsigned char)*s); d++, s++) {
			if (d >= 3)
				return NULL;
			v = v * 10 + (*s - '0');
		}
		if ((i == 0 && v > 167) || (i > 0 && v > 59))
			return NULL;
		part[i] = v;
	}
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return s;
}

static const char *parse_rule(const char *s, struct tz_rule *r)
{
	if (*s++ != 'M')
		return NULL; /* Jn and n rules: not used by any zone in use */
	int v[3];
	for (int i = 0; i < 3; i++) {
		if (i && *s++ != '.')
			return NULL;
		if (!isdigit((unsigned char)*s))
			return NULL;
		v[i] = 0;
		for (int d = 0; isdigit((unsigned char)*s); d++, s++) {
			if (d >= 2)
				return NULL;
			v[i] = v[i] * 10 + (*s - '0');
		}
	}
	if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 5 || v[2] > 6)
		return NULL;
	*r = (struct tz_rule){ v[0], v[1], v[2], 2 * 3600 };
	if (*s == '/')
		s = parse_hms(s + 1, &r->time);
	return s;
}

/* "EST5EDT,M3.2.0,M11.1.0": sets the footer rule, or leaves has_rule false. */
static void parse_footer(const char *s, struct tz *z)
{
	int32_t std, dst;
	if (!(s = skip_name(s)) || !(s = parse_hms(s, &std)))
		return;
	z->std_off = -std; /* POSIX counts west of Greenwich */
	if (!*s) {
		z->has_rule = true;
		return;
	}
	if (!(s = skip_name(s)))
		return;
	dst = std - 3600;
	if (*s != ',' && !(s = parse_hms(s, &dst)))
		return;
	if (*s++ != ',' || !(s = parse_rule(s, &z->start)) || *s++ != ',' ||
	    !(s = parse_rule(s, &z->end)) || *s)
		return;
	z->dst_off = -dst;
	z->rule_dst = z->has_rule = true;
}

/* The sizes of a data block (4- or 8-byte times) from its header. */
static size_t block_size(const unsigned char *h, int tsize, size_t c[6])
{
	for (int i = 0; i < 6; i++)
		c[i] = (size_t)(uint32_t)be(h + 20 + 4 * i, 4);
	/* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
	return c[3] * (size_t)tsize + c[3] + c[4] * 6 + c[5] + c[2] * (size_t)(tsize + 4) + c[1] +
	       c[0];
}

int tz_parse(const unsigned char *data, size_t len, struct tz *z)
{
	memset(z, 0, sizeof *z);
	size_t c[6];
	if (len < 44 || memcmp(data, "TZif", 4) != 0 || len > TZ_FILE_MAX)
		return -1;
	size_t v1 = block_size(data, 4, c);
	const unsigned char *h = data, *end = data + len;
	int tsize = 4;
	if (data[4] >= '2') {
		if (44 + v1 + 44 > len)
			return -1;
		h = data + 44 + v1;
		if (memcmp(h, "TZif", 4) != 0)
			return -1;
		tsize = 8;
	}
	size_t body = block_size(h, tsize, c);
	const unsigned char *p = h + 44;
	if (c[4] == 0 || c[4] > 256 || (size_t)(end - p) < body)
		return -1;
	z->ntrans = c[3];
	z->ntypes = c[4];
	z->trans = malloc((c[3] ? c[3] : 1) * sizeof *z->trans);
	z->idx = malloc(c[3] ? c[3] : 1);
	z->utoff = malloc(c[4] * sizeof *z->utoff);
	if (!z->trans || !z->idx || !z->utoff) {
		tz_clear(z);
		return -1;
	}
	for (size_t i = 0; i < c[3]; i++)
		z->trans[i] = be(p + i * (size_t)tsize, tsize);
	p += c[3] * (size_t)tsize;
	for (size_t i = 0; i < c[3]; i++)
		if ((z->idx[i] = p[i]) >= c[4] || (i && z->trans[i] <= z->trans[i - 1])) {
			tz_clear(z);
			return -1;
		}
	p += c[3];
	for (size_t i = 0; i < c[4]; i++) {
		int64_t off = be(p + 6 * i, 4);
		if (off < -25 * 3600 || off > 26 * 3600) {
			tz_clear(z);
			return -1;
		}
		z->utoff[i] = (int32_t)off;
	}
	p = h + 44 + body;
	if (tsize == 8 && p < end && *p == '\n') {
		const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
		char footer[128];
		size_t n = nl ? (size_t)(nl - p - 1) : 0;
		if (nl && n < sizeof footer) {
			memcpy(footer, p + 1, n);
			footer[n] = '\0';
			parse_footer(footer, z);
		}
	}
	return 0;
}

int tz_load(const char *name, struct tz *z)
{
	memset(z, 0, sizeof *z);
	if (!tz_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	if (!strcmp(name, "UTC") || !strcmp(name, "GMT") || !strcmp(name, "Z")) {
		z->utoff = calloc(1, sizeof *z->utoff);
		z->ntypes = 1;
		return z->utoff ? 0 : -1;
	}
	const char *dir = getenv("TZDIR");
	char path[4096 + TZ_NAME_MAX];
	snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	unsigned char *buf = NULL;
	ssize_t got = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= TZ_FILE_MAX &&
	    (buf = malloc((size_t)st.st_size + 1))) {
		size_t have = 0;
		while (have < (size_t)st.st_size) {
			ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		got = (ssize_t)have;
	}
	int saved = errno;
	close(fd);
	int rc = got > 0 ? tz_parse(buf, (size_t)got, z) : -1;
	free(buf);
	if (rc < 0)
		errno = got > 0 ? EINVAL : saved;
	return rc;
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Local seconds (as if UTC) at which rule r fires in year y. */
static int64_t rule_local(const struct tz_rule *r, int64_t y)
{
	int64_t first = tz_days_from_civil(y, r->month, 1);
	int wday = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	int64_t day = first + (r->day - wday + 7) % 7 + 7 * (r->week - 1);
	int64_t y2;
	int m2, d2;
	tz_civil_from_days(day, &y2, &m2, &d2);
	while (m2 != r->month) { /* week 5: the last such day of the month */
		day -= 7;
		tz_civil_from_days(day, &y2, &m2, &d2);
	}
	return day * DAY + r->time;
}

static int32_t rule_offset(const struct tz *z, int64_t t)
{
	if (!z->rule_dst)
		return z->std_off;
	int64_t y;
	int m, d;
	tz_civil_from_days(floor_div(t + z->std_off, DAY), &y, &m, &d);
	int64_t start = rule_local(&z->start, y) - z->std_off;
	int64_t end = rule_local(&z->end, y) - z->dst_off;
	bool dst = start < end ? t >= start && t < end : !(t >= end && t < start);
	return dst ? z->dst_off : z->std_off;
}

int32_t tz_offset_at(const struct tz *z, int64_t t)
{
	if (z->ntrans == 0 || t < z->trans[0])
		return z->ntrans == 0 && z->has_rule ? rule_offset(z, t) : z->utoff[0];
	if (t >= z->trans[z->ntrans - 1] && z->has_rule)
		return rule_offset(z, t);
	size_t lo = 0, hi = z->ntrans; /* the last transition <= t */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->utoff[z->idx[lo]];
}

int64_t tz_local_to_utc(const struct tz *z, int64_t local, int64_t *later)
{
	/* Every offset is within a day, so the offsets in force a day either
	 * side of local are the only candidates. */
	int32_t cand[2] = { tz_offset_at(z, local - DAY), tz_offset_at(z, local + DAY) };
	int64_t best = INT64_MAX, other = INT64_MIN;
	for (int i = 0; i < 2; i++) {
		int64_t t = local - cand[i];
		if (tz_offset_at(z, t) != cand[i])
			continue;
		if (t < best)
			best = t;
		if (t > other)
			other = t;
	}
	if (best == INT64_MAX) /* skipped by a clock set forward */
		best = other = local - cand[0];
	if (later)
		*later = other;
	return best;
}
