/* gate: whether a queued task may start now, or waits (for dependencies,
 * for its not_before time), or is to be published "skipped" without
 * running. Pure (deps.h does the graph); the watcher's scheduler and
 * `status` both ask it, so what status says is what the watcher does.
 *
 * Precedence: skipped (a dependency did not succeed, or a dependency
 * cycle) > waiting for a dependency > waiting for not_before > open. A task
 * that can never run is published at once, even before its not_before. */
#ifndef SPOOLRUN_GATE_H
#define SPOOLRUN_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deps.h"
#include "task.h"

struct gate_task {
	const char *id;
	const char *const *after; /* n_after ids, or NULL */
	size_t n_after;
	bool after_finished;      /* after_policy "finished" */
	int64_t not_before_ms;    /* 0: none */
};

enum gate_state {
	GATE_OPEN,          /* may start now */
	GATE_WAIT_DEPS,     /* dep has no result yet */
	GATE_WAIT_TIME,     /* not before not_before_ms */
	GATE_SKIP_FAILED,   /* publish "skipped", error.code dependency_failed */
	GATE_SKIP_CYCLE,    /* publish "skipped", error.code dependency_cycle */
};

struct gate_verdict {
	enum gate_state state;
	const char *dep;          /* the dependency waited for / that failed / next on the cycle */
	char dep_status[32];      /* GATE_SKIP_FAILED: its status */
	int64_t not_before_ms;    /* GATE_WAIT_TIME */
	char message[320];        /* skips: the result's error.message (without the file name) */
};

/* Decides tasks[0..n) at wall-clock now_ms. Tasks without after and
 * not_before are always open; passing them is allowed but not needed.
 * 0, or -1 (ENOMEM). */
int gate_decide(const struct gate_task *tasks, size_t n, dep_lookup_fn lookup, void *ctx,
		int64_t now_ms, struct gate_verdict *out);

/* "dependency_failed" / "dependency_cycle" for the skips, else NULL. */
const char *gate_error_code(enum gate_state s);

/* The error of the "skipped" result for a skip verdict: code
 * dependency_failed or dependency_cycle, field "after", the message
 * prefixed with the task file's name. */
void gate_skip_error(const struct gate_verdict *v, const char *task_file, struct task_error *e);

#endif
