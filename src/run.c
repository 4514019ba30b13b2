#define _GNU_SOURCE
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "fsutil.h"
#include "hook.h"
#include "log.h"
#include "signals.h"
#include "timeutil.h"

#define CHUNK (128 * 1024)

enum kill_reason { KILL_NONE, KILL_TIMEOUT, KILL_IDLE, KILL_ABORT, KILL_LEFTOVERS };
enum kill_phase { PHASE_NONE, PHASE_TERM_SENT, PHASE_KILL_SENT };

struct run {
	struct run *next, *prev;  /* the registry */
	const struct task *t;
	const struct run_options *opt;
	struct run_outcome o;
	struct spawned sp;
	const char *stdin_pos;
	size_t stdin_left;
	bool main_reaped;
	bool children_left;       /* known after the main process is reaped */
	bool done;
	int main_status;
	int64_t start_ns;
	int64_t deadline;         /* task timeout, INT64_MAX for none */
	int64_t idle_ns;          /* idle_timeout, 0 for none */
	int64_t last_output;      /* when either stream last had data */
	enum kill_reason why;
	enum kill_phase phase;
	int64_t kill_at;          /* when PHASE_TERM_SENT escalates */
	bool reaped;              /* a process was reaped since the last advance() */
	struct cgroup_task cg;    /* its cgroup, where the runner may make one */
};

/* Every run not yet finished: whose orphan is whose is decided among them. */
static struct run *registry;
static size_t registry_len;
/* Set when waitid() said the runner has no child at all. */
static bool no_children = true;
/* Output is read through one buffer: runs are stepped one at a time. */
static char chunk[CHUNK];

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

/* The session of pid (field 6 of /proc/PID/stat; readable for a zombie),
 * or 0 when unknown. */
static pid_t session_of(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = xread(fd, line, sizeof line - 1);
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	/* The comm field may hold spaces and parentheses: fields follow the last ')'. */
	char *rp = strrchr(line, ')');
	int ppid, pgrp, sid;
	if (!rp || sscanf(rp + 1, " %*c %d %d %d", &ppid, &pgrp, &sid) != 3)
		return 0;
	return sid;
}

/* The run a child of the runner belongs to; NULL when none can be told. */
static struct run *owner_of(pid_t pid)
{
	for (struct run *r = registry; r; r = r->next)
		if (r->sp.pid == pid)
			return r;
	if (registry_len == 1)
		return registry; /* one task: every descendant is its own */
	for (struct run *r = registry; r; r = r->next)
		if (r->cg.dirfd >= 0 && cgroup_task_has(&r->cg, pid))
			return r;
	pid_t sid = session_of(pid);
	for (struct run *r = registry; r && sid > 0; r = r->next)
		if (r->sp.pid == sid)
			return r;
	return NULL;
}

/* Whether child pid is charged to r: its own, or nobody's (see run.h). A
 * hook's supervisor (hook.h) is never a task's. */
static bool charged_to(const struct run *r, pid_t pid)
{
	if (hook_owns(pid))
		return false;
	const struct run *o = owner_of(pid);
	return o == r || o == NULL;
}

/* Calls fn for each direct child of the runner. */
static void each_child(void (*fn)(pid_t pid, void *ctx), void *ctx)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	if (f) {
		int pid;
		while (fscanf(f, "%d", &pid) == 1)
			fn(pid, ctx);
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
		char line[512];
		if (fgets(line, sizeof line, s)) {
			char *rp = strrchr(line, ')');
			if (rp)
				sscanf(rp + 1, " %*c %d", &ppid);
		}
		fclose(s);
		if (ppid == getpid())
			fn(pid, ctx);
	}
	closedir(d);
}

struct signal_job {
	const struct run *r;
	int sig;
	bool found;
};

static void signal_one(pid_t pid, void *ctx)
{
	struct signal_job *j = ctx;
	if (!charged_to(j->r, pid))
		return;
	j->found = true;
	if (j->sig) {
		signal_group(getpgid(pid), j->sig);
		kill(pid, j->sig);
	}
}

