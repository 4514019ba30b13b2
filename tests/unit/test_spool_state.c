/* spool: task state files, deferred/, cancel/, pause, peeking at a waiting
 * task, and publishing beside an existing result. */
#include "testutil.h"

#include <jansson.h>

#include "spool_fixture.h"
#include "node.h"
#include "task_state.h"

/* dir/sub/name (sub may be NULL), malloc'ed. */
static char *path_of(const struct fixture *f, const char *sub, const char *name)
{
	char *d = sub ? tu_join(f->dir, sub) : strdup(f->dir);
	assert_non_null(d);
	char *p = tu_join(d, name);
	free(d);
	return p;
}

static bool exists(const struct fixture *f, const char *sub, const char *name)
{
	char *p = path_of(f, sub, name);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

static void put(const struct fixture *f, const char *sub, const char *name, const char *text)
{
	char *p = path_of(f, sub, name);
	tu_write_file(p, text, strlen(text));
	free(p);
}

/* The contents of sub/name, or NULL; malloc'ed. */
static char *get(const struct fixture *f, const char *sub, const char *name)
{
	char *p = path_of(f, sub, name);
	char *text = tu_read_file(p, NULL);
	free(p);
	return text;
}

static json_t *state_json(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, 0, &je);
	assert_non_null(v);
	return v;
}

static void assert_state(json_t *got, const char *expect)
{
	assert_non_null(got);
	json_t *e = state_json(expect);
	assert_true(json_equal(got, e));
	json_decref(e);
	json_decref(got);
}

/* --- layout ------------------------------------------------------------- */

static void test_layout_has_deferred_and_cancel(void **state)
{
	struct fixture *f = *state;
	const char *dirs[] = { "deferred", "cancel" };
	for (size_t i = 0; i < 2; i++) {
		char *p = tu_join(f->dir, dirs[i]);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		free(p);
	}
	assert_true(f->s.deferred_fd >= 0);
	assert_true(f->s.cancel_fd >= 0);
}

/* --- state files -------------------------------------------------------- */

static void test_state_round_trip(void **state)
{
	struct fixture *f = *state;
	put(f, "active", "a.json", "{}");
	assert_null(spool_load_state(&f->s, f->s.active_fd, "a.json"));

	json_t *st = state_json("{\"attempts\":2,\"retries_used\":1,\"not_before_ms\":1700000000123,"
				"\"history\":[{\"reason\":\"x\"}]}");
	assert_int_equal(spool_save_state(&f->s, f->s.active_fd, "a.json", st), 0);
	assert_true(exists(f, "active", ".a.json.state"));
	assert_state(spool_load_state(&f->s, f->s.active_fd, "a.json"),
		     "{\"attempts\":2,\"retries_used\":1,\"not_before_ms\":1700000000123,"
		     "\"history\":[{\"reason\":\"x\"}]}");
	json_decref(st);
	/* Nothing left behind in tmp/. */
	char *tmp = tu_join(f->dir, "tmp");
	assert_int_equal(tu_count_entries(tmp), 0);
	free(tmp);
	/* The task file itself is untouched. */
	char *text = get(f, "active", "a.json");
	assert_string_equal(text, "{}");
	free(text);

	spool_remove_state(&f->s, f->s.active_fd, "a.json");
	assert_false(exists(f, "active", ".a.json.state"));
	assert_null(spool_load_state(&f->s, f->s.active_fd, "a.json"));
	spool_remove_state(&f->s, f->s.active_fd, "a.json"); /* again: harmless */
}

static void test_state_replaced_atomically(void **state)
{
	struct fixture *f = *state;
	json_t *one = state_json("{\"attempts\":1}");
	json_t *two = state_json("{\"attempts\":2,\"more\":\"a longer state than the first\"}");
	assert_int_equal(spool_save_state(&f->s, f->s.active_fd, "b.json", one), 0);
	/* A hard link to the old state: a replacement by rename leaves it
	 * whole, a rewrite in place would change it. */
	char *st = path_of(f, "active", ".b.json.state");
	char *old = path_of(f, NULL, "old-state");
	assert_int_equal(link(st, old), 0);
	assert_int_equal(spool_save_state(&f->s, f->s.active_fd, "b.json", two), 0);
	assert_state(spool_load_state(&f->s, f->s.active_fd, "b.json"),
		     "{\"attempts\":2,\"more\":\"a longer state than the first\"}");
	char *kept = tu_read_file(old, NULL);
	assert_non_null(kept);
	json_t *k = state_json(kept);
	assert_true(json_equal(k, one));
	json_decref(k);
	free(kept);
	struct stat a, b;
	assert_int_equal(stat(st, &a), 0);
	assert_int_equal(stat(old, &b), 0);
	assert_true(a.st_ino != b.st_ino);
	char *tmp = tu_join(f->dir, "tmp");
	assert_int_equal(tu_count_entries(tmp), 0);
	free(tmp);
	free(st);
	free(old);
	json_decref(one);
	json_decref(two);
}

