/* publisher: the completion-record protocol of spool.h done by a thread
 * (record, sync tmp/, let the task file go, rename into results/, sync
 * results/); what is visible at each step, shown with the test hook that
 * holds the thread there; the claim's fsync by ticket. */
#include "testutil.h"

#include <jansson.h>
#include <poll.h>

#include "publisher.h"
#include "spool_fixture.h"

static char *path_in(struct fixture *f, const char *sub, const char *name)
{
	char rel[600];
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

/* Names in tmp/ starting with prefix. */
static int count_prefixed(struct fixture *f, const char *prefix)
{
	char *p = tu_join(f->dir, "tmp");
	DIR *d = opendir(p);
	free(p);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return n;
}

/* A task file in active/, as a claim leaves it. */
static void claimed(struct fixture *f, const char *name)
{
	char *p = path_in(f, "active", name);
	tu_write_file(p, "{}", 2);
	free(p);
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

/* Writes the result of active/name and hands it over. */
static void submit(struct fixture *f, struct publisher *p, struct publication *q,
		   const char *name, const char *id, int n)
{
	memset(q, 0, sizeof *q);
	snprintf(q->task_name, sizeof q->task_name, "%s", name);
	snprintf(q->id, sizeof q->id, "%s", id);
	q->first = 1;
	q->owner = q;
	json_t *doc = json_pack("{s:s, s:s, s:i}", "id", id, "status", "succeeded", "n", n);
	assert_int_equal(spool_record_write(&f->s, name, doc, &q->rec), 0);
	json_decref(doc);
	assert_int_equal(publisher_submit(p, q), 0);
}

/* Waits for n completions. */
static void reap(struct publisher *p, int n)
{
	while (n > 0) {
		struct pollfd pfd = { publisher_fd(p), POLLIN, 0 };
		assert_true(poll(&pfd, 1, 10000) > 0);
		publisher_ack(p);
		struct publication *q;
		while ((q = publisher_reap(p))) {
			assert_ptr_equal(q->owner, q);
			n--;
		}
	}
	assert_int_equal(publisher_in_flight(p), 0);
}

static void test_batch_published_and_task_files_let_go(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s);
	assert_int_equal(publisher_fd(p), -1);
	struct publication q[20];
	char name[64], id[64];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof name, "t%d.json", i);
		snprintf(id, sizeof id, "t%d", i);
		claimed(f, name);
		submit(f, p, &q[i], name, id, i);
	}
	reap(p, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(q[i].reached, PUBSTEP_DONE);
		snprintf(name, sizeof name, "t%d.json", i);
		assert_string_equal(q[i].published, name);
	}
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
	struct publisher *p = publisher_new(&f->s);
	struct publication a, b;
	claimed(f, "a.json");
	claimed(f, "b.json");
	submit(f, p, &a, "a.json", "job", 1);
	reap(p, 1);
	submit(f, p, &b, "b.json", "job", 2);
	reap(p, 1);
	assert_string_equal(b.published, "job@2.json");
	assert_int_equal(published_n(f, "job.json"), 1);
	assert_int_equal(published_n(f, "job@2.json"), 2);
	assert_int_equal(count_in(f, "active"), 0);
	publisher_free(p);
}

static void test_rejected_and_cancel_spent(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s);
	claimed(f, "bad.json");
	claimed(f, "c.json");
	char *cancel = path_in(f, "cancel", "c");
	tu_write_file(cancel, "", 0);
	struct publication bad, c;
	memset(&bad, 0, sizeof bad);
	snprintf(bad.task_name, sizeof bad.task_name, "bad.json");
	snprintf(bad.id, sizeof bad.id, "bad");
	snprintf(bad.kept, sizeof bad.kept, "bad.json");
	bad.first = 1;
	bad.rejected = true;
	bad.owner = &bad;
	json_t *doc = json_pack("{s:s}", "status", "rejected");
	assert_int_equal(spool_record_write(&f->s, "bad.json", doc, &bad.rec), 0);
	json_decref(doc);
	assert_int_equal(publisher_submit(p, &bad), 0);
	reap(p, 1);
	submit(f, p, &c, "c.json", "c", 2);
	reap(p, 1);
	assert_int_equal(access(cancel, F_OK), 0); /* not asked to spend it */
	assert_true(exists_in(f, "rejected", "bad.json"));
	assert_true(exists_in(f, "results", "bad.json"));
	assert_true(exists_in(f, "results", "c.json"));
	/* Asked to spend cancel/c once published. */
	claimed(f, "c2.json");
	struct publication c2;
	memset(&c2, 0, sizeof c2);
	snprintf(c2.task_name, sizeof c2.task_name, "c2.json");
	snprintf(c2.id, sizeof c2.id, "c");
	c2.first = 2;
	c2.cancel_spent = true;
	c2.owner = &c2;
	doc = json_pack("{s:s}", "status", "cancelled");
	assert_int_equal(spool_record_write(&f->s, "c2.json", doc, &c2.rec), 0);
	json_decref(doc);
	assert_int_equal(publisher_submit(p, &c2), 0);
	reap(p, 1);
	assert_string_equal(c2.published, "c@2.json");
	assert_int_equal(access(cancel, F_OK), -1);
	assert_int_equal(count_in(f, "active"), 0);
	free(cancel);
	publisher_free(p);
}