/* Signals the runner's children charged to r; sig 0 only looks. Returns
 * whether there was any. */
static bool signal_children(const struct run *r, int sig)
{
	struct signal_job j = { r, sig, false };
	each_child(signal_one, &j);
	return j.found;
}

static void signal_tree(struct run *r, int sig)
{
	signal_group(r->sp.pid, sig);
	signal_children(r, sig);
	cgroup_task_signal(&r->cg, sig); /* everything else of the task, wherever it went */
}

static void start_kill(struct run *r, enum kill_reason why, int64_t now)
{
	r->why = why;
	signal_tree(r, SIGTERM);
	signal_tree(r, SIGCONT); /* a stopped process cannot act on TERM */
	r->phase = PHASE_TERM_SENT;
	r->kill_at = now + time_seconds_to_ns(r->t->kill_grace);
	if (r->kill_at <= now) {
		signal_tree(r, SIGKILL);
		r->phase = PHASE_KILL_SENT;
	}
}

static void add_usage(struct rusage *sum, const struct rusage *ru)
{
	timeradd(&sum->ru_utime, &ru->ru_utime, &sum->ru_utime);
	timeradd(&sum->ru_stime, &ru->ru_stime, &sum->ru_stime);
	if (ru->ru_maxrss > sum->ru_maxrss)
		sum->ru_maxrss = ru->ru_maxrss;
}

static void charge(struct run *r, pid_t pid, int status, const struct rusage *ru)
{
	r->reaped = true;
	add_usage(&r->o.usage, ru);
	if (pid == r->sp.pid) {
		r->main_reaped = true;
		r->main_status = status;
		r->o.finished_ms = time_realtime_ms();
		r->o.duration_ms = (time_monotonic_ns() - r->start_ns) / NS_PER_MS;
	}
}

void run_reap_all(void)
{
	/* One run or none: every child is its own, no need to look first. */
	if (registry_len <= 1) {
		for (;;) {
			int status;
			struct rusage ru;
			pid_t pid = wait4(-1, &status, WNOHANG, &ru);
			if (pid > 0) {
				if (registry)
					charge(registry, pid, status, &ru);
				continue;
			}
			if (pid < 0 && errno == EINTR)
				continue;
			if (pid < 0)
				no_children = true; /* ECHILD */
			return;
		}
	}
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		/* Look before reaping: a zombie still says which session it was in. */
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			no_children = true; /* ECHILD */
			return;
		}
		if (si.si_pid == 0)
			return;
		pid_t pid = si.si_pid;
		struct run *owner = hook_owns(pid) ? NULL : owner_of(pid);
		int status;
		struct rusage ru;
		pid_t got;
		while ((got = wait4(pid, &status, WNOHANG, &ru)) < 0 && errno == EINTR)
			;
		if (got != pid || hook_reaped(pid, status))
			continue;
		if (owner)
			charge(owner, pid, status, &ru);
		else
			for (struct run *r = registry; r; r = r->next)
				r->reaped = true; /* a stray: any run in its kill may have more */
	}
}

