/* cgroup: one cgroup v2 per running task, where the runner may create them.
 *
 * With several tasks running, a process a task leaves behind must still be
 * charged to it and killed with it, even after a double fork and setsid.
 * A cgroup says so exactly: every descendant of the task stays in the
 * task's cgroup whatever it does, cgroup.events says when none is left,
 * cgroup.kill kills them all at once, and cpu.stat counts the CPU of every
 * one, reaped by the runner or not.
 *
 * Where: cgroup_setup finds the cgroup2 mount in /proc/self/mountinfo (a
 * pure v2 host has it at /sys/fs/cgroup, a hybrid one at
 * /sys/fs/cgroup/unified; never assumed) and creates spoolrun-PID below the
 * runner's own cgroup (root, or a delegated subtree as under systemd
 * Delegate=yes). Where that fails (no cgroup2, no permission, a read-only
 * mount), cgroups are off and run.h's fallback applies: each task is its
 * own session and an orphan is charged by its session id. */
#ifndef SPOOLRUN_CGROUP_H
#define SPOOLRUN_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates the runner's cgroup; false (and cgroups stay off) when it cannot.
 * Call once; cgroup_teardown removes what it created. */
bool cgroup_setup(void);
void cgroup_teardown(void);
bool cgroup_enabled(void);

/* The runner's cgroup directory (for messages), "" when off. */
const char *cgroup_path(void);

struct cgroup_task {
	int dirfd;      /* -1: no cgroup for this task */
	int procs_fd;   /* its cgroup.procs, written "0" by the child before exec */
	unsigned seq;
};

/* A cgroup for a task about to start; t->dirfd stays -1 when off or on
 * failure (the task then runs without one). */
void cgroup_task_create(struct cgroup_task *t);

/* Whether any process is left in it (cgroup.events "populated"). */
bool cgroup_task_populated(const struct cgroup_task *t);

/* Whether pid is in it (/proc/PID/cgroup). */
bool cgroup_task_has(const struct cgroup_task *t, pid_t pid);

/* Sends sig to every process in it; SIGKILL through cgroup.kill where the
 * kernel has it (5.14), which also catches processes forking meanwhile. */
void cgroup_task_signal(const struct cgroup_task *t, int sig);

/* CPU time of every process that ran in it, microseconds; false if unknown. */
bool cgroup_task_cpu(const struct cgroup_task *t, uint64_t *user_us, uint64_t *system_us);

/* Removes the (empty) cgroup and closes its descriptors. */
void cgroup_task_remove(struct cgroup_task *t);

#endif
