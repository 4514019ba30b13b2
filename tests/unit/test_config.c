/* config: defaults, INI loading, and the size and seconds parsers. */
#include "testutil.h"

#include <math.h>

#include "config.h"

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->dir = tu_mkdtemp();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* Writes text to DIR/name; malloc'ed path. */
static char *write_ini(struct fixture *f, const char *name, const char *text)
{
	char *path = tu_join(f->dir, name);
	tu_write_file(path, text, strlen(text));
	return path;
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_null(c.path);
	assert_string_equal(c.spool_root, "spool");
	assert_null(c.results_dir);
	assert_true(c.fsync);
	assert_true(c.task.timeout == 3600);
	assert_true(c.task.kill_grace == 5);
	assert_int_equal(c.max_output, 1048576);
	assert_int_equal(c.max_log, UINT64_C(100) * 1048576);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_true(c.max_task_bytes > 0);
	config_clear(&c);
	assert_null(c.spool_root);
	config_clear(&c); /* twice is harmless */
}

static const char full_ini[] =
	"; every key\n"
	"[spool]\n"
	"root = /var/spool/sr\n"
	"results_dir = out/results\n"
	"fsync = no\n"
	"check_permissions = off\n"
	"max_task_bytes = 64K\n"
	"\n"
	"[task]\n"
	"timeout = 90.5\n"
	"kill_grace = 0\n"
	"\n"
	"[output]\n"
	"max_output = 2M\n"
	"max_log = 3G\n"
	"\n"
	"[log]\n"
	"level = debug\n";

static void test_load_all_keys(void **state)
{
	struct fixture *f = *state;
	char *path = write_ini(f, "full.ini", full_ini);
	struct config c;
	config_defaults(&c);
	char err[512] = "";
	int rc = config_load(&c, path, err, sizeof err);
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(c.path, path);
	assert_string_equal(c.spool_root, "/var/spool/sr");
	char *want = tu_join(f->dir, "out/results");
	assert_string_equal(c.results_dir, want);
	free(want);
	assert_false(c.fsync);
	assert_false(c.check_perms);
	assert_int_equal(c.max_task_bytes, 65536);
	assert_true(c.task.timeout == 90.5);
	assert_true(c.task.kill_grace == 0);
	assert_int_equal(c.max_output, 2 * 1048576);
	assert_int_equal(c.max_log, UINT64_C(3) << 30);
	assert_int_equal(c.log_level, LOG_DEBUG);
	config_clear(&c);
	free(path);
}

static void test_load_partial_keeps_defaults(void **state)
{
	struct fixture *f = *state;
	char *path = write_ini(f, "partial.ini", "[task]\ntimeout = 10\n");
	struct config c;
	config_defaults(&c);
	char err[512];
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	assert_true(c.task.timeout == 10);
	assert_true(c.task.kill_grace == 5);
	assert_true(c.fsync);
	assert_int_equal(c.max_output, 1048576);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_null(c.results_dir);
	config_clear(&c);
	free(path);
}

/* Loading starts again from the defaults, not from the previous config. */
static void test_reload_starts_from_defaults(void **state)
{
	struct fixture *f = *state;
	char *a = write_ini(f, "a.ini", "[task]\nkill_grace = 9\n");
	char *b = write_ini(f, "b.ini", "[task]\ntimeout = 1\n");
	struct config c;
	config_defaults(&c);
	char err[512];
	assert_int_equal(config_load(&c, a, err, sizeof err), 0);
	assert_true(c.task.kill_grace == 9);
	assert_int_equal(config_load(&c, b, err, sizeof err), 0);
	assert_true(c.task.timeout == 1);
	assert_true(c.task.kill_grace == 5);
	assert_string_equal(c.path, b);
	config_clear(&c);
	free(a);
	free(b);
}