static void sink(struct run *r, struct run_stream *s, const char *data, size_t n)
{
	s->bytes += n;
	if (capture_append(&s->cap, data, n) < 0)
		log_warn("cannot keep task output in memory");
	if (s == &r->o.out)
		events_feed(&r->o.events, data, n);
	if (!r->opt->open_log || s->log_errno)
		return;
	if (s->log_fd < 0) {
		s->log_fd = r->opt->open_log(r->opt->ctx, s == &r->o.out ? "stdout" : "stderr");
		if (s->log_fd < 0) {
			s->log_errno = errno;
			return;
		}
		s->log_created = true;
	}
	uint64_t max_log = r->opt->max_log;
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
 * neither stream, nor any other run, can starve the rest. */
static void read_stream(struct run *r, int *fd, struct run_stream *s)
{
	ssize_t n = xread(*fd, chunk, CHUNK);
	if (n > 0) {
		sink(r, s, chunk, (size_t)n);
		if (r->idle_ns)
			r->last_output = time_monotonic_ns();
		return;
	}
	if (n < 0 && errno == EAGAIN)
		return;
	close(*fd);
	*fd = -1;
}

static void feed_stdin(struct run *r)
{
	size_t want = r->stdin_left < CHUNK ? r->stdin_left : CHUNK;
	ssize_t n = want ? write(r->sp.stdin_fd, r->stdin_pos, want) : 0;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		r->stdin_pos += n;
		r->stdin_left -= (size_t)n;
		if (r->stdin_left)
			return;
	}
	/* Done, or the task closed its stdin (EPIPE): no more to give. */
	r->o.stdin_unwritten = r->stdin_left;
	close(r->sp.stdin_fd);
	r->sp.stdin_fd = -1;
}

int run_pollfds(const struct run *r, struct pollfd *fds, int max)
{
	int n = 0;
	if (r->done)
		return 0;
	if (r->sp.stdout_fd >= 0 && n < max)
		fds[n++] = (struct pollfd){ r->sp.stdout_fd, POLLIN, 0 };
	if (r->sp.stderr_fd >= 0 && n < max)
		fds[n++] = (struct pollfd){ r->sp.stderr_fd, POLLIN, 0 };
	if (r->sp.stdin_fd >= 0 && n < max)
		fds[n++] = (struct pollfd){ r->sp.stdin_fd, POLLOUT, 0 };
	return n;
}

void run_on_ready(struct run *r, const struct pollfd *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (!fds[i].revents)
			continue;
		if (fds[i].fd == r->sp.stdout_fd)
			read_stream(r, &r->sp.stdout_fd, &r->o.out);
		else if (fds[i].fd == r->sp.stderr_fd)
			read_stream(r, &r->sp.stderr_fd, &r->o.err);
		else if (fds[i].fd == r->sp.stdin_fd)
			feed_stdin(r);
	}
}

void run_abort(struct run *r)
{
	if (!r->done && !r->main_reaped && r->why == KILL_NONE)
		start_kill(r, KILL_ABORT, time_monotonic_ns());
}

/* Once nothing of the task is alive, a pipe still open is held by a
 * process outside the tree (a passed descriptor): take what it has and stop. */
static void drain_orphaned_pipes(struct run *r)
{
	int *fds[2] = { &r->sp.stdout_fd, &r->sp.stderr_fd };
	struct run_stream *ss[2] = { &r->o.out, &r->o.err };
	for (int i = 0; i < 2; i++)
		while (*fds[i] >= 0) {
			ssize_t n = xread(*fds[i], chunk, CHUNK);
			if (n <= 0) {
				close(*fds[i]);
				*fds[i] = -1;
			} else
				sink(r, ss[i], chunk, (size_t)n);
		}
}

/* After the main process: whether anything charged to r is left. */
static bool has_leftovers(const struct run *r)
{
	if (r->cg.dirfd >= 0 && cgroup_task_populated(&r->cg))
		return true;
	if (no_children)
		return false;
	return signal_children(r, 0);
}

