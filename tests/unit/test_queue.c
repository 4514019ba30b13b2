/* queue: waiting task files in run order, each queued once. */
#include "testutil.h"

#include "queue.h"

/* Pops the next entry, checks its name and frees it. */
static void expect_pop(struct queue *q, const char *name)
{
	struct queue_entry e;
	assert_true(queue_pop(q, &e));
	assert_non_null(e.name);
	assert_string_equal(e.name, name);
	free(e.name);
}

static void test_empty(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_len(&q), 0);
	struct queue_entry e;
	assert_false(queue_pop(&q, &e));
	queue_clear(&q);
	queue_clear(&q); /* clearing twice is harmless */
}

static void test_priority_first(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push(&q, "low.json", NULL, -5, 100), 1);
	assert_int_equal(queue_push(&q, "mid.json", NULL, 0, 50), 1);
	assert_int_equal(queue_push(&q, "high.json", NULL, 7, 300), 1);
	assert_int_equal(queue_push(&q, "top.json", NULL, 1000000000, 999), 1);
	assert_int_equal(queue_push(&q, "bottom.json", NULL, -1000000000, 0), 1);
	assert_int_equal(queue_len(&q), 5);
	expect_pop(&q, "top.json");
	expect_pop(&q, "high.json");
	expect_pop(&q, "mid.json");
	expect_pop(&q, "low.json");
	expect_pop(&q, "bottom.json");
	assert_int_equal(queue_len(&q), 0);
	queue_clear(&q);
}

static void test_then_mtime(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push(&q, "c.json", NULL, 1, 3000), 1);
	assert_int_equal(queue_push(&q, "a.json", NULL, 1, 2000), 1);
	assert_int_equal(queue_push(&q, "b.json", NULL, 1, 1000), 1);
	assert_int_equal(queue_push(&q, "old.json", NULL, 1, -5), 1);
	expect_pop(&q, "old.json");
	expect_pop(&q, "b.json");
	expect_pop(&q, "a.json");
	expect_pop(&q, "c.json");
	queue_clear(&q);
}

static void test_then_name(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	const char *names[] = { "b.json", "a.json", "ab.json", "B.json", "a-1.json", "aa.json" };
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(queue_push(&q, names[i], NULL, 0, 42), 1);
	/* strcmp order */
	expect_pop(&q, "B.json");
	expect_pop(&q, "a-1.json");
	expect_pop(&q, "a.json");
	expect_pop(&q, "aa.json");
	expect_pop(&q, "ab.json");
	expect_pop(&q, "b.json");
	queue_clear(&q);
}

static void test_entry_fields(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push(&q, "x.json", NULL, -3, INT64_C(1700000000123456789)), 1);
	struct queue_entry e;
	assert_true(queue_pop(&q, &e));
	assert_string_equal(e.name, "x.json");
	assert_true(e.priority == -3);
	assert_true(e.mtime_ns == INT64_C(1700000000123456789));
	free(e.name);
	queue_clear(&q);
}

static void test_duplicates_ignored(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push(&q, "a.json", NULL, 0, 1), 1);
	assert_int_equal(queue_push(&q, "a.json", NULL, 0, 1), 0);
	/* Queued once, whatever the second report says. */
	assert_int_equal(queue_push(&q, "a.json", NULL, 99, 0), 0);
	assert_int_equal(queue_push(&q, "b.json", NULL, 0, 2), 1);
	assert_int_equal(queue_push(&q, "b.json", NULL, 0, 2), 0);
	assert_int_equal(queue_len(&q), 2);
	expect_pop(&q, "a.json");
	expect_pop(&q, "b.json");
	struct queue_entry e;
	assert_false(queue_pop(&q, &e));
	queue_clear(&q);
}

static void test_repush_after_pop(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push(&q, "a.json", NULL, 0, 1), 1);
	expect_pop(&q, "a.json");
	assert_int_equal(queue_push(&q, "a.json", NULL, 0, 1), 1);
	assert_int_equal(queue_push(&q, "a.json", NULL, 0, 1), 0);
	assert_int_equal(queue_len(&q), 1);
	expect_pop(&q, "a.json");
	/* Many pop/re-push cycles of the same few names (tombstone reuse). */
	for (int round = 0; round < 1000; round++) {
		char name[32];
		snprintf(name, sizeof name, "n%d.json", round % 7);
		assert_int_equal(queue_push(&q, name, NULL, 0, round), 1);
		assert_int_equal(queue_push(&q, name, NULL, 0, round), 0);
		expect_pop(&q, name);
	}
	assert_int_equal(queue_len(&q), 0);
	queue_clear(&q);
}