static void test_state_invalid_is_none(void **state)
{
	struct fixture *f = *state;
	put(f, "active", ".c.json.state", "[1,2,3]");
	assert_null(spool_load_state(&f->s, f->s.active_fd, "c.json"));
	put(f, "active", ".c.json.state", "{\"attempts\":");
	assert_null(spool_load_state(&f->s, f->s.active_fd, "c.json"));
	put(f, "active", ".c.json.state", "");
	assert_null(spool_load_state(&f->s, f->s.active_fd, "c.json"));
}

/* --- deferred/ ---------------------------------------------------------- */

struct json_saver {
	struct spool *s;
	const json_t *state;
};

static int save_json(void *ctx, const char *deferred_name)
{
	struct json_saver *js = ctx;
	return spool_save_state(js->s, js->s->deferred_fd, deferred_name, js->state);
}

static int defer_with(struct fixture *f, const char *name, const json_t *st, char *out,
		      size_t outlen)
{
	struct json_saver js = { &f->s, st };
	return spool_defer(&f->s, name, save_json, &js, out, outlen);
}

static void test_defer_and_undefer(void **state)
{
	struct fixture *f = *state;
	put(f, "active", "d.json", "{\"command\":\"true\"}");
	json_t *old = state_json("{\"attempts\":1}");
	assert_int_equal(spool_save_state(&f->s, f->s.active_fd, "d.json", old), 0);
	json_decref(old);

	json_t *st = state_json("{\"attempts\":1,\"retries_used\":1,\"not_before_ms\":42}");
	char out[320] = "";
	assert_int_equal(defer_with(f, "d.json", st, out, sizeof out), 0);
	assert_string_equal(out, "d.json");
	assert_false(exists(f, "active", "d.json"));
	assert_false(exists(f, "active", ".d.json.state"));
	char *text = get(f, "deferred", "d.json");
	assert_non_null(text);
	assert_string_equal(text, "{\"command\":\"true\"}");
	free(text);
	assert_state(spool_load_state(&f->s, f->s.deferred_fd, "d.json"),
		     "{\"attempts\":1,\"retries_used\":1,\"not_before_ms\":42}");

	assert_int_equal(spool_undefer(&f->s, "d.json"), 0);
	assert_false(exists(f, "deferred", "d.json"));
	assert_false(exists(f, "deferred", ".d.json.state"));
	text = get(f, "active", "d.json");
	assert_non_null(text);
	assert_string_equal(text, "{\"command\":\"true\"}");
	free(text);
	assert_state(spool_load_state(&f->s, f->s.active_fd, "d.json"),
		     "{\"attempts\":1,\"retries_used\":1,\"not_before_ms\":42}");
	json_decref(st);
}

static void test_defer_picks_free_name(void **state)
{
	struct fixture *f = *state;
	put(f, "deferred", "e.json", "first");
	put(f, "active", "e.json", "second");
	json_t *st = state_json("{\"n\":2}");
	char out[320] = "";
	assert_int_equal(defer_with(f, "e.json", st, out, sizeof out), 0);
	assert_string_equal(out, "e.json.2");
	char *text = get(f, "deferred", "e.json");
	assert_string_equal(text, "first"); /* not replaced */
	free(text);
	text = get(f, "deferred", "e.json.2");
	assert_string_equal(text, "second");
	free(text);
	assert_true(exists(f, "deferred", ".e.json.2.state"));
	assert_false(exists(f, "deferred", ".e.json.state"));
	assert_state(spool_load_state(&f->s, f->s.deferred_fd, "e.json.2"), "{\"n\":2}");

	put(f, "active", "e.json", "third");
	assert_int_equal(defer_with(f, "e.json", st, out, sizeof out), 0);
	assert_string_equal(out, "e.json.3");
	json_decref(st);

	/* Undefer takes back the name it was deferred under, with its state. */
	assert_int_equal(spool_undefer(&f->s, "e.json.2"), 0);
	text = get(f, "active", "e.json.2");
	assert_string_equal(text, "second");
	free(text);
	assert_state(spool_load_state(&f->s, f->s.active_fd, "e.json.2"), "{\"n\":2}");
	assert_true(exists(f, "deferred", "e.json"));
	assert_true(exists(f, "deferred", "e.json.3"));
}