int64_t run_advance(struct run *r, int64_t now)
{
	if (r->done)
		return -1;
	bool running = !r->main_reaped && r->why == KILL_NONE;
	int64_t idle_at = r->idle_ns ? r->last_output + r->idle_ns : INT64_MAX;
	if (running && now >= r->deadline)
		start_kill(r, KILL_TIMEOUT, now);
	else if (running && now >= idle_at)
		start_kill(r, KILL_IDLE, now);
	if (r->phase == PHASE_TERM_SENT && now >= r->kill_at) {
		signal_tree(r, SIGKILL);
		r->phase = PHASE_KILL_SENT;
	}
	if (r->main_reaped)
		r->children_left = has_leftovers(r);
	if (r->main_reaped && !r->children_left) {
		drain_orphaned_pipes(r);
		/* The task ended before the loop saw its stdin close: whatever
		 * was not written is unwritten all the same. */
		if (r->sp.stdin_fd >= 0) {
			r->o.stdin_unwritten = r->stdin_left;
			close(r->sp.stdin_fd);
			r->sp.stdin_fd = -1;
		}
		r->done = true;
		return -1;
	}
	if (r->main_reaped && r->why == KILL_NONE) {
		r->o.leftovers_killed = true;
		start_kill(r, KILL_LEFTOVERS, now);
	}
	/* Processes orphaned by the kill land on us (a daemon whose parent
	 * just died, say) and get the phase's signal too: TERM during the
	 * grace, KILL after it. */
	if (r->phase == PHASE_KILL_SENT)
		signal_children(r, SIGKILL);
	else if (r->phase == PHASE_TERM_SENT && r->reaped) {
		signal_children(r, SIGTERM);
		signal_children(r, SIGCONT);
	}
	r->reaped = false;
	int64_t wake = INT64_MAX;
	if (!r->main_reaped && r->why == KILL_NONE)
		wake = r->deadline < idle_at ? r->deadline : idle_at;
	if (r->phase == PHASE_TERM_SENT)
		wake = r->kill_at;
	/* A cgroup empties without a SIGCHLD when the last of it was not the
	 * runner's child: look again soon. */
	if (r->main_reaped && r->cg.dirfd >= 0 && wake > now + 50 * NS_PER_MS)
		wake = now + 50 * NS_PER_MS;
	return wake;
}

