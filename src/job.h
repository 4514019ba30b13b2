/* job: the life of one task file from the moment it is in active/ until it
 * has a result (or is deferred, or put back): a state machine the runner's
 * loop steps. It never blocks on the task and never waits on its own.
 *
 *   BEGIN: read and check the file (never followed, never past
 *   max_task_bytes, owner allowed), parse and validate, refuse a duplicate
 *   id, honour a cancel request, publish it "skipped" when the runner says
 *   its dependencies rule it out (job_skip), count the attempt durably,
 *   settle an auto timeout from history, start it on the executor.
 *
 *          +--refused / cancelled / interrupted too often--------------+
 *          |                                                          v
 *   BEGIN -+--attempt counted--> RUNNING --over--> (retry decided) -> PUBLISHING --> OVER
 *          |                       |  job_cancel: abort, "cancelled" ---^     (result safe,
 *          |                       |  job_stop: abort ---> MOVING (requeue)    file let go)
 *          +--key blocked / retry due later----------> MOVING (defer) --> OVER
 *
 * PUBLISHING is a step of its own: the result is submitted, and only when
 * its publication completes is the task file let go (a failing disk is
 * retried with back-off at job_wake(), the file stays in active/). With
 * fsync = yes the publication is handed to the publisher's thread
 * (publisher.h) and the job waits in PUBLISHING for job_published(); the
 * slot is free meanwhile. MOVING
 * is the same for a move out of active/. The job knows nothing of the loop
 * around it: what it needs comes in job_env, what the loop must do next it
 * reads from the job's phase and report. */
#ifndef SPOOLRUN_JOB_H
#define SPOOLRUN_JOB_H

#include <limits.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "executor.h"
#include "history.h"
#include "slurmexec.h"
#include "owner.h"
#include "publisher.h"
#include "spool.h"
#include "task.h"
#include "task_state.h"

struct service;

struct job_env {
	const struct config *cfg;
	struct spool *spool;
	const struct owner_policy *owners;
	const regex_t *usage_limit;  /* compiled [retry] usage_limit_pattern, or NULL */
	const struct executor *executor;
	/* Takes the waits for the disk off the critical path (fsync = yes). */
	struct publisher *publisher;
	const struct slurm_env *slurm; /* with [runner] executor = slurm */
	/* Wall-clock ms at which a usage limit on key lifts; 0 when none. */
	int64_t (*key_blocked_until)(void *ctx, const char *key);
	/* Whether a task other than the file name holds id now (waiting in
	 * deferred/ for a retry, or in flight): a new file with that id is a
	 * duplicate even before any result exists. */
	bool (*id_in_use)(void *ctx, const char *id, const char *name);
	void *ctx;
	unsigned *jitter_seed;
	const struct history *history; /* run times for auto timeouts; NULL: none */
	struct service *service;     /* told of each step (service.h); may be NULL */
};

enum job_origin {
	JOB_NEW,       /* claimed from incoming/ */
	JOB_RETRY,     /* taken back from deferred/ when its time came */
	JOB_RECOVERED, /* found in active/ at start-up: its last run was interrupted */
	JOB_COMPLETED, /* a completion record left by a stop: publish it (name: the record's) */
};

enum job_phase {
	JOB_BEGIN,      /* in active/, not read yet */
	JOB_RUNNING,    /* its executor runs it */
	JOB_PUBLISHING, /* its result is submitted; the file waits in active/ */
	JOB_MOVING,     /* to leave active/ for deferred/ or incoming/ */
	JOB_OVER,       /* nothing left to do; report.end says how it ended */
};

enum job_end {
	JOB_PUBLISHED, /* its result is published; the file is gone from active/ */
	JOB_DEFERRED,  /* moved to deferred/ until not_before_ms */
	JOB_REQUEUED,  /* the runner is stopping: put back to run at the next start */
	JOB_LEFT,      /* left in active/ (stopped while the disk failed) */
};

struct job_report {
	enum job_end end;
	bool succeeded;                  /* JOB_PUBLISHED with status succeeded */
	char id[TASK_ID_MAX + 1];
	char deferred_name[NAME_MAX + 1]; /* JOB_DEFERRED: its name in deferred/ */
	int64_t not_before_ms;           /* JOB_DEFERRED */
	char limit_key[TASK_ID_MAX + 1]; /* JOB_DEFERRED for a usage limit: the key to hold */
};

