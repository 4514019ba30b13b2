#define _GNU_SOURCE
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "hook.h"
#include "log.h"
#include "signals.h"
#include "timeutil.h"

#define CHUNK (128 * 1024)

enum kill_reason { KILL_NONE, KILL_TIMEOUT, KILL_IDLE, KILL_ABORT, KILL_LEFTOVERS };

struct pump {
	const struct task *t;
	const struct run_options *opt;
	struct run_outcome *o;
	struct spawned sp;
	const char *stdin_pos;
	size_t stdin_left;
	bool main_reaped;
	bool children_left;
	int main_status;
	int64_t start_ns;
	int64_t deadline;       /* task timeout, INT64_MAX for none */
	int64_t idle_ns;        /* idle_timeout, 0 for none */
	int64_t last_output;    /* when either stream last had data */
	enum kill_reason why;
	int kill_phase;         /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
	int64_t kill_at;        /* when phase 1 escalates */
	bool reaped;            /* a process was reaped since the last advance() */
	char *buf;              /* CHUNK bytes on run_task's stack: stays mapped between tasks */
};

int run_init(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

static void signal_group(pid_t pgid, int sig)
{
	/* Never our own group: a task's groups are its own sessions. */
	if (pgid > 1 && pgid != getpgrp())
		kill(-pgid, sig);
}

/* Direct children of the runner: the task's main process until it is
 * reaped, then any orphaned descendant the subreaper inherited. */
static void signal_children(int sig)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	if (f) {
		int pid;
		while (fscanf(f, "%d", &pid) == 1) {
			if (hook_owns(pid))
				continue; /* a hook's supervisor, not the task's */
			signal_group(getpgid(pid), sig);
			kill(pid, sig);
		}
		fclose(f);
		return;
	}
	/* Kernels without the children file: scan every process's parent. */
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		int pid = atoi(de->d_name), ppid = 0;
		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		FILE *s = fopen(path, "re");
		if (!s)
			continue;
		/* The comm field may hold spaces; ppid follows the last ')'. */
		char line[512];
		if (fgets(line, sizeof line, s)) {
			char *rp = strrchr(line, ')');
			if (rp)
				sscanf(rp + 1, " %*c %d", &ppid);
		}
		fclose(s);
		if (ppid == getpid() && !hook_owns(pid)) {
			signal_group(getpgid(pid), sig);
			kill(pid, sig);
		}
	}
	closedir(d);
}

/* Whether a child of the runner other than a hook's supervisor is alive. */
static bool task_children_alive(void)
{
	if (!hook_running())
		return true;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	if (!f)
		return true;
	int pid;
	bool alive = false;
	while (!alive && fscanf(f, "%d", &pid) == 1)
		alive = !hook_owns(pid);
	fclose(f);
	return alive;
}

static void signal_tree(struct pump *p, int sig)
{
	signal_group(p->sp.pid, sig);
	signal_children(sig);
}

static void start_kill(struct pump *p, enum kill_reason why, int64_t now)
{
	p->why = why;
	signal_tree(p, SIGTERM);
	signal_tree(p, SIGCONT); /* a stopped process cannot act on TERM */
	p->kill_phase = 1;
	p->kill_at = now + time_seconds_to_ns(p->t->kill_grace);
	if (p->kill_at <= now) {
		signal_tree(p, SIGKILL);
		p->kill_phase = 2;
	}
}

static void add_usage(struct rusage *sum, const struct rusage *ru)
{
	timeradd(&sum->ru_utime, &ru->ru_utime, &sum->ru_utime);
	timeradd(&sum->ru_stime, &ru->ru_stime, &sum->ru_stime);
	if (ru->ru_maxrss > sum->ru_maxrss)
		sum->ru_maxrss = ru->ru_maxrss;
}

static void reap(struct pump *p)
{
	for (;;) {
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, WNOHANG, &ru);
		if (pid > 0 && hook_reaped(pid, status))
			continue;
		if (pid > 0) {
			p->reaped = true;
			add_usage(&p->o->usage, &ru);
			if (pid == p->sp.pid) {
				p->main_reaped = true;
				p->main_status = status;
				p->o->finished_ms = time_realtime_ms();
				p->o->duration_ms = (time_monotonic_ns() - p->start_ns) / NS_PER_MS;
			}
			continue;
		}
		if (pid == 0) {
			p->children_left = task_children_alive();
			return;
		}
		if (errno == EINTR)
			continue;
		p->children_left = false; /* ECHILD */
		return;
	}
}

