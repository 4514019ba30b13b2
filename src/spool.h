/* spool: the directory layout, every file operation on it, and every name
 * built from a task's id or file name.
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
 * The life of a task file NAME, and the one function that makes each move
 * (each a rename that never replaces a file):
 *
 *   producer --rename--> incoming/NAME  (created or linked in place: taken
 *        |                           once whole, arrival.h)
 *        |  spool_claim
 *        v
 *   active/NAME (+ .NAME.state from attempt 2 on: task_state.h)
 *        |  ending: spool_record_done writes the result whole into tmp/
 *        |  (done-NAME), then the file is let go, then spool_publish_done
 *        |  renames the record to results/ID.json (or ID@N.json):
 *        |-- spool_finish -------> gone
 *        |-- spool_keep_rejected -> rejected/NAME, or NAME.N (spool_name_copy)
 *        |-- spool_defer ---------> deferred/NAME or NAME.N (+ its .state)
 *        |                            |  spool_undefer when due
 *        |                            '--> active/NAME
 *        '-- spool_requeue -------> incoming/NAME (a stop; a task with attempts
 *                                  behind it goes by spool_defer, due at once)
 *
 *   Crash leftovers at start: a done-NAME record is published
 *   (spool_each_done); the rest of tmp/ and results/.tmp-*, and a
 *   .NAME.state whose NAME is gone, are removed (spool_clean_tmp). A task
 *   file found in active/ was interrupted: it runs again (max_attempts
 *   bounds it) unless its completion was recorded.
 *
 * Names: the spool_name_* family below is the only code that formats a
 * name from an id or a task file name. A name that does not fit NAME_MAX
 * is an error (ENAMETOOLONG), never silently cut; task file names are
 * limited to SPOOL_TASK_NAME_MAX so every name derived from them fits, and
 * numbered copies (rejected/, deferred/) shorten the name to fit.
 *
 * All operations go through directory fds (openat/renameat), so a spool
 * that is renamed or reached through another path stays consistent. The
 * directories of the layout must not be symbolic links (refused at open). */
#ifndef SPOOLRUN_SPOOL_H
#define SPOOLRUN_SPOOL_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config.h"
#include "task.h"

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

/* spool_open for the commands that only look or ask (status, wait, tail,
 * cancel, submit): creates nothing; -1 with errno ENOENT and a message
 * naming the path when the spool or one of its directories is missing. */
int spool_open_existing(struct spool *s, const struct config *c, const char *root,
			char *err, size_t errlen);

/* Takes the spool's lock without waiting: -1 with EWOULDBLOCK when another
 * runner holds it. */
int spool_lock(struct spool *s);

/* True for names the runner takes: ending in ".json", not a dot file. */
bool spool_is_task_name(const char *name);

/* --- names --------------------------------------------------------------- */

#define SPOOL_NAME_SIZE (NAME_MAX + 1)

/* The longest task file name taken: what is derived from it (".NAME.N.state"
 * for a deferred copy: 14 bytes more) still fits NAME_MAX. Longer names are
 * rejected at once (taskfile.h). */
#define SPOOL_TASK_NAME_MAX 240

/* Each formats one name into out, or returns -1 with ENAMETOOLONG (out
 * then "") when it would not fit; never truncates. */
int spool_name_result(const char *id, unsigned n, char out[SPOOL_NAME_SIZE]); /* n <= 1: ID.json, else ID@N.json */
int spool_name_log(const char *id, const char *stream, char out[SPOOL_NAME_SIZE]); /* ID.stdout */
int spool_name_state(const char *name, char out[SPOOL_NAME_SIZE]);           /* .NAME.state */
/* .NAME.node-result: a Slurm node's result beside its task (node.h), written
 * as .NAME.node-tmp first; both fit for names up to SPOOL_TASK_NAME_MAX. */
int spool_name_node_result(const char *name, bool tmp, char out[SPOOL_NAME_SIZE]);

/* Copy number n of a task file kept in rejected/ or deferred/: NAME for 1,
 * else NAME.N, the name shortened as needed: it always fits. */
void spool_name_copy(const char *name, unsigned n, char out[SPOOL_NAME_SIZE]);

/* Full paths for results: logs/ID.STREAM and rejected/KEPT; -1 with
 * ENAMETOOLONG when out is too small. */
int spool_path_log(const struct spool *s, const char *id, const char *stream, char *out,
		   size_t outlen);
int spool_path_rejected(const struct spool *s, const char *kept, char *out, size_t outlen);

/* --- moves and files ---------------------------------------------------- */

/* Moves incoming/name to active/name. -1 with ENOENT if it is gone, EEXIST
 * if active/ already holds a file of that name. */
int spool_claim(struct spool *s, const char *name);

/* Puts active/name back into incoming/, to be run again; a stop that puts a
 * task back is not an interrupted attempt, so its record goes. Never over a
 * file in incoming/: -1 with EEXIST when the name is taken. */
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

