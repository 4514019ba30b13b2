/* baseline_runner STAGING RESULTS TMP FSYNC(0|1) PROGRAM [SPAWN [LOOPS]]
 * The floor for the throughput benchmarks: for each task file in STAGING,
 * one after another, read it, start PROGRAM with stdin /dev/null and pipes on
 * stdout/stderr, poll and read both to EOF, waitpid, and publish a small JSON
 * result atomically: write TMP/<name>.tmp, [fsync], rename into RESULTS,
 * [fsync RESULTS]. Nothing else: no parsing, no logs, no queue.
 *
 * SPAWN is how the child starts: "spawn" (posix_spawn, glibc's
 * clone(CLONE_VM|CLONE_VFORK): the way the fastest runner can; the default),
 * "vfork", or "fork" (copies the page tables: the plain, slower way).
 * LOOPS (default 1): that many such loops run in parallel as processes, loop k
 * taking every LOOPS-th file of the listing from the k-th on ("as many C
 * loops in parallel as cores").
 * Prints "<tasks> <seconds>" (CLOCK_MONOTONIC, from the directory listing
 * until the last loop is done). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum spawn_kind { SPAWN_POSIX, SPAWN_VFORK, SPAWN_FORK };

struct setup {
	int sfd, rfd, tfd, devnull;
	int do_fsync;
	enum spawn_kind kind;
	char *prog;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static pid_t start_child(const struct setup *s, int out, int err)
{
	char *argv[] = { s->prog, NULL };
	if (s->kind == SPAWN_POSIX) {
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, s->devnull, 0);
		posix_spawn_file_actions_adddup2(&fa, out, 1);
		posix_spawn_file_actions_adddup2(&fa, err, 2);
		pid_t pid;
		int rc = posix_spawn(&pid, s->prog, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (rc != 0) {
			errno = rc;
			die("posix_spawn");
		}
		return pid;
	}
	pid_t pid = s->kind == SPAWN_VFORK ? vfork() : fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(s->devnull, 0);
		dup2(out, 1);
		dup2(err, 2);
		execv(s->prog, argv);
		_exit(127);
	}
	return pid;
}

static void run_one(const struct setup *s, const char *name)
{
	char buf[65536];
	/* Read the task file (no parsing). */
	int f = openat(s->sfd, name, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		die("openat");
	while (read(f, buf, sizeof buf) > 0)
		;
	close(f);
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		die("pipe2");
	double start = now();
	pid_t pid = start_child(s, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	struct pollfd p[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
	size_t nout = 0, nerr = 0;
	int open_fds = 2;
	while (open_fds) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof buf);
			if (n > 0) {
				*(i ? &nerr : &nout) += (size_t)n;
				continue;
			}
			close(p[i].fd);
			p[i].fd = -1;
			open_fds--;
		}
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	double dur = now() - start;
	char id[256], tmp[300], dst[300], json[512];
	snprintf(id, sizeof id, "%s", name);
	char *dot = strrchr(id, '.');
	if (dot)
		*dot = '\0';
	int len = snprintf(json, sizeof json,
			   "{\"id\":\"%s\",\"exit_code\":%d,\"stdout_bytes\":%zu,"
			   "\"stderr_bytes\":%zu,\"duration_ms\":%.3f}\n",
			   id, WIFEXITED(status) ? WEXITSTATUS(status) : -1, nout, nerr, dur * 1e3);
	snprintf(tmp, sizeof tmp, "%s.json.tmp", id);
	snprintf(dst, sizeof dst, "%s.json", id);
	int w = openat(s->tfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w < 0 || write(w, json, (size_t)len) != len)
		die("write result");
	if (s->do_fsync && fsync(w) < 0)
		die("fsync");
	close(w);
	if (renameat(s->tfd, tmp, s->rfd, dst) < 0)
		die("rename");
	if (s->do_fsync && fsync(s->rfd) < 0)
		die("fsync dir");
}

static char **list(int sfd, long *count)
{
	DIR *d = fdopendir(dup(sfd));
	if (!d)
		die("opendir");
	long cap = 1024, n = 0;
	char **names = malloc(cap * sizeof *names);
	struct dirent *de;
	while (names && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap && !(names = realloc(names, (cap *= 2) * sizeof *names)))
			break;
		if (!(names[n++] = strdup(de->d_name)))
			die("strdup");
	}
	if (!names)
		die("malloc");
	closedir(d);
	*count = n;
	return names;
}

int main(int argc, char **argv)
{
	if (argc < 6 || argc > 8) {
		fprintf(stderr, "usage: baseline_runner STAGING RESULTS TMP FSYNC PROGRAM "
				"[spawn|vfork|fork [LOOPS]]\n");
		return 2;
	}
	struct setup s = { .do_fsync = atoi(argv[4]), .prog = argv[5], .kind = SPAWN_POSIX };
	if (argc > 6)
		s.kind = !strcmp(argv[6], "fork") ? SPAWN_FORK
		       : !strcmp(argv[6], "vfork") ? SPAWN_VFORK : SPAWN_POSIX;
	int loops = argc > 7 ? atoi(argv[7]) : 1;
	if (loops < 1)
		loops = 1;
	double t0 = now();
	s.sfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s.rfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s.tfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s.sfd < 0 || s.rfd < 0 || s.tfd < 0 || s.devnull < 0)
		die("open");
	long count;
	char **names = list(s.sfd, &count);
	if (loops == 1) {
		for (long i = 0; i < count; i++)
			run_one(&s, names[i]);
	} else {
		for (int k = 0; k < loops; k++) {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				for (long i = k; i < count; i += loops)
					run_one(&s, names[i]);
				_exit(0);
			}
		}
		int status, failed = 0;
		for (int k = 0; k < loops; k++) {
			while (wait(&status) < 0)
				if (errno != EINTR)
					die("wait");
			failed |= !WIFEXITED(status) || WEXITSTATUS(status);
		}
		if (failed)
			return 1;
	}
	printf("%ld %.6f\n", count, now() - t0);
	return 0;
}
