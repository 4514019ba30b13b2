/* deps: which waiting tasks may start. Each case is a table: the results
 * published so far, the waiting tasks with their "after" lists, and the
 * verdict expected for each task. */
#include "testutil.h"

#include "deps.h"

#define MAXT 8

struct case_task {
	const char *id;
	const char *after[4];
	bool finished;
	/* expected */
	enum dep_state state;
	const char *dep;        /* NULL: not checked */
	const char *dep_status; /* NULL: not checked */
};

struct dep_case {
	const char *name;
	const char *results[8]; /* "id=status" pairs */
	struct case_task tasks[MAXT];
};

static const char *lookup(void *ctx, const char *id)
{
	const char *const *results = ctx;
	size_t len = strlen(id);
	for (; *results; results++)
		if (!strncmp(*results, id, len) && (*results)[len] == '=')
			return *results + len + 1;
	return NULL;
}

static const struct dep_case cases[] = {
	{ "all dependencies succeeded", { "a=succeeded", "b=succeeded" },
	  { { "c", { "a", "b" }, false, DEP_RUNNABLE, NULL, NULL } } },
	{ "one dependency has no result yet", { "a=succeeded" },
	  { { "c", { "a", "b" }, false, DEP_WAITING, "b", NULL } } },
	{ "a dependency never submitted: waits for that id", { 0 },
	  { { "c", { "ghost" }, false, DEP_WAITING, "ghost", NULL } } },
	{ "a failed dependency skips", { "a=succeeded", "b=failed" },
	  { { "c", { "a", "b" }, false, DEP_SKIPPED, "b", "failed" } } },
	{ "skip wins over waiting", { "b=timeout" },
	  { { "c", { "x", "b" }, false, DEP_SKIPPED, "b", "timeout" } } },
	{ "finished runs whatever the statuses", { "a=failed", "b=cancelled" },
	  { { "c", { "a", "b" }, true, DEP_RUNNABLE, NULL, NULL } } },
	{ "finished still waits for a missing result", { "a=failed" },
	  { { "c", { "a", "b" }, true, DEP_WAITING, "b", NULL } } },
	{ "a skipped dependency is not a success", { "a=skipped" },
	  { { "c", { "a" }, false, DEP_SKIPPED, "a", "skipped" } } },
	{ "chain: b waits for a, c waits for b", { 0 },
	  { { "b", { "a" }, false, DEP_WAITING, "a", NULL },
	    { "c", { "b" }, false, DEP_WAITING, "b", NULL } } },
	{ "chain: a done, b runs, c waits for b", { "a=succeeded" },
	  { { "c", { "b" }, false, DEP_WAITING, "b", NULL },
	    { "b", { "a" }, false, DEP_RUNNABLE, NULL, NULL } } },
	{ "transitive skip: a failed, b and c skipped", { "a=failed" },
	  { { "c", { "b" }, false, DEP_SKIPPED, "b", "skipped" },
	    { "d", { "c" }, false, DEP_SKIPPED, "c", "skipped" },
	    { "b", { "a" }, false, DEP_SKIPPED, "a", "failed" } } },
	{ "transitive skip stops at finished", { "a=failed" },
	  { { "b", { "a" }, false, DEP_SKIPPED, "a", "failed" },
	    { "c", { "b" }, true, DEP_RUNNABLE, NULL, NULL } } },
	{ "self-dependency is a cycle", { 0 },
	  { { "s", { "s" }, false, DEP_CYCLE, "s", NULL } } },
	{ "two-task cycle", { 0 },
	  { { "a", { "b" }, false, DEP_CYCLE, "b", NULL },
	    { "b", { "a" }, false, DEP_CYCLE, "a", NULL } } },
	{ "four-task ring, one waiting also on a missing id", { 0 },
	  { { "a", { "b" }, false, DEP_CYCLE, "b", NULL },
	    { "b", { "c", "ghost" }, false, DEP_CYCLE, "c", NULL },
	    { "c", { "d" }, false, DEP_CYCLE, "d", NULL },
	    { "d", { "a" }, false, DEP_CYCLE, "a", NULL } } },
	{ "behind a cycle: skipped, not part of it", { 0 },
	  { { "x", { "a" }, false, DEP_SKIPPED, "a", "skipped" },
	    { "a", { "b" }, false, DEP_CYCLE, "b", NULL },
	    { "b", { "a" }, false, DEP_CYCLE, "a", NULL },
	    { "y", { "x" }, false, DEP_SKIPPED, "x", "skipped" } } },
	{ "behind a cycle with finished: runs once they are skipped", { 0 },
	  { { "x", { "a" }, true, DEP_RUNNABLE, NULL, NULL },
	    { "a", { "a" }, false, DEP_CYCLE, "a", NULL } } },
	{ "a cycle that also has a failed dependency is skipped for it", { "f=failed" },
	  { { "a", { "b", "f" }, false, DEP_SKIPPED, "f", "failed" },
	    { "b", { "a" }, false, DEP_SKIPPED, "a", "skipped" } } },
	{ "two independent cycles and an innocent bystander", { "ok=succeeded" },
	  { { "a", { "b" }, false, DEP_CYCLE, NULL, NULL },
	    { "b", { "a" }, false, DEP_CYCLE, NULL, NULL },
	    { "p", { "q" }, false, DEP_CYCLE, NULL, NULL },
	    { "q", { "r" }, false, DEP_CYCLE, NULL, NULL },
	    { "r", { "p" }, false, DEP_CYCLE, NULL, NULL },
	    { "z", { "ok" }, false, DEP_RUNNABLE, NULL, NULL } } },
	{ "waiting on a waiting task that waits on a missing id", { 0 },
	  { { "b", { "ghost" }, false, DEP_WAITING, "ghost", NULL },
	    { "c", { "b" }, false, DEP_WAITING, "b", NULL } } },
	{ "a result beats a waiting task of the same id", { "a=succeeded" },
	  { { "a", { "a" }, false, DEP_RUNNABLE, NULL, NULL } } },
};

