/* spool: the directory layout and every file operation on it.
 *
 *   ROOT/incoming/  producers rename *.json task files in
 *   ROOT/active/    the task being run, claimed by rename from incoming/
 *   ROOT/results/   <id>.json, one per task (or [spool] results_dir)
 *   ROOT/logs/      <id>.stdout, <id>.stderr
 *   ROOT/rejected/  original bytes of task files that were refused
 *   ROOT/tmp/       temporary names for atomic writes
 *   ROOT/deferred/  tasks waiting to be retried, each with .NAME.state
 *   ROOT/cancel/    a file named <id> asks for that task to be cancelled
 *   ROOT/pause      while it exists, no new task starts
 *   ROOT/.lock      flock()ed by the one runner of this spool
 *
 * All operations go through directory fds (openat/renameat), so a spool
 * that is renamed or reached through another path stays consistent. */
#ifndef SPOOLRUN_SPOOL_H
#define SPOOLRUN_SPOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config.h"

struct spool {
	char *root;          /* absolute */
	char *results_path;  /* absolute */
	char *logs_path;
	char *rejected_path;
	int root_fd, incoming_fd, active_fd, results_fd, logs_fd, rejected_fd, tmp_fd;
	int deferred_fd, cancel_fd;
	int publish_tmp_fd;  /* tmp_fd, or results_fd when that is another file system */
	int lock_fd;
	bool durable;
	unsigned file_mode;  /* of results and logs */
};

/* Creates the layout below root (and results_dir) as needed and opens it.
 * With check_perms, refuses directories writable by group or others. On
 * error returns -1 with a one-line message in err. */
int spool_open(struct spool *s, const struct config *c, const char *root,
	       char *err, size_t errlen);
void spool_close(struct spool *s);

/* Takes the spool's lock without waiting: -1 with EWOULDBLOCK when another
 * runner holds it. */
int spool_lock(struct spool *s);

/* True for names the runner takes: ending in ".json", not a dot file. */
bool spool_is_task_name(const char *name);

/* Moves incoming/name to active/name. -1 with ENOENT if it is gone, EEXIST
 * if active/ already holds a file of that name. */
int spool_claim(struct spool *s, const char *name);

/* Puts active/name back into incoming/, to be run again; a stop that puts a
 * task back is not an interrupted attempt, so its record goes. */
int spool_requeue(struct spool *s, const char *name);

/* Removes active/name (and its attempt record) once its result is published. */
int spool_finish(struct spool *s, const char *name);

/* The state of a task that has run before (attempts so far, retries
 * spent, when it may run again), kept beside it as DIR/.NAME.state and
 * replaced atomically and durably, so it survives a crash of the machine.
 * dirfd is active_fd or deferred_fd. load returns NULL when there is none. */
json_t *spool_load_state(struct spool *s, int dirfd, const char *name);
int spool_save_state(struct spool *s, int dirfd, const char *name, const json_t *state);
void spool_remove_state(struct spool *s, int dirfd, const char *name);

/* Moves active/name to deferred/ with its state (saved there first); the
 * name used in deferred/ (name, or name.N if taken) goes into out. */
int spool_defer(struct spool *s, const char *name, const json_t *state, char *out, size_t outlen);

/* Moves deferred/name back to active/name, its state with it. */
int spool_undefer(struct spool *s, const char *name);

/* cancel/<id>: whether it exists; removing it once the task is cancelled
 * (or is known to have finished). */
bool spool_cancel_requested(struct spool *s, const char *id);
void spool_cancel_done(struct spool *s, const char *id);

/* Whether ROOT/pause exists. */
bool spool_paused(struct spool *s);

/* Makes the claim of a task (its rename into active/) durable. */
int spool_sync_active(struct spool *s);

/* Moves active/name into rejected/, under name or name.N if that exists;
 * the name used goes into kept (size >= 300). */
int spool_keep_rejected(struct spool *s, const char *name, char *kept, size_t keptlen);

/* Picks the name rejected/ would keep name under, without moving it. */
void spool_rejected_name(struct spool *s, const char *name, char *out, size_t outlen);

/* Publishes a result atomically as results/<id>.json, or <id>@N.json (N from
 * 2) when that exists, never replacing a file: serialised straight into a
 * temporary file (with a final newline, not held in memory whole), fsynced,
 * renamed, results/ fsynced. The name used goes into published (size >= 160).
 * All in the caller's thread: spool_result_write, spool_result_place and
 * spool_sync_results below are the same steps one at a time, for a
 * publisher that does the waiting for the disk elsewhere (publisher.h). */
int spool_publish(struct spool *s, const char *id, const json_t *result, char *published,
		  size_t publishedlen);

/* A result on its way into results/. */
struct spool_result_file {
	int fd;               /* open on the written temporary until placed */
	char id[160];
	char tmpname[200];    /* in tmp/ (or beside results/); unique per publication */
	char published[200];  /* once placed: its name in results/ */
};

/* Step 1: serialises result whole into a new temporary file (not synced,
 * not visible in results/). On failure nothing is left behind. */
int spool_result_write(struct spool *s, const char *id, const json_t *result,
		       struct spool_result_file *f);

/* Step 2 (any thread): fsyncs the file when durable, closes it, and renames
 * it into results/ as <id>.json or <id>@N.json, never replacing a file. On
 * failure the temporary is removed (errno of the failed step kept). */
int spool_result_place(struct spool *s, struct spool_result_file *f, bool durable);

/* Step 3 (any thread, durable only): fsyncs results/, making the names of
 * every result placed before it durable. */
int spool_sync_results(struct spool *s);

/* Closes and removes a written result that will not be placed. */
void spool_result_discard(struct spool *s, struct spool_result_file *f);

/* True when results/<id>.json exists. */
bool spool_result_exists(struct spool *s, const char *id);

/* Creates logs/<id>.<stream> ("stdout" or "stderr"), truncated, with the
 * configured file mode. */
int spool_open_log(struct spool *s, const char *id, const char *stream);

/* Removes the logs of an earlier attempt of id, so what is left after this
 * one is only its own. */
void spool_remove_logs(struct spool *s, const char *id);

/* Reads dir/name as a task file: never follows a symlink, never blocks on
 * a FIFO, refuses anything but a regular file of at most max bytes (and,
 * with single_link, with one link: a hard link could alias any file of the
 * runner's). On refusal returns -1 with a reason naming the file in why. */
int spool_read_task(int dirfd, const char *name, size_t max, bool single_link,
		    char **buf, size_t *len, struct stat *st, char *why, size_t whylen);

/* What ordering needs of a task file in dir, read without claiming it:
 * its priority (0 when unreadable or invalid) and its id (the file's own
 * when valid, else one derived from the name), and st for its mtime.
 * -1 when the file is gone. */
int spool_peek_task(struct spool *s, int dirfd, const char *name, size_t max,
		    int64_t *priority, char *id, size_t idlen, struct stat *st);

/* Removes whatever a crash left in tmp/, and state files in active/ and
 * deferred/ whose task is no longer beside them. */
void spool_clean_tmp(struct spool *s);

#endif