static void test_defer_missing_and_undefer_missing(void **state)
{
	struct fixture *f = *state;
	json_t *st = state_json("{}");
	char out[320] = "";
	assert_int_equal(defer_with(f, "gone.json", st, out, sizeof out), -1);
	json_decref(st);
	/* No stray state left in deferred/ for a task that is not there. */
	char *d = tu_join(f->dir, "deferred");
	assert_int_equal(tu_count_entries(d), 0);
	free(d);
	assert_int_equal(spool_undefer(&f->s, "gone.json"), -1);
}

static void test_undefer_without_state(void **state)
{
	struct fixture *f = *state;
	put(f, "deferred", "g.json", "x");
	assert_int_equal(spool_undefer(&f->s, "g.json"), 0);
	assert_true(exists(f, "active", "g.json"));
	assert_null(spool_load_state(&f->s, f->s.active_fd, "g.json"));
}

/* --- cancel/ and pause -------------------------------------------------- */

static void test_cancel_requests(void **state)
{
	struct fixture *f = *state;
	assert_false(spool_cancel_requested(&f->s, "job-1"));
	put(f, "cancel", "job-1", "");
	assert_true(spool_cancel_requested(&f->s, "job-1"));
	assert_false(spool_cancel_requested(&f->s, "job-2"));
	spool_cancel_done(&f->s, "job-1");
	assert_false(exists(f, "cancel", "job-1"));
	assert_false(spool_cancel_requested(&f->s, "job-1"));
	spool_cancel_done(&f->s, "job-1"); /* again: harmless */
	spool_cancel_done(&f->s, "never-requested");
}

static void test_paused(void **state)
{
	struct fixture *f = *state;
	assert_false(spool_paused(&f->s));
	put(f, NULL, "pause", "");
	assert_true(spool_paused(&f->s));
	char *p = path_of(f, NULL, "pause");
	assert_int_equal(unlink(p), 0);
	assert_false(spool_paused(&f->s));
	/* A directory named pause counts too: it exists. */
	assert_int_equal(mkdir(p, 0755), 0);
	assert_true(spool_paused(&f->s));
	assert_int_equal(rmdir(p), 0);
	free(p);
}

/* --- spool_peek_task ---------------------------------------------------- */

static int peek(struct fixture *f, const char *name, int64_t *prio, char *id)
{
	struct stat st;
	*prio = -12345;
	return spool_peek_task(&f->s, f->s.incoming_fd, name, 1 << 20, prio, id,
			       TASK_ID_MAX + 1, &st);
}

static void test_peek_task(void **state)
{
	struct fixture *f = *state;
	char id[TASK_ID_MAX + 1];
	int64_t prio;

	put(f, "incoming", "p1.json", "{\"id\":\"my-task.1\",\"priority\":5,\"command\":\"true\"}");
	struct stat st;
	assert_int_equal(spool_peek_task(&f->s, f->s.incoming_fd, "p1.json", 1 << 20, &prio, id,
					 sizeof id, &st), 0);
	assert_int_equal(prio, 5);
	assert_string_equal(id, "my-task.1");
	assert_true(S_ISREG(st.st_mode));
	assert_true(st.st_mtime > 0);

	put(f, "incoming", "p2.json", "{\"priority\":-7,\"command\":\"true\"}");
	assert_int_equal(peek(f, "p2.json", &prio, id), 0);
	assert_int_equal(prio, -7);
	assert_string_equal(id, "p2");

	put(f, "incoming", "p3.json", "{\"id\":\"bad id!\",\"priority\":3}");
	assert_int_equal(peek(f, "p3.json", &prio, id), 0);
	assert_int_equal(prio, 3);
	assert_string_equal(id, "p3");

	put(f, "incoming", "p4.json", "{\"id\":42,\"priority\":\"high\"}");
	assert_int_equal(peek(f, "p4.json", &prio, id), 0);
	assert_int_equal(prio, 0);
	assert_string_equal(id, "p4");

	put(f, "incoming", "p5.json", "this is { not json");
	assert_int_equal(peek(f, "p5.json", &prio, id), 0);
	assert_int_equal(prio, 0);
	assert_string_equal(id, "p5");

	put(f, "incoming", "we ird$name.json", "{\"priority\":1}");
	assert_int_equal(peek(f, "we ird$name.json", &prio, id), 0);
	assert_int_equal(prio, 1);
	assert_true(task_id_valid(id, strlen(id)));
	char derived[TASK_ID_MAX + 1];
	task_id_from_filename("we ird$name.json", derived);
	assert_string_equal(id, derived);

	assert_int_equal(peek(f, "missing.json", &prio, id), -1);
}

