/* slurmcmd: running Slurm's commands and what one poll concludes, against
 * stand-in scripts for squeue/sacct/scontrol/sbatch/scancel that print
 * what real 22.05 prints (the e2e suite talks to a real cluster). */
#include "testutil.h"

#include <sys/stat.h>

#include "slurmcmd.h"

struct fixture {
	char *dir;
	struct slurm_config cfg;
};

/* Writes an executable script DIR/name with body; malloc'ed path. */
static char *script(struct fixture *f, const char *name, const char *body)
{
	char *path = tu_join(f->dir, name);
	char text[4096];
	int n = snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
	tu_write_file(path, text, (size_t)n);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

static void use(char **slot, char *path)
{
	free(*slot);
	*slot = path;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->dir = tu_mkdtemp();
	slurm_config_defaults(&f->cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	slurm_config_clear(&f->cfg);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static void test_run_captures_both_streams(void **state)
{
	struct fixture *f = *state;
	char *p = script(f, "both", "echo out; echo err >&2; exit 3");
	char *argv[] = { p, NULL };
	struct slurmcmd_output o;
	assert_int_equal(slurmcmd_run(argv, 10, &o), 0);
	assert_int_equal(o.exit_code, 3);
	assert_string_equal(o.out, "out\n");
	assert_string_equal(o.err, "err\n");
	slurmcmd_output_clear(&o);
	free(p);
}

static void test_run_deadline(void **state)
{
	struct fixture *f = *state;
	char *p = script(f, "slow", "exec sleep 30");
	char *argv[] = { p, NULL };
	struct slurmcmd_output o;
	assert_int_equal(slurmcmd_run(argv, 0.2, &o), 0);
	assert_int_equal(o.exit_code, -1); /* killed */
	slurmcmd_output_clear(&o);
	free(p);
}

static void test_run_missing_program(void **state)
{
	(void)state;
	char *argv[] = { "/nonexistent/sbatch", NULL };
	struct slurmcmd_output o;
	assert_int_equal(slurmcmd_run(argv, 1, &o), -1);
	assert_contains(o.err, "/nonexistent/sbatch");
	slurmcmd_output_clear(&o);
}

static const char *const node_argv[] = { "spoolrun", "node-run", "x.json", NULL };

static enum slurmcmd_submit submit_with(struct fixture *f, const char *body, char *id, char *msg)
{
	use(&f->cfg.sbatch, script(f, "sbatch", body));
	struct slurm_submission s = { .job_name = "j", .output_path = "/o", .workdir = "/",
				      .node_argv = node_argv };
	return slurmcmd_submit(&f->cfg, NULL, &s, id, msg, 400);
}

static void test_submit(void **state)
{
	struct fixture *f = *state;
	char id[SLURM_JOB_ID_MAX + 1], msg[400];
	assert_int_equal(submit_with(f, "echo 4711", id, msg), SLURMCMD_SUBMITTED);
	assert_string_equal(id, "4711");
	assert_int_equal(submit_with(f, "echo 'sbatch: error: invalid partition specified: nope' >&2\n"
				     "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1",
				     id, msg), SLURMCMD_PERMANENT);
	assert_contains(msg, "Invalid partition name specified");
	assert_int_equal(submit_with(f, "echo 'sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)' >&2\nexit 1",
				     id, msg), SLURMCMD_TRANSIENT);
	assert_contains(msg, "Unable to contact slurm controller");
}

static void test_submit_passes_argv(void **state)
{
	struct fixture *f = *state;
	char *log = tu_join(f->dir, "args");
	char body[1024], id[SLURM_JOB_ID_MAX + 1], msg[400];
	snprintf(body, sizeof body, "for a in \"$@\"; do echo \"$a\"; done > %s; echo 1", log);
	assert_int_equal(submit_with(f, body, id, msg), SLURMCMD_SUBMITTED);
	size_t len;
	char *text = tu_read_file(log, &len);
	assert_contains(text, "--parsable\n");
	assert_contains(text, "--wrap=exec 'spoolrun' 'node-run' 'x.json'\n");
	free(text);
	free(log);
}

static struct slurmcmd_job job(const char *id)
{
	struct slurmcmd_job j;
	memset(&j, 0, sizeof j);
	snprintf(j.info.job_id, sizeof j.info.job_id, "%s", id);
	return j;
}

/* One squeue call for every job; sacct only for the jobs squeue lacks. */
static void test_poll_squeue_then_sacct(void **state)
{
	struct fixture *f = *state;
	char body[1024];
	char *calls = tu_join(f->dir, "calls");
	snprintf(body, sizeof body, "echo \"squeue $*\" >> %s\nprintf '1|RUNNING|n1|None\\n2|PENDING||Priority\\n'", calls);
	use(&f->cfg.squeue, script(f, "squeue", body));
	snprintf(body, sizeof body, "echo \"sacct $*\" >> %s\nprintf '3|NODE_FAIL|n2|None\\n3.batch|CANCELLED||\\n'", calls);
	use(&f->cfg.sacct, script(f, "sacct", body));
	struct slurmcmd_job jobs[3] = { job("1"), job("2"), job("3") };
	assert_int_equal(slurmcmd_poll(&f->cfg, jobs, 3), 0);
	assert_string_equal(jobs[0].info.state, "RUNNING");
	assert_string_equal(jobs[0].info.node, "n1");
	assert_string_equal(jobs[1].info.state, "PENDING");
	assert_string_equal(jobs[1].info.reason, "Priority");
	assert_string_equal(jobs[2].info.state, "NODE_FAIL");
	size_t len;
	char *text = tu_read_file(calls, &len);
	assert_contains(text, "squeue --noheader --states=all --format=%i|%T|%N|%r --jobs=1,2,3\n");
	assert_contains(text, "sacct --noheader --allocations --parsable2 --format=JobID,State,NodeList,Reason --jobs=3\n");
	int lines = 0;
	for (char *p = text; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	free(text);
	free(calls);
}

/* No accounting: scontrol while the controller remembers; then VANISHED
 * after SLURMCMD_VANISH_POLLS polls that found the job nowhere. */
static void test_poll_scontrol_and_vanished(void **state)
{
	struct fixture *f = *state;
	use(&f->cfg.squeue, script(f, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1"));
	use(&f->cfg.sacct, script(f, "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1"));
	/* Every job of the cluster, ours last: none may be cut off. */
	use(&f->cfg.scontrol, script(f, "scontrol",
				     "i=100; while [ $i -lt 400 ]; do echo \"JobId=$i JobState=RUNNING Reason=None NodeList=n1\"; i=$((i+1)); done\n"
				     "echo 'JobId=5 JobName=x JobState=TIMEOUT Reason=TimeLimit NodeList=n3 ExitCode=0:0'"));
	struct slurmcmd_job jobs[2] = { job("5"), job("6") };
	assert_int_equal(slurmcmd_poll(&f->cfg, jobs, 2), 0);
	assert_string_equal(jobs[0].info.state, "TIMEOUT");
	assert_string_equal(jobs[0].info.reason, "TimeLimit");
	assert_false(jobs[1].seen);
	for (int i = 1; i < SLURMCMD_VANISH_POLLS; i++)
		assert_int_equal(slurmcmd_poll(&f->cfg, jobs, 2), 0);
	assert_true(jobs[1].seen);
	assert_string_equal(jobs[1].info.state, "VANISHED");
	assert_int_equal(slurm_state_phase(jobs[1].info.state), SLURM_ENDED);
}

/* The controller does not answer: nothing changes, nothing vanishes. */
static void test_poll_controller_down(void **state)
{
	struct fixture *f = *state;
	use(&f->cfg.squeue, script(f, "squeue", "echo 'squeue: error: Unable to contact slurm controller (connect failure)' >&2; exit 1"));
	struct slurmcmd_job jobs[1] = { job("7") };
	for (int i = 0; i < SLURMCMD_VANISH_POLLS + 2; i++)
		assert_int_equal(slurmcmd_poll(&f->cfg, jobs, 1), -1);
	assert_false(jobs[0].seen);
	assert_int_equal(jobs[0].missing, 0);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	char *log = tu_join(f->dir, "cancelled"), body[512];
	snprintf(body, sizeof body, "echo \"$*\" > %s", log);
	use(&f->cfg.scancel, script(f, "scancel", body));
	assert_int_equal(slurmcmd_cancel(&f->cfg, "99"), 0);
	size_t len;
	char *text = tu_read_file(log, &len);
	assert_string_equal(text, "99\n");
	free(text);
	use(&f->cfg.scancel, script(f, "scancel", "echo 'scancel: error: Invalid job id 99' >&2; exit 1"));
	assert_int_equal(slurmcmd_cancel(&f->cfg, "99"), -1);
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_captures_both_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_missing_program, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_passes_argv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_squeue_then_sacct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_scontrol_and_vanished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_controller_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
