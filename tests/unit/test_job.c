/* job: the task state machine, stepped by hand on a real spool with a fake
 * executor (no process runs): a run to its end, a stop mid-run, a cancel,
 * a failing publication, attempt counts after recovery. */
#include "spool_fixture.h"

#include "job.h"
#include "result.h"
#include "timeutil.h"

/* --- The fake executor: "runs" for a number of steps, then exits. ------- */

struct fake {
	int steps_left;
	bool aborted;
};

static struct {
	int run_for;     /* steps before the fake task exits */
	int exit_code;
	int started;     /* how many times start was called */
} ctl;

static void *fake_start(const struct task *t, const struct run_options *opt)
{
	(void)t;
	(void)opt;
	struct fake *f = calloc(1, sizeof *f);
	f->steps_left = ctl.run_for;
	ctl.started++;
	return f;
}

static int fake_pollfds(void *h, struct pollfd *fds, int max)
{
	(void)h;
	(void)fds;
	(void)max;
	return 0;
}

static void fake_on_ready(void *h, const struct pollfd *fds, int n)
{
	(void)h;
	(void)fds;
	(void)n;
}

static int64_t fake_advance(void *h, int64_t now)
{
	struct fake *f = h;
	if (f->aborted || f->steps_left-- <= 0)
		return -1;
	return now + 1;
}

static void fake_abort(void *h)
{
	((struct fake *)h)->aborted = true;
}

static void fake_finish(void *h, struct run_outcome *o)
{
	struct fake *f = h;
	memset(o, 0, sizeof *o);
	o->status = f->aborted ? RUN_ABORTED : RUN_EXITED;
	o->exit_code = f->aborted ? -1 : ctl.exit_code;
	o->pid = 4242;
	o->out.log_fd = o->err.log_fd = -1;
	capture_init(&o->out.cap, 1024);
	capture_init(&o->err.cap, 1024);
	events_init(&o->events, OUTPUT_TEXT, 1024);
	free(f);
}

static pid_t fake_pid(const void *h)
{
	(void)h;
	return 4242;
}

static void fake_bytes(const void *h, uint64_t *out, uint64_t *err)
{
	(void)h;
	*out = *err = 0;
}

static const struct executor fake_executor = {
	.name = "fake", .start = fake_start, .pollfds = fake_pollfds, .on_ready = fake_on_ready,
	.advance = fake_advance, .abort = fake_abort, .finish = fake_finish, .pid = fake_pid,
	.bytes = fake_bytes,
};

/* --- Helpers ---------------------------------------------------------------- */

static int64_t no_block(void *ctx, const char *key)
{
	(void)ctx;
	(void)key;
	return 0;
}

static unsigned seed = 1;
static struct owner_policy owners;

static struct job_env env_of(struct fixture *f)
{
	char err[256];
	owner_policy_init(&owners, &f->cfg, err, sizeof err);
	return (struct job_env){ .cfg = &f->cfg, .spool = &f->s, .owners = &owners,
				 .executor = &fake_executor, .key_blocked_until = no_block,
				 .jitter_seed = &seed };
}

static void put(struct fixture *f, const char *dir, const char *name, const char *text)
{
	char *d = tu_join(f->dir, dir);
	char *p = tu_join(d, name);
	tu_write_file(p, text, strlen(text));
	free(p);
	free(d);
}

static bool exists(struct fixture *f, const char *dir, const char *name)
{
	char *d = tu_join(f->dir, dir);
	char *p = tu_join(d, name);
	struct stat st;
	bool ok = lstat(p, &st) == 0;
	free(p);
	free(d);
	return ok;
}

static json_t *result_of(struct fixture *f, const char *name)
{
	char *d = tu_join(f->dir, "results");
	char *p = tu_join(d, name);
	json_t *doc = json_load_file(p, 0, NULL);
	free(p);
	free(d);
	return doc;
}

/* Steps j until it is over (at most 100 steps, ignoring back-off times). */
static void run_out(const struct job_env *env, struct job *j)
{
	for (int i = 0; i < 100 && j->phase != JOB_OVER; i++)
		job_step(env, j, INT64_MAX / 2);
}

static int count_entries(struct fixture *f, const char *dir)
{
	char *d = tu_join(f->dir, dir);
	int n = tu_count_entries(d);
	free(d);
	return n;
}

static int reset(void **state)
{
	memset(&ctl, 0, sizeof ctl);
	return setup(state);
}

