/* libFuzzer target: the task parser and validator, and the result builder
 * on whatever the parser accepts. Any input must give either a task or a
 * clean error, never a crash, a leak or undefined behaviour; and any
 * accepted task must give a result that serialises and parses back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "result.h"
#include "task.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(const struct task *t, const uint8_t *data, size_t size)
{
	struct run_outcome o;
	memset(&o, 0, sizeof o);
	o.status = RUN_EXITED;
	capture_init(&o.out.cap, 64);
	capture_init(&o.err.cap, 64);
	/* The input doubles as task output: arbitrary bytes must still give a
	 * valid result. */
	capture_append(&o.out.cap, (const char *)data, size);
	struct result_context c = { .task_file = "fuzz.json", .attempt = 1 };
	json_t *r = result_from_run(t, &o, &c);
	size_t len;
	char *text = r ? result_dump(r, &len) : NULL;
	/* Task output may hold NUL bytes: valid JSON as \u0000. */
	json_t *back = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;
	if (!back)
		abort();
	json_decref(back);
	free(text);
	json_decref(r);
	run_outcome_clear(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task t;
	struct task_error e;
	struct task_defaults d = { .timeout = 60, .kill_grace = 1 };
	if (task_parse((const char *)data, size, "fuzz.json", &d, &t, &e) == 0) {
		if (!t.argv || !t.argv[0] || !task_id_valid(t.id, strlen(t.id)))
			abort();
		check_result(&t, data, size);
	} else if (!e.code[0] || !e.message[0])
		abort(); /* every refusal must say why */
	task_clear(&t);
	return 0;
}
