#include "task_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

/* The keys of .NAME.state: spelt here only. */
#define K_ATTEMPT "attempt"
#define K_INTERRUPTED "interrupted"
#define K_RETRIES_USED "retries_used"
#define K_LIMIT_DEFERRALS "limit_deferrals"
#define K_ATTEMPTS "attempts"
#define K_NOT_BEFORE "not_before_ms"
#define K_ID "id"
#define K_USAGE_LIMIT "usage_limit"
#define K_LIMIT_KEY "limit_key"
#define K_FILE "task_file"
#define K_PID "pid"
#define K_STARTED "started_ms"
#define K_EXECUTOR "executor"
#define RUNNING ".running"
#define K_SLURM_JOB_NAME "slurm_job_name"
#define K_SLURM_JOB_ID "slurm_job_id"
#define K_SLURM_STATE "slurm_state"

void task_state_init(struct task_state *st)
{
	memset(st, 0, sizeof *st);
}

void task_state_clear(struct task_state *st)
{
	json_decref(st->attempts);
	memset(st, 0, sizeof *st);
}

json_t *task_state_attempts(struct task_state *st)
{
	if (!st->attempts)
		st->attempts = json_array();
	return st->attempts;
}

/* Numbers in a state file were written by us, but the file sits in a
 * directory others may write: keep them in range. */
static int bounded_int(const json_t *doc, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(doc, key));
	return v < 0 ? 0 : v > 1000000 ? 1000000 : (int)v;
}

static void copy_string(const json_t *doc, const char *key, char *out, size_t len)
{
	const char *v = json_string_value(json_object_get(doc, key));
	snprintf(out, len, "%s", v && strlen(v) < len ? v : "");
}

bool task_state_load(struct spool *s, int dirfd, const char *name, struct task_state *st)
{
	task_state_init(st);
	json_t *doc = spool_load_state(s, dirfd, name);
	if (!doc)
		return false;
	st->attempt = bounded_int(doc, K_ATTEMPT);
	st->interrupted = bounded_int(doc, K_INTERRUPTED);
	st->retries_used = bounded_int(doc, K_RETRIES_USED);
	st->limit_deferrals = bounded_int(doc, K_LIMIT_DEFERRALS);
	json_t *a = json_object_get(doc, K_ATTEMPTS);
	if (json_is_array(a))
		st->attempts = json_incref(a);
	st->not_before_ms = json_integer_value(json_object_get(doc, K_NOT_BEFORE));
	copy_string(doc, K_ID, st->id, sizeof st->id);
	st->usage_limit = json_is_true(json_object_get(doc, K_USAGE_LIMIT));
	copy_string(doc, K_LIMIT_KEY, st->limit_key, sizeof st->limit_key);
	st->pid = bounded_int(doc, K_PID);
	st->started_ms = json_integer_value(json_object_get(doc, K_STARTED));
	copy_string(doc, K_EXECUTOR, st->executor, sizeof st->executor);
	copy_string(doc, K_SLURM_JOB_NAME, st->slurm_job_name, sizeof st->slurm_job_name);
	copy_string(doc, K_SLURM_JOB_ID, st->slurm_job_id, sizeof st->slurm_job_id);
	copy_string(doc, K_SLURM_STATE, st->slurm_state, sizeof st->slurm_state);
	json_decref(doc);
	return true;
}

static json_t *string_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

