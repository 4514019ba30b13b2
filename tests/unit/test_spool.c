/* spool: layout, task names, publishing without replacing, reading task
 * files safely. */
#include "testutil.h"


#include <jansson.h>

#include "spool_fixture.h"

static void test_task_names(void **state)
{
	(void)state;
	assert_true(spool_is_task_name("a.json"));
	assert_true(spool_is_task_name("build-42.json"));
	assert_true(spool_is_task_name("x.y.json"));
	assert_false(spool_is_task_name(".json"));
	assert_false(spool_is_task_name(".a.json"));
	assert_false(spool_is_task_name("a.json.tmp"));
	assert_false(spool_is_task_name("a.JSON"));
	assert_false(spool_is_task_name("json"));
	assert_false(spool_is_task_name(""));
}

static void test_layout(void **state)
{
	struct fixture *f = *state;
	const char *dirs[] = { "incoming", "active", "results", "logs", "rejected", "tmp" };
	for (size_t i = 0; i < 6; i++) {
		char *p = tu_join(f->dir, dirs[i]);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		free(p);
	}
	assert_true(f->s.root[0] == '/');
	assert_true(f->s.results_path[0] == '/');
}

static void test_check_perms(void **state)
{
	struct fixture *f = *state;
	char *in = tu_join(f->dir, "incoming");
	assert_int_equal(chmod(in, 0777), 0);
	struct config c;
	config_defaults(&c);
	c.check_perms = true;
	struct spool s;
	char err[512] = "";
	assert_int_equal(spool_open(&s, &c, f->dir, err, sizeof err), -1);
	assert_contains(err, "incoming");
	spool_close(&s); /* fds and paths opened before the refusal */
	config_clear(&c);
	free(in);
}

/* The number in results/NAME, as a published {"n": N}. */
static json_int_t published_n(const struct fixture *f, const char *name)
{
	char rel[200];
	snprintf(rel, sizeof rel, "results/%s", name);
	char *p = tu_join(f->dir, rel);
	json_t *doc = json_load_file(p, 0, NULL);
	free(p);
	json_int_t n = json_integer_value(json_object_get(doc, "n"));
	json_decref(doc);
	return n;
}

static void test_publish_numbered(void **state)
{
	struct fixture *f = *state;
	char name[160];
	assert_false(spool_result_exists(&f->s, "job"));
	for (int i = 1; i <= 3; i++) {
		json_t *doc = json_pack("{s:i}", "n", i);
		assert_int_equal(spool_publish(&f->s, "job", doc, name, sizeof name), 0);
		json_decref(doc);
		assert_true(spool_result_exists(&f->s, "job"));
	}
	assert_string_equal(name, "job@3.json");
	assert_int_equal(published_n(f, "job.json"), 1);
	assert_int_equal(published_n(f, "job@2.json"), 2);
	assert_int_equal(published_n(f, "job@3.json"), 3);
	char *p = tu_join(f->dir, "results/job.json");
	size_t len = 0;
	char *text = tu_read_file(p, &len);
	assert_non_null(text);
	assert_true(len > 0 && text[len - 1] == '\n');
	free(text);
	free(p);
	/* Another id is not affected, and no temporary file is left. */
	json_t *other = json_object();
	assert_int_equal(spool_publish(&f->s, "other", other, name, sizeof name), 0);
	json_decref(other);
	assert_string_equal(name, "other.json");
	char *tmp = tu_join(f->dir, "tmp");
	assert_int_equal(tu_count_entries(tmp), 0);
	free(tmp);
}

