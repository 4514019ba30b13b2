#define _GNU_SOURCE
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "signals.h"
#include "timeutil.h"

static pid_t running[HOOK_MAX];
static size_t nrunning;
static uint64_t failures;

/* What the supervisor knows about its hook. */
struct watch {
	const char *id;
	pid_t pid;              /* the shell; also its process group */
	int out;                /* read end of the hook's stdout+stderr, -1 at EOF */
	int sigfd;
	int64_t deadline;       /* monotonic ns; INT64_MAX: none */
	bool main_done, timed_out, children_left;
	int main_status;
	char line[1024];        /* the line being collected */
	size_t linelen, logged, dropped;
};

static void set_env(const struct hook_info *in)
{
	char code[16] = "";
	if (in->has_exit_code)
		snprintf(code, sizeof code, "%d", in->exit_code);
	setenv("SPOOLRUN_RESULT", in->result_path, 1);
	setenv("SPOOLRUN_ID", in->id, 1);
	setenv("SPOOLRUN_STATUS", in->status, 1);
	setenv("SPOOLRUN_EXIT_CODE", code, 1);
	setenv("SPOOLRUN_SPOOL", in->spool, 1);
}

/* SIGKILL to the hook's group and to every child of the supervisor (the
 * hook's shell, and orphans reparented to the subreaper). */
static void kill_all(pid_t group)
{
	kill(-group, SIGKILL);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	int pid;
	if (!f)
		return;
	while (fscanf(f, "%d", &pid) == 1) {
		pid_t pg = getpgid(pid);
		if (pg > 1 && pg != getpgrp())
			kill(-pg, SIGKILL);
		kill(pid, SIGKILL);
	}
	fclose(f);
}

static void flush_line(struct watch *w)
{
	if (!w->linelen)
		return;
	for (size_t i = 0; i < w->linelen; i++)
		if ((unsigned char)w->line[i] < 0x20 && w->line[i] != '\t')
			w->line[i] = '?';
	log_info("%s: hook: %.*s", w->id, (int)w->linelen, w->line);
	w->linelen = 0;
}

/* The hook's output, line by line, into the log until HOOK_LOG_BYTES. */
static void take_output(struct watch *w, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (w->logged >= HOOK_LOG_BYTES) {
			w->dropped += n - i;
			return;
		}
		w->logged++;
		if (buf[i] == '\n')
			flush_line(w);
		else {
			if (w->linelen == sizeof w->line)
				flush_line(w);
			w->line[w->linelen++] = buf[i];
		}
	}
}

static void read_output(struct watch *w)
{
	char buf[4096];
	ssize_t n = xread(w->out, buf, sizeof buf);
	if (n > 0)
		take_output(w, buf, (size_t)n);
	else if (n == 0 || errno != EAGAIN) {
		close(w->out);
		w->out = -1;
	}
}

static void reap_all(struct watch *w)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0 || (pid < 0 && errno == EINTR))
		if (pid == w->pid) {
			w->main_done = true;
			w->main_status = status;
		}
	w->children_left = pid == 0;
}

