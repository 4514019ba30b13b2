/* task_state: what a task file's history is, typed, and the one place that
 * reads and writes it.
 *
 * Beside a task file in active/ or deferred/ the spool keeps DIR/.NAME.state
 * (spool_load_state/spool_save_state move the bytes; this module owns the
 * keys, and no other file spells them). It holds the attempts so far, what
 * they cost of the retry budget and when the task may run again. A first
 * attempt has no state file: its absence means attempt 1.
 *
 * Beside them, ROOT/.running (the spool root) is the running table: one entry per task an
 * executor runs now (its file, pid, start, attempt, executor), rewritten in
 * place by the watcher whenever a task starts or ends, so `spoolrun status`
 * shows every slot. It is information, not history: never fsynced, never
 * read back by the watcher, and a reader that finds it torn reads again. */
#ifndef SPOOLRUN_TASK_STATE_H
#define SPOOLRUN_TASK_STATE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool.h"
#include "task.h"

struct task_state {
	int attempt;             /* attempts started so far (the running one included) */
	int interrupted;         /* of those, how many a stop or crash cut short */
	int retries_used;        /* back-off retries spent */
	int limit_deferrals;     /* deferrals for an API limit (apilimit.h), no retry spent */
	json_t *attempts;        /* owned array: one record per finished attempt */
	/* In deferred/: */
	int64_t not_before_ms;   /* wall clock at which it may run again */
	char id[TASK_ID_MAX + 1];/* the task's id ("" when unknown) */
	bool usage_limit;        /* deferred for a usage limit (no retry spent) */
	char limit_key[TASK_ID_MAX + 1]; /* its limit_key ("" when none) */
	/* While an attempt runs (in active/): */
	int pid;                 /* main process (or executor job id), 0 when none */
	int64_t started_ms;      /* wall clock */
	char executor[16];       /* "local" or "slurm", "" when not running */
	/* The running attempt's Slurm job (slurmexec.h): its name is saved,
	 * durably, before sbatch, its id right after, so a restarted watcher
	 * re-attaches instead of submitting again; state for status. */
	char slurm_job_name[NAME_MAX + 64];
	char slurm_job_id[32];
	char slurm_state[32];
};

/* An empty state: attempt 0, no history. */
void task_state_init(struct task_state *st);
void task_state_clear(struct task_state *st);

/* Loads DIR/.NAME.state into st (task_state_init first); a missing or
 * unreadable state is an empty one. Returns true when a state was read. */
bool task_state_load(struct spool *s, int dirfd, const char *name, struct task_state *st);

/* Saves st as DIR/.NAME.state, atomically; durable when the spool is and
 * durable is true. 0, or -1 with errno. */
int task_state_save(struct spool *s, int dirfd, const char *name, const struct task_state *st,
		    bool durable);

/* The attempts array, created when missing (never NULL unless out of memory). */
json_t *task_state_attempts(struct task_state *st);

struct task_running {
	char name[NAME_MAX + 1]; /* in active/ */
	int pid;                 /* main process (or an executor's job id) */
	int64_t started_ms;      /* wall clock */
	int attempt;
	char executor[16];       /* "local", … */
};

/* Opens ROOT/.running for the watcher (created as needed): an fd, or -1. */
int task_running_open(struct spool *s);

/* Replaces the table with the n entries (in place; no fsync). */
int task_running_write(int fd, const struct task_running *t, size_t n);

/* Reads the table (status): a malloc'ed array in *out (free it), its length
 * returned; 0 when there is none. */
size_t task_running_read(struct spool *s, struct task_running **out);

#endif
