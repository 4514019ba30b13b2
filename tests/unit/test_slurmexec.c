/* slurmexec: the result of a task that went to Slurm (the node's own when
 * the job completed, Slurm's state otherwise) and what retry_decide makes
 * of it; job names. */
#include "testutil.h"

#include <signal.h>

#include "slurmexec.h"

static const struct task_defaults dflt = { .timeout = 60, .kill_grace = 5, .slurm_allowed = true };

static void parse(const char *json, struct task *t)
{
	struct task_error e;
	assert_int_equal(task_parse(json, strlen(json), "t1.json", &dflt, t, &e), 0);
}

static json_t *node_result(const char *status, int exit_code)
{
	return json_pack("{s:i, s:s, s:s, s:i, s:n, s:n, s:s, s:s, s:i, s:i, s:s, s:s, s:i}",
			 "format", 1, "id", "t1", "status", status, "exit_code", exit_code, "signal",
			 "error", "started_at", "2026-12-01T00:00:00.250Z", "finished_at",
			 "2026-12-01T00:00:01.500Z", "duration_ms", 1250, "attempt", 1,
			 "stdout", "out\n", "stderr", "err\n", "pid", 42);
}

static const struct result_context ctx = { .task_file = "t1.json", .task_file_stamp = "1:2.3:4",
					   .attempt = 1 };

static void test_completed_uses_the_nodes_result(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"exit 3\"}", &t);
	struct slurm_job_info j = { .job_id = "12", .state = "COMPLETED", .node = "n1" };
	json_t *node = node_result("failed", 3);
	json_t *r = slurm_compose_result(&t, &j, node, false, &ctx);
	assert_string_equal(result_status(r), "failed");
	assert_int_equal(json_integer_value(json_object_get(r, "exit_code")), 3);
	assert_string_equal(json_string_value(json_object_get(r, "stdout")), "out\n");
	json_t *s = json_object_get(r, "slurm");
	assert_string_equal(json_string_value(json_object_get(s, "job_id")), "12");
	assert_string_equal(json_string_value(json_object_get(s, "state")), "COMPLETED");
	assert_string_equal(json_string_value(json_object_get(s, "node")), "n1");
	assert_true(json_is_null(json_object_get(s, "reason")));
	assert_string_equal(json_string_value(json_object_get(r, "task_file_stamp")), "1:2.3:4");
	struct run_outcome o;
	slurm_outcome_of(r, &o);
	assert_int_equal(o.status, RUN_EXITED);
	assert_int_equal(o.exit_code, 3);
	assert_int_equal(o.duration_ms, 1250);
	assert_true(o.finished_ms - o.started_ms == 1250);
	json_decref(r);
	json_decref(node);
	task_clear(&t);
}

/* Slurm ended it: the state names the error, whatever exit code it shows;
 * what the task wrote before stays. */
static void test_slurm_ends(void **state)
{
	(void)state;
	struct task t;
	parse("{\"command\":\"sleep 100\"}", &t);
	static const struct {
		const char *state, *status, *code;
		enum run_status as;
	} cases[] = {
		{ "NODE_FAIL", "killed", "slurm_node_fail", RUN_SIGNALED },
		{ "PREEMPTED", "killed", "slurm_preempted", RUN_SIGNALED },
		{ "OUT_OF_MEMORY", "killed", "slurm_out_of_memory", RUN_SIGNALED },
		{ "TIMEOUT", "killed", "slurm_timeout", RUN_TIMEOUT },
		{ "CANCELLED", "killed", "slurm_cancelled", RUN_SIGNALED },
		{ "VANISHED", "error", "slurm_vanished", RUN_SIGNALED },
		{ "COMPLETED", "error", "slurm_no_result", RUN_SPAWN_ERROR },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct slurm_job_info j = { .job_id = "7", .node = "n2", .reason = "r" };
		snprintf(j.state, sizeof j.state, "%s", cases[i].state);
		json_t *r = slurm_compose_result(&t, &j, NULL, false, &ctx);
		assert_string_equal(result_status(r), cases[i].status);
		json_t *e = json_object_get(r, "error");
		assert_string_equal(json_string_value(json_object_get(e, "code")), cases[i].code);
		assert_contains(json_string_value(json_object_get(e, "message")), cases[i].state);
		assert_contains(json_string_value(json_object_get(e, "message")), "Slurm job 7");
		struct run_outcome o;
		slurm_outcome_of(r, &o);
		assert_int_equal(o.status, cases[i].as);
		json_decref(r);
	}
	/* A TIMEOUT job with a partial node result: output kept, Slurm's end. */
	json_t *node = node_result("killed", 0);
	struct slurm_job_info j = { .job_id = "8", .state = "TIMEOUT" };
	json_t *r = slurm_compose_result(&t, &j, node, false, &ctx);
	assert_string_equal(result_status(r), "killed");
	assert_true(json_is_null(json_object_get(r, "exit_code")));
	assert_string_equal(json_string_value(json_object_get(r, "stdout")), "out\n");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
			    "slurm_timeout");
	json_decref(r);
	json_decref(node);
	task_clear(&t);
}

static void test_cancelled_by_spoolrun(void **state)
{
	(void)state;
	struct task t;
	parse("{\"id\":\"c1\",\"command\":\"sleep 100\"}", &t);
	struct slurm_job_info j = { .job_id = "9", .state = "CANCELLED" };
	json_t *r = slurm_compose_result(&t, &j, NULL, true, &ctx);
	assert_string_equal(result_status(r), "cancelled");
	assert_int_equal(result_exit_code(r), 125);
	assert_contains(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
			"cancel/c1");
	json_decref(r);
	task_clear(&t);
}

static void test_job_name(void **state)
{
	(void)state;
	char a[256], b[256], c[256];
	slurm_job_name("/srv/spool", "t1.json", 1, a, sizeof a);
	slurm_job_name("/srv/spool", "t1.json", 2, b, sizeof b);
	slurm_job_name("/srv/other", "t1.json", 1, c, sizeof c);
	assert_true(!strncmp(a, "spoolrun-", 9));
	assert_contains(a, "-t1-1");
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_completed_uses_the_nodes_result),
		cmocka_unit_test(test_slurm_ends),
		cmocka_unit_test(test_cancelled_by_spoolrun),
		cmocka_unit_test(test_job_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
