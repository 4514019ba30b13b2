#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gate_error_code(enum gate_state s)
{
	return s == GATE_SKIP_FAILED ? "dependency_failed"
	     : s == GATE_SKIP_CYCLE ? "dependency_cycle" : NULL;
}

static void from_deps(const struct gate_task *t, const struct dep_verdict *d, int64_t now_ms,
		      struct gate_verdict *out)
{
	memset(out, 0, sizeof *out);
	out->dep = d->dep;
	switch (d->state) {
	case DEP_SKIPPED:
		out->state = GATE_SKIP_FAILED;
		snprintf(out->dep_status, sizeof out->dep_status, "%s", d->dep_status);
		snprintf(out->message, sizeof out->message,
			 "not run: dependency \"%s\" ended with status \"%s\" (after_policy \"succeeded\")",
			 d->dep, d->dep_status);
		return;
	case DEP_CYCLE:
		out->state = GATE_SKIP_CYCLE;
		snprintf(out->message, sizeof out->message,
			 "not run: dependency cycle: \"%s\" is after \"%s\", which waits for \"%s\" in turn",
			 t->id, d->dep, t->id);
		return;
	case DEP_WAITING:
		out->state = GATE_WAIT_DEPS;
		return;
	case DEP_RUNNABLE:
		break;
	}
	out->dep = NULL;
	out->not_before_ms = t->not_before_ms;
	out->state = t->not_before_ms > now_ms ? GATE_WAIT_TIME : GATE_OPEN;
}

int gate_decide(const struct gate_task *tasks, size_t n, dep_lookup_fn lookup, void *ctx,
		int64_t now_ms, struct gate_verdict *out)
{
	size_t m = 0;
	struct dep_task *dt = calloc(n + 1, sizeof *dt);
	struct dep_verdict *dv = calloc(n + 1, sizeof *dv);
	size_t *index = calloc(n + 1, sizeof *index);
	if (!dt || !dv || !index) {
		free(dt), free(dv), free(index);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (tasks[i].n_after) {
			dt[m] = (struct dep_task){ tasks[i].id, tasks[i].after, tasks[i].n_after,
						   tasks[i].after_finished };
			index[i] = m++;
		}
	int rc = deps_resolve(dt, m, lookup, ctx, dv);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct dep_verdict open = { .state = DEP_RUNNABLE };
		from_deps(&tasks[i], tasks[i].n_after ? &dv[index[i]] : &open, now_ms, &out[i]);
	}
	free(dt);
	free(dv);
	free(index);
	return rc;
}

void gate_skip_error(const struct gate_verdict *v, const char *task_file, struct task_error *e)
{
	const char *c = gate_error_code(v->state);
	memset(e, 0, sizeof *e);
	snprintf(e->code, sizeof e->code, "%s", c ? c : "dependency_failed");
	snprintf(e->field, sizeof e->field, "after");
	snprintf(e->message, sizeof e->message, "%s: %s", task_file, v->message);
}
