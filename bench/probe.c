/* probe: records CLOCK_MONOTONIC (ns) as its very first act, then writes it
 * to the file named by argv[1] (created with O_EXCL: when many probes share
 * one path, the first one to start wins), or to stdout without an argument. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (argc < 2)
		return write(1, buf, (size_t)n) == n ? 0 : 1;
	/* Write beside, then rename: a reader never sees an empty file. */
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", argv[1], (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return 1;
	int ok = write(fd, buf, (size_t)n) == n;
	close(fd);
	/* link() fails if argv[1] exists: the first probe's time is kept. */
	if (ok)
		ok = link(tmp, argv[1]) == 0;
	unlink(tmp);
	return ok ? 0 : 1;
}