static void report(const struct watch *w, double timeout_s)
{
	int st = w->main_status;
	if (w->dropped)
		log_info("%s: hook: %zu more byte(s) of output not logged", w->id, w->dropped);
	if (w->timed_out)
		log_warnx("%s: on_result hook timed out after %gs; killed with its descendants",
			  w->id, timeout_s);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		log_warnx("%s: on_result hook failed: command not found (exit status 127)", w->id);
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		log_warnx("%s: on_result hook failed: exit status %d", w->id, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		log_warnx("%s: on_result hook failed: killed by %s", w->id,
			  signals_name(WTERMSIG(st)));
	else
		log_debug("%s: on_result hook succeeded", w->id);
}

/* Until the hook and everything it started are gone and reaped. */
static void supervise_loop(struct watch *w)
{
	bool leftovers_killed = false;
	for (;;) {
		int64_t now = time_monotonic_ns();
		if (!w->main_done && !w->timed_out && now >= w->deadline) {
			w->timed_out = true;
			kill_all(w->pid);
		}
		if (w->main_done && !leftovers_killed) {
			leftovers_killed = true;
			kill_all(w->pid);
		}
		if (w->main_done && !w->children_left)
			break;
		struct pollfd p[2] = { { w->sigfd, POLLIN, 0 }, { w->out, POLLIN, 0 } };
		int64_t left = w->deadline == INT64_MAX || w->main_done ? -1
			       : (w->deadline - now) / NS_PER_MS + 1;
		if (poll(p, w->out >= 0 ? 2 : 1, left > INT32_MAX ? INT32_MAX : (int)left) < 0 &&
		    errno != EINTR)
			break;
		if (w->out >= 0 && p[1].revents)
			read_output(w);
		if (p[0].revents) {
			struct signalfd_siginfo si;
			while (read(w->sigfd, &si, sizeof si) > 0)
				;
			reap_all(w);
			if (leftovers_killed || w->timed_out)
				kill_all(w->pid); /* orphans that arrived since */
		}
	}
	/* Everything is gone: what is still in the pipe is all there is. */
	while (w->out >= 0)
		read_output(w);
	flush_line(w);
}

static pid_t start_shell(const char *command, int out_w)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (setsid() < 0 || null < 0 || dup2(null, 0) < 0 || dup2(out_w, 1) < 0 ||
	    dup2(out_w, 2) < 0)
		_exit(126);
	signals_reset_child();
	execl("/bin/sh", "sh", "-c", command, (char *)NULL);
	_exit(127);
}

static void __attribute__((noreturn)) supervise(const char *command, double timeout_s,
						const struct hook_info *in)
{
	/* The watcher's descriptors (its spool lock above all) must not live
	 * on in a process that may outlast it. */
	syscall(SYS_close_range, 3U, ~0U, 0U);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	prctl(PR_SET_NAME, "spoolrun-hook", 0, 0, 0);
	set_env(in);
	struct watch w = { .id = in->id, .out = -1, .deadline = INT64_MAX };
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int pipefd[2];
	if ((w.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) < 0) {
		log_warn("%s: on_result hook failed: cannot set it up", in->id);
		_exit(1);
	}
	if (timeout_s > 0)
		w.deadline = time_monotonic_ns() + time_seconds_to_ns(timeout_s);
	w.pid = start_shell(command, pipefd[1]);
	close(pipefd[1]);
	if (w.pid < 0) {
		log_warn("%s: on_result hook failed: cannot fork", in->id);
		_exit(1);
	}
	w.out = pipefd[0];
	fcntl(w.out, F_SETFL, O_NONBLOCK);
	w.children_left = true;
	supervise_loop(&w);
	report(&w, timeout_s);
	bool ok = !w.timed_out && WIFEXITED(w.main_status) && WEXITSTATUS(w.main_status) == 0;
	_exit(ok ? 0 : 1);
}

pid_t hook_start(const char *command, double timeout_s, const struct hook_info *info)
{
	if (nrunning >= HOOK_MAX) {
		failures++;
		log_warnx("%s: on_result hook not run: %d hooks are still running", info->id,
			  HOOK_MAX);
		return -1;
	}
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		failures++;
		log_warn("%s: on_result hook not run: cannot fork", info->id);
		return -1;
	}
	if (pid == 0)
		supervise(command, timeout_s, info);
	running[nrunning++] = pid;
	return pid;
}

bool hook_owns(pid_t pid)
{
	for (size_t i = 0; i < nrunning; i++)
		if (running[i] == pid)
			return true;
	return false;
}

bool hook_reaped(pid_t pid, int status)
{
	for (size_t i = 0; i < nrunning; i++)
		if (running[i] == pid) {
			running[i] = running[--nrunning];
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failures++;
			return true;
		}
	return false;
}

size_t hook_running(void)
{
	return nrunning;
}

uint64_t hook_failures(void)
{
	return failures;
}

void hook_wait_all(void)
{
	if (nrunning)
		log_info("waiting for %zu on_result hook(s) to finish", nrunning);
	while (nrunning) {
		int status;
		pid_t pid = waitpid(running[nrunning - 1], &status, 0);
		if (pid > 0)
			hook_reaped(pid, status);
		else if (errno != EINTR)
			running[--nrunning] = 0; /* reaped elsewhere unnoticed: forget it */
	}
}
