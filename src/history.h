/* history: how long earlier successful runs took, per history key, and the
 * timeout that implies for a task with "timeout": "auto".
 *
 * The history lives in the spool, in SPOOL/history/: one small JSON file
 * per key, {"key": the key's first 200 bytes, "runs_s": [seconds, ...]},
 * holding the last HISTORY_RUNS successful run times, oldest first. The
 * file is named by a 128-bit hash of the key (keys are whole commands, of
 * any length), is replaced atomically (temporary file, rename), and so
 * survives restarts and crashes. A file that cannot be parsed is ignored
 * with a warning, as if the key had no history, and replaced at the next
 * recorded run. Only the watcher writes it (it holds the spool's lock).
 * Bounded: each file holds at most HISTORY_RUNS numbers, and when a new
 * key would make more than max_keys files, the least recently updated
 * ones are removed.
 *
 * The timeout (history_timeout(), pure): a number in the task wins
 * (source "task"); else, unless the task or [task] timeout says "auto",
 * [task] timeout ("default"); with auto and at least HISTORY_MIN_RUNS
 * runs recorded, auto_timeout_factor x the 90th percentile (nearest rank)
 * of the recorded runs, at least auto_timeout_min ("auto"); with fewer,
 * auto_timeout_default ("auto_default"). */
#ifndef SPOOLRUN_HISTORY_H
#define SPOOLRUN_HISTORY_H

#include <stdbool.h>
#include <jansson.h>
#include <stddef.h>

#include "task.h"

#define HISTORY_RUNS 20     /* run times kept per key */
#define HISTORY_MIN_RUNS 5  /* fewer: no auto timeout yet */
#define HISTORY_KEYS 10000  /* files kept; beyond, the least recently updated go */

struct history {
	int dir_fd;        /* SPOOL/history */
	bool durable;      /* fsync each update ([spool] fsync) */
	size_t max_keys;   /* HISTORY_KEYS (tests lower it) */
};

/* Opens (creating it if needed, mode 0700) the history directory below the
 * spool root root_fd. -1 with errno on failure. */
int history_open(struct history *h, int root_fd, bool durable);
void history_close(struct history *h);

/* The key of a task: its history_key, else its command (the string, or the
 * array as compact JSON). malloc'ed; NULL when out of memory. */
char *history_key_of(const struct task *t);

/* Reads the run times recorded for key into runs (oldest first); returns
 * how many (0 for none, and for a corrupt file, with a warning). */
size_t history_load(const struct history *h, const char *key, double runs[HISTORY_RUNS]);

/* Appends one successful run of seconds to key's history, dropping the
 * oldest beyond HISTORY_RUNS. 0, or -1 with errno (logged by the caller). */
int history_record(const struct history *h, const char *key, double seconds);

/* The 90th percentile (nearest rank) of n run times; 0 when n is 0. */
double history_p90(const double *runs, size_t n);

struct timeout_choice {
	double seconds;               /* 0: none */
	enum timeout_source source;
};

/* The timeout for t (task_parse()d with d) given the n run times recorded
 * for its key. Pure: no I/O. */
struct timeout_choice history_timeout(const struct task *t, const struct task_defaults *d,
				      const double *runs, size_t n);

/* What the watcher calls around a run. h may be NULL (no spool, as in
 * exec): an auto timeout is then auto_timeout_default.
 * history_settle_timeout: sets t->timeout and t->timeout_source from
 * history_timeout() just before the task starts.
 * history_note_result: records a "succeeded" result's duration_ms under
 * the task's key (anything else is not recorded); failures are logged. */
void history_settle_timeout(const struct history *h, const struct task_defaults *d,
			    struct task *t);
void history_note_result(const struct history *h, const struct task *t, const json_t *result);

#endif