static void test_peek_task_unreadable(void **state)
{
	struct fixture *f = *state;
	char id[TASK_ID_MAX + 1];
	int64_t prio;
	struct stat st;
	/* Over max: not read, priority 0, id from the name, still there. */
	put(f, "incoming", "big.json", "{\"id\":\"big-one\",\"priority\":9,\"command\":\"true\"}");
	assert_int_equal(spool_peek_task(&f->s, f->s.incoming_fd, "big.json", 10, &prio, id,
					 sizeof id, &st), 0);
	assert_int_equal(prio, 0);
	assert_string_equal(id, "big");
	/* A symlink is not followed. */
	char *target = path_of(f, "incoming", "big.json");
	char *link_path = path_of(f, "incoming", "link.json");
	assert_int_equal(symlink(target, link_path), 0);
	assert_int_equal(spool_peek_task(&f->s, f->s.incoming_fd, "link.json", 1 << 20, &prio,
					 id, sizeof id, &st), 0);
	assert_int_equal(prio, 0);
	assert_string_equal(id, "link");
	free(target);
	free(link_path);
}

static void test_clean_removes_leftovers_and_orphan_states(void **state)
{
	struct fixture *f = *state;
	const char *files[] = { "tmp/x.json.tmp", "active/.gone.json.state", "active/kept.json",
				"active/.kept.json.state", "deferred/.gone.json.state" };
	for (size_t i = 0; i < 5; i++) {
		char *p = tu_join(f->dir, files[i]);
		tu_write_file(p, "{}", 2);
		free(p);
	}
	spool_clean_tmp(&f->s);
	const bool remain[] = { false, false, true, true, false };
	for (size_t i = 0; i < 5; i++) {
		char *p = tu_join(f->dir, files[i]);
		assert_int_equal(access(p, F_OK) == 0, remain[i]);
		free(p);
	}
}

/* The Slurm job of a running attempt survives in the task state (durably
 * saved before sbatch and after), and the node's result file beside the
 * task is found and removed by name. */
static void test_task_state_keeps_slurm_job(void **state)
{
	struct fixture *f = *state;
	put(f, "active", "a.json", "{}");
	struct task_state st;
	task_state_init(&st);
	st.attempt = 2;
	snprintf(st.executor, sizeof st.executor, "slurm");
	snprintf(st.slurm_job_name, sizeof st.slurm_job_name, "spoolrun-0badcafe-a-2");
	assert_int_equal(task_state_save(&f->s, f->s.active_fd, "a.json", &st, true), 0);
	struct task_state back;
	assert_true(task_state_load(&f->s, f->s.active_fd, "a.json", &back));
	assert_string_equal(back.slurm_job_name, "spoolrun-0badcafe-a-2");
	assert_string_equal(back.slurm_job_id, ""); /* submitted, id not known yet */
	assert_string_equal(back.executor, "slurm");
	task_state_clear(&back);
	snprintf(st.slurm_job_id, sizeof st.slurm_job_id, "4711");
	snprintf(st.slurm_state, sizeof st.slurm_state, "RUNNING");
	assert_int_equal(task_state_save(&f->s, f->s.active_fd, "a.json", &st, true), 0);
	assert_true(task_state_load(&f->s, f->s.active_fd, "a.json", &back));
	assert_string_equal(back.slurm_job_id, "4711");
	assert_string_equal(back.slurm_state, "RUNNING");
	assert_int_equal(back.attempt, 2);
	task_state_clear(&back);
	task_state_clear(&st);

	assert_null(node_result_load(&f->s, "a.json"));
	put(f, "active", ".a.json.node-result", "{\"status\":\"succeeded\",\"attempt\":2}");
	json_t *r = node_result_load(&f->s, "a.json");
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "succeeded");
	json_decref(r);
	node_result_remove(&f->s, "a.json");
	assert_false(exists(f, "active", ".a.json.node-result"));
	put(f, "active", ".a.json.node-result", "[1]"); /* not a result */
	assert_null(node_result_load(&f->s, "a.json"));
}


int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_clean_removes_leftovers_and_orphan_states),
		T(test_layout_has_deferred_and_cancel),
		T(test_state_round_trip),
		T(test_state_replaced_atomically),
		T(test_state_invalid_is_none),
		T(test_defer_and_undefer),
		T(test_defer_picks_free_name),
		T(test_defer_missing_and_undefer_missing),
		T(test_undefer_without_state),
		T(test_cancel_requests),
		T(test_paused),
		T(test_peek_task),
		T(test_peek_task_unreadable),
		T(test_task_state_keeps_slurm_job),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
