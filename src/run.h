/* run: one task from spawn to the last byte of output and the last reaped
 * descendant.
 *
 * run_task() is the whole life of a process tree: it spawns the task, feeds
 * its stdin, reads stdout and stderr concurrently with one poll() (no
 * deadlock, no line-length limit), writes each stream to its log file and a
 * bounded inline capture, enforces the timeout (SIGTERM to the tree, then
 * SIGKILL after the grace), and when the main process exits kills whatever
 * the task left behind, even processes that left its process group, since
 * the runner is a child subreaper. It returns only when nothing of the task
 * is left running. */
#ifndef SPOOLRUN_RUN_H
#define SPOOLRUN_RUN_H

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
	RUN_ABORTED,     /* the runner killed it because on_signal asked */
};

struct run_options {
	size_t max_output;   /* inline bytes per stream */
	uint64_t max_log;    /* log bytes per stream */
	/* Creates the log of a stream ("stdout" or "stderr") when its first
	 * byte arrives, so a quiet task costs no files; returns an fd or -1
	 * with errno. NULL: no logs. */
	int (*open_log)(void *ctx, const char *stream);
	bool sync_logs;      /* fdatasync logs before returning */
	int signal_fd;       /* from signals_setup(); SIGCHLD wakes the loop */
	const struct identity *as_user; /* run as this user, or NULL: the runner's */
	/* Called for each signal but SIGCHLD; returning true kills the task
	 * (TERM, grace, KILL) and ends it as RUN_ABORTED. May be NULL. */
	bool (*on_signal)(void *ctx, int signo);
	/* Polled too when >= 0 (the runner's inotify fd); on_extra is called
	 * when it is readable and returning true kills the task like on_signal. */
	int extra_fd;
	bool (*on_extra)(void *ctx);
	void *ctx;
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

/* Makes the runner a child subreaper, so descendants that leave the task's
 * process group are still the runner's to kill and reap. Call once. */
int run_init(void);

/* Runs t to completion and fills o (call run_outcome_clear after). Returns
 * 0, or -1 with errno for a failure of the runner itself (poll, signalfd);
 * a task that cannot start is a RUN_SPAWN_ERROR outcome, not -1. */
int run_task(const struct task *t, const struct run_options *opt, struct run_outcome *o);

void run_outcome_clear(struct run_outcome *o);

#endif
