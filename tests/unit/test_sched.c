/* sched: the choice of the next task, as a table. Each case is the tasks
 * waiting (in any order), what runs, the limits, and which task starts
 * next (or none, with the verdict of the one that would have). */
#include "testutil.h"

#include "sched.h"

#define NOW INT64_C(1700000000000)

static const struct sched_cap caps_k1[] = { { "k", 1 }, { "two", 2 } };

struct pick_case {
	const char *what;
	unsigned slots;
	bool paused;
	const char *running_keys[4]; /* NULL-padded: keys of running tasks ("" none) */
	unsigned running;
	struct sched_task tasks[6];
	size_t n;
	const char *expect;          /* name started next, or NULL */
};

#define T(nm, ...) { .name = nm, __VA_ARGS__ }

static const struct pick_case cases[] = {
	{ "empty queue", 1, false, { NULL }, 0, { { 0 } }, 0, NULL },
	{ "one free slot, one task", 1, false, { NULL }, 0, { T("a") }, 1, "a" },
	{ "no free slot", 1, false, { "" }, 1, { T("a") }, 1, NULL },
	{ "three slots, two running: one more starts", 3, false, { "", "" }, 2,
	  { T("a"), T("b") }, 2, "a" },
	{ "paused: nothing starts", 4, true, { NULL }, 0, { T("a") }, 1, NULL },
	{ "priority first", 1, false, { NULL }, 0,
	  { T("lo", .priority = 1), T("hi", .priority = 9) }, 2, "hi" },
	{ "then arrival", 1, false, { NULL }, 0,
	  { T("young", .arrival_ns = 20), T("old", .arrival_ns = 10) }, 2, "old" },
	{ "then name", 1, false, { NULL }, 0,
	  { T("b", .arrival_ns = 10), T("a", .arrival_ns = 10) }, 2, "a" },
	{ "a due deferred task before any priority", 1, false, { NULL }, 0,
	  { T("top", .priority = 99), T("retry", .deferred = true, .due_ms = NOW - 5) }, 2,
	  "retry" },
	{ "the earliest due first", 1, false, { NULL }, 0,
	  { T("d2", .deferred = true, .due_ms = NOW - 1),
	    T("d1", .deferred = true, .due_ms = NOW - 9) }, 2, "d1" },
	{ "a deferred task not yet due waits", 1, false, { NULL }, 0,
	  { T("later", .deferred = true, .due_ms = NOW + 1000), T("now") }, 2, "now" },
	{ "key at its cap does not block the task behind it", 2, false, { "k" }, 1,
	  { T("capped", .limit_key = "k", .priority = 5), T("free") }, 2, "free" },
	{ "key below its cap starts", 3, false, { "two" }, 1,
	  { T("second", .limit_key = "two") }, 1, "second" },
	{ "key at cap 2", 3, false, { "two", "two" }, 2,
	  { T("third", .limit_key = "two") }, 1, NULL },
	{ "cap matched ignoring case", 2, false, { "K" }, 1,
	  { T("capped", .limit_key = "k") }, 1, NULL },
	{ "a key not listed is bounded by slots only", 4, false, { "x", "x", "x" }, 3,
	  { T("fourth", .limit_key = "x") }, 1, "fourth" },
	{ "a name busy in active/ waits, the next starts", 2, false, { NULL }, 0,
	  { T("busy", .name_busy = true, .priority = 5), T("other") }, 2, "other" },
	{ "a failed claim backs off", 2, false, { NULL }, 0,
	  { T("flaky", .retry_at_ms = NOW + 100, .priority = 5), T("other") }, 2, "other" },
	{ "a back-off that has passed", 2, false, { NULL }, 0,
	  { T("flaky", .retry_at_ms = NOW - 1) }, 1, "flaky" },
};

static void test_pick_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct pick_case *c = &cases[i];
		size_t nkeys = 0;
		while (nkeys < 4 && c->running_keys[nkeys])
			nkeys++;
		struct sched_limits lim = { c->slots, caps_k1, 2, c->paused };
		struct sched_load load = { c->running, c->running_keys, nkeys };
		int got = sched_pick(&lim, &load, c->tasks, c->n, NOW);
		const char *name = got < 0 ? NULL : c->tasks[got].name;
		if ((name == NULL) != (c->expect == NULL) || (name && strcmp(name, c->expect)))
			fail_msg("case \"%s\": started %s, expected %s", c->what, name ? name : "none",
				 c->expect ? c->expect : "none");
	}
}

static void test_verdicts(void **state)
{
	(void)state;
	const char *keys[] = { "k" };
	struct sched_limits lim = { 2, caps_k1, 2, false };
	struct sched_load load = { 1, keys, 1 };
	struct sched_task t = { .name = "x", .limit_key = "k" };
	assert_int_equal(sched_eligible(&lim, &load, &t, NOW), SCHED_KEY_AT_CAP);
	t.limit_key = NULL;
	assert_int_equal(sched_eligible(&lim, &load, &t, NOW), SCHED_RUNNABLE);
	t.deferred = true;
	t.due_ms = NOW + 1;
	assert_int_equal(sched_eligible(&lim, &load, &t, NOW), SCHED_NOT_DUE);
	t.deferred = false;
	t.name_busy = true;
	assert_int_equal(sched_eligible(&lim, &load, &t, NOW), SCHED_NAME_BUSY);
	load.running = 2;
	assert_int_equal(sched_eligible(&lim, &load, &t, NOW), SCHED_NO_SLOT);
	assert_int_equal(sched_cap_of(&lim, "TWO"), 2);
	assert_int_equal(sched_cap_of(&lim, "none"), 0);
	assert_int_equal(sched_cap_of(&lim, NULL), 0);
}

/* sched_before is a strict order: never both a<b and b<a. */
static void test_order_is_strict(void **state)
{
	(void)state;
	struct sched_task ts[] = {
		T("a"), T("b", .priority = 1), T("c", .arrival_ns = 5),
		T("d", .deferred = true, .due_ms = NOW - 1), T("e", .deferred = true, .due_ms = NOW + 1),
	};
	size_t n = sizeof ts / sizeof *ts;
	for (size_t i = 0; i < n; i++) {
		assert_false(sched_before(&ts[i], &ts[i], NOW));
		for (size_t j = 0; j < n; j++)
			if (i != j)
				assert_true(sched_before(&ts[i], &ts[j], NOW) !=
					    sched_before(&ts[j], &ts[i], NOW));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick_table),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_order_is_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
