/* waitn DIR N TIMEOUT_S: watches DIR for files renamed in (IN_MOVED_TO) whose
 * names end in .json and do not start with '.'; prints "ready" once the watch
 * is in place, then the CLOCK_MONOTONIC time (ns) at which the Nth arrived.
 * Exit 1 on timeout. Used to time "last result published" without polling. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	long n = atol(argv[2]), seen = 0;
	long long deadline = now_ns() + (long long)(atof(argv[3]) * 1e9);
	int fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, argv[1], IN_MOVED_TO) < 0) {
		perror("waitn");
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	char buf[256 * 1024] __attribute__((aligned(8)));
	while (seen < n) {
		long long left = deadline - now_ns();
		if (left <= 0)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, (int)(left / 1000000) + 1) <= 0)
			continue;
		ssize_t len = read(fd, buf, sizeof buf);
		for (char *q = buf; len > 0 && q < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			q += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				fprintf(stderr, "waitn: inotify overflow\n");
				return 3;
			}
			size_t l = ev->len ? strlen(ev->name) : 0;
			if (l > 5 && ev->name[0] != '.' && !strcmp(ev->name + l - 5, ".json"))
				seen++;
		}
	}
	long long t = now_ns();
	if (seen < n) {
		fprintf(stderr, "waitn: timeout after %ld of %ld\n", seen, n);
		return 1;
	}
	printf("%lld\n", t);
	return 0;
}
