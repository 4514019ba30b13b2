/* baseline_runner STAGING RESULTS TMP FSYNC(0|1) PROGRAM
 * The floor for benchmark 1: for each task file in STAGING, one after another,
 * read it, spawn PROGRAM (fork/exec) with stdin /dev/null and pipes on
 * stdout/stderr, poll and read both to EOF, waitpid, and publish a small JSON
 * result atomically: write TMP/<name>.tmp, [fsync], rename into RESULTS,
 * [fsync RESULTS]. Nothing else: no parsing, no logs, no queue.
 * Prints "<tasks> <seconds>" (CLOCK_MONOTONIC, from the directory listing on). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: baseline_runner STAGING RESULTS TMP FSYNC PROGRAM\n");
		return 2;
	}
	int do_fsync = atoi(argv[4]);
	char *prog = argv[5];
	double t0 = now();
	int sfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int tfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (sfd < 0 || rfd < 0 || tfd < 0 || devnull < 0)
		die("open");
	DIR *d = fdopendir(dup(sfd));
	if (!d)
		die("opendir");
	struct dirent *de;
	long count = 0;
	char buf[65536];
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		/* Read the task file (no parsing). */
		int f = openat(sfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			die("openat");
		while (read(f, buf, sizeof buf) > 0)
			;
		close(f);
		int out[2], err[2];
		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
			die("pipe2");
		double start = now();
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			dup2(devnull, 0);
			dup2(out[1], 1);
			dup2(err[1], 2);
			execl(prog, prog, (char *)NULL);
			_exit(127);
		}
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
		snprintf(id, sizeof id, "%s", de->d_name);
		char *dot = strrchr(id, '.');
		if (dot)
			*dot = '\0';
		int len = snprintf(json, sizeof json,
				   "{\"id\":\"%s\",\"exit_code\":%d,\"stdout_bytes\":%zu,"
				   "\"stderr_bytes\":%zu,\"duration_ms\":%.3f}\n",
				   id, WIFEXITED(status) ? WEXITSTATUS(status) : -1, nout, nerr,
				   dur * 1e3);
		snprintf(tmp, sizeof tmp, "%s.json.tmp", id);
		snprintf(dst, sizeof dst, "%s.json", id);
		int w = openat(tfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (w < 0 || write(w, json, (size_t)len) != len)
			die("write result");
		if (do_fsync && fsync(w) < 0)
			die("fsync");
		close(w);
		if (renameat(tfd, tmp, rfd, dst) < 0)
			die("rename");
		if (do_fsync && fsync(rfd) < 0)
			die("fsync dir");
		count++;
	}
	closedir(d);
	printf("%ld %.6f\n", count, now() - t0);
	return 0;
}
