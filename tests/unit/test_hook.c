/* hook: the supervised on_result command, driven directly: success and
 * failure counts, the environment, the timeout killing a whole tree,
 * leftovers killed when the shell exits, and the cap on running hooks. */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "hook.h"
#include "log.h"

static struct hook_info info(const char *id)
{
	return (struct hook_info){ .result_path = "/spool/results/x.json", .id = id,
				   .status = "failed", .has_exit_code = true, .exit_code = 3,
				   .spool = "/spool" };
}

/* Reaps one hook supervisor the way the loop does. */
static int reap(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(hook_reaped(pid, status));
	return status;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool zombie = fgets(buf, sizeof buf, f) && strrchr(buf, ')') && strrchr(buf, ')')[2] == 'Z';
	fclose(f);
	return !zombie;
}

static pid_t read_pid_file(const char *path)
{
	for (int i = 0; i < 500; i++) {
		char *t = tu_read_file(path, NULL);
		if (t && atoi(t) > 0) {
			pid_t p = atoi(t);
			free(t);
			return p;
		}
		free(t);
		usleep(10000);
	}
	fail_msg("no pid in %s", path);
	return -1;
}

static void test_env_and_counts(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp(), cmd[512];
	snprintf(cmd, sizeof cmd, "env | grep ^SPOOLRUN_ | sort > %s/env; exit 0", dir);
	uint64_t failed = hook_failures();
	struct hook_info in = info("env-1");
	pid_t pid = hook_start(cmd, 10, &in);
	assert_true(pid > 0);
	assert_true(hook_owns(pid));
	int st = reap(pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_false(hook_owns(pid));
	assert_true(hook_failures() == failed);
	char *p = tu_join(dir, "env"), *env = tu_read_file(p, NULL);
	assert_string_equal(env, "SPOOLRUN_EXIT_CODE=3\nSPOOLRUN_ID=env-1\n"
			    "SPOOLRUN_RESULT=/spool/results/x.json\nSPOOLRUN_SPOOL=/spool\n"
			    "SPOOLRUN_STATUS=failed\n");
	free(env);
	free(p);
	/* Failures: an exit status, a missing command. */
	st = reap(hook_start("exit 5", 10, &in));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	reap(hook_start("/nonexistent/hook", 10, &in));
	assert_true(hook_failures() == failed + 2);
	tu_rmtree(dir);
}

static void test_timeout_kills_the_whole_tree(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp(), cmd[512], *pidfile = tu_join(dir, "escaped");
	/* A child that leaves the hook's session (setsid) and a double fork. */
	snprintf(cmd, sizeof cmd, "setsid sh -c 'echo $$ > %s; exec sleep 60' & sleep 60", pidfile);
	struct hook_info in = info("slow-1");
	uint64_t failed = hook_failures();
	double t0 = now_s();
	pid_t pid = hook_start(cmd, 0.3, &in);
	pid_t escaped = read_pid_file(pidfile);
	int st = reap(pid);
	assert_true(now_s() - t0 < 20);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	assert_false(alive(escaped));
	assert_true(hook_failures() == failed + 1);
	free(pidfile);
	tu_rmtree(dir);
}

static void test_leftovers_die_with_the_shell(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp(), cmd[512], *pidfile = tu_join(dir, "bg");
	snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > %s", pidfile);
	struct hook_info in = info("bg-1");
	pid_t pid = hook_start(cmd, 0, &in); /* no timeout: only the exit ends it */
	int st = reap(pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_false(alive(read_pid_file(pidfile)));
	free(pidfile);
	tu_rmtree(dir);
}

static void test_cap_on_running_hooks(void **state)
{
	(void)state;
	struct hook_info in = info("cap");
	uint64_t failed = hook_failures();
	for (int i = 0; i < HOOK_MAX; i++)
		assert_true(hook_start("sleep 60", 0.5, &in) > 0);
	assert_int_equal(hook_running(), HOOK_MAX);
	assert_int_equal(hook_start("true", 10, &in), -1); /* refused, counted */
	assert_true(hook_failures() == failed + 1);
	hook_wait_all(); /* each ends by its own timeout */
	assert_int_equal(hook_running(), 0);
	assert_true(hook_failures() == failed + 1 + HOOK_MAX);
	assert_false(hook_reaped(12345678, 0)); /* not a hook */
}

int main(void)
{
	/* As in the watcher: SIGCHLD blocked (it reads a signalfd). */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	sigprocmask(SIG_BLOCK, &s, NULL);
	log_set_level(LOG_ERROR); /* the supervisors' warnings are expected here */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_and_counts),
		cmocka_unit_test(test_timeout_kills_the_whole_tree),
		cmocka_unit_test(test_leftovers_die_with_the_shell),
		cmocka_unit_test(test_cap_on_running_hooks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
