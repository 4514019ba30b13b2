/* deps: which waiting tasks may start, from their "after" lists and the
 * results published so far. Pure: no I/O, no clock; the caller looks
 * results up (results/ID.json is the only truth, so the answer survives
 * restarts).
 *
 * For each waiting task, in this order of precedence:
 * - DEP_SKIPPED: with after_policy "succeeded", a dependency ended without
 *   succeeding (its result's status is not "succeeded", or it is itself a
 *   waiting task about to be skipped: skips are transitive). dep names it,
 *   dep_status says its status ("skipped" for one skipped in this pass).
 * - DEP_CYCLE: the task is on a dependency cycle among the waiting tasks
 *   (A after B after A, longer rings, a task after itself). dep names the
 *   next task on the ring. Tasks behind a cycle are then skipped (or, with
 *   "finished", run) like the dependants of any skipped task.
 * - DEP_WAITING: some dependency has no result yet (it is queued, running,
 *   another waiting task, or not submitted at all); dep names the first.
 * - DEP_RUNNABLE: every dependency has a result (that succeeded, or any
 *   with "finished"), or is about to be skipped (with "finished").
 * Tasks without "after" are simply runnable; they need not be passed. */
#ifndef SPOOLRUN_DEPS_H
#define SPOOLRUN_DEPS_H

#include <stdbool.h>
#include <stddef.h>

struct dep_task {
	const char *id;
	const char *const *after;  /* n_after ids */
	size_t n_after;
	bool after_finished;       /* after_policy "finished" */
};

enum dep_state { DEP_RUNNABLE, DEP_WAITING, DEP_SKIPPED, DEP_CYCLE };

struct dep_verdict {
	enum dep_state state;
	const char *dep;        /* the dependency it waits for / failed on / the next on the cycle */
	char dep_status[32];    /* DEP_SKIPPED: that dependency's status */
};

/* The status of the result published for id ("succeeded", "failed", ...),
 * or NULL when there is none. */
typedef const char *(*dep_lookup_fn)(void *ctx, const char *id);

/* Fills out[i] for tasks[i], i < n. Ids in tasks must be distinct.
 * -1 (ENOMEM) when out of memory, 0 otherwise. */
int deps_resolve(const struct dep_task *tasks, size_t n, dep_lookup_fn lookup, void *ctx,
		 struct dep_verdict *out);

/* "runnable", "waiting", "skipped", "cycle". */
const char *deps_state_name(enum dep_state s);

#endif