enum job_move { MOVE_DEFER, MOVE_REQUEUE };

struct job {
	char name[NAME_MAX + 1];   /* in active/ */
	enum job_origin origin;
	enum job_phase phase;
	struct job_report rep;
	struct task t;
	bool parsed;               /* t is a valid task */
	struct task_state st;
	char stamp[96];            /* inode:mtime:size, for information */
	char identity[96];         /* inode:bBIRTH: what tells this file from another */
	struct identity user;      /* with run_as_owner: who it runs as */
	bool as_user;
	bool skipping;             /* published "skipped" at BEGIN, with skip as its error */
	struct task_error skip;
	/* RUNNING */
	const struct executor *ex;
	void *handle;
	struct run_options opt;
	int64_t started_ms;        /* wall clock, for the running table */
	bool cancelled;            /* cancel/<id> asked while it ran */
	bool stopping;             /* the runner stops: put it back */
	bool requeueing;           /* being put back (not deferred for a retry) */
	struct spool *log_spool;   /* where its logs go */
	/* PUBLISHING: record the completion, let the file go, publish */
	enum { PUB_RECORD, PUB_LET_GO, PUB_RENAME } pub_step;
	json_t *result;            /* until recorded */
	char rec[NAME_MAX + 1];    /* the completion record (spool.h) */
	char status[32];           /* the result's status, for the log */
	int publish_first;         /* 1: ID.json first; 2: a duplicate, from ID@2.json */
	bool rejected;             /* the file goes to rejected/ once published */
	char kept[NAME_MAX + 1];   /* its name there */
	bool cancel_spent;         /* cancel/<id> to remove once published */
	bool pub_fresh;            /* submitted, not written yet: job_hand_over */
	struct publication pub;    /* handed to the publisher's thread... */
	bool pub_pending;          /* ...until job_published() */
	unsigned long claim_ticket; /* the claim's fsync (publisher_claim_sync_start) */
	struct publisher *claim_unsynced; /* whose fsync the start still waits for */
	/* MOVING */
	enum job_move move;
	int64_t defer_until_ms;
	bool defer_usage_limit;
	/* PUBLISHING and MOVING: a failed step is tried again at retry_at_ns */
	int64_t retry_at_ns;
	int retry_delay_ms;
};

/* A job for active/name (name must fit NAME_MAX). */
void job_init(struct job *j, const char *name, enum job_origin origin);
void job_clear(struct job *j);

/* Before job_begin: publish it as "skipped" with e (dependency_failed or
 * dependency_cycle) instead of running it. */
void job_skip(struct job *j, const struct task_error *e);

/* BEGIN: reads, checks and starts it, or ends it (refused, cancelled…). */
void job_begin(const struct job_env *env, struct job *j);

/* Steps a job at monotonic ns now: RUNNING checks its executor, and a job
 * whose task is over concludes (retry decision, then PUBLISHING or MOVING);
 * PUBLISHING and MOVING try their step when due. */
void job_step(const struct job_env *env, struct job *j, int64_t now);

/* PUBLISHING, just submitted: writes the result (its completion record)
 * and hands it to the publisher, or publishes it here. The runner calls it
 * for every job once it has started what it could in the same turn, so
 * that the next task's claim and start never wait behind the writing of the
 * previous result (on a file system where creating a file is slow, that is
 * most of a short task's cost); job_step does it too. */
void job_hand_over(const struct job_env *env, struct job *j);

/* The publisher returned j->pub (publisher_reap): the job goes on at the
 * next job_step, from the step the thread reached. */
void job_published(struct job *j);

/* When job_step must be called again without an event (monotonic ns;
 * INT64_MAX: only on events). */
int64_t job_wake(const struct job *j, int64_t now);

/* cancel/<id> for this running task: kill it, publish it as cancelled. */
void job_cancel(struct job *j);

/* The runner stops: kill the running task and put it back. */
void job_stop(struct job *j);

/* Whether the job holds a live executor handle (it uses a slot). */
bool job_running(const struct job *j);

#endif
