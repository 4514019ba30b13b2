/* bare_watcher INCOMING PROBE OUTDIR
 * The floor for benchmark 2: an inotify watch on INCOMING for IN_MOVED_TO;
 * for each *.json renamed in, read the file, then start
 * PROBE OUTDIR/<name without .json> with posix_spawn (glibc: clone with
 * CLONE_VM|CLONE_VFORK, the fastest way a runner can; stdin /dev/null,
 * stdout/stderr on pipes read to EOF), waitpid, unlink the task file. Prints "ready" once watching.
 * Runs until killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void run_probe(const char *probe, const char *out_path, int devnull)
{
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	char *argv[] = { (char *)probe, (char *)out_path, NULL };
	pid_t pid;
	if (posix_spawn(&pid, probe, &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	char buf[4096];
	struct pollfd p[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
	int open_fds = 2;
	while (pid > 0 && open_fds) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++)
			if (p[i].fd >= 0 && p[i].revents && read(p[i].fd, buf, sizeof buf) <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bare_watcher INCOMING PROBE OUTDIR\n");
		return 2;
	}
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int in = inotify_init1(IN_CLOEXEC);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (dfd < 0 || in < 0 || devnull < 0 || inotify_add_watch(in, argv[1], IN_MOVED_TO) < 0) {
		perror("bare_watcher");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	char evbuf[64 * 1024] __attribute__((aligned(8)));
	char filebuf[65536];
	for (;;) {
		ssize_t len = read(in, evbuf, sizeof evbuf);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (char *q = evbuf; q < evbuf + len;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			q += sizeof *ev + ev->len;
			size_t l = ev->len ? strlen(ev->name) : 0;
			if (l <= 5 || ev->name[0] == '.' || strcmp(ev->name + l - 5, ".json"))
				continue;
			int f = openat(dfd, ev->name, O_RDONLY | O_CLOEXEC);
			if (f < 0)
				continue;
			while (read(f, filebuf, sizeof filebuf) > 0)
				;
			close(f);
			char out_path[8192];
			snprintf(out_path, sizeof out_path, "%s/%.*s", argv[3], (int)(l - 5), ev->name);
			run_probe(argv[2], out_path, devnull);
			unlinkat(dfd, ev->name, 0);
		}
	}
}
