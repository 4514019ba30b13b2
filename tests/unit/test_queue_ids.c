/* queue: task ids carried by entries (queue_find_id), queue_peek, and who
 * frees what after queue_pop. */
#include "testutil.h"

#include "queue.h"

/* Pops the next entry, checks its name and id (NULL: none) and frees both,
 * as the caller must. */
static void expect_pop(struct queue *q, const char *name, const char *id)
{
	struct queue_entry e;
	assert_true(queue_pop(q, &e));
	assert_non_null(e.name);
	assert_string_equal(e.name, name);
	if (id) {
		assert_non_null(e.id);
		assert_string_equal(e.id, id);
	} else {
		assert_null(e.id);
	}
	free(e.name);
	free(e.id);
}

static void test_find_id(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_null(queue_find_id(&q, "anything"));
	assert_int_equal(queue_push(&q, "a.json", "task-a", 0, 3), 1);
	assert_int_equal(queue_push(&q, "b.json", NULL, 5, 2), 1);
	assert_int_equal(queue_push(&q, "c.json", "task-c", 9, 1), 1);
	const char *n = queue_find_id(&q, "task-a");
	assert_non_null(n);
	assert_string_equal(n, "a.json");
	n = queue_find_id(&q, "task-c");
	assert_non_null(n);
	assert_string_equal(n, "c.json");
	assert_null(queue_find_id(&q, "task-b"));
	assert_null(queue_find_id(&q, "b.json")); /* names are not ids */
	assert_null(queue_find_id(&q, "task"));   /* no prefix match */
	assert_null(queue_find_id(&q, ""));

	/* Once popped, an entry is no longer found. */
	expect_pop(&q, "c.json", "task-c");
	assert_null(queue_find_id(&q, "task-c"));
	assert_string_equal(queue_find_id(&q, "task-a"), "a.json");
	expect_pop(&q, "b.json", NULL);
	expect_pop(&q, "a.json", "task-a");
	assert_null(queue_find_id(&q, "task-a"));
	queue_clear(&q);
}

static void test_id_is_copied(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	char name[] = "x.json", id[] = "the-id";
	assert_int_equal(queue_push(&q, name, id, 0, 0), 1);
	memset(name, 'z', sizeof name - 1);
	memset(id, 'z', sizeof id - 1);
	assert_string_equal(queue_find_id(&q, "the-id"), "x.json");
	const struct queue_entry *e = queue_peek(&q);
	assert_non_null(e);
	assert_true(e->id != id);
	assert_true(e->name != name);
	expect_pop(&q, "x.json", "the-id");
	queue_clear(&q);
}

static void test_same_id_twice(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push(&q, "one.json", "dup", 0, 1), 1);
	assert_int_equal(queue_push(&q, "two.json", "dup", 0, 2), 1);
	const char *n = queue_find_id(&q, "dup");
	assert_non_null(n);
	assert_true(!strcmp(n, "one.json") || !strcmp(n, "two.json"));
	expect_pop(&q, "one.json", "dup");
	n = queue_find_id(&q, "dup");
	assert_non_null(n);
	assert_string_equal(n, "two.json");
	/* A duplicate name is not queued again, whatever its id. */
	assert_int_equal(queue_push(&q, "two.json", "other", 0, 2), 0);
	assert_null(queue_find_id(&q, "other"));
	queue_clear(&q);
}

static void test_peek(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_null(queue_peek(&q));
	assert_int_equal(queue_push(&q, "low.json", "low", -1, 1), 1);
	const struct queue_entry *e = queue_peek(&q);
	assert_non_null(e);
	assert_string_equal(e->name, "low.json");
	assert_int_equal(queue_push(&q, "high.json", "high", 10, 5), 1);
	assert_int_equal(queue_push(&q, "mid.json", NULL, 3, 0), 1);
	e = queue_peek(&q);
	assert_non_null(e);
	assert_string_equal(e->name, "high.json");
	assert_string_equal(e->id, "high");
	assert_true(e->priority == 10);
	assert_true(e->mtime_ns == 5);
	/* Peeking takes nothing. */
	assert_ptr_equal(queue_peek(&q), e);
	assert_int_equal(queue_len(&q), 3);
	expect_pop(&q, "high.json", "high");
	e = queue_peek(&q);
	assert_non_null(e);
	assert_string_equal(e->name, "mid.json");
	assert_null(e->id);
	expect_pop(&q, "mid.json", NULL);
	expect_pop(&q, "low.json", "low");
	assert_null(queue_peek(&q));
	queue_clear(&q);
}

