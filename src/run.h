/* run: one local process tree from spawn to the last byte of output and the
 * last reaped descendant, as a state machine the caller's loop steps.
 *
 * A run never blocks and never polls on its own. The loop asks it which
 * descriptors to wait on (run_pollfds), hands back what poll() said
 * (run_on_ready), reaps for every run at once on SIGCHLD (run_reap_all),
 * and calls run_advance after each wakeup: that enforces the timeout and
 * idle timeout (SIGTERM to the tree, SIGCONT, SIGKILL after the grace),
 * kills what the main process left behind, and says when the run is over.
 *
 *   SPAWNED --both streams at EOF--+--main process reaped--> REAPED
 *      |  (any order)                                           |
 *      +--timeout/idle/run_abort--> KILLING (TERM, grace, KILL) |
 *                                                               v
 *                         no process of the task left --> DONE (run_finish)
 *
 * Whose process is whose. The runner is a child subreaper, so a task's
 * orphans become the runner's children. Each task is its own session
 * (spawn.h: setsid), and an orphan is charged to the run whose session it
 * is in (read from /proc/PID/stat before it is reaped). An orphan that left
 * its task's session (a double fork with setsid) cannot be told apart
 * without cgroups: it is charged to every run, so whichever run ends first
 * kills it (with one slot this is exactly "every leftover of the task").
 * Runs live in a registry kept by this module (run_reap_all walks it). */
#ifndef SPOOLRUN_RUN_H
#define SPOOLRUN_RUN_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "capture.h"
#include "events.h"
#include "spawn.h"
#include "task.h"

struct run_stream {
	struct capture cap;
	uint64_t bytes;      /* total the task wrote */
	bool log_created;    /* its log file exists: the task wrote to this stream */
	uint64_t log_bytes;  /* written to the log file */
	bool log_truncated;  /* stopped at max_log */
	int log_errno;       /* first error creating or writing the log, 0 if none */
	int log_fd;          /* while running: -1 until the first byte */
};

enum run_status {
	RUN_EXITED,      /* main process exited; exit_code says how */
	RUN_SIGNALED,    /* main process died of a signal the runner did not send */
	RUN_TIMEOUT,     /* the runner killed it at its deadline or idle_timeout */
	RUN_SPAWN_ERROR, /* it never started; spawn_error says why */
	RUN_ABORTED,     /* the runner killed it because run_abort asked */
};

struct run_options {
	size_t max_output;   /* inline bytes per stream */
	uint64_t max_log;    /* log bytes per stream */
	/* Creates the log of a stream ("stdout" or "stderr") when its first
	 * byte arrives, so a quiet task costs no files; returns an fd or -1
	 * with errno. NULL: no logs. */
	int (*open_log)(void *ctx, const char *stream);
	bool sync_logs;      /* fdatasync logs before run_finish returns */
	const struct identity *as_user; /* run as this user, or NULL: the runner's */
	void *ctx;
	/* Called with ctx just before the process is created (spawn.h's
	 * spawn_gate); may be NULL. */
	void (*before_spawn)(void *ctx);
};

struct run_outcome {
	enum run_status status;
	pid_t pid;
	int exit_code;           /* -1 unless the main process exited */
	int term_signal;         /* 0 unless it died of a signal */
	int64_t started_ms;      /* wall clock, ms since the epoch */
	int64_t finished_ms;
	int64_t duration_ms;     /* monotonic, start to main process exit */
	struct rusage usage;     /* summed over every reaped process of the task */
	struct spawn_error spawn_error;
	uint64_t stdin_unwritten; /* stdin bytes the task closed without reading */
	bool leftovers_killed;   /* processes outlived the main one and were killed */
	bool idle_timeout;       /* RUN_TIMEOUT came from idle_timeout */
	struct run_stream out, err;
	struct events events;    /* stdout as JSON, for "output": "jsonl"/"json" */
};

struct run;

/* Makes the runner a child subreaper, so descendants that leave the task's
 * process group are still the runner's to kill and reap. Call once. */
int run_init(void);

/* Spawns t. Returns a run (never NULL but for ENOMEM); a task that cannot
 * start is a run already done, whose outcome is RUN_SPAWN_ERROR. t and opt
 * must outlive the run. */
struct run *run_start(const struct task *t, const struct run_options *opt);

/* The main process's pid (0 when it never started). */
pid_t run_pid(const struct run *r);

/* Bytes written so far to stdout and stderr. */
void run_bytes(const struct run *r, uint64_t *out, uint64_t *err);

/* Fills up to max pollfds (3 suffice) with what the run waits on; returns
 * how many. After poll(), pass the same entries back to run_on_ready. */
int run_pollfds(const struct run *r, struct pollfd *fds, int max);
void run_on_ready(struct run *r, const struct pollfd *fds, int n);

/* Kills the task's tree (TERM, grace, KILL); it ends as RUN_ABORTED unless
 * it had already ended on its own. */
void run_abort(struct run *r);

/* On SIGCHLD: reaps every exited child of the runner and charges each to
 * its run; a child no run owns (a stray left after its task ended) is
 * reaped and forgotten. */
void run_reap_all(void);

/* Acts on deadlines and the state of the tree at monotonic time now (ns).
 * Returns the next monotonic time it must be called again (INT64_MAX:
 * only an event will change anything), or -1 when the run is over. */
int64_t run_advance(struct run *r, int64_t now);

/* For a run that is over: fills o (call run_outcome_clear after) and frees
 * r. Also valid on a run that is not over (the runner itself failing): the
 * tree is killed and reaped first, blocking. */
void run_finish(struct run *r, struct run_outcome *o);

void run_outcome_clear(struct run_outcome *o);

/* One task alone, blocking, for `spoolrun exec`: steps a run with its own
 * poll() over its pipes and signal_fd (signals.h) until it is over.
 * on_signal(ctx, signo) is called for each signal but SIGCHLD; returning
 * true aborts the run. 0, or -1 with errno when poll itself failed (the
 * task is then killed). */
int run_task(const struct task *t, const struct run_options *opt, int signal_fd,
	     bool (*on_signal)(void *ctx, int signo), void *ctx, struct run_outcome *o);

#endif
