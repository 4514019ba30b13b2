/* executor: where a task in flight runs — the seam between the loop and the
 * thing that runs processes.
 *
 * A task in flight is the loop's common state (job.h) plus an executor's
 * handle. The loop never blocks on an executor: it asks for descriptors to
 * wait on and the next time to be called, steps the handle after each
 * wakeup, and, once advance says it is over, collects a run_outcome (the
 * same for every executor, so results, retries and publication stay common).
 *
 *   local (exec_local.c): a process tree on this machine (run.h).
 *   A remote executor (a batch system, say) would submit in start, return
 *   no descriptors, ask to be called on a timer (advance returns its next
 *   poll time) and fill the outcome from what the remote side wrote.
 *
 * Calling sequence: start -> { pollfds, poll(), on_ready, advance }* until
 * advance returns -1 -> finish. abort may be called at any time before
 * finish; on_child is called once per SIGCHLD for the executor as a whole. */
#ifndef SPOOLRUN_EXECUTOR_H
#define SPOOLRUN_EXECUTOR_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "run.h"
#include "task.h"

struct executor {
	const char *name; /* recorded in the task state, shown by status */
	/* Starts t; NULL only when out of memory. A task that cannot start is
	 * a handle that is over at once (its outcome says why). */
	void *(*start)(const struct task *t, const struct run_options *opt);
	/* Descriptors to wait on (at most max), and what poll() said of them. */
	int (*pollfds)(void *h, struct pollfd *fds, int max);
	void (*on_ready)(void *h, const struct pollfd *fds, int n);
	/* A SIGCHLD arrived (local processes); may be NULL. */
	void (*on_child)(void);
	/* Steps h at monotonic ns now: the next time to be called (INT64_MAX:
	 * on events only), or -1 when the task is over. */
	int64_t (*advance)(void *h, int64_t now);
	/* Stops the task (stop or cancel): it ends as RUN_ABORTED. */
	void (*abort)(void *h);
	/* The outcome of a task that is over; frees h. */
	void (*finish)(void *h, struct run_outcome *o);
	/* For status: the process (or job) id, and output bytes so far. */
	pid_t (*pid)(const void *h);
	void (*bytes)(const void *h, uint64_t *out, uint64_t *err);
};

/* Process trees on this machine. */
extern const struct executor executor_local;

/* Most descriptors one handle asks for. */
#define EXECUTOR_MAX_FDS 4

#endif
