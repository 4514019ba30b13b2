/* taskfile: the one pipeline every task file goes through, whoever reads it.
 *
 * `spoolrun exec`, `spoolrun validate` and the watcher all call this, so
 * they cannot disagree about a file again:
 *
 *   read   bounded by max_task_bytes; never blocks (a FIFO is refused, not
 *          opened for reading and waited on). In a spool directory: never
 *          follows a symbolic link, one hard link only (spool_read_task).
 *          A path a user names on the command line is read like cat reads
 *          it (followed; a FIFO is read: `exec <(make-task)`), but a
 *          directory or device is refused by kind; "-" is standard input.
 *   name   the file name fits what the spool derives from it
 *          (SPOOL_TASK_NAME_MAX), so a task can always be deferred, have
 *          its state saved and its rejected copy kept.
 *   owner  (watcher only) the file's owner may submit (owner.h).
 *   parse  JSON, then the task format (task_parse).
 *   id     the id its result goes under: the task's own when valid; for
 *          a refused file, the id the file states when that is a valid id
 *          (what the user meant: x.json holding {"id":"abc","command":5} is
 *          rejected as "abc" by all three), else one derived from the file
 *          name (task_id_from_filename).
 *   reject the "rejected" result document (taskfile_rejection).
 *
 * Usage: taskfile_load_at() or taskfile_load_path(), look at tf.stage, use
 * tf.task when it is TASKFILE_OK, always taskfile_clear(). */
#ifndef SPOOLRUN_TASKFILE_H
#define SPOOLRUN_TASKFILE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "config.h"
#include "owner.h"
#include "result.h"
#include "task.h"

/* How far a file got; the first step that refused it. */
enum taskfile_stage {
	TASKFILE_OK,       /* tf.task is the valid task */
	TASKFILE_UNREADABLE, /* not a regular file, too big, links, I/O error */
	TASKFILE_BAD_NAME, /* file name too long for the spool's derived names */
	TASKFILE_BAD_OWNER,
	TASKFILE_INVALID,  /* bad JSON or an invalid task */
};

struct taskfile {
	char name[NAME_MAX + 1];   /* file name (base name of a path; "stdin" for -) */
	enum taskfile_stage stage;
	char id[TASK_ID_MAX + 1];  /* the id its result (or rejection) goes under */
	struct task task;          /* valid at TASKFILE_OK; task.json may hold the
				      parsed document at TASKFILE_INVALID */
	struct task_error error;   /* code, field and message when refused */
	struct stat st;            /* of the file read; zeroed when never stat'ed */
	struct identity user;      /* with run_as_owner: who it runs as ... */
	bool as_user;              /* ... when this is true */
};

/* The watcher's read of dirfd/name (a file in active/). owners may be NULL
 * (no owner check). Returns tf->stage. */
enum taskfile_stage taskfile_load_at(struct taskfile *tf, int dirfd, const char *name,
				     const struct config *cfg, const struct owner_policy *owners);

/* exec's and validate's read of a path a user names ("-": stdin). Returns
 * tf->stage; TASKFILE_UNREADABLE means "cannot read it" to these callers
 * (exit 66), with the reason in tf->error.message. */
enum taskfile_stage taskfile_load_path(struct taskfile *tf, const char *path,
				       const struct config *cfg);

/* The "rejected" result for a refused file (any stage but OK). ctx may
 * leave attempt 0 (it never ran); kept_as is where rejected/ keeps its
 * bytes, or NULL. NULL when out of memory. */
json_t *taskfile_rejection(const struct taskfile *tf, const struct result_context *ctx,
			   const char *kept_as);

void taskfile_clear(struct taskfile *tf);

#endif