int task_state_save(struct spool *s, int dirfd, const char *name, const struct task_state *st,
		    bool durable)
{
	json_t *doc = json_pack("{s:i, s:i, s:i, s:o, s:I, s:o, s:b, s:o}",
		K_ATTEMPT, st->attempt, K_INTERRUPTED, st->interrupted,
		K_RETRIES_USED, st->retries_used,
		K_ATTEMPTS, st->attempts ? json_incref(st->attempts) : json_array(),
		K_NOT_BEFORE, (json_int_t)st->not_before_ms, K_ID, string_or_null(st->id),
		K_USAGE_LIMIT, st->usage_limit, K_LIMIT_KEY, string_or_null(st->limit_key));
	if (!doc)
		return -1;
	if (st->limit_deferrals)
		json_object_set_new(doc, K_LIMIT_DEFERRALS, json_integer(st->limit_deferrals));
	if (st->pid) {
		json_object_set_new(doc, K_PID, json_integer(st->pid));
		json_object_set_new(doc, K_STARTED, json_integer(st->started_ms));
		json_object_set_new(doc, K_EXECUTOR, json_string(st->executor));
	}
	if (st->slurm_job_name[0]) { /* the attempt's Slurm job, kept until it ends */
		json_object_set_new(doc, K_EXECUTOR, json_string(st->executor));
		json_object_set_new(doc, K_STARTED, json_integer(st->started_ms));
		json_object_set_new(doc, K_SLURM_JOB_NAME, json_string(st->slurm_job_name));
		json_object_set_new(doc, K_SLURM_JOB_ID, string_or_null(st->slurm_job_id));
		json_object_set_new(doc, K_SLURM_STATE, string_or_null(st->slurm_state));
	}
	bool was = s->durable;
	s->durable = was && durable;
	int rc = spool_save_state(s, dirfd, name, doc);
	s->durable = was;
	json_decref(doc);
	return rc;
}

int task_running_open(struct spool *s)
{
	return openat(s->root_fd, RUNNING, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
}

int task_running_write(int fd, const struct task_running *t, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n && list; i++)
		json_array_append_new(list, json_pack("{s:s, s:i, s:I, s:i, s:s}", K_FILE, t[i].name,
			K_PID, t[i].pid, K_STARTED, (json_int_t)t[i].started_ms,
			K_ATTEMPT, t[i].attempt, K_EXECUTOR, t[i].executor));
	char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
	json_decref(list);
	if (!text)
		return -1;
	/* One write, in place: a shorter table is padded with blanks (JSON
	 * ignores them) rather than truncated, which would be a second call. */
	size_t len = strlen(text);
	struct stat st;
	size_t old = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
	size_t total = len < old && old - len < 65536 ? old : len;
	char *buf = total > len ? realloc(text, total) : text;
	if (!buf) {
		free(text);
		return -1;
	}
	memset(buf + len, ' ', total - len);
	ssize_t w = pwrite(fd, buf, total, 0);
	int rc = w == (ssize_t)total && (total == old || total > old ||
					 ftruncate(fd, (off_t)total) == 0) ? 0 : -1;
	free(buf);
	return rc;
}

static size_t parse_running(const char *buf, size_t len, struct task_running **out)
{
	json_t *list = json_loadb(buf, len, 0, NULL), *e;
	size_t i, n = 0;
	*out = NULL;
	if (!json_is_array(list) || !(*out = calloc(json_array_size(list) + 1, sizeof **out))) {
		json_decref(list);
		return 0;
	}
	json_array_foreach(list, i, e) {
		struct task_running *t = &(*out)[n];
		const char *name = json_string_value(json_object_get(e, K_FILE));
		if (!name || strlen(name) >= sizeof t->name)
			continue;
		snprintf(t->name, sizeof t->name, "%s", name);
		t->pid = bounded_int(e, K_PID);
		t->started_ms = json_integer_value(json_object_get(e, K_STARTED));
		t->attempt = bounded_int(e, K_ATTEMPT);
		copy_string(e, K_EXECUTOR, t->executor, sizeof t->executor);
		n++;
	}
	json_decref(list);
	return n;
}

size_t task_running_read(struct spool *s, struct task_running **out)
{
	*out = NULL;
	/* Rewritten in place: a read that races a write is torn; read again. */
	for (int tries = 0; tries < 5; tries++) {
		int fd = openat(s->root_fd, RUNNING, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			return 0;
		char *buf;
		size_t len;
		int rc = read_fd_bounded(fd, 16 << 20, &buf, &len);
		close(fd);
		if (rc < 0)
			return 0;
		size_t n = len ? parse_running(buf, len, out) : 0;
		free(buf);
		if (n || !len || *out)
			return n;
	}
	return 0;
}