static void test_clear_frees_ids(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	for (int i = 0; i < 300; i++) {
		char name[32], id[32];
		snprintf(name, sizeof name, "t%d.json", i);
		snprintf(id, sizeof id, "id-%d", i);
		assert_int_equal(queue_push(&q, name, i % 3 ? id : NULL, i % 5, i), 1);
	}
	expect_pop(&q, "t4.json", "id-4"); /* priority 4, oldest */
	queue_clear(&q); /* ASan: every remaining name and id is freed */
	assert_int_equal(queue_len(&q), 0);
	queue_clear(&q);
}

/* Against a simple model: peek always shows what pop returns next, and
 * find_id sees exactly the queued ids. */
static void test_peek_find_against_model(void **state)
{
	(void)state;
	enum { N = 400 };
	struct {
		bool queued;
		int64_t prio, mtime;
	} model[N];
	memset(model, 0, sizeof model);
	struct tu_rng rng = { 7 };
	struct queue q;
	queue_init(&q);
	size_t len = 0;
	for (int step = 0; step < 5000; step++) {
		char name[32], id[32];
		if (tu_rand_range(&rng, 0, 2) != 0) {
			int k = (int)tu_rand_range(&rng, 0, N - 1);
			snprintf(name, sizeof name, "f%03d.json", k);
			snprintf(id, sizeof id, "id%03d", k);
			int64_t prio = (int64_t)tu_rand_range(&rng, 0, 4) - 2;
			int64_t mtime = (int64_t)tu_rand_range(&rng, 0, 50);
			int rc = queue_push(&q, name, id, prio, mtime);
			assert_int_equal(rc, model[k].queued ? 0 : 1);
			if (!model[k].queued) {
				model[k].queued = true;
				model[k].prio = prio;
				model[k].mtime = mtime;
				len++;
			}
		} else {
			const struct queue_entry *p = queue_peek(&q);
			struct queue_entry e;
			if (!len) {
				assert_null(p);
				assert_false(queue_pop(&q, &e));
				continue;
			}
			assert_non_null(p);
			char *peeked = strdup(p->name);
			assert_non_null(peeked);
			assert_true(queue_pop(&q, &e));
			assert_string_equal(e.name, peeked);
			free(peeked);
			int k = atoi(e.name + 1);
			assert_true(model[k].queued);
			/* Nothing left in the model comes before it. */
			for (int j = 0; j < N; j++) {
				if (!model[j].queued || j == k)
					continue;
				assert_false(model[j].prio > model[k].prio);
				if (model[j].prio == model[k].prio) {
					assert_false(model[j].mtime < model[k].mtime);
					if (model[j].mtime == model[k].mtime)
						assert_true(j > k);
				}
			}
			snprintf(id, sizeof id, "id%03d", k);
			assert_string_equal(e.id, id);
			model[k].queued = false;
			len--;
			free(e.name);
			free(e.id);
		}
		assert_int_equal(queue_len(&q), len);
		int k = (int)tu_rand_range(&rng, 0, N - 1);
		snprintf(id, sizeof id, "id%03d", k);
		snprintf(name, sizeof name, "f%03d.json", k);
		const char *found = queue_find_id(&q, id);
		if (model[k].queued) {
			assert_non_null(found);
			assert_string_equal(found, name);
		} else {
			assert_null(found);
		}
	}
	queue_clear(&q);
}

/* An entry put back after a failed claim keeps its back-off, key and id,
 * and its place in the order. */
static void test_push_entry_keeps_back_off(void **state)
{
	(void)state;
	struct queue q;
	queue_init(&q);
	assert_int_equal(queue_push_keyed(&q, "a.json", "a", "k", 5, 10), 1);
	assert_int_equal(queue_push_keyed(&q, "b.json", "b", NULL, 1, 20), 1);
	struct queue_entry e;
	assert_true(queue_pop(&q, &e));
	assert_string_equal(e.name, "a.json");
	assert_string_equal(e.key, "k");
	e.retry_at_ms = 12345;
	e.failures = 3;
	assert_int_equal(queue_push_entry(&q, &e), 1);
	assert_int_equal(queue_push_entry(&q, &e), 0); /* queued once */
	queue_entry_free(&e);
	const struct queue_entry *head = queue_peek(&q);
	assert_string_equal(head->name, "a.json");
	assert_int_equal(head->retry_at_ms, 12345);
	assert_int_equal(head->failures, 3);
	assert_string_equal(head->id, "a");
	assert_string_equal(head->key, "k");
	queue_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_entry_keeps_back_off),
		cmocka_unit_test(test_find_id),
		cmocka_unit_test(test_id_is_copied),
		cmocka_unit_test(test_same_id_twice),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_clear_frees_ids),
		cmocka_unit_test(test_peek_find_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