static void test_failed_record_comes_back_at_step_record(void **state)
{
	struct fixture *f = *state;
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s);
	claimed(f, "x.json");
	struct publication q;
	memset(&q, 0, sizeof q);
	snprintf(q.task_name, sizeof q.task_name, "x.json");
	snprintf(q.id, sizeof q.id, "x");
	q.first = 1;
	q.owner = &q;
	json_t *doc = json_object();
	assert_int_equal(spool_record_write(&f->s, "x.json", doc, &q.rec), 0);
	json_decref(doc);
	/* A descriptor the fsync refuses (EBADF), as a failing disk would. */
	close(q.rec.fd);
	q.rec.fd = 1000;
	assert_int_equal(publisher_submit(p, &q), 0);
	reap(p, 1);
	assert_int_equal(q.reached, PUBSTEP_RECORD);
	assert_int_equal(q.err, EBADF);
	/* Nothing visible, the record removed, the task file kept. */
	assert_int_equal(count_in(f, "results"), 0);
	assert_int_equal(count_in(f, "tmp"), 0);
	assert_true(exists_in(f, "active", "x.json"));
	publisher_free(p);
}

struct stall {
	struct fixture *f;
	char *marker;
	bool saw_marker, result_visible, task_in_active;
	int records, visible_n;
};

/* The publisher stalled: looks at the spool, then lets it go on. */
static void observe(struct stall *st)
{
	st->saw_marker = true;
	st->result_visible = exists_in(st->f, "results", "s.json");
	st->visible_n = published_n(st->f, "s.json");
	st->task_in_active = exists_in(st->f, "active", "s.json");
	st->records = count_prefixed(st->f, "done-");
	unlink(st->marker);
}

static void run_stalled(struct fixture *f, const char *step, struct stall *st)
{
	st->f = f;
	st->marker = tu_join(f->dir, "stalled");
	char hook[4200];
	snprintf(hook, sizeof hook, "%s:%s", step, st->marker);
	setenv("SPOOLRUN_TEST_STALL_PUBLISH", hook, 1);
	f->s.durable = true;
	struct publisher *p = publisher_new(&f->s);
	unsetenv("SPOOLRUN_TEST_STALL_PUBLISH");
	claimed(f, "s.json");
	struct publication q;
	submit(f, p, &q, "s.json", "s", 5);
	/* The thread holds at the step until the marker goes. */
	for (int i = 0; i < 5000 && publisher_in_flight(p); i++) {
		if (!st->saw_marker && access(st->marker, F_OK) == 0)
			observe(st);
		struct pollfd pfd = { publisher_fd(p), POLLIN, 0 };
		if (poll(&pfd, 1, 2) > 0) {
			publisher_ack(p);
			publisher_reap(p);
		}
	}
	assert_true(st->saw_marker);
	assert_int_equal(publisher_in_flight(p), 0);
	/* Once let go on, all is done. */
	assert_int_equal(q.reached, PUBSTEP_DONE);
	assert_int_equal(published_n(f, "s.json"), 5);
	assert_false(exists_in(f, "active", "s.json"));
	assert_int_equal(count_in(f, "tmp"), 0);
	free(st->marker);
	publisher_free(p);
}

static void test_written_is_whole_and_invisible(void **state)
{
	struct stall st = { 0 };
	run_stalled(*state, "written", &st);
	/* The record is written in place, not yet synced: whole for a crash of
	 * the process (recovery publishes it), not visible in results/. */
	assert_int_equal(st.records, 1);
	assert_false(st.result_visible);
	assert_true(st.task_in_active);
}

static void test_recorded_is_invisible_and_task_kept(void **state)
{
	struct stall st = { 0 };
	run_stalled(*state, "recorded", &st);
	assert_int_equal(st.records, 1);
	assert_false(st.result_visible);
	assert_true(st.task_in_active);
}

static void test_published_is_whole(void **state)
{
	struct stall st = { 0 };
	run_stalled(*state, "published", &st);
	assert_true(st.result_visible);
	assert_int_equal(st.visible_n, 5);
	assert_false(st.task_in_active);
	assert_int_equal(st.records, 0);
}

static void test_claim_sync_tickets(void **state)
{
	struct fixture *f = *state;
	struct publisher *p = publisher_new(&f->s);
	/* Not durable: no ticket, nothing to wait for. */
	assert_int_equal(publisher_claim_sync_start(p), 0);
	assert_int_equal(publisher_claim_sync_wait(p, 0), 0);
	f->s.durable = true;
	unsigned long a = publisher_claim_sync_start(p);
	unsigned long b = publisher_claim_sync_start(p);
	assert_true(a > 0 && b > a);
	/* Waited in any order; one fsync may answer both. */
	assert_int_equal(publisher_claim_sync_wait(p, b), 0);
	assert_int_equal(publisher_claim_sync_wait(p, a), 0);
	assert_int_equal(publisher_claim_sync_wait(p, 0), 0);
	publisher_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_published_and_task_files_let_go, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_same_id_numbered_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_and_cancel_spent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_record_comes_back_at_step_record, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_written_is_whole_and_invisible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorded_is_invisible_and_task_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_published_is_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_sync_tickets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
