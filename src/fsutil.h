/* fsutil: EINTR-safe I/O and the atomic-publish primitive.
 *
 * Every function returns 0 (or a count) on success and -1 with errno set on
 * failure, preserving the errno of the step that failed. */
#ifndef SPOOLRUN_FSUTIL_H
#define SPOOLRUN_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* read(2) that retries EINTR. Returns bytes read, 0 at EOF. */
ssize_t xread(int fd, void *buf, size_t len);

/* Writes all of buf, retrying EINTR and short writes. */
int xwrite_all(int fd, const void *buf, size_t len);

/* Reads a whole file from fd into a malloc'ed buffer (NUL-terminated, not
 * counted in *len). Fails with EFBIG when the file holds more than max bytes,
 * never reading past max + 1. */
int read_fd_bounded(int fd, size_t max, char **out, size_t *len);

/* read_fd_bounded on a path the user named ("-": standard input). Follows
 * symlinks and reads FIFOs: unlike the spool's files, it is the caller's
 * own choice, e.g. `spoolrun exec <(make-task)`. */
int read_path_bounded(const char *path, size_t max, char **out, size_t *len);

/* fsync() a directory by fd, so renames into it survive a crash. */
int fsync_dirfd(int dirfd);

/* mkdir -p; each component it creates gets exactly mode, whatever the umask. */
int mkdir_p(const char *path, mode_t mode);

/* Opens a directory for *at() calls: O_DIRECTORY|O_CLOEXEC|O_PATH-free, so
 * the fd can also be fsynced and listed. */
int open_dir(const char *path);

/* Calls fn(ctx, name) for every entry of the directory dirfd ("." and ".."
 * left out), in readdir order; fn may remove the entry it is given. -1 with
 * errno when the directory cannot be read. */
int dir_each(int dirfd, void (*fn)(void *ctx, const char *name), void *ctx);

/* Atomic publish: writes data to tmpdir/tmpname (created O_EXCL, then
 * fchmod()ed to mode whatever the umask), fsyncs it when durable, renames it to dstdir/dstname
 * without ever replacing an existing file (EEXIST then), and fsyncs dstdir
 * when durable. On any failure the temporary file is removed.
 * Returns 0 when published, 1 when published but the directory fsync failed
 * (errno set), -1 when not published. */
int publish_file(int tmpdir, const char *tmpname, int dstdir, const char *dstname,
		 const void *data, size_t len, mode_t mode, bool durable);

/* The first half of a publication: tmpdir/tmpname created (O_EXCL, mode),
 * written by write_body, fsynced when durable, closed and checked; removed
 * again on any failure. The caller renames it into place. */
int write_temp(int tmpdir, const char *tmpname, int (*write_body)(int fd, void *ctx), void *ctx,
	       mode_t mode, bool durable);

/* The same, with the body written by write_body(fd, ctx) (0, or -1 with
 * errno), for content too large to hold twice in memory. */
int publish_stream(int tmpdir, const char *tmpname, int dstdir, const char *dstname,
		   int (*write_body)(int fd, void *ctx), void *ctx, mode_t mode, bool durable);

/* rename that fails with EEXIST instead of replacing dst. */
int rename_noreplace(int srcdir, const char *src, int dstdir, const char *dst);

#endif
