#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "signals.h"

extern char **environ;

/* Everything the child needs, allocated before fork: the child itself only
 * makes async-signal-safe calls. */
struct exec_plan {
	char **envp;       /* environ itself when the task changes nothing */
	char **env_owned;  /* the strings the plan allocated for envp */
	char **candidates; /* paths to try, in PATH order */
	const char **sh_argv; /* for ENOEXEC: /bin/sh CANDIDATE ARGS... */
	size_t argc;
	struct { int resource; struct rlimit lim; } limits[5];
	int nlimits;
	const struct identity *user;
	pid_t parent;      /* the runner, for the child's parent-death check */
	int cgroup_procs;  /* the task's cgroup.procs, or -1 */
};

struct child_report {
	int stage;
	int err;
};

static const char *const stage_names[] = { "exec", "chdir", "setsid", "dup2", "setrlimit",
					   "setuid" };
enum { STAGE_EXEC, STAGE_CHDIR, STAGE_SETSID, STAGE_DUP2, STAGE_SETRLIMIT, STAGE_SETUID,
       STAGE_LAST = STAGE_SETUID };

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void plan_clear(struct exec_plan *p)
{
	if (p->envp != environ)
		free(p->envp);
	free_strv(p->env_owned);
	free_strv(p->candidates);
	free(p->sh_argv);
}

static bool overridden(const struct task *t, const char *entry)
{
	for (size_t i = 0; i < t->env_count; i++) {
		size_t n = strlen(t->env[i].name);
		if (strncmp(entry, t->env[i].name, n) == 0 && entry[n] == '=')
			return true;
	}
	return false;
}

/* The runner's environment with the task's overrides: pointers into
 * environ for what is kept, new strings only for what is set. */
static int build_env(const struct task *t, struct exec_plan *p)
{
	if (t->env_count == 0) {
		p->envp = environ;
		return 0;
	}
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	p->envp = calloc(n + t->env_count + 1, sizeof *p->envp);
	p->env_owned = calloc(t->env_count + 1, sizeof *p->env_owned);
	if (!p->envp || !p->env_owned)
		return -1;
	size_t k = 0, owned = 0;
	for (char **e = environ; *e; e++)
		if (!overridden(t, *e))
			p->envp[k++] = *e;
	for (size_t i = 0; i < t->env_count; i++) {
		if (!t->env[i].value)
			continue;
		if (asprintf(&p->env_owned[owned], "%s=%s", t->env[i].name, t->env[i].value) < 0) {
			p->env_owned[owned] = NULL;
			return -1;
		}
		p->envp[k++] = p->env_owned[owned++];
	}
	return 0;
}

/* The PATH a program is looked up in is the task's, as `env PATH=… cmd`
 * would use: its override if any, else the runner's, else glibc's default. */
static const char *effective_path(const struct task *t)
{
	for (size_t i = 0; i < t->env_count; i++)
		if (strcmp(t->env[i].name, "PATH") == 0)
			return t->env[i].value ? t->env[i].value : "/bin:/usr/bin";
	const char *p = getenv("PATH");
	return p ? p : "/bin:/usr/bin";
}

