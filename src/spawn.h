/* spawn: start a task's process with its pipes, or say exactly why not.
 *
 * The child gets its own session and process group, default signal
 * dispositions, an empty mask, no descriptor of the runner's beyond 0-2,
 * and the runner's environment with the task's overrides. Whether exec
 * succeeded is known when spawn_start returns: the child reports a failure
 * through a close-on-exec pipe (git's run-command does the same), so a
 * missing program or a bad cwd is an error, never a task that "ran". */
#ifndef SPOOLRUN_SPAWN_H
#define SPOOLRUN_SPAWN_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "task.h"

/* Who a task runs as when the runner is root and [spool] run_as_owner is
 * set; resolved by the caller (getpwuid, getgrouplist) before the fork,
 * since the child may only make async-signal-safe calls. */
struct identity {
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
};

struct spawned {
	pid_t pid;      /* also the process group and session id */
	int stdin_fd;   /* write end, non-blocking; -1 when stdin is /dev/null */
	int stdout_fd;  /* read ends, non-blocking */
	int stderr_fd;
};

struct spawn_error {
	const char *stage; /* "exec", "chdir", "setsid", "dup2", "setrlimit", "setuid",
			      "pipe", "fork", "environment" */
	int err;           /* errno of that stage */
};

/* Called once the environment and descriptors are ready, just before the
 * process is created (NULL: none): whatever must be durable before a task
 * may run is waited for there, so the preparation overlaps that wait. */
struct spawn_gate {
	void (*wait)(void *ctx);
	void *ctx;
};

/* Starts task t, with its limits, as user (NULL: the runner's own
 * identity), in the cgroup whose cgroup.procs is open as cgroup_procs (-1:
 * none; cgroup.h), after gate (may be NULL). 0: s is filled and the caller
 * owns its fds and child. -1: e says what failed; any child that was forked
 * is already reaped and its resource usage added to *usage. */
int spawn_start(const struct task *t, const struct identity *user, int cgroup_procs,
		const struct spawn_gate *gate, struct spawned *s, struct spawn_error *e,
		struct rusage *usage);

#endif
