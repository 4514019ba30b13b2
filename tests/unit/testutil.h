/* testutil: what every unit test needs before <cmocka.h>, and a few small
 * helpers shared by the tests (temporary directories, files, a PRNG).
 *
 * Everything here is static so each test program stays one translation
 * unit; unused helpers are marked so -Wall -Wextra stays quiet. */
#ifndef SPOOLRUN_TESTUTIL_H
#define SPOOLRUN_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

/* cmocka.h relies on these being included first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TU_UNUSED __attribute__((unused))

/* Length of a string literal, without its terminating NUL. */
#define LIT_LEN(s) (sizeof(s) - 1)

/* Asserts that haystack contains needle, printing both when it does not. */
#define assert_contains(haystack, needle) \
	tu_assert_contains((haystack), (needle), __FILE__, __LINE__)

static TU_UNUSED void tu_assert_contains(const char *haystack, const char *needle,
					 const char *file, int line)
{
	if (!haystack || !needle || !strstr(haystack, needle)) {
		print_error("\"%s\" does not contain \"%s\"\n", haystack ? haystack : "(null)",
			    needle ? needle : "(null)");
		_fail(file, line);
	}
}

/* A fresh temporary directory (mkdtemp); malloc'ed path. */
static TU_UNUSED char *tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	size_t n = strlen(base) + sizeof "/spoolrun-unit-XXXXXX";
	char *path = malloc(n);
	assert_non_null(path);
	snprintf(path, n, "%s/spoolrun-unit-XXXXXX", base);
	assert_non_null(mkdtemp(path));
	return path;
}

static TU_UNUSED int tu_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf path, then frees it. */
static TU_UNUSED void tu_rmtree(char *path)
{
	if (!path)
		return;
	nftw(path, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(path);
}

/* malloc'ed "dir/name". */
static TU_UNUSED char *tu_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Writes len bytes to path (created or truncated). */
static TU_UNUSED void tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	assert_int_equal(close(fd), 0);
}

/* Reads the whole file at path into a malloc'ed, NUL-terminated buffer;
 * NULL (errno set) when it cannot be opened. */
static TU_UNUSED char *tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 256, used = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	for (;;) {
		if (used + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		ssize_t n = read(fd, buf + used, cap - used - 1);
		assert_true(n >= 0);
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	if (len)
		*len = used;
	return buf;
}

/* Number of entries in a directory, "." and ".." excluded. */
static TU_UNUSED int tu_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Deterministic PRNG (splitmix64), so random tests are reproducible. */
struct tu_rng {
	uint64_t state;
};

static TU_UNUSED uint64_t tu_rand64(struct tu_rng *r)
{
	uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Uniform-enough integer in [lo, hi]. */
static TU_UNUSED uint64_t tu_rand_range(struct tu_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + tu_rand64(r) % (hi - lo + 1);
}

#endif