static void test_relative_root(void **state)
{
	struct fixture *f = *state;
	char *path = write_ini(f, "rel.ini", "[spool]\nroot = spool\nresults_dir = ../elsewhere\n");
	struct config c;
	config_defaults(&c);
	char err[512];
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	char *want = tu_join(f->dir, "spool");
	assert_string_equal(c.spool_root, want);
	free(want);
	want = tu_join(f->dir, "../elsewhere");
	assert_string_equal(c.results_dir, want);
	free(want);
	config_clear(&c);
	free(path);

	/* In a subdirectory, relative to that subdirectory. */
	char *sub = tu_join(f->dir, "etc");
	assert_int_equal(mkdir(sub, 0755), 0);
	path = tu_join(sub, "x.ini");
	tu_write_file(path, "[spool]\nroot = s\n", 17);
	config_defaults(&c);
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	want = tu_join(sub, "s");
	assert_string_equal(c.spool_root, want);
	free(want);
	config_clear(&c);
	free(path);
	free(sub);
}

/* Loads text and expects an error naming the file and each of needles;
 * the config passed in must come out unchanged. */
static void expect_error(struct fixture *f, const char *text, const char *n1, const char *n2)
{
	char *good = write_ini(f, "good.ini", "[task]\ntimeout = 42\n[log]\nlevel = warn\n");
	char *bad = write_ini(f, "bad.ini", text);
	struct config c;
	config_defaults(&c);
	char err[512];
	assert_int_equal(config_load(&c, good, err, sizeof err), 0);
	struct config before = c;
	memset(err, 0, sizeof err);
	int rc = config_load(&c, bad, err, sizeof err);
	if (rc == 0)
		print_error("accepted:\n%s", text);
	assert_int_equal(rc, -1);
	assert_contains(err, bad);
	if (n1)
		assert_contains(err, n1);
	if (n2)
		assert_contains(err, n2);
	assert_null(strchr(err, '\n'));
	/* Untouched: same pointers, same values. */
	assert_memory_equal(&c, &before, sizeof c);
	assert_string_equal(c.path, good);
	assert_true(c.task.timeout == 42);
	assert_int_equal(c.log_level, LOG_WARN);
	config_clear(&c);
	free(good);
	free(bad);
}

static void test_slurm_keys(void **state)
{
	struct fixture *f = *state;
	char *path = write_ini(f, "s.ini", "[runner]\nexecutor = slurm\n[slurm]\npartition = gpu\n"
			       "args = --account=a  --qos=q\npoll_interval = 0.5\nsbatch = bin/sbatch\n"
			       "squeue = /opt/squeue\nsacct = sacct2\n");
	struct config c;
	config_defaults(&c);
	assert_false(c.slurm_executor);
	assert_false(c.task.slurm_allowed);
	assert_true(c.slurm.poll_interval == 2);
	assert_string_equal(c.slurm.scancel, "scancel");
	char err[512];
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	assert_true(c.slurm_executor);
	assert_true(c.task.slurm_allowed);
	assert_string_equal(c.slurm.partition, "gpu");
	assert_int_equal(c.slurm.n_args, 2);
	assert_string_equal(c.slurm.args[1], "--qos=q");
	assert_true(c.slurm.poll_interval == 0.5);
	char *rel = tu_join(f->dir, "bin/sbatch"); /* relative to the file, like every path */
	assert_string_equal(c.slurm.sbatch, rel);
	assert_string_equal(c.slurm.squeue, "/opt/squeue");
	assert_string_equal(c.slurm.sacct, "sacct2"); /* a bare name: looked up in PATH */
	assert_string_equal(c.slurm.scontrol, "scontrol");
	free(rel);
	config_clear(&c);
	free(path);
}

static void test_slurm_bad_keys(void **state)
{
	expect_error(*state, "[runner]\nexecutor = pbs\n", "[runner] executor", "local or slurm");
	expect_error(*state, "[slurm]\npoll_interval = 0\n", "[slurm] poll_interval", "0.1");
	expect_error(*state, "[slurm]\npoll_interval = x\n", "[slurm] poll_interval", "\"x\"");
	expect_error(*state, "[slurm]\nsbatch =\n", "[slurm] sbatch", "program");
	expect_error(*state, "[slurm]\nqueue = x\n", "[slurm]", "unknown key");
}

static void test_unknown_section(void **state)
{
	expect_error(*state, "[task]\ntimeout = 1\n[bogus]\nx = 1\n", "[bogus]", NULL);
}