static void test_clear_frees_waiting(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	for (int i = 0; i < 500; i++) {
		char name[32];
		snprintf(name, sizeof name, "w%d.json", i);
		assert_int_equal(queue_push(&q, name, NULL, i % 3, i), 1);
	}
	queue_clear(&q); /* leak-checked under ASan */
	queue_init(&q);
	assert_int_equal(queue_push(&q, "w1.json", NULL, 0, 0), 1);
	assert_int_equal(queue_len(&q), 1);
	queue_clear(&q);
}

/* True when a runs before b. */
static bool runs_before(const struct queue_entry *a, const struct queue_entry *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->mtime_ns != b->mtime_ns)
		return a->mtime_ns < b->mtime_ns;
	return strcmp(a->name, b->name) < 0;
}

/* 100k pushes, interleaved pops and duplicate reports, all in order. */
static void test_many_ordered(void **state)
{
	(void)state;
	enum { N = 100000 };
	struct tu_rng rng = { 12345 };
	struct queue q;
	queue_init(&q);
	size_t pushed = 0, popped = 0;
	struct queue_entry prev = { 0, 0, NULL, NULL, NULL, 0, 0 };
	char name[32];
	/* Phase 1: push everything (few priorities, many equal mtimes, so all
	 * three keys matter), with duplicate reports. */
	for (size_t i = 0; i < N; i++) {
		snprintf(name, sizeof name, "t%06zu.json", (size_t)tu_rand_range(&rng, 0, 999999));
		int64_t prio = (int64_t)tu_rand_range(&rng, 0, 4) - 2;
		int64_t mtime = (int64_t)tu_rand_range(&rng, 0, 50);
		int rc = queue_push(&q, name, NULL, prio, mtime);
		assert_true(rc == 0 || rc == 1);
		pushed += (size_t)rc;
		if (i % 10 == 0)
			assert_int_equal(queue_push(&q, name, NULL, prio, mtime), 0);
	}
	assert_int_equal(queue_len(&q), pushed);
	/* Phase 2: drain, checking order. */
	struct queue_entry e;
	while (queue_pop(&q, &e)) {
		if (prev.name) {
			assert_false(runs_before(&e, &prev));
			assert_true(strcmp(e.name, prev.name) != 0);
			free(prev.name);
		}
		prev = e;
		popped++;
	}
	free(prev.name);
	assert_int_equal(popped, pushed);
	assert_int_equal(queue_len(&q), 0);
	queue_clear(&q);
}

/* Interleaved pushes and pops: each pop returns the best of what is
 * queued at that moment (checked against a simple array model). */
static void test_interleaved_against_model(void **state)
{
	(void)state;
	enum { OPS = 20000, NAMES = 3000 };
	struct tu_rng rng = { 777 };
	struct queue q;
	queue_init(&q);
	static bool queued[NAMES];
	static struct queue_entry model[NAMES];
	static char names[NAMES][24];
	memset(queued, 0, sizeof queued);
	for (int i = 0; i < NAMES; i++)
		snprintf(names[i], sizeof names[i], "m%04d.json", i);
	size_t count = 0;
	for (int op = 0; op < OPS; op++) {
		if (tu_rand_range(&rng, 0, 2) != 0) {
			int k = (int)tu_rand_range(&rng, 0, NAMES - 1);
			int64_t prio = (int64_t)tu_rand_range(&rng, 0, 3);
			int64_t mtime = (int64_t)tu_rand_range(&rng, 0, 9);
			int rc = queue_push(&q, names[k], NULL, prio, mtime);
			assert_int_equal(rc, queued[k] ? 0 : 1);
			if (!queued[k]) {
				queued[k] = true;
				model[k] = (struct queue_entry){ prio, mtime, names[k], NULL, NULL, 0, 0 };
				count++;
			}
		} else {
			struct queue_entry e;
			bool got = queue_pop(&q, &e);
			assert_int_equal(got, count > 0);
			if (!got)
				continue;
			int best = -1;
			for (int k = 0; k < NAMES; k++)
				if (queued[k] && (best < 0 || runs_before(&model[k], &model[best])))
					best = k;
			assert_string_equal(e.name, names[best]);
			assert_true(e.priority == model[best].priority);
			assert_true(e.mtime_ns == model[best].mtime_ns);
			queued[best] = false;
			count--;
			free(e.name);
		}
		assert_int_equal(queue_len(&q), count);
	}
	queue_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_priority_first),
		cmocka_unit_test(test_then_mtime),
		cmocka_unit_test(test_then_name),
		cmocka_unit_test(test_entry_fields),
		cmocka_unit_test(test_duplicates_ignored),
		cmocka_unit_test(test_repush_after_pop),
		cmocka_unit_test(test_clear_frees_waiting),
		cmocka_unit_test(test_many_ordered),
		cmocka_unit_test(test_interleaved_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