static void set_status(struct run *r)
{
	struct run_outcome *o = &r->o;
	int st = r->main_status;
	if (WIFEXITED(st))
		o->exit_code = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		o->term_signal = WTERMSIG(st);
	o->idle_timeout = r->why == KILL_IDLE;
	if (r->why == KILL_TIMEOUT || r->why == KILL_IDLE)
		o->status = RUN_TIMEOUT;
	else if (r->why == KILL_ABORT)
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

static void registry_add(struct run *r)
{
	r->next = registry;
	if (registry)
		registry->prev = r;
	registry = r;
	registry_len++;
}

static void registry_remove(struct run *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (registry == r)
		registry = r->next;
	else
		return; /* never added */
	if (r->next)
		r->next->prev = r->prev;
	registry_len--;
}

struct run *run_start(const struct task *t, const struct run_options *opt)
{
	struct run *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->t = t;
	r->opt = opt;
	r->o.exit_code = -1;
	r->o.out.log_fd = r->o.err.log_fd = -1;
	r->sp.stdin_fd = r->sp.stdout_fd = r->sp.stderr_fd = -1;
	capture_init(&r->o.out.cap, opt->max_output);
	capture_init(&r->o.err.cap, opt->max_output);
	events_init(&r->o.events, t->output, opt->max_output);
	r->stdin_pos = t->stdin_data;
	r->stdin_left = t->stdin_len;
	r->start_ns = time_monotonic_ns();
	r->deadline = t->timeout > 0 ? r->start_ns + time_seconds_to_ns(t->timeout) : INT64_MAX;
	r->idle_ns = time_seconds_to_ns(t->idle_timeout);
	r->last_output = r->start_ns;
	r->o.started_ms = time_realtime_ms();
	r->cg.dirfd = r->cg.procs_fd = -1;
	if (cgroup_enabled())
		cgroup_task_create(&r->cg);
	struct spawn_gate gate = { opt->before_spawn, opt->ctx };
	int rc = spawn_start(t, opt->as_user, r->cg.procs_fd, &gate, &r->sp, &r->o.spawn_error,
			     &r->o.usage);
	if (r->cg.procs_fd >= 0) {
		close(r->cg.procs_fd);
		r->cg.procs_fd = -1;
	}
	if (rc < 0) {
		cgroup_task_remove(&r->cg);
		r->o.status = RUN_SPAWN_ERROR;
		r->o.finished_ms = time_realtime_ms();
		r->o.duration_ms = (time_monotonic_ns() - r->start_ns) / NS_PER_MS;
		r->done = true;
		return r;
	}
	r->o.pid = r->sp.pid;
	no_children = false;
	registry_add(r);
	return r;
}

pid_t run_pid(const struct run *r)
{
	return r->o.pid;
}

void run_bytes(const struct run *r, uint64_t *out, uint64_t *err)
{
	*out = r->o.out.bytes;
	*err = r->o.err.bytes;
}

/* The cgroup counted the CPU of every process of the task, also those the
 * runner never reaped itself (reaped by a parent inside the tree). */
static void charge_cgroup_cpu(struct run *r)
{
	uint64_t user_us, system_us;
	if (r->cg.dirfd < 0 || !cgroup_task_cpu(&r->cg, &user_us, &system_us))
		return;
	struct timeval u = { (time_t)(user_us / 1000000), (suseconds_t)(user_us % 1000000) };
	struct timeval s = { (time_t)(system_us / 1000000), (suseconds_t)(system_us % 1000000) };
	if (timercmp(&u, &r->o.usage.ru_utime, >))
		r->o.usage.ru_utime = u;
	if (timercmp(&s, &r->o.usage.ru_stime, >))
		r->o.usage.ru_stime = s;
}

void run_finish(struct run *r, struct run_outcome *o)
{
	if (!r->done && r->o.status != RUN_SPAWN_ERROR) {
		/* The runner itself failed: leave nothing of the task behind. */
		r->why = r->why == KILL_NONE ? KILL_ABORT : r->why;
		signal_tree(r, SIGKILL);
		while (!r->main_reaped) {
			int status;
			struct rusage ru;
			pid_t got = wait4(r->sp.pid, &status, 0, &ru);
			if (got == r->sp.pid)
				charge(r, got, status, &ru);
			else if (errno != EINTR)
				break;
		}
	}
	int fds[3] = { r->sp.stdin_fd, r->sp.stdout_fd, r->sp.stderr_fd };
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r->o.status != RUN_SPAWN_ERROR)
		set_status(r);
	charge_cgroup_cpu(r);
	cgroup_task_remove(&r->cg);
	events_finish(&r->o.events);
	close_logs(&r->o, r->opt->sync_logs);
	registry_remove(r);
	*o = r->o;
	free(r);
}

void run_outcome_clear(struct run_outcome *o)
{
	capture_clear(&o->out.cap);
	capture_clear(&o->err.cap);
	events_clear(&o->events);
}

int run_task(const struct task *t, const struct run_options *opt, int signal_fd,
	     bool (*on_signal)(void *ctx, int signo), void *ctx, struct run_outcome *o)
{
	struct run *r = run_start(t, opt);
	if (!r)
		return -1;
	int rc = 0;
	for (;;) {
		int64_t now = time_monotonic_ns(), wake = run_advance(r, now);
		if (wake < 0)
			break;
		struct pollfd fds[4];
		int n = run_pollfds(r, fds, 3);
		fds[n] = (struct pollfd){ signal_fd, POLLIN, 0 };
		int64_t left = wake == INT64_MAX ? -1 : wake - now;
		struct timespec ts = { left / NS_PER_SEC, left % NS_PER_SEC };
		if (ppoll(fds, (nfds_t)n + 1, left < 0 ? NULL : &ts, NULL) < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		run_on_ready(r, fds, n);
		if (!fds[n].revents)
			continue;
		int sig;
		while ((sig = signals_read(signal_fd)) > 0) {
			if (sig == SIGCHLD)
				run_reap_all();
			else if (on_signal && on_signal(ctx, sig))
				run_abort(r);
		}
	}
	int saved = errno;
	run_finish(r, o);
	errno = saved;
	return rc;
}
