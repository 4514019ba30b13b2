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

/* mkdir -p, open, and check one directory of the layout. */
static int open_layout_dir(const char *path, bool check_perms, int *fd, char *err, size_t errlen)
{
	if (mkdir_p(path, 0755) < 0)
		return set_error(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
	if ((*fd = open_dir(path)) < 0)
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

int spool_open(struct spool *s, const struct config *c, const char *root,
	       char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->root_fd = s->incoming_fd = s->active_fd = s->results_fd = -1;
	s->logs_fd = s->rejected_fd = s->tmp_fd = s->lock_fd = -1;
	s->deferred_fd = s->cancel_fd = -1;
	s->durable = c->fsync;
	s->file_mode = c->file_mode;
	if (mkdir_p(root, 0755) < 0)
		return set_error(err, errlen, "cannot create spool %s: %s", root, strerror(errno));
	if (!(s->root = realpath(root, NULL)))
		return set_error(err, errlen, "cannot resolve spool %s: %s", root, strerror(errno));
	if (open_layout_dir(s->root, c->check_perms, &s->root_fd, err, errlen) < 0)
		return -1;
	s->results_path = c->results_dir ? strdup(c->results_dir) : join(s->root, "results");
	s->logs_path = join(s->root, "logs");
	s->rejected_path = join(s->root, "rejected");
	if (!s->results_path || !s->logs_path || !s->rejected_path)
		return set_error(err, errlen, "out of memory");
	const struct { const char *name; int *fd; } dirs[] = {
		{ "incoming", &s->incoming_fd }, { "active", &s->active_fd },
		{ "rejected", &s->rejected_fd }, { "logs", &s->logs_fd }, { "tmp", &s->tmp_fd },
		{ "deferred", &s->deferred_fd }, { "cancel", &s->cancel_fd },
	};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		char *p = join(s->root, dirs[i].name);
		int rc = p ? open_layout_dir(p, c->check_perms, dirs[i].fd, err, errlen)
			   : set_error(err, errlen, "out of memory");
		free(p);
		if (rc < 0)
			return -1;
	}
	if (open_layout_dir(s->results_path, c->check_perms, &s->results_fd, err, errlen) < 0)
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

int spool_claim(struct spool *s, const char *name)
{
	/* Never over a file already in active/: that one is a task too. */
	return rename_noreplace(s->incoming_fd, name, s->active_fd, name);
}

static void state_name(const char *name, char *out, size_t len)
{
	snprintf(out, len, ".%s.state", name);
}

void spool_remove_state(struct spool *s, int dirfd, const char *name)
{
	(void)s;
	char st[320];
	state_name(name, st, sizeof st);
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
	char st[320];
	state_name(name, st, sizeof st);
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
	char st[320], tmp[340];
	state_name(name, st, sizeof st);
	snprintf(tmp, sizeof tmp, "state-%s", name);
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
	snprintf(out, outlen, "%s", name);
	for (int n = 2; ; n++) {
		struct stat st;
		if (fstatat(s->deferred_fd, out, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			break;
		if (n > 100000)
			return -1;
		snprintf(out, outlen, "%s.%d", name, n);
	}
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
	char st[320];
	state_name(name, st, sizeof st);
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

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void spool_rejected_name(struct spool *s, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", name);
	for (int n = 2; exists_at(s->rejected_fd, out) && n < 100000; n++)
		snprintf(out, outlen, "%s.%d", name, n);
}

int spool_keep_rejected(struct spool *s, const char *name, char *kept, size_t keptlen)
{
	spool_rejected_name(s, name, kept, keptlen);
	if (rename_noreplace(s->active_fd, name, s->rejected_fd, kept) < 0)
		return -1;
	spool_remove_state(s, s->active_fd, name);
	return s->durable ? fsync_dirfd(s->rejected_fd) : 0;
}

/* Publishes under results/<id>.json or <id>@N.json, whichever is free
 * first, with the body from write_body. */
static int publish_named(struct spool *s, const char *id, int (*write_body)(int, void *),
			 void *ctx, char *published, size_t publishedlen)
{
	char tmp[200];
	bool beside = s->publish_tmp_fd == s->results_fd;
	snprintf(tmp, sizeof tmp, "%s%s.json.tmp", beside ? ".tmp-" : "", id);
	snprintf(published, publishedlen, "%s.json", id);
	for (int n = 2;; n++) {
		/* A leftover of a crash would make O_EXCL fail. */
		if (unlinkat(s->publish_tmp_fd, tmp, 0) < 0 && errno != ENOENT)
			return -1;
		int rc = publish_stream(s->publish_tmp_fd, tmp, s->results_fd, published,
					write_body, ctx, s->file_mode, s->durable);
		if (rc == 1)
			log_warn("published %s, but fsync of %s failed", published, s->results_path);
		if (rc >= 0)
			return 0;
		if (errno != EEXIST || n > 100000)
			return -1;
		snprintf(published, publishedlen, "%s@%d.json", id, n);
	}
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
	done_name(s, name, 1, r->part, sizeof r->part);
	memcpy(r->part + (s->publish_tmp_fd == s->results_fd ? 5 : 0), "part", 4); /* done -> part */
	r->rec[0] = '\0';
	struct json_writer *w = malloc(sizeof *w);
	if (!w)
		return -1;
	struct json_body b = { result, w };
	/* A leftover of a failed try would make O_EXCL fail. */
	unlinkat(s->publish_tmp_fd, r->part, 0);
	r->fd = openat(s->publish_tmp_fd, r->part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = r->fd < 0 ? -1 : 0;
	if (rc == 0 && (fchmod(r->fd, s->file_mode) < 0 || write_json(r->fd, &b) < 0))
		rc = -1;
	int saved = errno;
	free(w);
	if (rc < 0)
		spool_record_discard(s, r);
	errno = saved;
	return rc;
}

void spool_record_discard(struct spool *s, struct spool_record *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	unlinkat(s->publish_tmp_fd, r->part, 0);
}

int spool_record_place(struct spool *s, const char *name, struct spool_record *r, bool durable)
{
	int rc = durable && fsync(r->fd) < 0 ? -1 : 0;
	/* close() can report a deferred write error (NFS, quota). */
	if (close(r->fd) < 0)
		rc = -1;
	r->fd = -1;
	done_name(s, name, 1, r->rec, sizeof r->rec);
	for (int n = 2; rc == 0; n++) {
		if (rename_noreplace(s->publish_tmp_fd, r->part, s->publish_tmp_fd, r->rec) == 0)
			return 0;
		if (errno != EEXIST || n > 1000)
			rc = -1;
		else
			done_name(s, name, n, r->rec, sizeof r->rec);
	}
	int saved = errno;
	spool_record_discard(s, r);
	errno = saved;
	return -1;
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
	    spool_record_place(s, name, &r, s->durable) < 0)
		return -1;
	snprintf(rec, reclen, "%s", r.rec);
	/* Until tmp/ is synced the record may not survive a crash: do not let
	 * the task go yet (the record is kept: a retry writes another). */
	if (s->durable && spool_sync_records(s) < 0)
		return -1;
	return 0;
}

int spool_place_done(struct spool *s, const char *rec, const char *id, int first,
		     char *published, size_t publishedlen)
{
	for (int n = first; n < 100000; n++) {
		if (n == 1)
			snprintf(published, publishedlen, "%s.json", id);
		else
			snprintf(published, publishedlen, "%s@%d.json", id, n);
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
	char name[160];
	snprintf(name, sizeof name, "%s.json", id);
	return exists_at(s->results_fd, name);
}

int spool_open_log(struct spool *s, const char *id, const char *stream)
{
	char name[160];
	snprintf(name, sizeof name, "%s.%s", id, stream);
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
		char name[160];
		snprintf(name, sizeof name, "%s.%s", id, streams[i]);
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
	char task[320];
	snprintf(task, sizeof task, "%.*s", (int)(n - 7), name + 1);
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
	task_id_from_filename(name, p->id);
	if (spool_read_task(dirfd, name, max, true, &buf, &len, &p->st, why, sizeof why) < 0)
		return fstatat(dirfd, name, &p->st, AT_SYMLINK_NOFOLLOW);
	json_t *doc = json_loadb(buf, len, 0, NULL);
	json_t *pr = json_object_get(doc, "priority"), *v = json_object_get(doc, "id");
	json_t *k = json_object_get(doc, "limit_key");
	if (json_is_integer(pr))
		p->priority = json_integer_value(pr);
	if (json_is_string(v) && task_id_valid(json_string_value(v), json_string_length(v)))
		snprintf(p->id, sizeof p->id, "%s", json_string_value(v));
	if (json_is_string(k) && json_string_length(k) < sizeof p->limit_key)
		snprintf(p->limit_key, sizeof p->limit_key, "%s", json_string_value(k));
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