static void run_case(const struct dep_case *c)
{
	struct dep_task tasks[MAXT];
	struct dep_verdict out[MAXT];
	size_t n = 0;
	for (; n < MAXT && c->tasks[n].id; n++) {
		size_t k = 0;
		while (k < 4 && c->tasks[n].after[k])
			k++;
		tasks[n] = (struct dep_task){ c->tasks[n].id, c->tasks[n].after, k, c->tasks[n].finished };
	}
	assert_int_equal(deps_resolve(tasks, n, lookup, (void *)c->results, out), 0);
	for (size_t i = 0; i < n; i++) {
		const struct case_task *want = &c->tasks[i];
		if (out[i].state != want->state)
			print_error("case \"%s\", task %s: %s, expected %s\n", c->name, want->id,
				    deps_state_name(out[i].state), deps_state_name(want->state));
		assert_int_equal(out[i].state, want->state);
		if (want->dep) {
			if (!out[i].dep || strcmp(out[i].dep, want->dep))
				print_error("case \"%s\", task %s: dep %s, expected %s\n", c->name,
					    want->id, out[i].dep ? out[i].dep : "(none)", want->dep);
			assert_non_null(out[i].dep);
			assert_string_equal(out[i].dep, want->dep);
		}
		if (want->state == DEP_CYCLE)
			assert_non_null(out[i].dep); /* names the next on the ring */
		if (want->dep_status)
			assert_string_equal(out[i].dep_status, want->dep_status);
	}
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		run_case(&cases[i]);
}

static void test_empty(void **state)
{
	(void)state;
	const char *none[] = { NULL };
	assert_int_equal(deps_resolve(NULL, 0, lookup, none, NULL), 0);
}

/* A long chain given in reverse order, and a long ring: every task is
 * decided, the chain's head runnable and the ring all cycle. */
static void test_long_chain_and_ring(void **state)
{
	(void)state;
	enum { N = 500 };
	static char ids[N][16];
	static const char *afters[N][1];
	static struct dep_task tasks[N];
	static struct dep_verdict out[N];
	const char *results[] = { "t0=succeeded", NULL };
	for (int i = 0; i < N; i++)
		snprintf(ids[i], sizeof ids[i], "t%d", i + 1);
	for (int i = 0; i < N; i++) {
		afters[i][0] = i == 0 ? "t0" : ids[i - 1];
		tasks[N - 1 - i] = (struct dep_task){ ids[i], afters[i], 1, false };
	}
	assert_int_equal(deps_resolve(tasks, N, lookup, results, out), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(out[N - 1 - i].state, i == 0 ? DEP_RUNNABLE : DEP_WAITING);
	afters[0][0] = ids[N - 1]; /* close the ring */
	assert_int_equal(deps_resolve(tasks, N, lookup, results, out), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(out[i].state, DEP_CYCLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_long_chain_and_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
