/* slurm: the pure half of the Slurm executor. sbatch's command line,
 * the parsers of squeue/sacct/scontrol output (real 22.05 output), the
 * meaning of job states, and which sbatch failures are transient. */
#include "testutil.h"

#include "slurm.h"

static const char *const node_argv[] = { "/usr/bin/spoolrun", "node-run", "--spool", "/s p/o'ol",
					  "t1.json", NULL };

static struct slurm_submission submission(double timeout, double grace)
{
	return (struct slurm_submission){
		.job_name = "spoolrun:t1", .output_path = "/spool/logs/t1.slurm",
		.workdir = "/spool", .node_argv = node_argv, .timeout = timeout, .kill_grace = grace,
	};
}

static bool has_arg(char **argv, const char *want)
{
	for (size_t i = 0; argv[i]; i++)
		if (!strcmp(argv[i], want))
			return true;
	return false;
}

static size_t argc_of(char **argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	return n;
}

static void test_sbatch_argv_minimal(void **state)
{
	(void)state;
	struct slurm_config c;
	slurm_config_defaults(&c);
	struct slurm_submission s = submission(0, 5);
	char **argv = slurm_sbatch_argv(&c, NULL, &s);
	assert_non_null(argv);
	assert_string_equal(argv[0], "sbatch");
	assert_true(has_arg(argv, "--parsable"));
	assert_true(has_arg(argv, "--no-requeue"));
	assert_true(has_arg(argv, "--job-name=spoolrun:t1"));
	assert_true(has_arg(argv, "--output=/spool/logs/t1.slurm"));
	assert_true(has_arg(argv, "--error=/spool/logs/t1.slurm"));
	assert_true(has_arg(argv, "--chdir=/spool"));
	for (size_t i = 0; argv[i]; i++) {
		assert_true(strncmp(argv[i], "--time", 6) != 0);      /* no timeout: Slurm's default */
		assert_true(strncmp(argv[i], "--partition", 11) != 0);
	}
	/* The script is last, every word quoted for /bin/sh. */
	assert_string_equal(argv[argc_of(argv) - 1],
			    "--wrap=exec '/usr/bin/spoolrun' 'node-run' '--spool' '/s p/o'\\''ol' 't1.json'");
	slurm_argv_free(argv);
	slurm_config_clear(&c);
}

static void test_sbatch_argv_everything(void **state)
{
	(void)state;
	struct slurm_config c;
	slurm_config_defaults(&c);
	c.partition = strdup("batch");
	assert_int_equal(slurm_split_args("  --account=x\t--qos=low  ", &c.args, &c.n_args), 0);
	const char *targs[] = { "--exclusive", NULL };
	struct slurm_request r = { .present = true, .partition = "gpu", .cpus_per_task = 4,
				   .mem_mb = 2048, .gres = "gpu:1", .args = targs, .n_args = 1 };
	struct slurm_submission s = submission(600, 5);
	char **argv = slurm_sbatch_argv(&c, &r, &s);
	assert_non_null(argv);
	assert_true(has_arg(argv, "--partition=gpu")); /* the task's wins */
	assert_false(has_arg(argv, "--partition=batch"));
	assert_true(has_arg(argv, "--cpus-per-task=4"));
	assert_true(has_arg(argv, "--mem=2048M"));
	assert_true(has_arg(argv, "--gres=gpu:1"));
	assert_true(has_arg(argv, "--account=x"));
	assert_true(has_arg(argv, "--qos=low"));
	assert_true(has_arg(argv, "--exclusive"));
	/* 600 + 5 + 1 + 60 s margin = 666 s -> 12 minutes */
	assert_true(has_arg(argv, "--time=12"));
	slurm_argv_free(argv);
	slurm_config_clear(&c);
}

static void test_time_limit(void **state)
{
	(void)state;
	struct slurm_request r = { .present = true, .time_limit_s = 7200 };
	assert_int_equal(slurm_time_limit_s(NULL, 0, 5), 0);
	assert_int_equal(slurm_time_limit_s(&r, 0, 5), 7200);      /* no timeout: the task's limit */
	assert_int_equal(slurm_time_limit_s(&r, 60, 5), 7200);     /* already above ours */
	r.time_limit_s = 10;
	assert_true(slurm_time_limit_s(&r, 60, 5) > 65);          /* never below timeout + grace */
	assert_true(slurm_time_limit_s(NULL, 3600, 30) > 3630);
}

