#define _GNU_SOURCE
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "grow.h"
#include "log.h"

#define HISTORY_FILE_MAX 65536 /* a file of 20 numbers is far smaller */
#define KEY_SHOWN 200          /* bytes of the key kept in the file, for people */

int history_open(struct history *h, int root_fd, bool durable)
{
	h->durable = durable;
	h->max_keys = HISTORY_KEYS;
	if (mkdirat(root_fd, "history", 0700) < 0 && errno != EEXIST)
		return h->dir_fd = -1;
	h->dir_fd = openat(root_fd, "history", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return h->dir_fd < 0 ? -1 : 0;
}

void history_close(struct history *h)
{
	if (h->dir_fd >= 0)
		close(h->dir_fd);
	h->dir_fd = -1;
}

char *history_key_of(const struct task *t)
{
	if (t->history_key)
		return strdup(t->history_key);
	json_t *cmd = json_object_get(t->json, "command");
	if (json_is_string(cmd))
		return strdup(json_string_value(cmd));
	return json_dumps(cmd, JSON_COMPACT | JSON_ENSURE_ASCII);
}

/* Two independent 64-bit hashes (FNV-1a, and a multiply-xorshift with a
 * splitmix finish): a 128-bit name, so distinct keys never share a file
 * in practice, whatever their length. */
static void file_name(const char *key, char out[40])
{
	uint64_t a = UINT64_C(0xcbf29ce484222325), b = UINT64_C(0x9e3779b97f4a7c15);
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		a = (a ^ *p) * UINT64_C(0x100000001b3);
		b = (b + *p) * UINT64_C(0xbf58476d1ce4e5b9);
		b ^= b >> 29;
	}
	b ^= b >> 31;
	b *= UINT64_C(0x94d049bb133111eb);
	b ^= b >> 32;
	snprintf(out, 40, "%016llx%016llx.json", (unsigned long long)a, (unsigned long long)b);
}

/* runs_s of a parsed history file; -1 when it is not one. */
static int parse_runs(json_t *doc, double runs[HISTORY_RUNS], size_t *n)
{
	json_t *list = json_object_get(doc, "runs_s"), *v;
	size_t i, skip = json_array_size(list) > HISTORY_RUNS ? json_array_size(list) - HISTORY_RUNS : 0;
	if (!json_is_object(doc) || !json_is_array(list))
		return -1;
	*n = 0;
	json_array_foreach(list, i, v) {
		double s = json_number_value(v);
		if (!json_is_number(v) || !isfinite(s) || s < 0)
			return -1;
		if (i >= skip)
			runs[(*n)++] = s;
	}
	return 0;
}

