#define _GNU_SOURCE
#include "slurmcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

extern char **environ;

/* Slurm's answers are short; a runaway command must not eat memory. */
#define MAX_COMMAND_OUTPUT (16u << 20)

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};

/* Reads what is there; -1 at EOF or error (the fd is then closed). */
static int drain(struct sink *s)
{
	char chunk[8192];
	ssize_t n = read(s->fd, chunk, sizeof chunk);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	if (s->len + (size_t)n + 1 > s->cap && s->len + (size_t)n < MAX_COMMAND_OUTPUT) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b)
			return 0; /* keep reading (and dropping) so the child cannot block */
		s->buf = b;
		s->cap = cap;
	}
	if (s->len + (size_t)n + 1 <= s->cap) {
		memcpy(s->buf + s->len, chunk, (size_t)n);
		s->len += (size_t)n;
		s->buf[s->len] = '\0';
	}
	return 0;
}

static char *take(struct sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	char *b = s->buf ? s->buf : strdup("");
	s->buf = NULL;
	return b;
}

static int spawn_piped(char *const argv[], int out_w, int err_w, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	/* The watcher blocks signals for its signalfd; a child must not
	 * inherit that (nor ignored signals). */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	int rc = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* Reads both pipes until EOF or the deadline; kills pid at the deadline. */
static void pump(struct sink *out, struct sink *err, pid_t pid, double timeout_s)
{
	int64_t deadline = time_monotonic_ns() + time_seconds_to_ns(timeout_s);
	bool killed = false;
	while (out->fd >= 0 || err->fd >= 0) {
		struct pollfd p[2] = { { out->fd, POLLIN, 0 }, { err->fd, POLLIN, 0 } };
		int64_t left = deadline - time_monotonic_ns();
		if (left <= 0 && !killed) {
			kill(pid, SIGKILL);
			killed = true;
		}
		int ms = killed ? 1000 : (int)(left / 1000000 + 1);
		int n = poll(p, 2, ms);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0 && killed)
			break; /* a grandchild holds the pipe open; give up on it */
		if (p[0].revents)
			drain(out);
		if (p[1].revents)
			drain(err);
	}
}

int slurmcmd_run(char *const argv[], double timeout_s, struct slurmcmd_output *o)
{
	memset(o, 0, sizeof o[0]);
	o->exit_code = -1;
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid;
	int rc = spawn_piped(argv, po[1], pe[1], &pid);
	int saved = errno;
	close(po[1]);
	close(pe[1]);
	struct sink out = { po[0], NULL, 0, 0 }, err = { pe[0], NULL, 0, 0 };
	if (rc < 0) {
		free(take(&out));
		free(take(&err));
		o->out = strdup("");
		if (asprintf(&o->err, "cannot run %s: %s", argv[0], strerror(saved)) < 0)
			o->err = NULL;
		errno = saved;
		return -1;
	}
	pump(&out, &err, pid, timeout_s);
	o->out = take(&out);
	o->err = take(&err);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 0; /* reaped by someone else: exit code unknown (-1) */
	}
	o->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return 0;
}

void slurmcmd_output_clear(struct slurmcmd_output *o)
{
	free(o->out);
	free(o->err);
	o->out = o->err = NULL;
}

/* The last non-empty line of text, trimmed, for a one-line message. */
static void last_line(const char *text, char *out, size_t len)
{
	const char *end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > text && start[-1] != '\n')
		start--;
	snprintf(out, len, "%.*s", (int)(end - start), start);
}

enum slurmcmd_submit slurmcmd_submit(const struct slurm_config *c, const struct slurm_request *r,
				     const struct slurm_submission *s, char *job_id, char *msg,
				     size_t msglen)
{
	char **argv = slurm_sbatch_argv(c, r, s);
	if (!argv) {
		snprintf(msg, msglen, "cannot build the sbatch command: out of memory");
		return SLURMCMD_TRANSIENT;
	}
	struct slurmcmd_output o;
	int rc = slurmcmd_run(argv, SLURMCMD_TIMEOUT_S, &o);
	slurm_argv_free(argv);
	enum slurmcmd_submit res;
	if (rc < 0) {
		snprintf(msg, msglen, "%s", o.err ? o.err : "cannot run sbatch");
		res = SLURMCMD_PERMANENT; /* no sbatch at all: waiting will not help */
	} else if (o.exit_code == 0 && slurm_parse_job_id(o.out, job_id) == 0) {
		res = SLURMCMD_SUBMITTED;
	} else if (o.exit_code == 0) {
		snprintf(msg, msglen, "sbatch printed no job id: %.200s", o.out);
		res = SLURMCMD_TRANSIENT;
	} else {
		char line[400];
		last_line(*o.err ? o.err : o.out, line, sizeof line);
		if (o.exit_code < 0)
			snprintf(msg, msglen, "sbatch did not answer within %.0f s", SLURMCMD_TIMEOUT_S);
		else
			snprintf(msg, msglen, "sbatch exited %d: %s", o.exit_code, line);
		res = o.exit_code < 0 || slurm_submit_transient(o.err) ? SLURMCMD_TRANSIENT
									: SLURMCMD_PERMANENT;
	}
	slurmcmd_output_clear(&o);
	return res;
}

