/* holds: the queued tasks (in incoming/) that the lifecycle holds back:
 * those with "after" or "not_before". The watcher adds a task here when it
 * queues it (only such tasks are parsed twice), asks gate.h about all of
 * them whenever starting is reconsidered, and removes it when the task
 * leaves incoming/. Verdicts are derived from results/ and the clock each
 * time, never stored on disk, so a restart finds the same ones.
 *
 * Sorted by file name (found by binary search): the scheduler asks about
 * every queued entry it considers. */
#ifndef SPOOLRUN_HOLDS_H
#define SPOOLRUN_HOLDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gate.h"
#include "task.h"

struct hold {
	char *name;                 /* in incoming/ */
	struct task t;              /* parsed: id, after, not_before */
	struct gate_verdict v;      /* from the last holds_evaluate() */
};

struct holds {
	struct hold *v;
	size_t n, cap;
	size_t waiting;             /* of those, how many wait (deps or time) */
};

void holds_init(struct holds *h);
void holds_clear(struct holds *h);

/* Reads dirfd/name (at most max bytes) and holds it when it is a valid
 * task with after or not_before: 1 held, 0 not (an invalid file is left
 * to the job, which rejects it), -1 (ENOMEM). Until the next
 * holds_evaluate() a new hold counts as waiting. */
int holds_add(struct holds *h, int dirfd, const char *name, size_t max);

void holds_remove(struct holds *h, const char *name);

/* The verdict for a held name, or NULL when it is not held (free to go). */
const struct gate_verdict *holds_find(const struct holds *h, const char *name);

/* Decides every hold anew (gate_decide) at now_ms. -1 (ENOMEM): the
 * verdicts are left as they were. */
int holds_evaluate(struct holds *h, dep_lookup_fn lookup, void *ctx, int64_t now_ms);

/* The names of holds whose verdict is a skip, in *names (malloc'ed array
 * of pointers into h, valid until h changes); how many. */
size_t holds_skips(const struct holds *h, const char ***names);

/* Milliseconds until the earliest not_before among holds that wait only
 * for their time (0: due now), or -1 when none. */
int64_t holds_next_ms(const struct holds *h, int64_t now_ms);

#endif
