/* fsutil: EINTR-safe I/O, bounded reads, mkdir -p and atomic publish. */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>

#include "fsutil.h"

struct fixture {
	char *dir;    /* the temporary directory */
	char *tmp;    /* dir/tmp */
	char *dst;    /* dir/dst */
	int tmp_fd, dst_fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->dir = tu_mkdtemp();
	f->tmp = tu_join(f->dir, "tmp");
	f->dst = tu_join(f->dir, "dst");
	if (mkdir(f->tmp, 0755) < 0 || mkdir(f->dst, 0755) < 0)
		return -1;
	f->tmp_fd = open_dir(f->tmp);
	f->dst_fd = open_dir(f->dst);
	if (f->tmp_fd < 0 || f->dst_fd < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close(f->tmp_fd);
	close(f->dst_fd);
	free(f->tmp);
	free(f->dst);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* Contents of dir/name (malloc'ed), or NULL when it does not exist. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
	char *p = tu_join(dir, name);
	char *s = tu_read_file(p, len);
	free(p);
	return s;
}

/* --- publish_file ----------------------------------------------------- */

static void test_publish_creates(void **state)
{
	struct fixture *f = *state;
	const char data[] = "{\"id\": \"x\"}\n\0binary\xff";
	for (int durable = 0; durable <= 1; durable++) {
		const char *name = durable ? "durable.json" : "fast.json";
		assert_int_equal(publish_file(f->tmp_fd, "x.tmp", f->dst_fd, name, data,
					      sizeof data, 0644, durable), 0);
		size_t len;
		char *got = slurp(f->dst, name, &len);
		assert_non_null(got);
		assert_int_equal(len, sizeof data);
		assert_memory_equal(got, data, sizeof data);
		free(got);
		assert_int_equal(tu_count_entries(f->tmp), 0);
	}
	assert_int_equal(tu_count_entries(f->dst), 2);
}

static void test_publish_mode(void **state)
{
	struct fixture *f = *state;
	/* The mode asked for, whatever the umask. */
	mode_t old = umask(077);
	int rc = publish_file(f->tmp_fd, "m.tmp", f->dst_fd, "m.json", "x", 1, 0640, false);
	umask(old);
	assert_int_equal(rc, 0);
	char *p = tu_join(f->dst, "m.json");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	free(p);
}

static void test_publish_empty(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(publish_file(f->tmp_fd, "e.tmp", f->dst_fd, "e.json", "", 0, 0644, true), 0);
	size_t len = 99;
	char *got = slurp(f->dst, "e.json", &len);
	assert_non_null(got);
	assert_int_equal(len, 0);
	free(got);
}

static void test_publish_never_replaces(void **state)
{
	struct fixture *f = *state;
	char *existing = tu_join(f->dst, "r.json");
	tu_write_file(existing, "old", 3);
	for (int durable = 0; durable <= 1; durable++) {
		errno = 0;
		assert_int_equal(publish_file(f->tmp_fd, "r.tmp", f->dst_fd, "r.json", "new!", 4, 0644,
					      durable), -1);
		assert_int_equal(errno, EEXIST);
		size_t len;
		char *got = tu_read_file(existing, &len);
		assert_non_null(got);
		assert_int_equal(len, 3);
		assert_memory_equal(got, "old", 3);
		free(got);
		/* The temporary file is gone. */
		assert_int_equal(tu_count_entries(f->tmp), 0);
		assert_int_equal(tu_count_entries(f->dst), 1);
	}
	free(existing);
}

static void test_publish_same_directory(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(publish_file(f->dst_fd, ".s.tmp", f->dst_fd, "s.json", "abc", 3, 0644, true), 0);
	assert_int_equal(tu_count_entries(f->dst), 1);
	assert_int_equal(publish_file(f->dst_fd, ".s.tmp", f->dst_fd, "s.json", "def", 3, 0644, true), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(tu_count_entries(f->dst), 1);
	size_t len;
	char *got = slurp(f->dst, "s.json", &len);
	assert_string_equal(got, "abc");
	free(got);
}

static void test_publish_busy_tmpname(void **state)
{
	struct fixture *f = *state;
	/* The temporary name is created exclusively: never written through. */
	char *busy = tu_join(f->tmp, "b.tmp");
	tu_write_file(busy, "someone else's", 14);
	assert_int_equal(publish_file(f->tmp_fd, "b.tmp", f->dst_fd, "b.json", "x", 1, 0644, false), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(tu_count_entries(f->dst), 0);
	size_t len;
	char *got = tu_read_file(busy, &len);
	assert_non_null(got);
	assert_string_equal(got, "someone else's");
	free(got);
	free(busy);
}

static void test_publish_missing_dst(void **state)
{
	struct fixture *f = *state;
	/* A destination directory that was removed: not published, temp removed. */
	char *gone = tu_join(f->dir, "gone");
	assert_int_equal(mkdir(gone, 0755), 0);
	int fd = open_dir(gone);
	assert_true(fd >= 0);
	assert_int_equal(rmdir(gone), 0);
	assert_int_equal(publish_file(f->tmp_fd, "g.tmp", fd, "g.json", "x", 1, 0644, false), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(tu_count_entries(f->tmp), 0);
	close(fd);
	free(gone);
}

/* --- rename_noreplace ------------------------------------------------- */

static void test_rename_noreplace(void **state)
{
	struct fixture *f = *state;
	char *a = tu_join(f->tmp, "a"), *b = tu_join(f->dst, "b");
	tu_write_file(a, "A", 1);
	assert_int_equal(rename_noreplace(f->tmp_fd, "a", f->dst_fd, "b"), 0);
	assert_int_equal(access(a, F_OK), -1);
	tu_write_file(a, "A2", 2);
	assert_int_equal(rename_noreplace(f->tmp_fd, "a", f->dst_fd, "b"), -1);
	assert_int_equal(errno, EEXIST);
	char *got = tu_read_file(b, NULL);
	assert_string_equal(got, "A");
	free(got);
	got = tu_read_file(a, NULL);
	assert_string_equal(got, "A2");
	free(got);
	assert_int_equal(rename_noreplace(f->tmp_fd, "missing", f->dst_fd, "c"), -1);
	assert_int_equal(errno, ENOENT);
	free(a);
	free(b);
}

/* --- read_fd_bounded -------------------------------------------------- */

/* Writes n pattern bytes to dir/name and opens it for reading. */
static int pattern_file(struct fixture *f, const char *name, size_t n, char **data)
{
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (i * 7 + i / 26) % 26);
	char *p = tu_join(f->dir, name);
	tu_write_file(p, buf, n);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	free(p);
	*data = buf;
	return fd;
}

static void bounded_case(struct fixture *f, size_t n, size_t max)
{
	char *data;
	int fd = pattern_file(f, "r.bin", n, &data);
	char *out = (char *)0x1;
	size_t len = 12345;
	errno = 0;
	int rc = read_fd_bounded(fd, max, &out, &len);
	if (n <= max) {
		assert_int_equal(rc, 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, data, n);
		assert_int_equal(out[n], '\0');
		free(out);
	} else {
		assert_int_equal(rc, -1);
		assert_int_equal(errno, EFBIG);
	}
	close(fd);
	free(data);
}

static void test_read_bounded(void **state)
{
	struct fixture *f = *state;
	const size_t sizes[][2] = {
		{ 0, 0 }, { 0, 10 }, { 1, 0 }, { 10, 10 }, { 11, 10 }, { 4095, 4095 },
		{ 4096, 4096 }, { 4097, 4096 }, { 4096, 4095 }, { 8192, 8192 }, { 8193, 8192 },
		{ 100000, 1 << 20 }, { 1 << 20, 1 << 20 }, { (1 << 20) + 1, 1 << 20 },
		{ 300000, 299999 },
	};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		bounded_case(f, sizes[i][0], sizes[i][1]);
}

static void test_read_bounded_pipe(void **state)
{
	(void)state;
	/* A pipe, written in pieces by a child: read to EOF. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		char chunk[1000];
		memset(chunk, 'p', sizeof chunk);
		for (int i = 0; i < 70; i++)
			if (xwrite_all(p[1], chunk, sizeof chunk) < 0)
				_exit(1);
		_exit(0);
	}
	close(p[1]);
	char *out;
	size_t len;
	assert_int_equal(read_fd_bounded(p[0], 70000, &out, &len), 0);
	assert_int_equal(len, 70000);
	assert_int_equal(out[0], 'p');
	assert_int_equal(out[69999], 'p');
	free(out);
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* "never reading past max + 1": after refusing, the file offset shows how
 * much was consumed. */
static void test_read_bounded_reads_at_most_max_plus_one(void **state)
{
	struct fixture *f = *state;
	const size_t maxes[] = { 0, 10, 100, 4094, 5000, 10000 };
	bool all_ok = true;
	for (size_t i = 0; i < sizeof maxes / sizeof *maxes; i++) {
		char *data;
		int fd = pattern_file(f, "big.bin", 20000, &data);
		char *out = NULL;
		size_t len;
		int rc = read_fd_bounded(fd, maxes[i], &out, &len);
		int err = errno;
		off_t pos = lseek(fd, 0, SEEK_CUR);
		close(fd);
		free(data);
		if (rc == 0)
			free(out);
		/* Free everything before asserting, so a failure leaks nothing. */
		assert_int_equal(rc, -1);
		assert_int_equal(err, EFBIG);
		if ((size_t)pos > maxes[i] + 1) {
			print_error("max %zu: consumed %lld bytes of the file\n", maxes[i],
				    (long long)pos);
			all_ok = false;
		}
	}
	assert_true(all_ok);
}

static void test_read_bounded_bad_fd(void **state)
{
	(void)state;
	char *out;
	size_t len;
	errno = 0;
	assert_int_equal(read_fd_bounded(-1, 10, &out, &len), -1);
	assert_int_equal(errno, EBADF);
}

/* --- mkdir_p ---------------------------------------------------------- */

static void test_mkdir_p(void **state)
{
	struct fixture *f = *state;
	char *deep = tu_join(f->dir, "a/b/c/d");
	assert_int_equal(mkdir_p(deep, 0755), 0);
	struct stat st;
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Again: already there is fine. */
	assert_int_equal(mkdir_p(deep, 0755), 0);
	free(deep);

	char *trail = tu_join(f->dir, "x/y/");
	assert_int_equal(mkdir_p(trail, 0755), 0);
	char *y = tu_join(f->dir, "x/y");
	assert_int_equal(stat(y, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(trail);
	free(y);

	char *dbl = tu_join(f->dir, "p//q");
	assert_int_equal(mkdir_p(dbl, 0755), 0);
	assert_int_equal(stat(dbl, &st), 0);
	free(dbl);
}

static void test_mkdir_p_mode(void **state)
{
	struct fixture *f = *state;
	char *p = tu_join(f->dir, "m1/m2");
	mode_t old = umask(0);
	int rc = mkdir_p(p, 0700);
	umask(old);
	assert_int_equal(rc, 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	char *m1 = tu_join(f->dir, "m1");
	assert_int_equal(stat(m1, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	free(m1);
	free(p);
}

static void test_mkdir_p_errors(void **state)
{
	struct fixture *f = *state;
	char *file = tu_join(f->dir, "plain");
	tu_write_file(file, "x", 1);
	errno = 0;
	assert_int_equal(mkdir_p(file, 0755), -1);
	assert_int_equal(errno, ENOTDIR);
	char *below = tu_join(f->dir, "plain/sub/dir");
	errno = 0;
	assert_int_equal(mkdir_p(below, 0755), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(mkdir_p("", 0755), -1);
	free(file);
	free(below);
}

/* --- xwrite_all / xread ----------------------------------------------- */

static void test_xwrite_all_file(void **state)
{
	struct fixture *f = *state;
	size_t n = 3 * 1024 * 1024 + 17;
	char *buf = malloc(n);
	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(i * 31 + 7);
	char *p = tu_join(f->dir, "w.bin");
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(xwrite_all(fd, buf, n), 0);
	assert_int_equal(xwrite_all(fd, buf, 0), 0);
	close(fd);
	size_t len;
	char *got = tu_read_file(p, &len);
	assert_int_equal(len, n);
	assert_memory_equal(got, buf, n);
	free(got);
	free(p);
	free(buf);
}

/* Through a pipe much larger than its buffer, so writes come up short
 * and block while a child reads slowly. */
static void test_xwrite_all_pipe(void **state)
{
	(void)state;
	size_t n = 1 << 20;
	char *buf = malloc(n);
	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(i ^ (i >> 8));
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		size_t got = 0;
		char chunk[3001];
		for (;;) {
			ssize_t r = xread(p[0], chunk, sizeof chunk);
			if (r < 0)
				_exit(2);
			if (r == 0)
				break;
			if (memcmp(chunk, buf + got, (size_t)r) != 0)
				_exit(3);
			got += (size_t)r;
		}
		_exit(got == n ? 0 : 4);
	}
	close(p[0]);
	assert_int_equal(xwrite_all(p[1], buf, n), 0);
	close(p[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	free(buf);
}

static void test_xwrite_all_errors(void **state)
{
	(void)state;
	errno = 0;
	assert_int_equal(xwrite_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	/* A pipe with no reader: EPIPE (with SIGPIPE ignored, as the runner does). */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	errno = 0;
	assert_int_equal(xwrite_all(p[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

static void test_xread_eof(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(xwrite_all(p[1], "ab", 2), 0);
	close(p[1]);
	char buf[8];
	assert_int_equal(xread(p[0], buf, sizeof buf), 2);
	assert_memory_equal(buf, "ab", 2);
	assert_int_equal(xread(p[0], buf, sizeof buf), 0);
	close(p[0]);
}

static void test_open_dir(void **state)
{
	struct fixture *f = *state;
	int fd = open_dir(f->dir);
	assert_true(fd >= 0);
	assert_int_equal(fsync_dirfd(fd), 0);
	int flags = fcntl(fd, F_GETFD);
	assert_true(flags & FD_CLOEXEC);
	close(fd);
	char *file = tu_join(f->dir, "notadir");
	tu_write_file(file, "", 0);
	errno = 0;
	assert_int_equal(open_dir(file), -1);
	assert_int_equal(errno, ENOTDIR);
	free(file);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_publish_creates),
		T(test_publish_mode),
		T(test_publish_empty),
		T(test_publish_never_replaces),
		T(test_publish_same_directory),
		T(test_publish_busy_tmpname),
		T(test_publish_missing_dst),
		T(test_rename_noreplace),
		T(test_read_bounded),
		T(test_read_bounded_pipe),
		T(test_read_bounded_reads_at_most_max_plus_one),
		T(test_read_bounded_bad_fd),
		T(test_mkdir_p),
		T(test_mkdir_p_mode),
		T(test_mkdir_p_errors),
		T(test_xwrite_all_file),
		T(test_xwrite_all_pipe),
		T(test_xwrite_all_errors),
		T(test_xread_eof),
		T(test_open_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