static void test_config_copy_and_split(void **state)
{
	(void)state;
	struct slurm_config c, d;
	slurm_config_defaults(&c);
	assert_int_equal(slurm_split_args("", &c.args, &c.n_args), 0);
	assert_int_equal(c.n_args, 0);
	assert_int_equal(slurm_split_args("a  b\nc", &c.args, &c.n_args), 0);
	assert_int_equal(c.n_args, 3);
	assert_string_equal(c.args[2], "c");
	assert_int_equal(slurm_config_copy(&d, &c), 0);
	assert_int_equal(d.n_args, 3);
	assert_string_equal(d.args[1], "b");
	assert_string_equal(d.sacct, "sacct");
	assert_null(d.partition);
	slurm_config_clear(&c);
	slurm_config_clear(&d);
}

static void test_shell_quote(void **state)
{
	(void)state;
	char *q = slurm_shell_quote("it's $HOME `x`");
	assert_string_equal(q, "'it'\\''s $HOME `x`'");
	free(q);
	q = slurm_shell_quote("");
	assert_string_equal(q, "''");
	free(q);
}

/* ---- the task field ---- */

static int parse_req(const char *json, struct slurm_request *r, char *field, char *msg)
{
	json_t *v = json_loads(json, 0, NULL);
	assert_non_null(v);
	int rc = slurm_request_parse(v, r, field, 64, msg, 256);
	slurm_request_clear(r);
	json_decref(v);
	return rc;
}

static void test_request_valid(void **state)
{
	(void)state;
	json_t *v = json_loads("{\"partition\":\"p\",\"cpus_per_task\":2,\"mem_mb\":100,"
			       "\"gres\":\"gpu:1\",\"time_limit_s\":90,\"args\":[\"--x\",\"-y\"]}", 0, NULL);
	struct slurm_request r;
	char field[64], msg[256];
	assert_int_equal(slurm_request_parse(v, &r, field, sizeof field, msg, sizeof msg), 0);
	assert_true(r.present);
	assert_string_equal(r.partition, "p");
	assert_int_equal(r.cpus_per_task, 2);
	assert_int_equal(r.mem_mb, 100);
	assert_string_equal(r.gres, "gpu:1");
	assert_int_equal(r.time_limit_s, 90);
	assert_int_equal(r.n_args, 2);
	assert_string_equal(r.args[1], "-y");
	slurm_request_clear(&r);
	json_decref(v);
}