static char **build_candidates(const struct task *t)
{
	const char *prog = t->argv[0];
	if (strchr(prog, '/')) {
		char **c = calloc(2, sizeof *c);
		if (c && !(c[0] = strdup(prog)))
			free(c), c = NULL;
		return c;
	}
	const char *path = effective_path(t);
	size_t dirs = 1;
	for (const char *p = path; *p; p++)
		dirs += *p == ':';
	char **c = calloc(dirs + 1, sizeof *c);
	if (!c)
		return NULL;
	size_t k = 0;
	for (const char *p = path;; ) {
		const char *end = strchrnul(p, ':');
		int len = (int)(end - p);
		/* An empty PATH component means the current directory. */
		if (asprintf(&c[k++], "%.*s%s%s", len, p, len ? "/" : "", prog) < 0) {
			c[--k] = NULL;
			free_strv(c);
			return NULL;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	return c;
}

/* A limit can only be lowered without privilege: clamp to the hard limit
 * the runner has. CPU gets one more second of hard limit, so SIGXCPU comes
 * first and SIGKILL only to a task that ignores it. */
static void add_limit(struct exec_plan *p, int resource, uint64_t value, uint64_t scale,
		      uint64_t hard_extra)
{
	struct rlimit cur;
	if (!value || getrlimit(resource, &cur) < 0)
		return;
	rlim_t soft = (rlim_t)(value * scale), hard = soft + (rlim_t)hard_extra;
	if (cur.rlim_max != RLIM_INFINITY) {
		soft = soft < cur.rlim_max ? soft : cur.rlim_max;
		hard = hard < cur.rlim_max ? hard : cur.rlim_max;
	}
	p->limits[p->nlimits].resource = resource;
	p->limits[p->nlimits].lim = (struct rlimit){ soft, hard };
	p->nlimits++;
}

static void plan_limits(const struct task *t, struct exec_plan *p)
{
	const struct task_limits *l = &t->limits;
	add_limit(p, RLIMIT_AS, l->memory_mb, 1 << 20, 0);
	add_limit(p, RLIMIT_CPU, l->cpu_seconds, 1, 1);
	add_limit(p, RLIMIT_NOFILE, l->open_files, 1, 0);
	add_limit(p, RLIMIT_NPROC, l->processes, 1, 0);
	add_limit(p, RLIMIT_FSIZE, l->file_size_mb, 1 << 20, 0);
}

static int plan_build(const struct task *t, const struct identity *user, struct exec_plan *p)
{
	memset(p, 0, sizeof *p);
	p->user = user;
	p->parent = getpid();
	plan_limits(t, p);
	while (t->argv[p->argc])
		p->argc++;
	int env_rc = build_env(t, p);
	p->candidates = build_candidates(t);
	p->sh_argv = calloc(p->argc + 2, sizeof *p->sh_argv);
	if (env_rc < 0 || !p->candidates || !p->sh_argv) {
		plan_clear(p);
		errno = ENOMEM;
		return -1;
	}
	p->sh_argv[0] = "/bin/sh";
	for (size_t i = 1; i < p->argc; i++)
		p->sh_argv[i + 1] = t->argv[i];
	return 0;
}

static void report_and_exit(int fd, int stage, int err)
{
	struct child_report r = { stage, err };
	ssize_t ignored = write(fd, &r, sizeof r);
	(void)ignored; /* nothing more a dying child can do */
	_exit(127);
}

/* Runs in the forked child: async-signal-safe calls only. */
static void child_exec(const struct task *t, struct exec_plan *p, const int fds[3], int report)
{
	/* Into the task's cgroup before anything else, so every process it
	 * ever starts is counted there (a failure leaves it in the runner's:
	 * the session fallback then applies). */
	if (p->cgroup_procs >= 0) {
		ssize_t ignored = write(p->cgroup_procs, "0", 1);
		(void)ignored;
	}
	signals_reset_child();
	if (setsid() < 0)
		report_and_exit(report, STAGE_SETSID, errno);
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			report_and_exit(report, STAGE_DUP2, errno);
	/* Descriptors the runner inherited without O_CLOEXEC must not reach
	 * the task either; the report pipe stays open until exec. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	for (int i = 0; i < p->nlimits; i++)
		if (setrlimit(p->limits[i].resource, &p->limits[i].lim) < 0)
			report_and_exit(report, STAGE_SETRLIMIT, errno);
	/* Groups first, uid last: once the uid is dropped nothing else can be. */
	const struct identity *u = p->user;
	if (u && (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 ||
		  setuid(u->uid) < 0))
		report_and_exit(report, STAGE_SETUID, errno);
	/* If the runner is killed outright (kill -9, OOM), its task dies with
	 * it rather than running on beside the rerun that recovery starts.
	 * Set after the uid change, which clears it; the getppid() check
	 * covers a runner that died before this line. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != p->parent)
		report_and_exit(report, STAGE_SETSID, errno ? errno : ESRCH);
	/* After the identity change, so the task's own permissions apply. */
	if (t->cwd && chdir(t->cwd) < 0)
		report_and_exit(report, STAGE_CHDIR, errno);
	int err = ENOENT;
	bool denied = false;
	for (char **c = p->candidates; *c; c++) {
		execve(*c, (char *const *)t->argv, p->envp);
		if (errno == ENOEXEC) {
			/* No #! line: run it as a shell script, as execvp does. */
			p->sh_argv[1] = *c;
			execve("/bin/sh", (char *const *)p->sh_argv, p->envp);
		}
		if (errno == EACCES)
			denied = true;
		else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
			 errno != ENODEV && errno != ETIMEDOUT) {
			err = errno;
			break;
		}
	}
	report_and_exit(report, STAGE_EXEC, denied && err == ENOENT ? EACCES : err);
}

static int open_stdio(const struct task *t, int child[3], int parent[3])
{
	int p[2];
	child[0] = child[1] = child[2] = parent[0] = parent[1] = parent[2] = -1;
	if (t->stdin_data) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		child[0] = p[0];
		parent[0] = p[1];
	} else if ((child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	for (int i = 1; i < 3; i++) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		parent[i] = p[0];
		child[i] = p[1];
	}
	for (int i = 0; i < 3; i++)
		if (parent[i] >= 0 && fcntl(parent[i], F_SETFL, O_NONBLOCK) < 0)
			return -1;
	return 0;
}

static void close_all(int fds[3])
{
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* Waits for the child's exec report: EOF means exec succeeded. */
static int read_report(int fd, pid_t pid, struct spawn_error *e, struct rusage *usage)
{
	struct child_report r;
	ssize_t n = xread(fd, &r, sizeof r);
	if (n == 0)
		return 0;
	int status;
	while (wait4(pid, &status, 0, usage) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof r && r.stage >= 0 && r.stage <= STAGE_LAST) {
		e->stage = stage_names[r.stage];
		e->err = r.err;
	} else {
		e->stage = "exec";
		e->err = n < 0 ? errno : EIO;
	}
	return -1;
}

int spawn_start(const struct task *t, const struct identity *user, int cgroup_procs,
		const struct spawn_gate *gate, struct spawned *s, struct spawn_error *e,
		struct rusage *usage)
{
	struct exec_plan plan;
	int child[3], parent[3], report[2] = { -1, -1 };
	memset(usage, 0, sizeof *usage);
	if (plan_build(t, user, &plan) < 0) {
		*e = (struct spawn_error){ "environment", errno };
		return -1;
	}
	plan.cgroup_procs = cgroup_procs;
	if (open_stdio(t, child, parent) < 0 || pipe2(report, O_CLOEXEC) < 0) {
		*e = (struct spawn_error){ "pipe", errno };
		goto fail;
	}
	if (gate && gate->wait)
		gate->wait(gate->ctx);
	/* vfork: the child borrows the runner's memory until it execs, so
	 * starting a task costs no page-table copy however large the runner
	 * is. The child only makes async-signal-safe calls and writes nothing
	 * the parent reads but the plan it owns, and it never returns. */
	pid_t pid = vfork();
	if (pid < 0) {
		*e = (struct spawn_error){ "fork", errno };
		goto fail;
	}
	if (pid == 0)
		child_exec(t, &plan, child, report[1]);
	close_all(child);
	close(report[1]);
	report[1] = -1;
	int rc = read_report(report[0], pid, e, usage);
	close(report[0]);
	plan_clear(&plan);
	if (rc < 0) {
		close_all(parent);
		return -1;
	}
	*s = (struct spawned){ pid, parent[0], parent[1], parent[2] };
	return 0;
fail: {
	int saved = e->err;
	close_all(child);
	close_all(parent);
	if (report[0] >= 0)
		close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
	plan_clear(&plan);
	e->err = saved;
	return -1;
}
}
