/* job: the life of one task file from the moment it is in active/ until
 * it has a result (or is deferred, or put back).
 *
 * read and check the file (never followed, never past max_task_bytes,
 * owner allowed) -> parse and validate -> refuse a duplicate id (or notice
 * a result already published for this very file) -> honour a cancel
 * request -> count the attempt durably -> run -> decide on a retry ->
 * publish the result atomically, or move the task to deferred/. A refused
 * file ends in rejected/ with a "rejected" result. The job knows nothing of
 * the loop around it: what it needs from the runner comes in job_env, and
 * what the runner must do next goes back in job_report. */
#ifndef SPOOLRUN_JOB_H
#define SPOOLRUN_JOB_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "owner.h"
#include "publisher.h"
#include "spool.h"
#include "task.h"

struct job_env {
	const struct config *cfg;
	struct spool *spool;
	const struct owner_policy *owners;
	const regex_t *usage_limit;  /* compiled [retry] usage_limit_pattern, or NULL */
	struct publisher *publisher; /* makes results durable off the critical path */
	int signal_fd;
	int extra_fd;                /* polled while a task runs; -1 for none */
	/* While a task runs: a signal arrived / extra_fd is readable. Returning
	 * true kills the task (then it is requeued, or cancelled when
	 * cancel/<id> exists). */
	bool (*on_signal)(void *ctx, int sig);
	bool (*on_extra)(void *ctx);
	/* Between publish retries on a failing disk: waits up to ms; true
	 * when the runner must stop now. */
	bool (*wait_or_stop)(void *ctx, int ms);
	/* Wall-clock ms at which a usage limit on key lifts; 0 when none. */
	int64_t (*key_blocked_until)(void *ctx, const char *key);
	void *ctx;
	unsigned *jitter_seed;
};

enum job_origin {
	JOB_NEW,       /* claimed from incoming/ */
	JOB_RETRY,     /* taken back from deferred/ when its time came */
	JOB_RECOVERED, /* found in active/ at start-up: its last run was interrupted */
};

enum job_end {
	JOB_PUBLISHED, /* its result is on its way (publisher.h); the file goes
			* from active/ once the result is durable */
	JOB_DEFERRED,  /* moved to deferred/ until not_before_ms */
	JOB_REQUEUED,  /* the runner is stopping: put back to run at the next start */
	JOB_LEFT,      /* left in active/ (stopped while the disk failed) */
};

struct job_report {
	enum job_end end;
	bool succeeded;                  /* JOB_PUBLISHED with status succeeded */
	char id[TASK_ID_MAX + 1];
	char deferred_name[320];         /* JOB_DEFERRED: its name in deferred/ */
	int64_t not_before_ms;           /* JOB_DEFERRED */
	char limit_key[TASK_ID_MAX + 1]; /* JOB_DEFERRED for a usage limit: the key to hold */
};

/* Handles active/name to its end. */
void job_handle(const struct job_env *env, const char *name, enum job_origin origin,
		struct job_report *rep);

#endif
