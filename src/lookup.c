#define _GNU_SOURCE
#include "lookup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "task.h"

/* A result holds at most max_output per stream plus events; this bound
 * only keeps a planted multi-gigabyte file from exhausting memory. */
#define RESULT_MAX ((size_t)1 << 30)

const char *lookup_place_name(enum task_place p)
{
	static const char *const names[] = { "unknown", "queued", "running", "deferred",
					     "finished" };
	return names[p];
}

struct finder {
	struct spool *s;
	int dirfd;
	const char *id;
	size_t max;
	bool incoming;
	bool found;
	char file[256];
};

static void check_one(void *ctx, const char *name)
{
	struct finder *f = ctx;
	char id[TASK_ID_MAX + 1], own[SPOOL_NAME_SIZE];
	int64_t prio;
	struct stat st;
	if (f->found || name[0] == '.' || (f->incoming && !spool_is_task_name(name)))
		return;
	spool_name_result(f->id, 1, own);
	/* deferred/ may keep a task as NAME.json.N when NAME.json was taken. */
	bool by_name = !strcmp(name, own) ||
		       (!strncmp(name, own, strlen(own)) && name[strlen(own)] == '.');
	if (by_name || (spool_peek_task(f->s, f->dirfd, name, f->max, &prio, id, sizeof id, &st) == 0 &&
			!strcmp(id, f->id))) {
		f->found = true;
		snprintf(f->file, sizeof f->file, "%s", name);
	}
}

static bool find_in(struct spool *s, int dirfd, bool incoming, const char *id, size_t max,
		    struct task_location *loc, enum task_place place)
{
	struct finder f = { s, dirfd, id, max, incoming, false, "" };
	dir_each(dirfd, check_one, &f);
	if (f.found) {
		loc->place = place;
		snprintf(loc->file, sizeof loc->file, "%s", f.file);
	}
	return f.found;
}

void lookup_task(struct spool *s, const char *id, size_t max, struct task_location *loc)
{
	char name[SPOOL_NAME_SIZE];
	struct stat st;
	memset(loc, 0, sizeof *loc);
	spool_name_result(id, 1, name);
	if (fstatat(s->results_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		loc->place = PLACE_FINISHED;
		return;
	}
	if (!find_in(s, s->active_fd, false, id, max, loc, PLACE_ACTIVE) &&
	    !find_in(s, s->deferred_fd, false, id, max, loc, PLACE_DEFERRED))
		find_in(s, s->incoming_fd, true, id, max, loc, PLACE_QUEUED);
}

int lookup_result(struct spool *s, const char *name, json_t **out, char *why, size_t whylen)
{
	char *buf = NULL, reason[512];
	size_t len;
	struct stat st;
	*out = NULL;
	if (fstatat(s->results_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return 0;
	if (spool_read_task(s->results_fd, name, RESULT_MAX, false, &buf, &len, &st, reason,
			    sizeof reason) < 0) {
		snprintf(why, whylen, "%s/%s", s->results_path, reason);
		return -1;
	}
	json_error_t je;
	json_t *r = json_loadb(buf, len, JSON_ALLOW_NUL, &je);
	free(buf);
	if (!r) {
		snprintf(why, whylen, "%s/%s: is not a result: bad JSON at line %d: %s",
			 s->results_path, name, je.line, je.text);
		return -1;
	}
	if (!json_is_object(r) || !json_is_string(json_object_get(r, "status"))) {
		snprintf(why, whylen, "%s/%s: is not a result (no \"status\")", s->results_path, name);
		json_decref(r);
		return -1;
	}
	*out = r;
	return 1;
}

int lookup_open_log(struct spool *s, const char *name, char *why, size_t whylen)
{
	int fd = openat(s->logs_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 && errno == ENOENT)
		return -1;
	if (fd < 0) {
		snprintf(why, whylen, "%s/%s: %s", s->logs_path, name,
			 errno == ELOOP ? "is a symbolic link; not followed" : strerror(errno));
		errno = EINVAL;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s/%s: is not a regular file; not read", s->logs_path, name);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

bool lookup_watcher(struct spool *s, int *pid)
{
	*pid = 0;
	int fd = openat(s->root_fd, ".lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	bool held = false;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		char buf[32] = "";
		if (held && pread(fd, buf, sizeof buf - 1, 0) > 0)
			*pid = atoi(buf);
	}
	if (fd >= 0)
		close(fd);
	return held;
}
