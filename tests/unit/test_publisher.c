/* publisher: results made durable by its thread, task files let go only
 * after; the test hook that holds a publication between "written" and
 * "durable" shows what is visible there. */
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>

#include "publisher.h"
#include "spool_fixture.h"

static bool never_stop(void *ctx, int ms)
{
	(void)ctx;
	(void)ms;
	return false;
}

static char *path_in(struct fixture *f, const char *sub, const char *name)
{
	char rel[512];
	snprintf(rel, sizeof rel, "%s/%s", sub, name);
	return tu_join(f->dir, rel);
}

static bool exists_in(struct fixture *f, const char *sub, const char *name)
{
	char *p = path_in(f, sub, name);
	bool there = access(p, F_OK) == 0;
	free(p);
	return there;
}

static int count_in(struct fixture *f, const char *sub)
{
	char *p = tu_join(f->dir, sub);
	int n = tu_count_entries(p);
	free(p);
	return n;
}

/* A task file in active/, as a claim leaves it. */
static void claimed(struct fixture *f, const char *name)
{
	char *p = path_in(f, "active", name);
	tu_write_file(p, "{}", 2);
	free(p);
}

static json_t *result_doc(const char *id, int n)
{
	return json_pack("{s:s, s:s, s:i}", "id", id, "status", "succeeded", "n", n);
}

static int published_n(struct fixture *f, const char *name)
{
	char *p = path_in(f, "results", name);
	json_t *doc = json_load_file(p, 0, NULL);
	free(p);
	int n = doc ? (int)json_integer_value(json_object_get(doc, "n")) : -1;
	json_decref(doc);
	return n;
}

static void test_durable_batch_lets_task_files_go(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s, never_stop, NULL);
	assert_non_null(p);
	char name[64], id[64];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof name, "t%d.json", i);
		snprintf(id, sizeof id, "t%d", i);
		claimed(f, name);
		assert_int_equal(publisher_submit(p, id, name, PUB_FINISH, false, result_doc(id, i)), 0);
	}
	assert_true(publisher_fd(p) >= 0);
	publisher_flush(p);
	assert_int_equal(publisher_in_flight(p), 0);
	assert_int_equal(count_in(f, "results"), 20);
	assert_int_equal(count_in(f, "active"), 0);
	assert_int_equal(count_in(f, "tmp"), 0);
	assert_int_equal(published_n(f, "t7.json"), 7);
	publisher_free(p);
}

static void test_same_id_numbered_in_order(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s, never_stop, NULL);
	claimed(f, "a.json");
	claimed(f, "b.json");
	assert_int_equal(publisher_submit(p, "job", "a.json", PUB_FINISH, false, result_doc("job", 1)), 0);
	/* What the loop does before a second task of id "job" is checked. */
	publisher_settle(p, "job", NULL);
	assert_true(exists_in(f, "results", "job.json"));
	assert_false(exists_in(f, "active", "a.json"));
	assert_int_equal(publisher_submit(p, "job", "b.json", PUB_FINISH, false, result_doc("job", 2)), 0);
	publisher_free(p);
	assert_int_equal(published_n(f, "job.json"), 1);
	assert_int_equal(published_n(f, "job@2.json"), 2);
	assert_int_equal(count_in(f, "active"), 0);
}

static void test_not_durable_completes_at_submit(void **state)
{
	struct fixture *f = *state;
	struct publisher *p = publisher_new(&f->s, never_stop, NULL);
	claimed(f, "x.json");
	assert_int_equal(publisher_submit(p, "x", "x.json", PUB_FINISH, false, result_doc("x", 3)), 0);
	assert_int_equal(publisher_in_flight(p), 0);
	assert_int_equal(publisher_fd(p), -1);
	assert_int_equal(published_n(f, "x.json"), 3);
	assert_false(exists_in(f, "active", "x.json"));
	publisher_free(p);
}

