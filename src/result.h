/* result: the result document (format 1) of a task, and its exit code.
 *
 * A result stands alone: it carries the task as submitted, the outcome, the
 * captured output as valid UTF-8, and where the full logs are. Building a
 * result allocates; publishing it is the spool's business. */
#ifndef SPOOLRUN_RESULT_H
#define SPOOLRUN_RESULT_H

#include <jansson.h>
#include <stdbool.h>

#include "run.h"
#include "task.h"

struct result_context {
	const char *task_file;       /* file name the task came in as, or NULL */
	const char *task_file_stamp; /* inode:mtime:size of that file, or NULL */
	/* inode:bBIRTH of that file (what tells it from another), or NULL */
	const char *task_file_identity;
	bool recovered;              /* an earlier attempt was interrupted */
	bool cancelled;              /* killed because cancel/<id> asked */
	const json_t *attempts;      /* every run so far, this one included; or NULL */
	const char *stdout_log;      /* log paths, or NULL when not kept */
	const char *stderr_log;
	int attempt;                 /* 1 for a first run */
};

/* The result of a task that ran, or tried to. Releases o's output
 * captures as it renders them (memory stays lower that way): build one
 * result per outcome. */
json_t *result_from_run(const struct task *t, struct run_outcome *o,
			const struct result_context *c);

/* The result of a task file that was refused before running: id is the
 * task's (or one derived from the file name), task_json the parsed document
 * if the file was JSON at all (may be NULL), kept_as where the original
 * bytes are kept (may be NULL). */
json_t *result_rejected(const char *id, const struct task_error *e, json_t *task_json,
			const struct result_context *c, const char *kept_as);

/* A result for a task that was not run: status "rejected", "cancelled",
 * "interrupted"…, with e as its error and the outcome fields empty. */
json_t *result_not_run(const char *status, const char *id, const struct task_error *e,
		       json_t *task_json, const struct result_context *c);

/* One entry of a result's "attempts": when this run started and ended, how,
 * and (filled in by the caller) why it was retried. */
json_t *result_attempt_record(int attempt, const struct run_outcome *o, bool cancelled);

/* Serialises with a trailing newline; malloc'ed, NULL on failure. */
char *result_dump(const json_t *result, size_t *len);

/* The status string of a result ("succeeded", "failed", …). */
const char *result_status(const json_t *result);

/* The exit code for `spoolrun exec` (and the client commands): the task's
 * own exit code, 128+N for a signal, 124 for a timeout, 126/127 when it
 * could not be started, 65 when the task file was rejected, 75 when it was
 * interrupted max_attempts times, 125 when it was cancelled. */
int result_exit_code(const json_t *result);

#endif