size_t history_load(const struct history *h, const char *key, double runs[HISTORY_RUNS])
{
	char name[40];
	file_name(key, name);
	int fd = openat(h->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("history/%s: cannot read it; no history used", name);
		return 0;
	}
	char *buf;
	size_t len, n = 0;
	int rc = read_fd_bounded(fd, HISTORY_FILE_MAX, &buf, &len);
	close(fd);
	if (rc < 0) {
		log_warn("history/%s: cannot read it; no history used", name);
		return 0;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (parse_runs(doc, runs, &n) < 0) {
		log_warnx("history/%s: corrupt (%s); ignored, and replaced at the next successful run",
			  name, doc ? "not {\"runs_s\": [seconds...]}" : jerr.text);
		n = 0;
	}
	json_decref(doc);
	return n;
}

/* Replaces dir/name with text: a temporary file, then rename. */
static int replace_file(const struct history *h, const char *name, const char *text)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, ".tmp-%d-%s", (int)getpid(), name);
	unlinkat(h->dir_fd, tmp, 0);
	int fd = openat(h->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	int rc = xwrite_all(fd, text, strlen(text));
	if (rc == 0 && h->durable)
		rc = fsync(fd);
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0)
		rc = renameat(h->dir_fd, tmp, h->dir_fd, name);
	if (rc < 0) {
		int saved = errno;
		unlinkat(h->dir_fd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (h->durable)
		fsync_dirfd(h->dir_fd);
	return 0;
}

struct aged {
	char name[40];
	int64_t mtime_ns;
};

struct lister {
	int dir_fd;
	struct aged *v;
	size_t n, cap;
};

static void list_file(void *ctx, const char *name)
{
	struct lister *l = ctx;
	struct stat st;
	if (name[0] == '.' || strlen(name) >= sizeof l->v->name ||
	    fstatat(l->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	struct aged *grown = grow(l->v, &l->cap, l->n + 1, sizeof *grown, 64);
	if (!grown)
		return;
	l->v = grown;
	snprintf(l->v[l->n].name, sizeof l->v[l->n].name, "%s", name);
	l->v[l->n++].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static int by_age(const void *a, const void *b)
{
	int64_t x = ((const struct aged *)a)->mtime_ns, y = ((const struct aged *)b)->mtime_ns;
	return (x > y) - (x < y);
}

/* Before a new key's file is created: keeps at most max_keys - 1 files,
 * removing the least recently updated. */
static void make_room(const struct history *h)
{
	struct lister l = { h->dir_fd, NULL, 0, 0 };
	dir_each(h->dir_fd, list_file, &l);
	if (l.n >= h->max_keys) {
		qsort(l.v, l.n, sizeof *l.v, by_age);
		for (size_t i = 0; i + h->max_keys <= l.n; i++)
			unlinkat(h->dir_fd, l.v[i].name, 0);
		log_info("history/: %zu keys, at most %zu kept: forgot the %zu least recently "
			 "updated", l.n + 1, h->max_keys, l.n - h->max_keys + 1);
	}
	free(l.v);
}

int history_record(const struct history *h, const char *key, double seconds)
{
	double runs[HISTORY_RUNS];
	char name[40];
	struct stat st;
	file_name(key, name);
	if (fstatat(h->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		make_room(h);
	size_t n = history_load(h, key, runs);
	if (n == HISTORY_RUNS) {
		memmove(runs, runs + 1, (HISTORY_RUNS - 1) * sizeof *runs);
		n--;
	}
	runs[n++] = seconds;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_real(runs[i]));
	json_t *doc = json_pack("{s:s%, s:o}", "key", key, strnlen(key, KEY_SHOWN), "runs_s", list);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text) {
		errno = ENOMEM;
		return -1;
	}
	int rc = replace_file(h, name, text);
	free(text);
	return rc;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double history_p90(const double *runs, size_t n)
{
	if (n == 0)
		return 0;
	double sorted[HISTORY_RUNS];
	if (n > HISTORY_RUNS) {
		runs += n - HISTORY_RUNS;
		n = HISTORY_RUNS;
	}
	memcpy(sorted, runs, n * sizeof *runs);
	qsort(sorted, n, sizeof *sorted, by_value);
	size_t rank = (9 * n + 9) / 10; /* nearest rank: ceil(0.9 n), 1-based */
	return sorted[rank - 1];
}

struct timeout_choice history_timeout(const struct task *t, const struct task_defaults *d,
				      const double *runs, size_t n)
{
	if (t->timeout_given)
		return (struct timeout_choice){ t->timeout, TIMEOUT_TASK };
	if (!t->timeout_auto)
		return (struct timeout_choice){ d->timeout, TIMEOUT_DEFAULT };
	if (n < HISTORY_MIN_RUNS)
		return (struct timeout_choice){ d->auto_timeout_default, TIMEOUT_AUTO_DEFAULT };
	double s = d->auto_timeout_factor * history_p90(runs, n);
	return (struct timeout_choice){ s > d->auto_timeout_min ? s : d->auto_timeout_min,
					TIMEOUT_AUTO };
}

void history_settle_timeout(const struct history *h, const struct task_defaults *d,
			    struct task *t)
{
	double runs[HISTORY_RUNS];
	size_t n = 0;
	if (t->timeout_auto && h && h->dir_fd >= 0) {
		char *key = history_key_of(t);
		n = key ? history_load(h, key, runs) : 0;
		free(key);
	}
	struct timeout_choice c = history_timeout(t, d, runs, n);
	t->timeout = c.seconds;
	t->timeout_source = c.source;
}

void history_note_result(const struct history *h, const struct task *t, const json_t *result)
{
	const char *status = json_string_value(json_object_get(result, "status"));
	json_t *ms = json_object_get(result, "duration_ms");
	if (!h || h->dir_fd < 0 || !status || strcmp(status, "succeeded") || !json_is_integer(ms))
		return;
	/* Only tasks that use history pay for keeping it: a file replaced
	 * (and, durable, fsynced) per success cost a quarter of the
	 * throughput of short tasks (bench/README.md). */
	if (!t->timeout_auto && !t->history_key)
		return;
	char *key = history_key_of(t);
	if (!key || history_record(h, key, (double)json_integer_value(ms) / 1000) < 0)
		log_warn("%s: cannot record its run time in history/", t->id);
	free(key);
}