static void sink(struct pump *p, struct run_stream *s, const char *data, size_t n)
{
	s->bytes += n;
	if (capture_append(&s->cap, data, n) < 0)
		log_warn("cannot keep task output in memory");
	if (s == &p->o->out)
		events_feed(&p->o->events, data, n);
	if (!p->opt->open_log || s->log_errno)
		return;
	if (s->log_fd < 0) {
		s->log_fd = p->opt->open_log(p->opt->ctx, s == &p->o->out ? "stdout" : "stderr");
		if (s->log_fd < 0) {
			s->log_errno = errno;
			return;
		}
		s->log_created = true;
	}
	uint64_t max_log = p->opt->max_log;
	size_t room = max_log - s->log_bytes < n ? (size_t)(max_log - s->log_bytes) : n;
	if (room < n)
		s->log_truncated = true;
	if (room == 0)
		return;
	/* A full disk stops the log, not the task: the result records it. */
	if (xwrite_all(s->log_fd, data, room) < 0)
		s->log_errno = errno;
	else
		s->log_bytes += room;
}

/* Reads what one stream has; closes it at EOF. Reads once per wakeup so
 * neither stream can starve the other. */
static void read_stream(struct pump *p, int *fd, struct run_stream *s)
{
	ssize_t n = xread(*fd, p->buf, CHUNK);
	if (n > 0) {
		sink(p, s, p->buf, (size_t)n);
		if (p->idle_ns)
			p->last_output = time_monotonic_ns();
		return;
	}
	if (n < 0 && errno == EAGAIN)
		return;
	close(*fd);
	*fd = -1;
}

static void feed_stdin(struct pump *p)
{
	size_t want = p->stdin_left < CHUNK ? p->stdin_left : CHUNK;
	ssize_t n = want ? write(p->sp.stdin_fd, p->stdin_pos, want) : 0;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		p->stdin_pos += n;
		p->stdin_left -= (size_t)n;
		if (p->stdin_left)
			return;
	}
	/* Done, or the task closed its stdin (EPIPE): no more to give. */
	p->o->stdin_unwritten = p->stdin_left;
	close(p->sp.stdin_fd);
	p->sp.stdin_fd = -1;
}

static int handle_signals(struct pump *p, int64_t now)
{
	for (;;) {
		int sig = signals_read(p->opt->signal_fd);
		if (sig <= 0)
			return sig;
		if (sig == SIGCHLD)
			reap(p);
		else if (p->opt->on_signal && p->opt->on_signal(p->opt->ctx, sig) &&
			 !p->main_reaped && p->why == KILL_NONE)
			start_kill(p, KILL_ABORT, now);
	}
}

/* Once nothing of the task is alive, a pipe still open is held by a
 * process outside the tree (a passed descriptor): take what it has and stop. */
static void drain_orphaned_pipes(struct pump *p)
{
	int *fds[2] = { &p->sp.stdout_fd, &p->sp.stderr_fd };
	struct run_stream *ss[2] = { &p->o->out, &p->o->err };
	for (int i = 0; i < 2; i++)
		while (*fds[i] >= 0) {
			ssize_t n = xread(*fds[i], p->buf, CHUNK);
			if (n <= 0) {
				close(*fds[i]);
				*fds[i] = -1;
			} else
				sink(p, ss[i], p->buf, (size_t)n);
		}
}

/* Acts on deadlines and on the state of the tree; returns the poll
 * timeout in ns (-1: none), or -2 when the task is completely done. */
static int64_t advance(struct pump *p, int64_t now)
{
	bool running = !p->main_reaped && p->why == KILL_NONE;
	int64_t idle_at = p->idle_ns ? p->last_output + p->idle_ns : INT64_MAX;
	if (running && now >= p->deadline)
		start_kill(p, KILL_TIMEOUT, now);
	else if (running && now >= idle_at)
		start_kill(p, KILL_IDLE, now);
	if (p->kill_phase == 1 && now >= p->kill_at) {
		signal_tree(p, SIGKILL);
		p->kill_phase = 2;
	}
	if (p->main_reaped && !p->children_left) {
		drain_orphaned_pipes(p);
		return -2;
	}
	if (p->main_reaped && p->why == KILL_NONE) {
		p->o->leftovers_killed = true;
		start_kill(p, KILL_LEFTOVERS, now);
	}
	/* Processes orphaned by the kill land on us (a daemon whose parent
	 * just died, say) and get the phase's signal too: TERM during the
	 * grace, KILL after it. */
	if (p->kill_phase == 2)
		signal_children(SIGKILL);
	else if (p->kill_phase == 1 && p->reaped) {
		signal_children(SIGTERM);
		signal_children(SIGCONT);
	}
	p->reaped = false;
	int64_t wake = INT64_MAX;
	if (!p->main_reaped && p->why == KILL_NONE)
		wake = p->deadline < idle_at ? p->deadline : idle_at;
	if (p->kill_phase == 1)
		wake = p->kill_at;
	return wake == INT64_MAX ? -1 : wake - now;
}