static void test_request_invalid(void **state)
{
	(void)state;
	static const struct {
		const char *json, *field, *msg;
	} cases[] = {
		{ "[]", "slurm", "must be an object" },
		{ "{\"cpus\":1}", "slurm.cpus", "unknown field" },
		{ "{\"cpus_per_task\":0}", "slurm.cpus_per_task", "from 1" },
		{ "{\"cpus_per_task\":\"2\"}", "slurm.cpus_per_task", "whole number" },
		{ "{\"mem_mb\":-1}", "slurm.mem_mb", "MiB" },
		{ "{\"mem_mb\":1.5}", "slurm.mem_mb", "MiB" },
		{ "{\"time_limit_s\":0}", "slurm.time_limit_s", "seconds" },
		{ "{\"partition\":\"a b\"}", "slurm.partition", "without spaces" },
		{ "{\"partition\":\"\"}", "slurm.partition", "non-empty" },
		{ "{\"gres\":5}", "slurm.gres", "gpu:1" },
		{ "{\"args\":\"--x\"}", "slurm.args", "array of strings" },
		{ "{\"args\":[\"\"]}", "slurm.args", "element 0" },
		{ "{\"args\":[1]}", "slurm.args", "element 0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct slurm_request r;
		char field[64] = "", msg[256] = "";
		assert_int_equal(parse_req(cases[i].json, &r, field, msg), -1);
		assert_string_equal(field, cases[i].field);
		assert_contains(msg, cases[i].msg);
	}
}

/* ---- sbatch's answers ---- */

static void test_parse_job_id(void **state)
{
	(void)state;
	char id[SLURM_JOB_ID_MAX + 1];
	assert_int_equal(slurm_parse_job_id("123\n", id), 0);
	assert_string_equal(id, "123");
	assert_int_equal(slurm_parse_job_id("77;cluster2\n", id), 0);
	assert_string_equal(id, "77");
	assert_int_equal(slurm_parse_job_id("", id), -1);
	assert_int_equal(slurm_parse_job_id("Submitted batch job 5", id), -1);
	assert_int_equal(slurm_parse_job_id("12x", id), -1);
}

static void test_submit_transient(void **state)
{
	(void)state;
	assert_true(slurm_submit_transient("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"));
	assert_true(slurm_submit_transient("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"));
	assert_true(slurm_submit_transient("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n"));
	assert_false(slurm_submit_transient("sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n"));
	assert_false(slurm_submit_transient("sbatch: error: Batch job submission failed: Requested node configuration is not available\n"));
	assert_false(slurm_submit_transient("sbatch: unrecognized option '--bogus'\n"));
}

/* ---- polls ---- */

static void test_parse_squeue(void **state)
{
	(void)state;
	struct slurm_job_info j[4];
	const char *out = "1|PENDING||None\n2|RUNNING|vm|None\n3|PENDING||(Resources)\n"
			  "garbage line\n4|COMPLETED|vm|None";
	assert_int_equal(slurm_parse_squeue(out, j, 4), 4);
	assert_string_equal(j[0].job_id, "1");
	assert_string_equal(j[0].state, "PENDING");
	assert_string_equal(j[0].node, "");
	assert_string_equal(j[0].reason, "");
	assert_string_equal(j[1].node, "vm");
	assert_string_equal(j[2].reason, "(Resources)");
	assert_string_equal(j[3].state, "COMPLETED");
	assert_int_equal(slurm_parse_squeue(out, j, 2), 2); /* bounded */
	assert_int_equal(slurm_parse_squeue("", j, 4), 0);
}

static void test_parse_sacct(void **state)
{
	(void)state;
	struct slurm_job_info j[4];
	const char *out = "JobID|State|NodeList|Reason\n"
			  "10|CANCELLED by 0|n1|None\n10.batch|CANCELLED||\n"
			  "11|NODE_FAIL|n2|NodeDown|really\n12|TIMEOUT|n3|None\n";
	assert_int_equal(slurm_parse_sacct(out, j, 4), 3);
	assert_string_equal(j[0].job_id, "10");
	assert_string_equal(j[0].state, "CANCELLED");
	assert_string_equal(j[1].state, "NODE_FAIL");
	assert_string_equal(j[1].reason, "NodeDown|really");
	assert_string_equal(j[2].job_id, "12");
}

static void test_parse_scontrol(void **state)
{
	(void)state;
	struct slurm_job_info j[2];
	const char *out =
		"JobId=1 JobName=wrap UserId=root(0) GroupId=root(0) JobState=COMPLETED Reason=None "
		"Dependency=(null) Requeue=0 ExitCode=0:0 NodeList=vm BatchHost=vm ReqNodeList=(null)\n"
		"JobId=2 JobName=wrap JobState=PENDING Reason=Resources Dependency=(null) NodeList=(null) "
		"ReqNodeList=(null)\n";
	assert_int_equal(slurm_parse_scontrol(out, j, 2), 2);
	assert_string_equal(j[0].job_id, "1");
	assert_string_equal(j[0].state, "COMPLETED");
	assert_string_equal(j[0].node, "vm"); /* NodeList=, not ReqNodeList= */
	assert_string_equal(j[0].reason, "");
	assert_string_equal(j[1].state, "PENDING");
	assert_string_equal(j[1].node, "");
	assert_string_equal(j[1].reason, "Resources");
	assert_int_equal(slurm_parse_scontrol("slurm_load_jobs error: Invalid job id specified\n", j, 2), 0);
}

/* ---- states ---- */

static void test_state_phase(void **state)
{
	(void)state;
	assert_int_equal(slurm_state_phase("PENDING"), SLURM_QUEUED);
	assert_int_equal(slurm_state_phase("SUSPENDED"), SLURM_QUEUED);
	assert_int_equal(slurm_state_phase("RUNNING"), SLURM_RUNNING);
	assert_int_equal(slurm_state_phase("COMPLETING"), SLURM_RUNNING);
	assert_int_equal(slurm_state_phase("SOMETHING_NEW"), SLURM_RUNNING); /* never taken as an end */
	const char *ended[] = { "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
				"PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "VANISHED" };
	for (size_t i = 0; i < sizeof ended / sizeof *ended; i++)
		assert_int_equal(slurm_state_phase(ended[i]), SLURM_ENDED);
}

static void test_state_end(void **state)
{
	(void)state;
	static const struct {
		const char *state, *status, *code;
		enum slurm_retry_as as;
	} cases[] = {
		{ "NODE_FAIL", "killed", "slurm_node_fail", SLURM_RETRY_AS_SIGNAL },
		{ "PREEMPTED", "killed", "slurm_preempted", SLURM_RETRY_AS_SIGNAL },
		{ "OUT_OF_MEMORY", "killed", "slurm_out_of_memory", SLURM_RETRY_AS_SIGNAL },
		{ "TIMEOUT", "killed", "slurm_timeout", SLURM_RETRY_AS_TIMEOUT },
		{ "CANCELLED", "killed", "slurm_cancelled", SLURM_RETRY_AS_SIGNAL },
		{ "BOOT_FAIL", "killed", "slurm_boot_fail", SLURM_RETRY_AS_SIGNAL },
		{ "DEADLINE", "killed", "slurm_deadline", SLURM_RETRY_AS_TIMEOUT },
		{ "VANISHED", "error", "slurm_vanished", SLURM_RETRY_AS_SIGNAL },
		/* Ended "normally" yet without node-run's result. TIMEOUT above
		 * reports exit 0:0 too: the state decides, not the exit code. */
		{ "COMPLETED", "error", "slurm_no_result", SLURM_RETRY_AS_NONE },
		{ "FAILED", "error", "slurm_no_result", SLURM_RETRY_AS_NONE },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct slurm_end e;
		slurm_state_end(cases[i].state, &e);
		assert_string_equal(e.status, cases[i].status);
		assert_string_equal(e.code, cases[i].code);
		assert_int_equal(e.retry_as, cases[i].as);
		assert_int_equal(slurm_code_retry_as(e.code), cases[i].as);
	}
}

static void test_end_message(void **state)
{
	(void)state;
	struct slurm_job_info j = { .job_id = "42", .state = "NODE_FAIL", .node = "n7", .reason = "NodeDown" };
	struct slurm_end e;
	char msg[512];
	slurm_state_end(j.state, &e);
	slurm_end_message(&j, &e, msg, sizeof msg);
	assert_string_equal(msg, "Slurm job 42 ended NODE_FAIL (reason: NodeDown) on node n7");
	struct slurm_job_info k = { .job_id = "43", .state = "COMPLETED" };
	slurm_state_end(k.state, &e);
	slurm_end_message(&k, &e, msg, sizeof msg);
	assert_contains(msg, "Slurm job 43 ended COMPLETED: spoolrun node-run left no result");
	assert_contains(msg, "shares");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sbatch_argv_minimal),
		cmocka_unit_test(test_sbatch_argv_everything),
		cmocka_unit_test(test_time_limit),
		cmocka_unit_test(test_config_copy_and_split),
		cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_request_valid),
		cmocka_unit_test(test_request_invalid),
		cmocka_unit_test(test_parse_job_id),
		cmocka_unit_test(test_submit_transient),
		cmocka_unit_test(test_parse_squeue),
		cmocka_unit_test(test_parse_sacct),
		cmocka_unit_test(test_parse_scontrol),
		cmocka_unit_test(test_state_phase),
		cmocka_unit_test(test_state_end),
		cmocka_unit_test(test_end_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
