/* sched: which waiting task starts next — a pure function of the waiting
 * tasks, the running load and the limits, tested table-driven without a
 * spool or a clock.
 *
 * Order: deferred tasks that are due come first (the earliest due first:
 * they have waited longest), then by priority (higher first), arrival
 * (older first) and name. A task starts when a slot is free and it is
 * eligible; a task that is not eligible (its limit_key at its cap, its name
 * busy in active/, a failed move backing off, …) never blocks the tasks
 * behind it. Eligibility is one function, sched_eligible: a new reason a
 * task may not start yet (dependencies, not_before) is one more verdict
 * there and one more field in struct sched_task. */
#ifndef SPOOLRUN_SCHED_H
#define SPOOLRUN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sched_task {
	const char *name;       /* file name, the last tie-break */
	bool deferred;          /* a retry waiting in deferred/ */
	int64_t due_ms;         /* deferred: wall clock at which it may run */
	int64_t priority;
	int64_t arrival_ns;     /* incoming: the file's mtime */
	const char *limit_key;  /* NULL or "": none */
	bool name_busy;         /* active/ holds a task of this name now */
	int64_t retry_at_ms;    /* a failed claim backs off until then; 0: none */
};

struct sched_cap {
	const char *key;        /* [concurrency] KEY (compared ignoring case) */
	unsigned cap;
};

struct sched_limits {
	unsigned slots;                 /* [runner] slots */
	const struct sched_cap *caps;   /* [concurrency] */
	size_t ncaps;
	bool paused;                    /* ROOT/pause: nothing starts */
};

/* What runs now: how many, and the limit_key of each (NULL for none). */
struct sched_load {
	unsigned running;
	const char *const *keys;
	size_t nkeys;
};

enum sched_verdict {
	SCHED_RUNNABLE,
	SCHED_NO_SLOT,      /* every slot is taken (or paused) */
	SCHED_NOT_DUE,      /* deferred, its time has not come */
	SCHED_KEY_AT_CAP,   /* its limit_key runs [concurrency] KEY tasks already */
	SCHED_NAME_BUSY,    /* a task of the same file name runs */
	SCHED_BACKING_OFF,  /* a failed move is tried again later */
};

/* True when a starts before b (both assumed eligible). */
bool sched_before(const struct sched_task *a, const struct sched_task *b, int64_t now_ms);

/* Whether t may start now, and if not why. */
enum sched_verdict sched_eligible(const struct sched_limits *lim, const struct sched_load *load,
				  const struct sched_task *t, int64_t now_ms);

/* The cap on key from [concurrency] (0: none). */
unsigned sched_cap_of(const struct sched_limits *lim, const char *key);

/* The index of the task to start next among n, or -1 when none may. */
int sched_pick(const struct sched_limits *lim, const struct sched_load *load,
	       const struct sched_task *tasks, size_t n, int64_t now_ms);

#endif