static int done(void **state)
{
	owner_policy_clear(&owners);
	return teardown(state);
}

/* --- Tests ---------------------------------------------------------------- */

static void test_runs_to_its_result(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "a.json", "{\"id\":\"a\",\"command\":[\"true\"]}");
	ctl.run_for = 3;
	struct job j;
	job_init(&j, "a.json", JOB_NEW);
	job_begin(&env, &j);
	assert_int_equal(j.phase, JOB_RUNNING);
	assert_true(job_running(&j));
	job_step(&env, &j, 0);
	assert_int_equal(j.phase, JOB_RUNNING);
	run_out(&env, &j);
	assert_int_equal(j.rep.end, JOB_PUBLISHED);
	assert_true(j.rep.succeeded);
	json_t *r = result_of(f, "a.json");
	assert_string_equal(result_status(r), "succeeded");
	assert_int_equal(json_integer_value(json_object_get(r, "attempt")), 1);
	json_decref(r);
	assert_false(exists(f, "active", "a.json"));
	assert_int_equal(count_entries(f, "tmp"), 0);
	assert_int_equal(ctl.started, 1);
	job_clear(&j);
}

static void test_stop_mid_run_puts_it_back(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "s.json", "{\"id\":\"s\",\"command\":[\"true\"]}");
	ctl.run_for = 1000;
	struct job j;
	job_init(&j, "s.json", JOB_NEW);
	job_begin(&env, &j);
	job_step(&env, &j, 0);
	job_stop(&j);
	run_out(&env, &j);
	assert_int_equal(j.rep.end, JOB_REQUEUED);
	assert_true(exists(f, "incoming", "s.json"));
	assert_false(exists(f, "active", "s.json"));
	assert_false(exists(f, "active", ".s.json.state"));
	assert_int_equal(count_entries(f, "results"), 0);
	job_clear(&j);
}

static void test_cancel_mid_run_publishes_cancelled(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "c.json", "{\"id\":\"c\",\"command\":[\"true\"]}");
	ctl.run_for = 1000;
	struct job j;
	job_init(&j, "c.json", JOB_NEW);
	job_begin(&env, &j);
	job_cancel(&j);
	run_out(&env, &j);
	json_t *r = result_of(f, "c.json");
	assert_string_equal(result_status(r), "cancelled");
	json_decref(r);
	job_clear(&j);
}

/* The step that sees a task end only decides its result; writing it waits
 * for job_hand_over, which the runner calls once the next task started. */
static void test_result_is_written_at_hand_over(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "h.json", "{\"id\":\"h\",\"command\":[\"true\"]}");
	struct job j;
	job_init(&j, "h.json", JOB_NEW);
	job_begin(&env, &j);
	job_step(&env, &j, 0);
	assert_int_equal(j.phase, JOB_PUBLISHING);
	assert_int_equal(job_wake(&j, 0), 0); /* due at once */
	assert_true(exists(f, "active", "h.json"));
	assert_int_equal(count_entries(f, "tmp"), 0);
	assert_int_equal(count_entries(f, "results"), 0);
	job_hand_over(&env, &j);
	assert_int_equal(j.phase, JOB_OVER);
	assert_int_equal(j.rep.end, JOB_PUBLISHED);
	assert_false(exists(f, "active", "h.json"));
	json_t *r = result_of(f, "h.json");
	assert_string_equal(result_status(r), "succeeded");
	json_decref(r);
	job_hand_over(&env, &j); /* once only */
	assert_int_equal(count_entries(f, "results"), 1);
	job_clear(&j);
}