static void test_rejected_and_cancel_done(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s, never_stop, NULL);
	claimed(f, "bad.json");
	claimed(f, "c.json");
	char *cancel = path_in(f, "cancel", "c");
	tu_write_file(cancel, "", 0);
	assert_int_equal(publisher_submit(p, "bad", "bad.json", PUB_REJECTED, false,
					  result_doc("bad", 1)), 0);
	assert_int_equal(publisher_submit(p, "c", "c.json", PUB_FINISH, true, result_doc("c", 2)), 0);
	publisher_free(p);
	assert_true(exists_in(f, "rejected", "bad.json"));
	assert_true(exists_in(f, "results", "bad.json"));
	assert_true(exists_in(f, "results", "c.json"));
	assert_int_equal(access(cancel, F_OK), -1);
	assert_int_equal(count_in(f, "active"), 0);
	free(cancel);
}

struct stall {
	struct fixture *f;
	char *marker;
	bool saw_marker;
	bool result_visible, task_in_active, tmp_written;
	int visible_n;
};

/* Waits for the publisher to stall, looks at the spool, lets it go on. */
static void *observe_stall(void *arg)
{
	struct stall *st = arg;
	for (int i = 0; i < 3000 && access(st->marker, F_OK) < 0; i++)
		usleep(2000);
	st->saw_marker = access(st->marker, F_OK) == 0;
	st->result_visible = exists_in(st->f, "results", "s.json");
	st->visible_n = published_n(st->f, "s.json");
	st->task_in_active = exists_in(st->f, "active", "s.json");
	st->tmp_written = count_in(st->f, "tmp") == 1;
	unlink(st->marker);
	return NULL;
}

static void run_stalled(struct fixture *f, const char *step, struct stall *st)
{
	st->f = f;
	st->marker = tu_join(f->dir, "stalled");
	char hook[4200];
	snprintf(hook, sizeof hook, "%s:%s", step, st->marker);
	setenv("SPOOLRUN_TEST_STALL_PUBLISH", hook, 1);
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s, never_stop, NULL);
	unsetenv("SPOOLRUN_TEST_STALL_PUBLISH");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, observe_stall, st), 0);
	claimed(f, "s.json");
	assert_int_equal(publisher_submit(p, "s", "s.json", PUB_FINISH, false, result_doc("s", 5)), 0);
	publisher_free(p);
	pthread_join(t, NULL);
	assert_true(st->saw_marker);
	/* After the stall, all is done. */
	assert_int_equal(published_n(f, "s.json"), 5);
	assert_false(exists_in(f, "active", "s.json"));
	assert_int_equal(count_in(f, "tmp"), 0);
	free(st->marker);
}

static void test_written_not_durable_is_invisible(void **state)
{
	struct stall st = { 0 };
	run_stalled(*state, "written", &st);
	assert_false(st.result_visible);
	assert_true(st.tmp_written);
	assert_true(st.task_in_active);
}

static void test_placed_is_whole_and_task_kept(void **state)
{
	struct stall st = { 0 };
	run_stalled(*state, "placed", &st);
	/* Its bytes are synced before the rename: whole when seen; the task
	 * file stays until results/ is synced too. */
	assert_true(st.result_visible);
	assert_int_equal(st.visible_n, 5);
	assert_true(st.task_in_active);
}

static void test_claim_sync(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s, never_stop, NULL);
	/* Without a start, the wait syncs itself; with one (or several: a
	 * rejected task never waits), it returns the thread's outcome. */
	assert_int_equal(publisher_claim_sync_wait(p), 0);
	publisher_claim_sync_start(p);
	assert_int_equal(publisher_claim_sync_wait(p), 0);
	publisher_claim_sync_start(p);
	publisher_claim_sync_start(p);
	assert_int_equal(publisher_claim_sync_wait(p), 0);
	assert_int_equal(publisher_claim_sync_wait(p), 0);
	publisher_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_durable_batch_lets_task_files_go, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_id_numbered_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_durable_completes_at_submit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_and_cancel_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_written_not_durable_is_invisible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_placed_is_whole_and_task_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_sync, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