/* Moves active/name to deferred/ with its state: save_state(ctx, NAME)
 * writes deferred/.NAME.state first (task_state.h), then the task follows;
 * the name used in deferred/ (name, or name.N if taken) goes into out. */
int spool_defer(struct spool *s, const char *name,
		int (*save_state)(void *ctx, const char *deferred_name), void *ctx,
		char *out, size_t outlen);

/* Moves deferred/name back to active/name, its state with it; never over a
 * file in active/ (-1 with EEXIST: a task of that name runs now). */
int spool_undefer(struct spool *s, const char *name);

/* cancel/<id>: whether it exists; removing it once the task is cancelled
 * (or is known to have finished). */
bool spool_cancel_requested(struct spool *s, const char *id);
void spool_cancel_done(struct spool *s, const char *id);

/* Whether ROOT/pause exists. */
bool spool_paused(struct spool *s);

/* Makes the claim of a task (its rename into active/) durable. */
int spool_sync_active(struct spool *s);

/* Moves active/name into rejected/, under the first free copy name
 * (spool_name_copy), never over another; the name used goes into kept
 * (size SPOOL_NAME_SIZE). */
int spool_keep_rejected(struct spool *s, const char *name, char *kept, size_t keptlen);

/* Picks the name rejected/ would keep name under, without moving it. */
void spool_rejected_name(struct spool *s, const char *name, char *out, size_t outlen);

/* Publishes a result atomically as results/<id>.json, or <id>@N.json (N from
 * 2) when that exists, never replacing a file: serialised straight into a
 * temporary file (with a final newline, not held in memory whole), fsynced
 * once, renamed under the first free name (found in O(log N) stats, so
 * many duplicates of one id cost one write each). The name used goes into
 * published (size SPOOL_NAME_SIZE). */
int spool_publish(struct spool *s, const char *id, const json_t *result, char *published,
		  size_t publishedlen);

/* Completion records (see spool.c): spool_record_done writes result whole
 * and durably as the record of active/name's completion (its name into
 * rec, size >= NAME_MAX + 1), before the task file is let go;
 * spool_publish_done then renames it into results/ as <id>.json or
 * <id>@N.json, N from first (1: the plain name first), never replacing.
 * At start-up spool_each_done lists the records a stop left, for recovery
 * to publish (the record's "task_file" names the task it completes). */
int spool_record_done(struct spool *s, const char *name, const json_t *result, char *rec,
		      size_t reclen);
int spool_publish_done(struct spool *s, const char *rec, const char *id, int first,
		       char *published, size_t publishedlen);
json_t *spool_load_done(struct spool *s, const char *rec);

/* The same two steps one at a time, for a publisher that waits for the disk
 * in a thread of its own (publisher.h); spool_record_done and
 * spool_publish_done are made of them. Step functions marked "any thread"
 * touch only the spool's descriptors.
 *   spool_record_write: result whole into its record tmp/done-NAME (name
 *     into r->rec), not synced: whole for a kill of the process, maybe torn
 *     by a power cut (then it does not parse and recovery drops it);
 *   spool_record_place (any thread): fsync it when durable and close it;
 *     on failure the record is removed;
 *   spool_sync_records (any thread): fsync tmp/: every record placed before
 *     is durable;
 *   spool_place_done (any thread): spool_publish_done without the fsync;
 *   spool_sync_results (any thread): fsync results/. */
struct spool_record {
	int fd;                  /* on the record, until placed */
	char rec[NAME_MAX + 1];  /* its name in tmp/ */
};
int spool_record_write(struct spool *s, const char *name, const json_t *result,
		       struct spool_record *r);
int spool_record_place(struct spool *s, struct spool_record *r, bool durable);
void spool_record_discard(struct spool *s, struct spool_record *r);
int spool_sync_records(struct spool *s);
int spool_place_done(struct spool *s, const char *rec, const char *id, int first,
		     char *published, size_t publishedlen);
int spool_sync_results(struct spool *s);
void spool_drop_done(struct spool *s, const char *rec);
int spool_each_done(struct spool *s, void (*fn)(void *ctx, const char *rec), void *ctx);

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

/* The same, with the task's limit_key ("" when none or unreadable). */
struct spool_peeked {
	int64_t priority;
	char id[TASK_ID_MAX + 1];
	char limit_key[TASK_ID_MAX + 1];
	bool lifecycle;          /* has "after" or "not_before" (holds.h) */
	struct stat st;
};
int spool_peek(struct spool *s, int dirfd, const char *name, size_t max,
	       struct spool_peeked *p);

/* Removes whatever a crash left in tmp/, and state files in active/ and
 * deferred/ whose task is no longer beside them. */
void spool_clean_tmp(struct spool *s);

#endif
