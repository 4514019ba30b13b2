/* status: what a spool holds, read from the spool itself (the watcher
 * keeps no status file, so asking costs it nothing).
 *
 * Two steps, kept apart so a new data source plugs into the first without
 * touching the second: status_collect() reads the spool into a plain list
 * of rows (struct status_report), status_print_table() and
 * status_print_json() present it. Sources: the lock (whether a watcher
 * runs, its pid), active/ (running tasks; pid, start and executor from each
 * task's state, task_state.h; output so far from logs/), incoming/ in run order, deferred/ with times, cancel/, and
 * results/ newest first. Nothing is created, followed or opened blocking.
 * Collecting is status.c, presenting status_render.c. */
#ifndef SPOOLRUN_STATUS_H
#define SPOOLRUN_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "spool.h"
#include "task.h"

#define STATUS_DEFAULT_FINISHED 10

enum status_state {
	STATUS_RUNNING,      /* in active/, a watcher runs */
	STATUS_INTERRUPTED,  /* in active/, no watcher: runs again when one starts */
	STATUS_QUEUED,
	STATUS_DEFERRED,
	STATUS_FINISHED,     /* has a result; status says how it ended */
};

struct status_row {
	enum status_state state;
	char id[TASK_ID_MAX + 1];
	char file[256];          /* task file (active/, incoming/, deferred/) or result file */
	char *command;           /* the command, one line; NULL when unknown */
	char *label;             /* "label" or meta.label; NULL when none */
	char *status;            /* finished: the result's status */
	bool cancel_requested;   /* cancel/ID exists */
	bool has_exit_code;
	int exit_code;
	char signal[16];         /* finished: the signal that ended it ("SIGKILL"), "" none */
	int64_t pid;             /* running: the task's pid (or executor job id), 0 unknown */
	int64_t started_ms;      /* running: Unix ms its attempt started, 0 unknown */
	int64_t elapsed_ms;      /* running: -1 unknown */
	int attempt;             /* running: which attempt this is (1 for the first) */
	char executor[16];       /* running: "local", "slurm", ...; "" unknown */
	bool in_slurm;           /* running as a Slurm job: no local pid ... */
	char slurm_job_id[32];   /* ... but a job id ("" before sbatch answered) */
	char slurm_state[32];    /* ... and its state ("SUBMITTING" before that) */
	int64_t duration_ms;     /* finished: -1 unknown */
	int64_t stdout_bytes, stderr_bytes;  /* running: output so far */
	int64_t priority;        /* queued */
	int64_t when_ms;         /* Unix ms: queued at, due at (deferred), finished at; 0 unknown */
	int attempts;            /* deferred: attempts so far */
	/* queued, from its "after" and "not_before" (lifecycle.h): */
	const char *blocked;     /* "dependency", "not_before", "dependency_failed",
				  * "dependency_cycle", or NULL: nothing holds it */
	char waiting_for[TASK_ID_MAX + 1]; /* the dependency it waits for, "" none */
	int64_t not_before_ms;   /* 0: none */
};

struct status_report {
	char *spool;
	bool watcher_running;
	int watcher_pid;
	bool paused;
	size_t finished_total;   /* results in results/, of which rows show some */
	struct status_row *rows; /* running/interrupted, queued (run order), deferred, finished */
	size_t n, cap;
};

/* Which finished tasks to list: the latest `finished` (-1: all), only
 * those that did not succeed with only_failed. */
struct status_view {
	int finished;
	bool only_failed;
};

/* NULL when out of memory. The lifecycle fields of queued rows (blocked,
 * waiting_for, not_before_ms) are left empty: lifecycle_status_collect()
 * fills them. */
struct status_report *status_collect(struct spool *s, size_t max_task_bytes,
				     const struct status_view *view);
void status_free(struct status_report *st);

/* Keeps only the rows of the n ids given (every finished result of each,
 * whatever the view). Returns how many of the ids have no row at all. */
int status_keep_ids(struct status_report *st, char **ids, int n);

/* An aligned table for a person; colour only when colour is true. */
void status_print_table(const struct status_report *st, FILE *out, bool colour);

/* {"spool", "watcher": {running, pid}, "paused", "running": [...],
 * "queued": [...], "deferred": [...], "recent": [...]} (docs/cli.md);
 * fields are only ever added. Returns an exit code. */
int status_print_json(const struct status_report *st, FILE *out);

/* Colour on fd: a terminal, NO_COLOR unset or empty, TERM not "dumb". */
bool status_use_colour(int fd);

/* "3 s", "2 min", "1 h 5 min", "4 d" (coarse, for people). */
void status_format_duration(int64_t ms, char *buf, size_t len);

#endif
