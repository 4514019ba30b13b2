/* gate: open / waiting for a dependency / waiting for not_before /
 * skipped, and the precedence between them. */
#include "testutil.h"

#include "gate.h"

static const char *lookup(void *ctx, const char *id)
{
	(void)ctx;
	if (!strcmp(id, "ok"))
		return "succeeded";
	if (!strcmp(id, "bad"))
		return "timeout";
	return NULL;
}

static void test_precedence(void **state)
{
	(void)state;
	static const char *const after_ok[] = { "ok" }, *const after_bad[] = { "bad" },
			       *const after_ghost[] = { "ghost" }, *const after_self[] = { "me" };
	const int64_t now = 1000000;
	struct gate_task tasks[] = {
		{ "plain", NULL, 0, false, 0 },
		{ "later", NULL, 0, false, now + 5000 },
		{ "past", NULL, 0, false, now - 5000 },
		{ "deps-ok-later", after_ok, 1, false, now + 5000 },
		{ "deps-ok", after_ok, 1, false, 0 },
		{ "bad-later", after_bad, 1, false, now + 5000 },
		{ "ghost-later", after_ghost, 1, false, now + 5000 },
		{ "me", after_self, 1, false, 0 },
		{ "bad-finished", after_bad, 1, true, 0 },
	};
	static const enum gate_state want[] = {
		GATE_OPEN, GATE_WAIT_TIME, GATE_OPEN, GATE_WAIT_TIME, GATE_OPEN, GATE_SKIP_FAILED,
		GATE_WAIT_DEPS, GATE_SKIP_CYCLE, GATE_OPEN,
	};
	enum { N = sizeof tasks / sizeof *tasks };
	struct gate_verdict out[N];
	assert_int_equal(gate_decide(tasks, N, lookup, NULL, now, out), 0);
	for (size_t i = 0; i < N; i++) {
		if (out[i].state != want[i])
			print_error("%s: %d, expected %d\n", tasks[i].id, out[i].state, want[i]);
		assert_int_equal(out[i].state, want[i]);
	}
	assert_int_equal(out[1].not_before_ms, now + 5000);
	assert_string_equal(out[6].dep, "ghost");
	assert_string_equal(out[5].dep_status, "timeout");
	assert_contains(out[5].message, "\"bad\"");
	assert_contains(out[5].message, "\"timeout\"");
	assert_contains(out[7].message, "cycle");

	struct task_error e;
	gate_skip_error(&out[5], "bad-later.json", &e);
	assert_string_equal(e.code, "dependency_failed");
	assert_string_equal(e.field, "after");
	assert_contains(e.message, "bad-later.json: ");
	gate_skip_error(&out[7], "me.json", &e);
	assert_string_equal(e.code, "dependency_cycle");
	assert_null(gate_error_code(GATE_OPEN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
