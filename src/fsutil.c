#define _GNU_SOURCE
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t xread(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

int xwrite_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_fd_bounded(int fd, size_t max, char **out, size_t *len)
{
	/* Never ask for more than max + 1 bytes: from a pipe or FIFO, what is
	 * read past that would be consumed for nothing. */
	size_t cap = max < 4096 ? max + 1 : 4096, used = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -1;
	for (;;) {
		if (used == cap) {
			/* Grow to at most max + 1: one byte past the limit is
			 * enough to know the file is too large. */
			size_t want = cap * 2 > max + 1 ? max + 1 : cap * 2;
			if (want <= cap) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			char *grown = realloc(buf, want);
			if (!grown) {
				free(buf);
				return -1;
			}
			buf = grown;
			cap = want;
		}
		ssize_t n = xread(fd, buf + used, cap - used);
		if (n < 0) {
			int saved = errno;
			free(buf);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			free(buf);
			errno = EFBIG;
			return -1;
		}
	}
	char *fitted = realloc(buf, used + 1);
	if (fitted)
		buf = fitted;
	else if (used == cap) {
		free(buf);
		return -1;
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	return 0;
}

int read_path_bounded(const char *path, size_t max, char **out, size_t *len)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return -1;
	int rc = read_fd_bounded(fd, max, out, len);
	int saved = errno;
	if (fd != STDIN_FILENO)
		close(fd);
	errno = saved;
	return rc;
}

int fsync_dirfd(int dirfd)
{
	return fsync(dirfd);
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		/* What we create gets exactly mode, whatever the umask. */
		if (mkdir(buf, mode) == 0) {
			if (chmod(buf, mode) < 0)
				return -1;
		} else if (errno != EEXIST)
			return -1;
		*p = saved;
		if (saved == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int dir_each(int dirfd, void (*fn)(void *ctx, const char *name), void *ctx)
{
	/* A descriptor of its own: readdir moves the offset of the one it reads. */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return -1;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			fn(ctx, de->d_name);
		errno = 0;
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return saved ? -1 : 0;
}

int open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int rename_noreplace(int srcdir, const char *src, int dstdir, const char *dst)
{
	if (renameat2(srcdir, src, dstdir, dst, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* File systems without RENAME_NOREPLACE: link() never replaces. */
	if (linkat(srcdir, src, dstdir, dst, 0) < 0)
		return -1;
	if (unlinkat(srcdir, src, 0) < 0)
		return -1;
	return 0;
}

int write_temp(int tmpdir, const char *tmpname, int (*write_body)(int fd, void *ctx), void *ctx,
	       mode_t mode, bool durable)
{
	int fd = openat(tmpdir, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0 || write_body(fd, ctx) < 0 || (durable && fsync(fd) < 0))
		goto fail_open;
	/* close() can report a deferred write error (NFS, quota). */
	if (close(fd) < 0) {
		fd = -1;
		goto fail_open;
	}
	return 0;

fail_open: {
	int saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(tmpdir, tmpname, 0);
	errno = saved;
	return -1;
}
}

int publish_stream(int tmpdir, const char *tmpname, int dstdir, const char *dstname,
		   int (*write_body)(int fd, void *ctx), void *ctx, mode_t mode, bool durable)
{
	if (write_temp(tmpdir, tmpname, write_body, ctx, mode, durable) < 0)
		return -1;
	if (rename_noreplace(tmpdir, tmpname, dstdir, dstname) < 0) {
		int saved = errno;
		unlinkat(tmpdir, tmpname, 0);
		errno = saved;
		return -1;
	}
	/* Published either way; the caller decides how loud a failed
	 * directory sync is, since retrying the publish would now fail. */
	if (durable && fsync_dirfd(dstdir) < 0)
		return 1;
	return 0;
}

struct bytes {
	const void *data;
	size_t len;
};

static int write_bytes(int fd, void *ctx)
{
	struct bytes *b = ctx;
	return xwrite_all(fd, b->data, b->len);
}

int publish_file(int tmpdir, const char *tmpname, int dstdir, const char *dstname,
		 const void *data, size_t len, mode_t mode, bool durable)
{
	struct bytes b = { data, len };
	return publish_stream(tmpdir, tmpname, dstdir, dstname, write_bytes, &b, mode, durable);
}
