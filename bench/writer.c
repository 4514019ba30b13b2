/* writer OUT ERR: writes OUT bytes to stdout and ERR bytes to stderr, in
 * 64 KiB chunks of printable text (alternating between the two streams), so
 * the capture path sees plain ASCII and no JSON escaping. Sizes take K/M/G. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

static unsigned long long size_arg(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	switch (*end) {
	case 'K': case 'k': v <<= 10; break;
	case 'M': case 'm': v <<= 20; break;
	case 'G': case 'g': v <<= 30; break;
	}
	return v;
}

static char buf[64 * 1024];

static int put(int fd, unsigned long long *left)
{
	size_t n = *left < sizeof buf ? (size_t)*left : sizeof buf;
	ssize_t w = write(fd, buf, n);
	if (w < 0)
		return errno == EINTR ? 0 : -1;
	*left -= (unsigned long long)w;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: writer OUT_BYTES ERR_BYTES\n");
		return 2;
	}
	unsigned long long out = size_arg(argv[1]), err = size_arg(argv[2]);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
	while (out || err) {
		if (out && put(1, &out) < 0)
			return 1;
		if (err && put(2, &err) < 0)
			return 1;
	}
	return 0;
}
