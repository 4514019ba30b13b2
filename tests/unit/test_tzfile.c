/* tzfile: zone names, the TZif reader (transitions and footer rule),
 * local -> UTC across DST changes, and hostile files. Offsets are checked
 * against glibc's own reading of the same zones (this test process may set
 * TZ; the runner never does). */
#include "testutil.h"

#include <time.h>

#include "tzfile.h"

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static void test_names(void **state)
{
	(void)state;
	static const char *const good[] = { "UTC", "America/New_York", "Etc/GMT+5",
		"America/Argentina/Buenos_Aires", "Asia/Kolkata", "EST5EDT" };
	static const char *const bad[] = { "", "/etc/localtime", "../etc/passwd", "a//b", "a/",
		".", "America/../x", "x y", "a\\b", "Europe/Paris\n", "..",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_true(tz_name_ok(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (tz_name_ok(bad[i]))
			print_error("accepted %s\n", bad[i]);
		assert_false(tz_name_ok(bad[i]));
	}
}

static void test_load_errors(void **state)
{
	(void)state;
	struct tz z;
	errno = 0;
	assert_int_equal(tz_load("../../etc/passwd", &z), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(tz_load("Mars/Olympus_Mons", &z), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(tz_load("America", &z), -1); /* a directory */
	/* A file that is not TZif. */
	char *dir = tu_mkdtemp();
	char path[512];
	snprintf(path, sizeof path, "%s/Bad", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a zone at all, but long enough to be read as one........", f);
	fclose(f);
	setenv("TZDIR", dir, 1);
	assert_int_equal(tz_load("Bad", &z), -1);
	assert_int_equal(tz_load("UTC", &z), 0); /* needs no file */
	assert_int_equal(tz_offset_at(&z, 0), 0);
	tz_clear(&z);
	unsetenv("TZDIR");
	tu_rmtree(dir);
}

/* glibc's offset for zone at t. */
static long glibc_offset(const char *zone, time_t t)
{
	setenv("TZ", zone, 1);
	tzset();
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

static void test_offsets_match_glibc(void **state)
{
	(void)state;
	/* Southern DST, negative DST (Dublin), half hours, 45 minutes, no DST. */
	static const char *const zones[] = { "America/New_York", "Europe/Berlin",
		"Australia/Sydney", "Europe/Dublin", "Asia/Kolkata", "Pacific/Chatham",
		"America/Sao_Paulo", "Africa/Casablanca", "America/St_Johns", "Etc/GMT-14" };
	for (size_t i = 0; i < sizeof zones / sizeof *zones; i++) {
		struct tz z;
		assert_int_equal(tz_load(zones[i], &z), 0);
		/* 1990 to 2060: past the last transition of a fat file (2037),
		 * where the footer rule takes over. */
		for (int64_t t = utc(1990, 1, 1, 0, 0); t < utc(2060, 1, 1, 0, 0); t += 86400 * 3 + 3607) {
			long want = glibc_offset(zones[i], (time_t)t);
			if (tz_offset_at(&z, t) != want)
				print_error("%s at %lld: %d, glibc %ld\n", zones[i], (long long)t,
					    tz_offset_at(&z, t), want);
			assert_int_equal(tz_offset_at(&z, t), want);
		}
		tz_clear(&z);
	}
	unsetenv("TZ");
	tzset();
}

static void test_local_to_utc_dst(void **state)
{
	(void)state;
	struct tz z;
	assert_int_equal(tz_load("America/New_York", &z), 0);
	const struct {
		int64_t local, first, later;
	} cases[] = {
		/* winter and summer */
		{ utc(2026, 1, 15, 12, 0), utc(2026, 1, 15, 17, 0), utc(2026, 1, 15, 17, 0) },
		{ utc(2026, 7, 15, 12, 0), utc(2026, 7, 15, 16, 0), utc(2026, 7, 15, 16, 0) },
		/* 2026-03-08 02:30 does not exist: where the clock jumped to (03:30 EDT) */
		{ utc(2026, 3, 8, 2, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 7, 30) },
		{ utc(2026, 3, 8, 3, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 7, 30) },
		/* 2026-11-01 01:30 happens twice: EDT, then EST */
		{ utc(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30) },
		/* the footer rule, after 2037 */
		{ utc(2045, 11, 5, 1, 30), utc(2045, 11, 5, 5, 30), utc(2045, 11, 5, 6, 30) },
		{ utc(2045, 7, 1, 0, 0), utc(2045, 7, 1, 4, 0), utc(2045, 7, 1, 4, 0) },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int64_t later;
		assert_int_equal(tz_local_to_utc(&z, cases[i].local, &later), cases[i].first);
		assert_int_equal(later, cases[i].later);
	}
	tz_clear(&z);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	unsigned char *buf = malloc(TZ_FILE_MAX);
	assert_non_null(buf);
	*len = fread(buf, 1, TZ_FILE_MAX, f);
	fclose(f);
	return buf;
}

/* Every prefix and many corruptions of a real file: parsed or refused,
 * never read out of bounds (ASan) nor trusted with an out-of-range type. */
static void test_hostile_files(void **state)
{
	(void)state;
	size_t len;
	unsigned char *data = slurp("/usr/share/zoneinfo/America/New_York", &len);
	struct tz z;
	assert_int_equal(tz_parse(data, len, &z), 0);
	assert_true(z.has_rule);
	tz_clear(&z);
	for (size_t n = 0; n < len; n++)
		if (tz_parse(data, n, &z) == 0) {
			(void)tz_offset_at(&z, utc(2030, 1, 1, 0, 0));
			tz_clear(&z);
		}
	uint32_t seed = 7;
	for (int round = 0; round < 3000; round++) {
		unsigned char *copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, data, len);
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245 + 12345;
			copy[(seed >> 8) % len] = (unsigned char)(seed >> 3);
		}
		if (tz_parse(copy, len, &z) == 0) {
			for (int64_t t = -(INT64_C(1) << 40); t < (INT64_C(1) << 40); t += INT64_C(1) << 37)
				(void)tz_local_to_utc(&z, t, NULL);
			tz_clear(&z);
		}
		free(copy);
	}
	free(data);
}

static void test_civil_round_trip(void **state)
{
	(void)state;
	for (int64_t d = -800000; d < 3000000; d += 97) {
		int64_t y;
		int m, dd;
		tz_civil_from_days(d, &y, &m, &dd);
		assert_int_equal(tz_days_from_civil(y, m, dd), d);
	}
	assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_offsets_match_glibc),
		cmocka_unit_test(test_local_to_utc_dst),
		cmocka_unit_test(test_hostile_files),
		cmocka_unit_test(test_civil_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