static void test_unknown_key(void **state)
{
	expect_error(*state, "[task]\ntimeout = 1\nretries = 3\n", "[task]", "retries");
	expect_error(*state, "[spool]\ntimeout = 1\n", "[spool]", "timeout");
}

static void test_key_outside_section(void **state)
{
	expect_error(*state, "timeout = 5\n[task]\nkill_grace = 1\n", "timeout", NULL);
}

static void test_bad_number(void **state)
{
	expect_error(*state, "[task]\ntimeout = abc\n", "[task]", "timeout");
	expect_error(*state, "[task]\ntimeout = 5s\n", "[task]", "timeout");
	expect_error(*state, "[task]\nkill_grace = nan\n", "[task]", "kill_grace");
	expect_error(*state, "[task]\ntimeout = inf\n", "[task]", "timeout");
	expect_error(*state, "[task]\ntimeout = 1e400\n", "[task]", "timeout");
}

/* The [retry] keys of Claude's limits (apilimit.h): loaded, checked, bounded. */
static void test_limit_policy_keys(void **state)
{
	struct fixture *f = *state;
	char *path = write_ini(f, "limits.ini", "[retry]\nrate_limit_backoff = 5\n"
			       "rate_limit_backoff_max = 40.5\nusage_limit_max_wait = 3600\n"
			       "limit_deferrals = 7\n");
	struct config c;
	config_defaults(&c);
	assert_true(c.api_limits.backoff == 60 && c.api_limits.backoff_max == 1800);
	assert_true(c.api_limits.max_wait == 8 * 86400 && c.api_limits.max_deferrals == 100);
	char err[512] = "";
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	assert_true(c.api_limits.backoff == 5 && c.api_limits.backoff_max == 40.5);
	assert_true(c.api_limits.max_wait == 3600 && c.api_limits.max_deferrals == 7);
	config_clear(&c);
	free(path);
	expect_error(*state, "[retry]\nrate_limit_backoff = -1\n", "[retry]", "rate_limit_backoff");
	expect_error(*state, "[retry]\nusage_limit_max_wait = 1e400\n", "[retry]",
		     "usage_limit_max_wait");
	expect_error(*state, "[retry]\nlimit_deferrals = 100001\n", "[retry]", "limit_deferrals");
	expect_error(*state, "[retry]\nlimit_deferrals = 99999999999999999999999\n", "[retry]",
		     "limit_deferrals");
	expect_error(*state, "[retry]\nrate_limit_backoff = 100\nrate_limit_backoff_max = 10\n",
		     "[retry]", "rate_limit_backoff_max");
}

static void test_negative_seconds(void **state)
{
	expect_error(*state, "[task]\ntimeout = -1\n", "[task]", "timeout");
	expect_error(*state, "[task]\nkill_grace = -0.5\n", "[task]", "kill_grace");
}

static void test_bad_bool(void **state)
{
	expect_error(*state, "[spool]\nfsync = maybe\n", "[spool]", "fsync");
	expect_error(*state, "[spool]\ncheck_permissions = 2\n", "[spool]", "check_permissions");
}

static void test_bad_size(void **state)
{
	expect_error(*state, "[output]\nmax_output = 10x\n", "[output]", "max_output");
	expect_error(*state, "[output]\nmax_log = -1\n", "[output]", "max_log");
	expect_error(*state, "[spool]\nmax_task_bytes = 1.5M\n", "[spool]", "max_task_bytes");
	expect_error(*state, "[output]\nmax_log = 99999999999999999999\n", "[output]", "max_log");
}

static void test_bad_level(void **state)
{
	expect_error(*state, "[log]\nlevel = verbose\n", "[log]", "level");
	expect_error(*state, "[log]\nlevel = 3\n", "[log]", "level");
}

static void test_empty_path(void **state)
{
	expect_error(*state, "[spool]\nroot =\n", "[spool]", "root");
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char *path = tu_join(f->dir, "nope.ini");
	struct config c;
	config_defaults(&c);
	char *root = c.spool_root;
	char err[512] = "";
	assert_int_equal(config_load(&c, path, err, sizeof err), -1);
	assert_contains(err, path);
	assert_ptr_equal(c.spool_root, root);
	assert_null(c.path);
	config_clear(&c);
	free(path);
}