static void test_failing_publication_keeps_the_task_until_recorded(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "p.json", "{\"id\":\"p\",\"command\":[\"true\"]}");
	struct job j;
	job_init(&j, "p.json", JOB_NEW);
	job_begin(&env, &j);
	/* The completion record cannot be written: the file stays in active/. */
	int tmp = f->s.publish_tmp_fd;
	f->s.publish_tmp_fd = -1;
	job_step(&env, &j, 0);
	job_hand_over(&env, &j); /* as the runner does after starting the next tasks */
	assert_int_equal(j.phase, JOB_PUBLISHING);
	assert_true(exists(f, "active", "p.json"));
	int64_t wake = job_wake(&j, 0);
	assert_true(wake > 0 && wake < INT64_MAX);
	job_step(&env, &j, 0); /* before its back-off: nothing happens */
	assert_int_equal(j.phase, JOB_PUBLISHING);
	/* Recorded, but results/ fails: the file is let go, the record kept. */
	f->s.publish_tmp_fd = tmp;
	int results = f->s.results_fd;
	f->s.results_fd = -1;
	job_step(&env, &j, wake);
	assert_int_equal(j.phase, JOB_PUBLISHING);
	assert_false(exists(f, "active", "p.json"));
	assert_true(exists(f, "tmp", "done-p.json"));
	f->s.results_fd = results;
	run_out(&env, &j);
	assert_int_equal(j.rep.end, JOB_PUBLISHED);
	assert_false(exists(f, "tmp", "done-p.json"));
	json_t *r = result_of(f, "p.json");
	assert_string_equal(result_status(r), "succeeded");
	json_decref(r);
	assert_int_equal(ctl.started, 1);
	job_clear(&j);
}

static void test_recovered_counts_the_interrupted_attempt(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "r.json", "{\"id\":\"r\",\"command\":[\"true\"]}");
	struct task_state st;
	task_state_init(&st);
	st.attempt = 2;
	assert_int_equal(task_state_save(&f->s, f->s.active_fd, "r.json", &st, false), 0);
	task_state_clear(&st);
	struct job j;
	job_init(&j, "r.json", JOB_RECOVERED);
	job_begin(&env, &j);
	assert_int_equal(j.st.attempt, 3);
	assert_int_equal(j.st.interrupted, 1);
	run_out(&env, &j);
	json_t *r = result_of(f, "r.json");
	assert_int_equal(json_integer_value(json_object_get(r, "attempt")), 3);
	json_t *a = json_object_get(r, "attempts");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "status")),
			    "interrupted");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "attempt")), 2);
	json_decref(r);
	job_clear(&j);
}

static void test_recovered_too_often_is_not_run(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	f->cfg.max_attempts = 2;
	put(f, "active", "m.json", "{\"id\":\"m\",\"command\":[\"true\"]}");
	struct task_state st;
	task_state_init(&st);
	st.attempt = 1;
	st.interrupted = 1;
	assert_int_equal(task_state_save(&f->s, f->s.active_fd, "m.json", &st, false), 0);
	task_state_clear(&st);
	struct job j;
	job_init(&j, "m.json", JOB_RECOVERED);
	job_begin(&env, &j);
	run_out(&env, &j);
	json_t *r = result_of(f, "m.json");
	assert_string_equal(result_status(r), "interrupted");
	json_decref(r);
	assert_int_equal(ctl.started, 0);
	job_clear(&j);
}

static void test_retry_defers_with_its_history(void **state)
{
	struct fixture *f = *state;
	struct job_env env = env_of(f);
	put(f, "active", "d.json",
	    "{\"id\":\"d\",\"command\":[\"false\"],\"retries\":2,\"retry_backoff\":60}");
	ctl.exit_code = 1;
	struct job j;
	job_init(&j, "d.json", JOB_NEW);
	job_begin(&env, &j);
	run_out(&env, &j);
	assert_int_equal(j.rep.end, JOB_DEFERRED);
	assert_string_equal(j.rep.deferred_name, "d.json");
	assert_true(j.rep.not_before_ms > time_realtime_ms());
	job_clear(&j);
	struct task_state st;
	assert_true(task_state_load(&f->s, f->s.deferred_fd, "d.json", &st));
	assert_int_equal(st.attempt, 1);
	assert_int_equal(st.retries_used, 1);
	assert_int_equal(json_array_size(st.attempts), 1);
	assert_string_equal(st.id, "d");
	task_state_clear(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runs_to_its_result, reset, done),
		cmocka_unit_test_setup_teardown(test_stop_mid_run_puts_it_back, reset, done),
		cmocka_unit_test_setup_teardown(test_cancel_mid_run_publishes_cancelled, reset, done),
		cmocka_unit_test_setup_teardown(test_result_is_written_at_hand_over, reset, done),
		cmocka_unit_test_setup_teardown(test_failing_publication_keeps_the_task_until_recorded,
						reset, done),
		cmocka_unit_test_setup_teardown(test_recovered_counts_the_interrupted_attempt, reset,
						done),
		cmocka_unit_test_setup_teardown(test_recovered_too_often_is_not_run, reset, done),
		cmocka_unit_test_setup_teardown(test_retry_defers_with_its_history, reset, done),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