static int pump_loop(struct pump *p)
{
	for (;;) {
		int64_t now = time_monotonic_ns();
		int64_t wait_ns = advance(p, now);
		if (wait_ns == -2)
			return 0;
		struct pollfd fds[5];
		int nfds = 0, iout = -1, ierr = -1, iin = -1, iextra = -1;
		if (p->sp.stdout_fd >= 0)
			fds[iout = nfds++] = (struct pollfd){ p->sp.stdout_fd, POLLIN, 0 };
		if (p->sp.stderr_fd >= 0)
			fds[ierr = nfds++] = (struct pollfd){ p->sp.stderr_fd, POLLIN, 0 };
		if (p->sp.stdin_fd >= 0)
			fds[iin = nfds++] = (struct pollfd){ p->sp.stdin_fd, POLLOUT, 0 };
		if (p->opt->on_extra && p->opt->extra_fd >= 0)
			fds[iextra = nfds++] = (struct pollfd){ p->opt->extra_fd, POLLIN, 0 };
		fds[nfds++] = (struct pollfd){ p->opt->signal_fd, POLLIN, 0 };
		struct timespec ts = { wait_ns / NS_PER_SEC, wait_ns % NS_PER_SEC };
		if (ppoll(fds, (nfds_t)nfds, wait_ns < 0 ? NULL : &ts, NULL) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (iout >= 0 && fds[iout].revents)
			read_stream(p, &p->sp.stdout_fd, &p->o->out);
		if (ierr >= 0 && fds[ierr].revents)
			read_stream(p, &p->sp.stderr_fd, &p->o->err);
		if (iin >= 0 && fds[iin].revents)
			feed_stdin(p);
		if (iextra >= 0 && fds[iextra].revents && p->opt->on_extra(p->opt->ctx) &&
		    !p->main_reaped && p->why == KILL_NONE)
			start_kill(p, KILL_ABORT, time_monotonic_ns());
		if (fds[nfds - 1].revents && handle_signals(p, time_monotonic_ns()) < 0)
			return -1;
	}
}

static void set_status(struct pump *p)
{
	struct run_outcome *o = p->o;
	int st = p->main_status;
	if (WIFEXITED(st))
		o->exit_code = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		o->term_signal = WTERMSIG(st);
	o->idle_timeout = p->why == KILL_IDLE;
	if (p->why == KILL_TIMEOUT || p->why == KILL_IDLE)
		o->status = RUN_TIMEOUT;
	else if (p->why == KILL_ABORT)
		o->status = RUN_ABORTED;
	else
		o->status = WIFEXITED(st) ? RUN_EXITED : RUN_SIGNALED;
}

/* A published result must not name a log that a power cut loses. */
static void close_logs(struct run_outcome *o, bool sync)
{
	struct run_stream *ss[2] = { &o->out, &o->err };
	for (int i = 0; i < 2; i++) {
		if (ss[i]->log_fd < 0)
			continue;
		if (sync && fdatasync(ss[i]->log_fd) < 0 && !ss[i]->log_errno)
			ss[i]->log_errno = errno;
		if (close(ss[i]->log_fd) < 0 && !ss[i]->log_errno)
			ss[i]->log_errno = errno;
		ss[i]->log_fd = -1;
	}
}

int run_task(const struct task *t, const struct run_options *opt, struct run_outcome *o)
{
	memset(o, 0, sizeof *o);
	o->exit_code = -1;
	o->out.log_fd = o->err.log_fd = -1;
	capture_init(&o->out.cap, opt->max_output);
	capture_init(&o->err.cap, opt->max_output);
	events_init(&o->events, t->output, opt->max_output);
	char buf[CHUNK];
	struct pump pump = {
		.t = t, .opt = opt, .o = o, .buf = buf,
		.stdin_pos = t->stdin_data, .stdin_left = t->stdin_len, .children_left = true,
		.start_ns = time_monotonic_ns(),
	}, *p = &pump;
	p->deadline = t->timeout > 0 ? p->start_ns + time_seconds_to_ns(t->timeout) : INT64_MAX;
	p->idle_ns = time_seconds_to_ns(t->idle_timeout);
	p->last_output = p->start_ns;
	o->started_ms = time_realtime_ms();
	if (spawn_start(t, opt->as_user, &p->sp, &o->spawn_error, &o->usage) < 0) {
		o->status = RUN_SPAWN_ERROR;
		o->finished_ms = time_realtime_ms();
		o->duration_ms = (time_monotonic_ns() - p->start_ns) / NS_PER_MS;
		return 0;
	}
	o->pid = p->sp.pid;
	int rc = pump_loop(p);
	int saved = errno;
	if (rc < 0) {
		/* The runner itself failed: leave nothing of the task behind. */
		signal_tree(p, SIGKILL);
		int st;
		pid_t pid;
		while ((pid = waitpid(-1, &st, 0)) > 0 || errno == EINTR)
			if (pid > 0)
				hook_reaped(pid, st);
	}
	int fds[3] = { p->sp.stdin_fd, p->sp.stdout_fd, p->sp.stderr_fd };
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	set_status(p);
	events_finish(&o->events);
	close_logs(o, opt->sync_logs);
	errno = saved;
	return rc;
}

void run_outcome_clear(struct run_outcome *o)
{
	capture_clear(&o->out.cap);
	capture_clear(&o->err.cap);
	events_clear(&o->events);
}