static void test_good_bools_and_levels(void **state)
{
	struct fixture *f = *state;
	const char *yes[] = { "yes", "true", "on", "1", "YES", "True" };
	const char *no[] = { "no", "false", "off", "0", "NO", "Off" };
	char text[128], err[512];
	for (size_t i = 0; i < 6; i++) {
		struct config c;
		snprintf(text, sizeof text, "[spool]\nfsync = %s\ncheck_permissions = %s\n", no[i], yes[i]);
		char *path = write_ini(f, "b.ini", text);
		config_defaults(&c);
		assert_int_equal(config_load(&c, path, err, sizeof err), 0);
		assert_false(c.fsync);
		assert_true(c.check_perms);
		config_clear(&c);
		free(path);
	}
	const char *levels[] = { "error", "warn", "info", "debug" };
	const enum log_level want[] = { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
	for (size_t i = 0; i < 4; i++) {
		struct config c;
		snprintf(text, sizeof text, "[log]\nlevel = %s\n", levels[i]);
		char *path = write_ini(f, "l.ini", text);
		config_defaults(&c);
		assert_int_equal(config_load(&c, path, err, sizeof err), 0);
		assert_int_equal(c.log_level, want[i]);
		config_clear(&c);
		free(path);
	}
}

/* --- config_parse_size ------------------------------------------------ */

static void size_ok(const char *s, uint64_t want)
{
	uint64_t v = 777;
	if (config_parse_size(s, &v) != 0)
		print_error("refused: \"%s\"\n", s);
	assert_int_equal(config_parse_size(s, &v), 0);
	assert_int_equal(v, want);
}

static void size_bad(const char *s)
{
	uint64_t v = 777;
	if (config_parse_size(s, &v) == 0)
		print_error("accepted: \"%s\"\n", s);
	assert_int_equal(config_parse_size(s, &v), -1);
	assert_int_equal(v, 777);
}

static void test_parse_size(void **state)
{
	(void)state;
	size_ok("0", 0);
	size_ok("1", 1);
	size_ok("1048576", 1048576);
	size_ok("1M", 1048576);
	size_ok("2K", 2048);
	size_ok("3G", UINT64_C(3221225472));
	size_ok("1MiB", 1048576);
	size_ok("1MB", 1048576);
	size_ok("1m", 1048576);
	size_ok("4k", 4096);
	size_ok("18446744073709551615", UINT64_MAX);
	size_ok("17179869183G", (UINT64_C(17179869183) << 30));
	size_bad("");
	size_bad("10x");
	size_bad("-1");
	size_bad("+1");
	size_bad(" 1");
	size_bad("1 ");
	size_bad("1 M");
	size_bad("M");
	size_bad("1.5M");
	size_bad("1T");
	size_bad("1MM");
	size_bad("1Mi");
	size_bad("0x10");
	size_bad("18446744073709551616");
	size_bad("99999999999999999999999");
	size_bad("17179869184G");
	size_bad("18014398509481984K");
}

/* --- config_parse_seconds --------------------------------------------- */

static void test_parse_seconds(void **state)
{
	(void)state;
	double v;
	assert_int_equal(config_parse_seconds("0", 100, &v), 0);
	assert_true(v == 0);
	assert_int_equal(config_parse_seconds("0.5", 100, &v), 0);
	assert_true(v == 0.5);
	assert_int_equal(config_parse_seconds("100", 100, &v), 0);
	assert_true(v == 100);
	assert_int_equal(config_parse_seconds("1e1", 100, &v), 0);
	assert_true(v == 10);
	v = 777;
	const char *bad[] = { "", "-1", "-0.001", "100.5", "1e400", "nan", "NaN", "inf",
			      "-inf", "5s", "5 ", "abc", "1,5" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (config_parse_seconds(bad[i], 100, &v) == 0)
			print_error("accepted: \"%s\"\n", bad[i]);
		assert_int_equal(config_parse_seconds(bad[i], 100, &v), -1);
		assert_true(v == 777);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test_setup_teardown(test_load_all_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_partial_keeps_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_starts_from_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slurm_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slurm_bad_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_outside_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_policy_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_seconds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_bool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_good_bools_and_levels, setup, teardown),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_seconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