static void test_claim_requeue_finish(void **state)
{
	struct fixture *f = *state;
	char *in = tu_join(f->dir, "incoming/t.json");
	char *act = tu_join(f->dir, "active/t.json");
	tu_write_file(in, "{}", 2);
	assert_int_equal(spool_claim(&f->s, "t.json"), 0);
	assert_int_equal(access(in, F_OK), -1);
	assert_int_equal(access(act, F_OK), 0);
	assert_int_equal(spool_claim(&f->s, "t.json"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_requeue(&f->s, "t.json"), 0);
	assert_int_equal(access(in, F_OK), 0);
	assert_int_equal(spool_claim(&f->s, "t.json"), 0);
	assert_int_equal(spool_finish(&f->s, "t.json"), 0);
	assert_int_equal(access(act, F_OK), -1);
	/* A claim never replaces a file already in active/: both stay. */
	tu_write_file(act, "old", 3);
	tu_write_file(in, "new", 3);
	assert_int_equal(spool_claim(&f->s, "t.json"), -1);
	assert_int_equal(errno, EEXIST);
	char *got = tu_read_file(act, NULL);
	assert_string_equal(got, "old");
	free(got);
	assert_int_equal(access(in, F_OK), 0);
	free(in);
	free(act);
}

static void test_keep_rejected(void **state)
{
	struct fixture *f = *state;
	char kept[300];
	for (int i = 0; i < 3; i++) {
		char *act = tu_join(f->dir, "active/r.json");
		tu_write_file(act, "bad", 3);
		free(act);
		assert_int_equal(spool_keep_rejected(&f->s, "r.json", kept, sizeof kept), 0);
		assert_string_equal(kept, i == 0 ? "r.json" : i == 1 ? "r.json.2" : "r.json.3");
	}
	char *rej = tu_join(f->dir, "rejected");
	assert_int_equal(tu_count_entries(rej), 3);
	free(rej);
}

static void test_read_task(void **state)
{
	struct fixture *f = *state;
	char *p = tu_join(f->dir, "incoming/ok.json");
	tu_write_file(p, "{\"command\": [\"x\"]}", 18);
	char *buf = NULL, why[512] = "";
	size_t len;
	struct stat st;
	assert_int_equal(spool_read_task(f->s.incoming_fd, "ok.json", 100, true, &buf, &len,
					 &st, why, sizeof why), 0);
	assert_int_equal(len, 18);
	assert_string_equal(buf, "{\"command\": [\"x\"]}");
	assert_int_equal(st.st_size, 18);
	free(buf);
	/* Too large. */
	assert_int_equal(spool_read_task(f->s.incoming_fd, "ok.json", 17, true, &buf, &len,
					 &st, why, sizeof why), -1);
	assert_contains(why, "ok.json");
	/* A hard link. */
	char *link2 = tu_join(f->dir, "hard");
	assert_int_equal(link(p, link2), 0);
	assert_int_equal(spool_read_task(f->s.incoming_fd, "ok.json", 100, true, &buf, &len,
					 &st, why, sizeof why), -1);
	assert_contains(why, "link");
	assert_int_equal(spool_read_task(f->s.incoming_fd, "ok.json", 100, false, &buf, &len,
					 &st, why, sizeof why), 0);
	free(buf);
	free(link2);
	free(p);
}

static void test_read_task_refuses_special(void **state)
{
	struct fixture *f = *state;
	char *target = tu_join(f->dir, "secret");
	tu_write_file(target, "secret", 6);
	char *sl = tu_join(f->dir, "incoming/sl.json");
	assert_int_equal(symlink(target, sl), 0);
	char *fifo = tu_join(f->dir, "incoming/fifo.json");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	char *dir = tu_join(f->dir, "incoming/dir.json");
	assert_int_equal(mkdir(dir, 0755), 0);
	const char *names[] = { "sl.json", "fifo.json", "dir.json", "missing.json" };
	for (size_t i = 0; i < 4; i++) {
		char *buf = NULL, why[512] = "";
		size_t len;
		struct stat st;
		/* Must return at once (no blocking on the FIFO). */
		assert_int_equal(spool_read_task(f->s.incoming_fd, names[i], 100, true, &buf, &len,
						 &st, why, sizeof why), -1);
		assert_contains(why, names[i]);
		assert_null(buf);
	}
	free(target);
	free(sl);
	free(fifo);
	free(dir);
}

static void test_lock_exclusive(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(spool_lock(&f->s), 0);
	struct spool other;
	char err[512];
	assert_int_equal(spool_open(&other, &f->cfg, f->dir, err, sizeof err), 0);
	errno = 0;
	assert_int_equal(spool_lock(&other), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	spool_close(&other);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_names),
		T(test_layout),
		T(test_check_perms),
		T(test_publish_numbered),
		T(test_claim_requeue_finish),
		T(test_keep_rejected),
		T(test_read_task),
		T(test_read_task_refuses_special),
		T(test_lock_exclusive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
