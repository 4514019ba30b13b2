/* hook: the [hooks] on_result command, run after each published result
 * without ever holding up the watcher.
 *
 * Each hook gets a small supervising process of its own (hook_start forks
 * it and returns at once). The supervisor
 *   - closes every descriptor of the watcher's (the spool lock among them),
 *   - makes itself a child subreaper, so whatever the hook leaves behind
 *     (even after setsid or a double fork) is reparented to it, not to the
 *     watcher, whose orphans all belong to tasks,
 *   - runs `/bin/sh -c COMMAND` in a new session with stdin /dev/null and
 *     SPOOLRUN_RESULT, SPOOLRUN_ID, SPOOLRUN_STATUS, SPOOLRUN_EXIT_CODE and
 *     SPOOLRUN_SPOOL in its environment,
 *   - copies the hook's output (stdout and stderr together) into the
 *     watcher's log, at most HOOK_LOG_BYTES of it,
 *   - at the timeout kills the hook's process group and every descendant
 *     with SIGKILL; when the hook's shell exits, kills what it left behind,
 *   - writes one warning line naming the id when the hook failed (non-zero
 *     exit, signal, timeout, not found), then exits: 0 for success, 1 not.
 *
 * Why a supervisor, not the hook as the watcher's own child: the timeout
 * and the kill of descendants hold even while the watcher is busy, stopped
 * or killed with -9; the watcher's loop has no extra pipe to read and no
 * extra deadline; and the one process it must know is the supervisor. The
 * loop's whole part is: hook_start(), and whoever reaps the watcher's
 * children (run_reap_all) passes each pid to hook_reaped() first and never
 * charges a pid hook_owns() to a task. A pid stays registered until
 * hook_reaped() says it is gone, so a reused pid is never mistaken.
 *
 * The registry of running supervisors (at most HOOK_MAX) is this module's
 * state; a result published while HOOK_MAX hooks run gets no hook (a
 * warning names its id). */
#ifndef SPOOLRUN_HOOK_H
#define SPOOLRUN_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOOK_MAX 64
#define HOOK_LOG_BYTES 4096

struct hook_info {
	const char *result_path;  /* absolute path of the published result */
	const char *id;
	const char *status;
	bool has_exit_code;       /* SPOOLRUN_EXIT_CODE is empty when false */
	int exit_code;
	const char *spool;        /* the spool root */
};

/* Starts command for info, supervised, timeout_s seconds at most (0: no
 * limit). Returns the supervisor's pid, or -1 (logged, counted as a
 * failure) when it cannot start. Never waits. */
pid_t hook_start(const char *command, double timeout_s, const struct hook_info *info);

/* The caller reaped pid with wait status status: true when it was a hook's
 * supervisor (then it is forgotten, and counted when it failed). */
bool hook_reaped(pid_t pid, int status);

/* Whether pid is a running hook's supervisor. */
bool hook_owns(pid_t pid);

/* Supervisors not reaped yet. */
size_t hook_running(void);

/* Hooks that failed, timed out or could not start, since the watcher started. */
uint64_t hook_failures(void);

/* At stop: waits for every running hook (each ends by its own timeout). */
void hook_wait_all(void);

#endif