/* "1,2,3": the ids of the jobs with want[i] (of all when want is NULL). */
static char *job_list(const struct slurmcmd_job *jobs, size_t n, const bool *want)
{
	size_t cap = n * (SLURM_JOB_ID_MAX + 1) + 1, len = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (want && !want[i])
			continue;
		len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? "," : "", jobs[i].info.job_id);
	}
	return s;
}

/* Updates the jobs that infos[0..m) mention; marks them found. */
static void apply(struct slurmcmd_job *jobs, size_t n, const struct slurm_job_info *infos,
		  size_t m, bool *found)
{
	for (size_t k = 0; k < m; k++)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(jobs[i].info.job_id, infos[k].job_id)) {
				jobs[i].info = infos[k];
				jobs[i].seen = true;
				jobs[i].missing = 0;
				found[i] = true;
			}
}

typedef size_t (*parser)(const char *, struct slurm_job_info *, size_t);

/* Runs argv and applies what parse finds. -1 when the command failed. */
static int ask(char *const argv[], parser parse, struct slurmcmd_job *jobs, size_t n, bool *found)
{
	struct slurmcmd_output o;
	if (slurmcmd_run(argv, SLURMCMD_TIMEOUT_S, &o) < 0 || o.exit_code != 0) {
		/* squeue for job ids the controller forgot says "Invalid job id":
		 * an answer, not a failure. */
		bool answered = o.exit_code == 1 && o.err && strstr(o.err, "Invalid job id");
		if (!answered)
			log_debug("%s: exit %d: %s", argv[0], o.exit_code, o.err ? o.err : "");
		slurmcmd_output_clear(&o);
		return answered ? 0 : -1;
	}
	/* One entry per line: scontrol lists every job of the cluster, not
	 * only ours, and none may be cut off. */
	size_t cap = 1;
	for (const char *p = o.out; *p; p++)
		cap += *p == '\n';
	struct slurm_job_info *infos = calloc(cap, sizeof *infos);
	if (infos) {
		apply(jobs, n, infos, parse(o.out, infos, cap), found);
		free(infos);
	}
	slurmcmd_output_clear(&o);
	return infos ? 0 : -1;
}

/* Jobs squeue no longer knows: sacct, else scontrol (which knows what the
 * controller remembers). One call each, for all of them. */
static void ask_history(const struct slurm_config *c, struct slurmcmd_job *jobs, size_t n,
			bool *found)
{
	bool *missing = calloc(n, sizeof *missing);
	bool any = false;
	for (size_t i = 0; missing && i < n; i++)
		any |= missing[i] = !found[i];
	char *ids = any ? job_list(jobs, n, missing) : NULL;
	char *jobs_arg = NULL;
	free(missing);
	if (ids && asprintf(&jobs_arg, "--jobs=%s", ids) >= 0) {
		char *sacct[] = { c->sacct, "--noheader", "--allocations", "--parsable2",
				  "--format=" SLURM_SACCT_FORMAT, jobs_arg, NULL };
		if (ask(sacct, slurm_parse_sacct, jobs, n, found) < 0) {
			char *scontrol[] = { c->scontrol, "--oneliner", "show", "job", NULL };
			ask(scontrol, slurm_parse_scontrol, jobs, n, found);
		}
		free(jobs_arg);
	}
	free(ids);
}

int slurmcmd_poll(const struct slurm_config *c, struct slurmcmd_job *jobs, size_t n)
{
	if (n == 0)
		return 0;
	char *ids = job_list(jobs, n, NULL);
	bool *found = calloc(n, sizeof *found);
	char *jobs_arg = NULL;
	int rc = -1;
	if (ids && found && asprintf(&jobs_arg, "--jobs=%s", ids) >= 0) {
		char *squeue[] = { c->squeue, "--noheader", "--states=all",
				   "--format=" SLURM_SQUEUE_FORMAT, jobs_arg, NULL };
		rc = ask(squeue, slurm_parse_squeue, jobs, n, found);
	}
	if (rc == 0) {
		ask_history(c, jobs, n, found);
		for (size_t i = 0; i < n; i++) {
			if (found[i] || ++jobs[i].missing < SLURMCMD_VANISH_POLLS)
				continue;
			snprintf(jobs[i].info.state, sizeof jobs[i].info.state, "VANISHED");
			jobs[i].seen = true;
		}
	}
	free(jobs_arg);
	free(found);
	free(ids);
	return rc;
}

int slurmcmd_cancel(const struct slurm_config *c, const char *job_id)
{
	char *argv[] = { c->scancel, (char *)job_id, NULL };
	struct slurmcmd_output o;
	int rc = slurmcmd_run(argv, SLURMCMD_TIMEOUT_S, &o);
	if (rc == 0 && o.exit_code != 0) {
		log_warnx("scancel %s exited %d: %s", job_id, o.exit_code, o.err);
		rc = -1;
	}
	slurmcmd_output_clear(&o);
	return rc;
}
