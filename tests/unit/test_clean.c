/* clean: which results are selected, finished_at parsing, and a run on a
 * real spool that removes results with their logs and rejected copies
 * and leaves everything else alone. */
#include "spool_fixture.h"

#include "clean.h"

static void test_selection(void **state)
{
	(void)state;
	struct clean_filter all = { 1000, NULL, 0 };
	assert_true(clean_selects(&all, "succeeded", 999));
	assert_false(clean_selects(&all, "succeeded", 1000)); /* before, not at */
	assert_false(clean_selects(&all, "failed", 5000));
	static const char *const st[] = { "failed", "timeout" };
	struct clean_filter some = { 1000, st, 2 };
	assert_true(clean_selects(&some, "failed", 1));
	assert_true(clean_selects(&some, "timeout", 1));
	assert_false(clean_selects(&some, "succeeded", 1));
	assert_false(clean_selects(&some, NULL, 1));
	assert_false(clean_selects(&some, "failed", 2000));
}

static void test_parse_time(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(clean_parse_time("2026-12-01T00:22:44.123Z", &ms), 0);
	assert_true(ms == 1796084564123);
	assert_int_equal(clean_parse_time("2026-12-01T00:22:44Z", &ms), 0);
	assert_true(ms == 1796084564000);
	assert_int_equal(clean_parse_time("2026-12-01T02:22:44.5+02:00", &ms), 0);
	assert_true(ms == 1796084564500);
	static const char *const bad[] = { "", "yesterday", "2026-12-01", "2026-12-01T00:22:44",
					   "2026-12-01T00:22:44.1Zx", "2026-12-01T00:22:44+2" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(clean_parse_time(bad[i], &ms), -1);
	assert_int_equal(clean_parse_time(NULL, &ms), -1);
}

static void put(struct fixture *f, const char *sub, const char *name, const char *text)
{
	char rel[512];
	snprintf(rel, sizeof rel, "%s/%s", sub, name);
	char *p = tu_join(f->dir, rel);
	tu_write_file(p, text, strlen(text));
	free(p);
}

static bool exists(struct fixture *f, const char *sub, const char *name)
{
	char rel[512];
	snprintf(rel, sizeof rel, "%s/%s", sub, name);
	char *p = tu_join(f->dir, rel);
	bool e = access(p, F_OK) == 0;
	free(p);
	return e;
}

/* A result as the runner writes it, finished at the given time. */
static void put_result(struct fixture *f, const char *file, const char *id, const char *status,
		       const char *finished, bool logs, const char *rejected)
{
	char text[2048];
	snprintf(text, sizeof text,
		 "{\"id\":\"%s\",\"status\":\"%s\",\"finished_at\":\"%s\",\"task_file\":\"%s.json\","
		 "\"stdout_log\":%s%s/logs/%s.stdout%s,\"stderr_log\":null,\"rejected_file\":%s%s%s%s%s}",
		 id, status, finished, id, logs ? "\"" : "", logs ? f->s.root : "", logs ? id : "",
		 logs ? "\"" : "", rejected ? "\"" : "", rejected ? f->s.rejected_path : "null",
		 rejected ? "/" : "", rejected ? rejected : "", rejected ? "\"" : "");
	/* null when there are no logs: the snprintf above writes a path only then */
	if (!logs) {
		char *p = strstr(text, "\"stdout_log\":");
		memcpy(p, "\"stdout_log\":null,", 18);
		memmove(p + 18, strstr(p, "\"stderr_log\""), strlen(strstr(p, "\"stderr_log\"")) + 1);
	}
	put(f, "results", file, text);
}

struct seen_items {
	int n;
	char ids[8][64];
};

static void collect(void *ctx, const struct clean_item *it)
{
	struct seen_items *s = ctx;
	snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", it->id);
	assert_true(it->nfiles >= 1);
	assert_non_null(strstr(it->files[it->nfiles - 1], it->result_name)); /* the result last */
}

static void test_run_removes_results_with_their_files(void **state)
{
	struct fixture *f = *state;
	put_result(f, "old.json", "old", "succeeded", "2020-01-01T00:00:00.000Z", true, NULL);
	put(f, "logs", "old.stdout", "out");
	put_result(f, "rej.json", "rej", "rejected", "2020-01-01T00:00:00.000Z", false, "rej.json");
	put(f, "rejected", "rej.json", "{bad");
	put_result(f, "old@2.json", "old", "rejected", "2020-01-01T00:00:00.000Z", false, NULL);
	put_result(f, "new.json", "new", "succeeded", "2099-01-01T00:00:00.000Z", true, NULL);
	put(f, "logs", "new.stdout", "out");
	/* Not results: never touched. */
	put(f, "incoming", "queued.json", "{\"command\":\"true\"}");
	put(f, "deferred", "later.json", "{\"command\":\"true\"}");
	put(f, "results", ".tmp-x.json", "{}");
	/* Published a moment ago, task file still in active/: skipped. */
	put_result(f, "busy.json", "busy", "failed", "2020-01-01T00:00:00.000Z", false, NULL);
	put(f, "active", "busy.json", "{\"command\":\"true\"}");

	struct clean_filter flt = { 1796084564000, NULL, 0 };
	struct seen_items dry = { 0 };
	assert_int_equal(clean_run(&f->s, &flt, true, collect, &dry), 3);
	assert_true(exists(f, "results", "old.json")); /* dry: nothing removed */
	assert_true(exists(f, "logs", "old.stdout"));

	struct seen_items done = { 0 };
	assert_int_equal(clean_run(&f->s, &flt, false, collect, &done), 3);
	assert_false(exists(f, "results", "old.json"));
	assert_false(exists(f, "logs", "old.stdout"));
	assert_false(exists(f, "results", "rej.json"));
	assert_false(exists(f, "rejected", "rej.json"));
	assert_false(exists(f, "results", "old@2.json"));
	assert_true(exists(f, "results", "new.json"));
	assert_true(exists(f, "logs", "new.stdout"));
	assert_true(exists(f, "incoming", "queued.json"));
	assert_true(exists(f, "deferred", "later.json"));
	assert_true(exists(f, "results", ".tmp-x.json"));
	assert_true(exists(f, "results", "busy.json"));
	/* Markers for the ids whose own result went, not for ID@N. */
	int64_t when;
	assert_int_equal(clean_marker(&f->s, "old", &when), 0);
	assert_int_equal(clean_marker(&f->s, "rej", &when), 0);
	assert_int_equal(clean_marker(&f->s, "new", &when), -1);
	clean_forget(&f->s, "old");
	assert_int_equal(clean_marker(&f->s, "old", &when), -1);
}

static void test_run_by_status(void **state)
{
	struct fixture *f = *state;
	put_result(f, "a.json", "a", "succeeded", "2020-01-01T00:00:00Z", false, NULL);
	put_result(f, "b.json", "b", "failed", "2020-01-01T00:00:00Z", false, NULL);
	put_result(f, "c.json", "c", "timeout", "2020-01-01T00:00:00Z", false, NULL);
	static const char *const st[] = { "failed", "timeout" };
	struct clean_filter flt = { 1796084564000, st, 2 };
	assert_int_equal(clean_run(&f->s, &flt, false, NULL, NULL), 2);
	assert_true(exists(f, "results", "a.json"));
	assert_false(exists(f, "results", "b.json"));
	assert_false(exists(f, "results", "c.json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test_setup_teardown(test_run_removes_results_with_their_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_by_status, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
