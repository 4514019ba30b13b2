#define _GNU_SOURCE
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "task.h"

static int set_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* mkdir -p, open, and check one directory of the layout. A directory of
 * the layout replaced by a symbolic link (results/ -> /elsewhere) would
 * send results, logs or temporaries wherever the link points: refused,
 * never followed (O_NOFOLLOW on the last component; the root itself is
 * resolved once, by realpath, as the user named it). */
static int open_layout_dir(const char *path, bool check_perms, bool nofollow, int *fd,
			   char *err, size_t errlen)
{
	if (mkdir_p(path, 0755) < 0)
		return set_error(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
	if (*fd < 0 && nofollow && (errno == ELOOP || errno == ENOTDIR)) {
		struct stat lst;
		if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
			return set_error(err, errlen, "%s is a symbolic link; the directories of a "
					 "spool must be real directories (not followed; refusing to start)",
					 path);
	}
	if (*fd < 0)
		return set_error(err, errlen, "cannot open directory %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(*fd, &st) < 0)
		return set_error(err, errlen, "cannot stat %s: %s", path, strerror(errno));
	if (check_perms && (st.st_mode & 022))
		return set_error(err, errlen,
				 "%s is writable by %s (mode %04o): anyone could plant or remove tasks; "
				 "chmod go-w it, or set [spool] check_permissions = no",
				 path, (st.st_mode & 020) ? "its group" : "others",
				 (unsigned)(st.st_mode & 07777));
	return 0;
}

static char *join(const char *a, const char *b)
{
	char *out;
	return asprintf(&out, "%s/%s", a, b) < 0 ? NULL : out;
}

static const char *const layout_dirs[] = { "incoming", "active", "rejected", "logs", "tmp",
					   "deferred", "cancel" };

/* Calls check(path) for the root, each directory of the layout and the
 * results directory; stops at the first that returns -1. */
static int each_layout_path(const struct config *c, const char *root,
			    int (*check)(const char *path, const struct config *c, char *err, size_t errlen),
			    char *err, size_t errlen)
{
	if (check(root, c, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < sizeof layout_dirs / sizeof *layout_dirs; i++) {
		char *p = join(root, layout_dirs[i]);
		int rc = p ? check(p, c, err, errlen) : set_error(err, errlen, "out of memory");
		free(p);
		if (rc < 0)
			return -1;
	}
	char *results = c->results_dir ? strdup(c->results_dir) : join(root, "results");
	int rc = results ? check(results, c, err, errlen) : set_error(err, errlen, "out of memory");
	free(results);
	return rc;
}

/* A directory that is there but unsafe is refused before anything is
 * created, so a refused spool is left exactly as it was found. */
static int refuse_unsafe(const char *path, const struct config *c, char *err, size_t errlen)
{
	struct stat st;
	if (!c->check_perms || stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || !(st.st_mode & 022))
		return 0;
	return set_error(err, errlen,
			 "%s is writable by %s (mode %04o): anyone could plant or remove tasks; "
			 "chmod go-w it, or set [spool] check_permissions = no; nothing was created",
			 path, (st.st_mode & 020) ? "its group" : "others",
			 (unsigned)(st.st_mode & 07777));
}

static int require_dir(const char *path, const struct config *c, char *err, size_t errlen)
{
	(void)c;
	struct stat st;
	if (stat(path, &st) < 0)
		return set_error(err, errlen, "%s: %s (no spool there: start `spoolrun watch` on it "
				 "once to create it)", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return set_error(err, errlen, "%s: not a directory", path);
	return 0;
}

int spool_open_existing(struct spool *s, const struct config *c, const char *root,
			char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->root_fd = s->incoming_fd = s->active_fd = s->results_fd = -1;
	s->logs_fd = s->rejected_fd = s->tmp_fd = s->lock_fd = -1;
	s->deferred_fd = s->cancel_fd = -1;
	if (each_layout_path(c, root, require_dir, err, errlen) < 0) {
		errno = ENOENT;
		return -1;
	}
	return spool_open(s, c, root, err, errlen);
}

int spool_open(struct spool *s, const struct config *c, const char *root,
	       char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->root_fd = s->incoming_fd = s->active_fd = s->results_fd = -1;
	s->logs_fd = s->rejected_fd = s->tmp_fd = s->lock_fd = -1;
	s->deferred_fd = s->cancel_fd = -1;
	s->durable = c->fsync;
	s->file_mode = c->file_mode;
	if (each_layout_path(c, root, refuse_unsafe, err, errlen) < 0)
		return -1;
	if (mkdir_p(root, 0755) < 0)
		return set_error(err, errlen, "cannot create spool %s: %s", root, strerror(errno));
	if (!(s->root = realpath(root, NULL)))
		return set_error(err, errlen, "cannot resolve spool %s: %s", root, strerror(errno));
	if (open_layout_dir(s->root, c->check_perms, false, &s->root_fd, err, errlen) < 0)
		return -1;
	s->results_path = c->results_dir ? strdup(c->results_dir) : join(s->root, "results");
	s->logs_path = join(s->root, "logs");
	s->rejected_path = join(s->root, "rejected");
	if (!s->results_path || !s->logs_path || !s->rejected_path)
		return set_error(err, errlen, "out of memory");
	/* In the order of layout_dirs, which the checks before creating use. */
	int *fds[] = { &s->incoming_fd, &s->active_fd, &s->rejected_fd, &s->logs_fd, &s->tmp_fd,
		       &s->deferred_fd, &s->cancel_fd };
	_Static_assert(sizeof fds / sizeof *fds == sizeof layout_dirs / sizeof *layout_dirs,
		       "one fd per directory of the layout");
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
		char *p = join(s->root, layout_dirs[i]);
		int rc = p ? open_layout_dir(p, c->check_perms, true, fds[i], err, errlen)
			   : set_error(err, errlen, "out of memory");
		free(p);
		if (rc < 0)
			return -1;
	}
	/* A results_dir named in the config is followed as named: the admin
	 * chose it; results/ inside the spool is not. */
	if (open_layout_dir(s->results_path, c->check_perms, !c->results_dir, &s->results_fd, err,
			    errlen) < 0)
		return -1;
	char *abs = realpath(s->results_path, NULL);
	if (abs) {
		free(s->results_path);
		s->results_path = abs;
	}
	/* rename() cannot cross file systems: temporaries for results live
	 * beside them when results_dir is elsewhere. */
	struct stat a, b;
	s->publish_tmp_fd = s->tmp_fd;
	if (fstat(s->tmp_fd, &a) == 0 && fstat(s->results_fd, &b) == 0 && a.st_dev != b.st_dev)
		s->publish_tmp_fd = s->results_fd;
	return 0;
}

void spool_close(struct spool *s)
{
	int fds[] = { s->root_fd, s->incoming_fd, s->active_fd, s->results_fd, s->logs_fd,
		      s->rejected_fd, s->tmp_fd, s->deferred_fd, s->cancel_fd, s->lock_fd };
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(s->root);
	free(s->results_path);
	free(s->logs_path);
	free(s->rejected_path);
	memset(s, 0, sizeof *s);
}

int spool_lock(struct spool *s)
{
	s->lock_fd = openat(s->root_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (s->lock_fd < 0)
		return -1;
	while (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
		if (errno != EINTR)
			return -1;
	/* The holder's pid, for `spoolrun status`. */
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
		log_warn("cannot write the pid into %s/.lock", s->root);
	return 0;
}

bool spool_is_task_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/* --- names: every name the spool builds from an id or a task file name --- */

/* snprintf that refuses instead of truncating. */
static int name_fmt(char out[SPOOL_NAME_SIZE], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int name_fmt(char out[SPOOL_NAME_SIZE], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, SPOOL_NAME_SIZE, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= SPOOL_NAME_SIZE) {
		out[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int spool_name_result(const char *id, unsigned n, char out[SPOOL_NAME_SIZE])
{
	return n <= 1 ? name_fmt(out, "%s.json", id) : name_fmt(out, "%s@%u.json", id, n);
}

int spool_name_log(const char *id, const char *stream, char out[SPOOL_NAME_SIZE])
{
	return name_fmt(out, "%s.%s", id, stream);
}

int spool_name_state(const char *name, char out[SPOOL_NAME_SIZE])
{
	return name_fmt(out, ".%s.state", name);
}

int spool_name_node_result(const char *name, bool tmp, char out[SPOOL_NAME_SIZE])
{
	return name_fmt(out, tmp ? ".%s.node-tmp" : ".%s.node-result", name);
}

void spool_name_copy(const char *name, unsigned n, char out[SPOOL_NAME_SIZE])
{
	if (n <= 1) {
		snprintf(out, SPOOL_NAME_SIZE, "%s", name);
		return;
	}
	char suffix[16];
	int slen = snprintf(suffix, sizeof suffix, ".%u", n);
	/* A long name gives way to its number, so the copy always has a name. */
	int keep = (int)strnlen(name, NAME_MAX);
	if (keep > NAME_MAX - slen)
		keep = NAME_MAX - slen;
	snprintf(out, SPOOL_NAME_SIZE, "%.*s%s", keep, name, suffix);
}

int spool_path_log(const struct spool *s, const char *id, const char *stream, char *out,
		   size_t outlen)
{
	char name[SPOOL_NAME_SIZE];
	if (spool_name_log(id, stream, name) < 0)
		return -1;
	int n = snprintf(out, outlen, "%s/%s", s->logs_path, name);
	return n < 0 || (size_t)n >= outlen ? (errno = ENAMETOOLONG, -1) : 0;
}

int spool_path_rejected(const struct spool *s, const char *kept, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", s->rejected_path, kept);
	return n < 0 || (size_t)n >= outlen ? (errno = ENAMETOOLONG, -1) : 0;
}

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

typedef int (*namer_fn)(const char *base, unsigned n, char out[SPOOL_NAME_SIZE]);

/* The lowest n whose name looks free in dirfd, in O(log n) stats: numbers
 * are taken from 1 upward, so double until one is free, then bisect. A
 * gap (a consumer took one away) only makes it pick a later free number;
 * the caller's no-replace rename is what guarantees nothing is replaced. */
static unsigned first_free(int dirfd, const char *base, namer_fn namer)
{
	char name[SPOOL_NAME_SIZE];
	unsigned taken = 0, free_n = 1;
	while (free_n < (1u << 30) && namer(base, free_n, name) == 0 && exists_at(dirfd, name)) {
		taken = free_n;
		free_n = free_n < 2 ? 2 : free_n * 2;
	}
	while (free_n - taken > 1) {
		unsigned mid = taken + (free_n - taken) / 2;
		if (namer(base, mid, name) == 0 && exists_at(dirfd, name))
			taken = mid;
		else
			free_n = mid;
	}
	return free_n;
}

/* Copies a name into a caller's buffer; -1 (ENAMETOOLONG) rather than cut. */
static int give_name(const char *name, char *out, size_t outlen)
{
	if ((size_t)snprintf(out, outlen, "%s", name) >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int copy_namer(const char *base, unsigned n, char out[SPOOL_NAME_SIZE])
{
	spool_name_copy(base, n, out);
	return 0;
}

int spool_claim(struct spool *s, const char *name)
{
	/* Never over a file already in active/: that one is a task too. */
	return rename_noreplace(s->incoming_fd, name, s->active_fd, name);
}

void spool_remove_state(struct spool *s, int dirfd, const char *name)
{
	(void)s;
	char st[SPOOL_NAME_SIZE];
	if (spool_name_state(name, st) < 0)
		return; /* a name too long for a state file never had one */
	if (unlinkat(dirfd, st, 0) < 0 && errno != ENOENT)
		log_warn("cannot remove state file %s", st);
}

int spool_requeue(struct spool *s, const char *name)
{
	/* Never over a file a producer dropped in meanwhile. */
	if (rename_noreplace(s->active_fd, name, s->incoming_fd, name) < 0)
		return -1;
	spool_remove_state(s, s->active_fd, name);
	return s->durable ? fsync_dirfd(s->incoming_fd) : 0;
}

int spool_finish(struct spool *s, const char *name)
{
	spool_remove_state(s, s->active_fd, name);
	return unlinkat(s->active_fd, name, 0);
}

json_t *spool_load_state(struct spool *s, int dirfd, const char *name)
{
	(void)s;
	char st[SPOOL_NAME_SIZE];
	if (spool_name_state(name, st) < 0)
		return NULL;
	int fd = openat(dirfd, st, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	json_t *state = json_loadfd(fd, 0, NULL);
	close(fd);
	if (state && !json_is_object(state)) {
		json_decref(state);
		return NULL;
	}
	return state;
}

int spool_save_state(struct spool *s, int dirfd, const char *name, const json_t *state)
{
	char st[SPOOL_NAME_SIZE], tmp[SPOOL_NAME_SIZE];
	if (spool_name_state(name, st) < 0 || name_fmt(tmp, "state-%s", name) < 0)
		return -1;
	char *text = json_dumps(state, JSON_COMPACT);
	if (!text)
		return -1;
	/* A new file renamed over the old one: a crash leaves either state
	 * whole, never a torn one. */
	int fd = openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = fd < 0 ? -1 : xwrite_all(fd, text, strlen(text));
	if (rc == 0 && s->durable)
		rc = fsync(fd);
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	free(text);
	if (rc == 0)
		rc = renameat(s->tmp_fd, tmp, dirfd, st);
	if (rc < 0) {
		int saved = errno;
		unlinkat(s->tmp_fd, tmp, 0);
		errno = saved;
		return -1;
	}
	return s->durable ? fsync_dirfd(dirfd) : 0;
}

int spool_defer(struct spool *s, const char *name,
		int (*save_state)(void *ctx, const char *deferred_name), void *ctx,
		char *out, size_t outlen)
{
	char copy[SPOOL_NAME_SIZE];
	spool_name_copy(name, first_free(s->deferred_fd, name, copy_namer), copy);
	if (give_name(copy, out, outlen) < 0)
		return -1;
	if (save_state(ctx, out) < 0)
		return -1;
	if (rename_noreplace(s->active_fd, name, s->deferred_fd, out) < 0) {
		int saved = errno;
		spool_remove_state(s, s->deferred_fd, out);
		errno = saved;
		return -1;
	}
	spool_remove_state(s, s->active_fd, name);
	return s->durable ? fsync_dirfd(s->deferred_fd) : 0;
}

int spool_undefer(struct spool *s, const char *name)
{
	char st[SPOOL_NAME_SIZE];
	if (spool_name_state(name, st) < 0)
		return -1;
	/* Never over a task of the same name running in active/. */
	if (rename_noreplace(s->deferred_fd, name, s->active_fd, name) < 0)
		return -1;
	if (renameat(s->deferred_fd, st, s->active_fd, st) < 0 && errno != ENOENT)
		log_warn("cannot move the state of %s back to active/", name);
	return 0;
}

bool spool_cancel_requested(struct spool *s, const char *id)
{
	return faccessat(s->cancel_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

void spool_cancel_done(struct spool *s, const char *id)
{
	if (unlinkat(s->cancel_fd, id, 0) < 0 && errno != ENOENT)
		log_warn("cannot remove cancel/%s", id);
}

bool spool_paused(struct spool *s)
{
	return faccessat(s->root_fd, "pause", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int spool_sync_active(struct spool *s)
{
	return s->durable ? fsync_dirfd(s->active_fd) : 0;
}

void spool_rejected_name(struct spool *s, const char *name, char *out, size_t outlen)
{
	char copy[SPOOL_NAME_SIZE];
	spool_name_copy(name, first_free(s->rejected_fd, name, copy_namer), copy);
	give_name(copy, out, outlen);
}

int spool_keep_rejected(struct spool *s, const char *name, char *kept, size_t keptlen)
{
	/* Never over an earlier copy: taken meanwhile, take the next number. */
	char copy[SPOOL_NAME_SIZE];
	for (unsigned n = first_free(s->rejected_fd, name, copy_namer);; n++) {
		spool_name_copy(name, n, copy);
		if (rename_noreplace(s->active_fd, name, s->rejected_fd, copy) == 0)
			break;
		if (errno != EEXIST || n >= (1u << 30))
			return -1;
	}
	give_name(copy, kept, keptlen);
	spool_remove_state(s, s->active_fd, name);
	return s->durable ? fsync_dirfd(s->rejected_fd) : 0;
}

/* Publishes under results/<id>.json or <id>@N.json, whichever is free
 * first, with the body from write_body. */
static int result_namer(const char *id, unsigned n, char out[SPOOL_NAME_SIZE])
{
	return spool_name_result(id, n, out);
}

static int publish_named(struct spool *s, const char *id, int (*write_body)(int, void *),
			 void *ctx, char *published, size_t publishedlen)
{
	char tmp[SPOOL_NAME_SIZE], name[SPOOL_NAME_SIZE];
	bool beside = s->publish_tmp_fd == s->results_fd;
	if (name_fmt(tmp, "%s%s.json.tmp", beside ? ".tmp-" : "", id) < 0 ||
	    spool_name_result(id, 1, name) < 0)
		return -1;
	/* A leftover of a crash would make O_EXCL fail. */
	if (unlinkat(s->publish_tmp_fd, tmp, 0) < 0 && errno != ENOENT)
		return -1;
	/* Written and synced once, whatever number it ends under: a
	 * duplicate id costs one document, not one per taken name. */
	if (write_temp(s->publish_tmp_fd, tmp, write_body, ctx, s->file_mode, s->durable) < 0)
		return -1;
	for (unsigned n = first_free(s->results_fd, id, result_namer);; n++) {
		if (spool_name_result(id, n, name) == 0 &&
		    rename_noreplace(s->publish_tmp_fd, tmp, s->results_fd, name) == 0)
			break;
		if (errno != EEXIST || n >= (1u << 30)) {
			int saved = errno;
			unlinkat(s->publish_tmp_fd, tmp, 0);
			errno = saved;
			return -1;
		}
	}
	if ((size_t)snprintf(published, publishedlen, "%s", name) >= publishedlen)
		log_warnx("published %s (name cut short in this message)", name);
	if (s->durable && fsync_dirfd(s->results_fd) < 0)
		log_warn("published %s, but fsync of %s failed", name, s->results_path);
	return 0;
}

/* jansson hands the text over in small pieces: gather them into 64 KiB
 * writes. */
struct json_writer {
	int fd;
	size_t used;
	int err;
	char buf[65536];
};

static int flush_writer(struct json_writer *w)
{
	if (w->used && !w->err && xwrite_all(w->fd, w->buf, w->used) < 0)
		w->err = errno;
	w->used = 0;
	return w->err ? -1 : 0;
}

static int gather(const char *piece, size_t len, void *ctx)
{
	struct json_writer *w = ctx;
	if (w->used + len > sizeof w->buf && flush_writer(w) < 0)
		return -1;
	if (len > sizeof w->buf)
		return xwrite_all(w->fd, piece, len) < 0 ? (w->err = errno, -1) : 0;
	memcpy(w->buf + w->used, piece, len);
	w->used += len;
	return 0;
}

struct json_body {
	const json_t *doc;
	struct json_writer *w;
};

static int write_json(int fd, void *ctx)
{
	struct json_body *b = ctx;
	b->w->fd = fd;
	b->w->used = 0;
	b->w->err = 0;
	if (json_dump_callback(b->doc, gather, b->w, JSON_INDENT(2)) < 0 || gather("\n", 1, b->w) < 0 ||
	    flush_writer(b->w) < 0) {
		errno = b->w->err ? b->w->err : ENOMEM;
		return -1;
	}
	return 0;
}

int spool_publish(struct spool *s, const char *id, const json_t *result, char *published,
		  size_t publishedlen)
{
	struct json_writer *w = malloc(sizeof *w);
	if (!w)
		return -1;
	struct json_body b = { result, w };
	int rc = publish_named(s, id, write_json, &b, published, publishedlen);
	int saved = errno;
	free(w);
	errno = saved;
	return rc;
}

/* --- Completion records ------------------------------------------------
 *
 * A task is complete when its result is durable in the spool, before the
 * task file is let go: the result is first written whole as a completion
 * record (tmp/done-NAME, or .tmp-done-NAME beside results/ on another file
 * system), then the task file leaves active/, then the record is renamed
 * into results/. A stop anywhere in between leaves a record that recovery
 * publishes; it never needs results/ to still hold anything. */

static bool is_done_record(struct spool *s, const char *name)
{
	const char *prefix = s->publish_tmp_fd == s->results_fd ? ".tmp-done-" : "done-";
	return !strncmp(name, prefix, strlen(prefix));
}

/* done-NAME, or done-HASH for a name too long for that; .N if taken. */
static void done_name(struct spool *s, const char *name, int n, char *out, size_t len)
{
	const char *prefix = s->publish_tmp_fd == s->results_fd ? ".tmp-done-" : "done-";
	char base[NAME_MAX + 1];
	if (strlen(name) + 24 < NAME_MAX)
		snprintf(base, sizeof base, "%s", name);
	else {
		uint64_t h = 1469598103934665603u; /* FNV-1a */
		for (const char *p = name; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211u;
		snprintf(base, sizeof base, "%.64s~%016jx", name, (uintmax_t)h);
	}
	/* Fits NAME_MAX by construction (base is short enough); the wide
	 * buffer only spares the compiler proving it. */
	char full[NAME_MAX + 32];
	if (n > 1)
		snprintf(full, sizeof full, "%s%s.%d", prefix, base, n);
	else
		snprintf(full, sizeof full, "%s%s", prefix, base);
	snprintf(out, len, "%.*s", NAME_MAX, full);
}

int spool_record_write(struct spool *s, const char *name, const json_t *result,
		       struct spool_record *r)
{
	struct json_writer *w = malloc(sizeof *w);
	if (!w)
		return -1;
	struct json_body b = { result, w };
	/* Written in place under its final name: a record torn by a crash does
	 * not parse, and then its task file is still in active/ (a task is let
	 * go only once its record is whole and durable), so recovery drops the
	 * record and runs the task again. */
	r->fd = -1;
	for (int n = 1; r->fd < 0 && n <= 1000; n++) {
		done_name(s, name, n, r->rec, sizeof r->rec);
		r->fd = openat(s->publish_tmp_fd, r->rec, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			       0600);
		if (r->fd < 0 && errno != EEXIST)
			break;
	}
	int rc = r->fd < 0 ? -1 : 0;
	if (rc == 0 && (fchmod(r->fd, s->file_mode) < 0 || write_json(r->fd, &b) < 0))
		rc = -1;
	int saved = errno;
	free(w);
	if (rc < 0 && r->fd >= 0)
		spool_record_discard(s, r);
	errno = saved;
	return rc;
}

void spool_record_discard(struct spool *s, struct spool_record *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	unlinkat(s->publish_tmp_fd, r->rec, 0);
}

int spool_record_place(struct spool *s, struct spool_record *r, bool durable)
{
	int rc = durable && fsync(r->fd) < 0 ? -1 : 0;
	/* close() can report a deferred write error (NFS, quota). */
	if (close(r->fd) < 0)
		rc = -1;
	r->fd = -1;
	if (rc < 0) {
		int saved = errno;
		spool_record_discard(s, r);
		errno = saved;
	}
	return rc;
}

int spool_sync_records(struct spool *s)
{
	return fsync_dirfd(s->publish_tmp_fd);
}

int spool_record_done(struct spool *s, const char *name, const json_t *result, char *rec,
		      size_t reclen)
{
	struct spool_record r;
	if (spool_record_write(s, name, result, &r) < 0 ||
	    spool_record_place(s, &r, s->durable) < 0)
		return -1;
	/* Until tmp/ is synced the record may not survive a crash: do not let
	 * the task go yet. */
	if (s->durable && spool_sync_records(s) < 0) {
		int saved = errno;
		unlinkat(s->publish_tmp_fd, r.rec, 0);
		errno = saved;
		return -1;
	}
	snprintf(rec, reclen, "%s", r.rec);
	return 0;
}

int spool_place_done(struct spool *s, const char *rec, const char *id, int first,
		     char *published, size_t publishedlen)
{
	char name[SPOOL_NAME_SIZE];
	unsigned from = first_free(s->results_fd, id, result_namer);
	for (unsigned n = from > (unsigned)first ? from : (unsigned)first; n < (1u << 30); n++) {
		if (spool_name_result(id, n, name) < 0 || give_name(name, published, publishedlen) < 0)
			return -1;
		if (rename_noreplace(s->publish_tmp_fd, rec, s->results_fd, published) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

int spool_sync_results(struct spool *s)
{
	return fsync_dirfd(s->results_fd);
}

int spool_publish_done(struct spool *s, const char *rec, const char *id, int first,
		       char *published, size_t publishedlen)
{
	if (spool_place_done(s, rec, id, first, published, publishedlen) < 0)
		return -1;
	if (s->durable && spool_sync_results(s) < 0)
		log_warn("published %s, but fsync of %s failed", published, s->results_path);
	return 0;
}

json_t *spool_load_done(struct spool *s, const char *rec)
{
	int fd = openat(s->publish_tmp_fd, rec, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	json_t *doc = json_loadfd(fd, JSON_ALLOW_NUL, NULL);
	close(fd);
	if (doc && !json_is_object(doc)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

void spool_drop_done(struct spool *s, const char *rec)
{
	if (unlinkat(s->publish_tmp_fd, rec, 0) < 0 && errno != ENOENT)
		log_warn("cannot remove the completion record %s", rec);
}

struct done_walk {
	struct spool *s;
	void (*fn)(void *ctx, const char *rec);
	void *ctx;
};

static void each_done_entry(void *ctx, const char *name)
{
	struct done_walk *w = ctx;
	if (is_done_record(w->s, name))
		w->fn(w->ctx, name);
}

int spool_each_done(struct spool *s, void (*fn)(void *ctx, const char *rec), void *ctx)
{
	struct done_walk w = { s, fn, ctx };
	return dir_each(s->publish_tmp_fd, each_done_entry, &w);
}

bool spool_result_exists(struct spool *s, const char *id)
{
	char name[SPOOL_NAME_SIZE];
	return spool_name_result(id, 1, name) == 0 && exists_at(s->results_fd, name);
}

int spool_open_log(struct spool *s, const char *id, const char *stream)
{
	char name[SPOOL_NAME_SIZE];
	if (spool_name_log(id, stream, name) < 0)
		return -1;
	int fd = openat(s->logs_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			0600);
	if (fd >= 0 && fchmod(fd, s->file_mode) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

void spool_remove_logs(struct spool *s, const char *id)
{
	static const char *const streams[] = { "stdout", "stderr" };
	for (int i = 0; i < 2; i++) {
		char name[SPOOL_NAME_SIZE];
		if (spool_name_log(id, streams[i], name) < 0)
			continue;
		if (unlinkat(s->logs_fd, name, 0) < 0 && errno != ENOENT)
			log_warn("cannot remove the old log %s", name);
	}
}

struct cleaner {
	int dirfd;
	bool only_dot_tmp; /* in a results_dir of its own, only our .tmp-* files */
};

static void remove_leftover(void *ctx, const char *name)
{
	struct cleaner *c = ctx;
	if (c->only_dot_tmp && strncmp(name, ".tmp-", 5) != 0)
		return;
	if (!strncmp(name, c->only_dot_tmp ? ".tmp-done-" : "done-", c->only_dot_tmp ? 10 : 5))
		return; /* a completion record: recovery publishes it */
	if (unlinkat(c->dirfd, name, 0) == 0)
		log_info("removed leftover temporary file %s", name);
}

/* .NAME.state without NAME: a crash between the two steps of a move. */
static void remove_orphan_state(void *ctx, const char *name)
{
	struct cleaner *c = ctx;
	size_t n = strlen(name);
	if (name[0] != '.' || n < 8 || strcmp(name + n - 6, ".state"))
		return;
	char task[SPOOL_NAME_SIZE];
	snprintf(task, sizeof task, "%.*s", (int)(n - 7), name + 1); /* .NAME.state -> NAME */
	if (!exists_at(c->dirfd, task) && unlinkat(c->dirfd, name, 0) == 0)
		log_info("removed %s, left without its task by an earlier stop", name);
}

void spool_clean_tmp(struct spool *s)
{
	struct cleaner tmp = { s->tmp_fd, false }, results = { s->results_fd, true };
	struct cleaner active = { s->active_fd, false }, deferred = { s->deferred_fd, false };
	dir_each(s->tmp_fd, remove_leftover, &tmp);
	if (s->publish_tmp_fd == s->results_fd)
		dir_each(s->results_fd, remove_leftover, &results);
	dir_each(s->active_fd, remove_orphan_state, &active);
	dir_each(s->deferred_fd, remove_orphan_state, &deferred);
}

static const char *file_kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISLNK(m) ? "a symbolic link"
	     : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

int spool_read_task(int dirfd, const char *name, size_t max, bool single_link,
		    char **buf, size_t *len, struct stat *st, char *why, size_t whylen)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return set_error(why, whylen, errno == ELOOP ? "%s: is a symbolic link; not followed"
							   : "%s: cannot open: %s",
				 name, strerror(errno));
	int rc = -1;
	if (fstat(fd, st) < 0)
		set_error(why, whylen, "%s: cannot stat: %s", name, strerror(errno));
	else if (!S_ISREG(st->st_mode))
		set_error(why, whylen, "%s: is %s, not a regular file", name, file_kind(st->st_mode));
	else if (single_link && st->st_nlink != 1)
		set_error(why, whylen, "%s: has %ju hard links; a task file must have exactly one",
			  name, (uintmax_t)st->st_nlink);
	else if ((uintmax_t)st->st_size > max)
		set_error(why, whylen, "%s: is %jd bytes, more than max_task_bytes (%zu)", name,
			  (intmax_t)st->st_size, max);
	else if (read_fd_bounded(fd, max, buf, len) < 0) {
		if (errno == EFBIG)
			set_error(why, whylen, "%s: grew past max_task_bytes (%zu) while read", name, max);
		else
			set_error(why, whylen, "%s: cannot read: %s", name, strerror(errno));
	}
	else
		rc = 0;
	close(fd);
	return rc;
}

int spool_peek(struct spool *s, int dirfd, const char *name, size_t max,
	       struct spool_peeked *p)
{
	(void)s;
	char *buf = NULL, why[512];
	size_t len;
	p->priority = 0;
	p->limit_key[0] = '\0';
	p->lifecycle = false;
	task_id_from_filename(name, p->id);
	if (spool_read_task(dirfd, name, max, true, &buf, &len, &p->st, why, sizeof why) < 0)
		return fstatat(dirfd, name, &p->st, AT_SYMLINK_NOFOLLOW);
	json_t *doc = json_loadb(buf, len, 0, NULL);
	json_t *pr = json_object_get(doc, "priority"), *k = json_object_get(doc, "limit_key");
	if (json_is_integer(pr))
		p->priority = json_integer_value(pr);
	task_id_of_file(doc, name, p->id); /* the rule the rejection follows too */
	if (json_is_string(k) && json_string_length(k) < sizeof p->limit_key)
		snprintf(p->limit_key, sizeof p->limit_key, "%s", json_string_value(k));
	p->lifecycle = json_object_get(doc, "after") || json_object_get(doc, "not_before");
	json_decref(doc);
	free(buf);
	return 0;
}

int spool_peek_task(struct spool *s, int dirfd, const char *name, size_t max,
		    int64_t *priority, char *id, size_t idlen, struct stat *st)
{
	struct spool_peeked p;
	int rc = spool_peek(s, dirfd, name, max, &p);
	*priority = p.priority;
	snprintf(id, idlen, "%s", p.id);
	*st = p.st;
	return rc;
}
