#define _GNU_SOURCE
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "queue.h"
#include "spool.h"
#include "task.h"
#include "task_state.h"
#include "timeutil.h"

#define RECENT 10

static json_t *timestamp_ns(int64_t ns)
{
	char buf[32];
	time_format_rfc3339(ns / NS_PER_MS, buf, sizeof buf);
	return json_string(buf);
}

/* The watcher: whether the lock is held, and the pid written into it. */
static json_t *watcher_info(struct spool *s, int *pid)
{
	*pid = 0;
	int fd = openat(s->root_fd, ".lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool held = false;
	if (fd >= 0) {
		held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		char buf[32] = "";
		if (held && pread(fd, buf, sizeof buf - 1, 0) > 0)
			*pid = atoi(buf);
		close(fd);
	}
	return json_pack("{s:b, s:o}", "running", held, "pid", *pid ? json_integer(*pid) : json_null());
}

/* How long process pid has run: its start (clock ticks after boot, field
 * 22 of /proc/PID/stat) against /proc/uptime. -1 when unknown. */
static int64_t elapsed_ms(int pid)
{
	char path[64], line[1024];
	double uptime;
	unsigned long long start;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	char *rp = f && fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
	if (f)
		fclose(f);
	/* After the command name: state, then fields 4 to 21, then starttime. */
	if (!rp || sscanf(rp + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
			  "%*s %*s %*s %llu", &start) != 1)
		return -1;
	f = fopen("/proc/uptime", "re");
	int ok = f && fscanf(f, "%lf", &uptime) == 1;
	if (f)
		fclose(f);
	long hz = sysconf(_SC_CLK_TCK);
	if (!ok || hz <= 0)
		return -1;
	return (int64_t)(uptime * 1000) - (int64_t)(start * 1000 / (unsigned long long)hz);
}

/* dir_each, for what status lists: names that are not dot files. */
struct visible {
	void (*fn)(void *ctx, const char *name);
	void *ctx;
};

static void skip_dot_files(void *ctx, const char *name)
{
	struct visible *v = ctx;
	if (name[0] != '.')
		v->fn(v->ctx, name);
}

static void each_entry(int dirfd, void (*fn)(void *ctx, const char *name), void *ctx)
{
	struct visible v = { fn, ctx };
	dir_each(dirfd, skip_dot_files, &v);
}

/* The size of logs/ID.STREAM: what the task has written so far (0 before
 * its first byte, as no log exists yet). */
static json_t *log_size(struct spool *s, const char *id, const char *stream)
{
	char name[SPOOL_NAME_SIZE];
	struct stat st;
	return json_integer(spool_name_log(id, stream, name) == 0 &&
			    fstatat(s->logs_fd, name, &st, 0) == 0 ? st.st_size : 0);
}

/* A task in Slurm has no local process: its job id and state instead, from
 * the task's state (saved by the Slurm executor, slurmexec.h); "slurm" is
 * null for a local task. */
static void add_slurm_info(struct spool *s, const struct task_running *t, json_t *entry)
{
	if (strcmp(t->executor, "slurm") != 0) {
		json_object_set_new(entry, "slurm", json_null());
		return;
	}
	struct task_state ts;
	task_state_load(s, s->active_fd, t->name, &ts);
	json_object_set_new(entry, "pid", json_null());
	json_object_set_new(entry, "slurm", json_pack("{s:o, s:o}",
		"job_id", ts.slurm_job_id[0] ? json_string(ts.slurm_job_id) : json_null(),
		"state", ts.slurm_state[0] ? json_string(ts.slurm_state) : json_string("SUBMITTING")));
	if (t->started_ms)
		json_object_set_new(entry, "elapsed_ms", json_integer(time_realtime_ms() > t->started_ms
								      ? time_realtime_ms() - t->started_ms : 0));
	task_state_clear(&ts);
}

/* The running tasks: the watcher's running table (task_state.h), one
 * entry per slot in use, with what each has written so far (its log sizes). */
static json_t *running_info(struct spool *s, int watcher_pid, size_t max)
{
	json_t *list = json_array();
	struct task_running *t = NULL;
	size_t n = watcher_pid ? task_running_read(s, &t) : 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char id[TASK_ID_MAX + 1];
		int64_t prio;
		if (spool_peek_task(s, s->active_fd, t[i].name, max, &prio, id, sizeof id, &st) < 0)
			continue; /* ended meanwhile */
		int64_t elapsed = t[i].pid ? elapsed_ms(t[i].pid) : -1;
		if (elapsed < 0 && t[i].started_ms)
			elapsed = time_realtime_ms() > t[i].started_ms ? time_realtime_ms() - t[i].started_ms
								   : 0;
		json_t *entry = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "id", id,
			"task_file", t[i].name, "pid", t[i].pid ? json_integer(t[i].pid) : json_null(),
			"elapsed_ms", elapsed >= 0 ? json_integer(elapsed) : json_null(),
			"stdout_bytes", log_size(s, id, "stdout"),
			"stderr_bytes", log_size(s, id, "stderr"));
		json_object_set_new(entry, "started_at", t[i].started_ms
				    ? timestamp_ns(t[i].started_ms * NS_PER_MS) : json_null());
		json_object_set_new(entry, "attempt", json_integer(t[i].attempt ? t[i].attempt : 1));
		json_object_set_new(entry, "executor", json_string(t[i].executor));
		add_slurm_info(s, &t[i], entry);
		json_array_append_new(list, entry);
	}
	free(t);
	return list;
}

struct lister {
	struct spool *s;
	size_t max;
	struct queue q;
};

static void add_queued(void *ctx, const char *name)
{
	struct lister *l = ctx;
	struct stat st;
	char id[TASK_ID_MAX + 1];
	int64_t prio;
	if (spool_is_task_name(name) &&
	    spool_peek_task(l->s, l->s->incoming_fd, name, l->max, &prio, id, sizeof id, &st) == 0)
		queue_push(&l->q, name, id, prio,
			   (int64_t)st.st_mtim.tv_sec * NS_PER_SEC + st.st_mtim.tv_nsec);
}

/* incoming/ in the order the watcher will run it. */
static json_t *queued_info(struct spool *s, size_t max)
{
	struct lister l = { s, max, { 0 } };
	queue_init(&l.q);
	each_entry(s->incoming_fd, add_queued, &l);
	json_t *list = json_array();
	struct queue_entry e;
	while (queue_pop(&l.q, &e)) {
		json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:o}", "id", e.id,
						      "task_file", e.name, "priority", (json_int_t)e.priority,
						      "queued_at", timestamp_ns(e.mtime_ns)));
		free(e.name);
		free(e.id);
	}
	queue_clear(&l.q);
	return list;
}

static void add_deferred(void *ctx, const char *name)
{
	struct lister *l = ctx;
	struct task_state st;
	task_state_load(l->s, l->s->deferred_fd, name, &st);
	queue_push(&l->q, name, st.id[0] ? st.id : name, 0, time_ms_to_ns(st.not_before_ms));
	task_state_clear(&st);
}

/* deferred/ by the time each task runs again. */
static json_t *deferred_info(struct spool *s)
{
	struct lister l = { s, 0, { 0 } };
	queue_init(&l.q);
	each_entry(s->deferred_fd, add_deferred, &l);
	json_t *list = json_array();
	struct queue_entry e;
	while (queue_pop(&l.q, &e)) {
		struct task_state st;
		task_state_load(s, s->deferred_fd, e.name, &st);
		json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:i}", "id", e.id,
			"task_file", e.name, "not_before", timestamp_ns(e.mtime_ns),
			"attempts", (int)json_array_size(st.attempts)));
		task_state_clear(&st);
		free(e.name);
		free(e.id);
	}
	queue_clear(&l.q);
	return list;
}

struct recent {
	struct spool *s;
	struct { int64_t mtime; char name[200]; } best[RECENT];
	int n;
};

static void add_recent(void *ctx, const char *name)
{
	struct recent *r = ctx;
	struct stat st;
	size_t len = strlen(name);
	if (len < 6 || strcmp(name + len - 5, ".json") || len >= sizeof r->best[0].name ||
	    fstatat(r->s->results_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	int64_t m = (int64_t)st.st_mtim.tv_sec * NS_PER_SEC + st.st_mtim.tv_nsec;
	int i = r->n < RECENT ? r->n++ : RECENT - 1;
	if (i == RECENT - 1 && r->n == RECENT && m <= r->best[i].mtime)
		return;
	/* Insertion into the newest-first list. */
	for (; i > 0 && r->best[i - 1].mtime < m; i--)
		r->best[i] = r->best[i - 1];
	r->best[i].mtime = m;
	snprintf(r->best[i].name, sizeof r->best[i].name, "%s", name);
}

static json_t *recent_info(struct spool *s)
{
	struct recent r = { .s = s };
	each_entry(s->results_fd, add_recent, &r);
	json_t *list = json_array();
	for (int i = 0; i < r.n; i++) {
		int fd = openat(s->results_fd, r.best[i].name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		json_t *res = fd >= 0 ? json_loadfd(fd, JSON_ALLOW_NUL, NULL) : NULL;
		if (fd >= 0)
			close(fd);
		if (!res)
			continue;
		json_array_append_new(list, json_pack("{s:O, s:O, s:O, s:s}",
			"id", json_object_get(res, "id"), "status", json_object_get(res, "status"),
			"finished_at", json_object_get(res, "finished_at"), "result_file", r.best[i].name));
		json_decref(res);
	}
	return list;
}

void status_print_text(const json_t *st)
{
	json_t *w = json_object_get(st, "watcher"), *v;
	size_t i;
	printf("spool    %s\n", json_string_value(json_object_get(st, "spool")));
	if (json_is_true(json_object_get(w, "running")))
		printf("watcher  running, pid %lld%s\n",
		       (long long)json_integer_value(json_object_get(w, "pid")),
		       json_is_true(json_object_get(st, "paused")) ? " (paused)" : "");
	else
		printf("watcher  not running%s\n",
		       json_is_true(json_object_get(st, "paused")) ? " (paused)" : "");
	json_array_foreach(json_object_get(st, "running"), i, v) {
		json_t *sl = json_object_get(v, "slurm");
		if (json_is_object(sl)) {
			printf("running  %s  slurm job %s %s  %.1f s  %lld bytes out, %lld err\n",
			       json_string_value(json_object_get(v, "id")),
			       json_is_string(json_object_get(sl, "job_id"))
				       ? json_string_value(json_object_get(sl, "job_id")) : "-",
			       json_string_value(json_object_get(sl, "state")),
			       (double)json_integer_value(json_object_get(v, "elapsed_ms")) / 1000,
			       (long long)json_integer_value(json_object_get(v, "stdout_bytes")),
			       (long long)json_integer_value(json_object_get(v, "stderr_bytes")));
			continue;
		}
		printf("running  %s  pid %lld  %.1f s  %lld bytes out, %lld err\n",
		       json_string_value(json_object_get(v, "id")),
		       (long long)json_integer_value(json_object_get(v, "pid")),
		       (double)json_integer_value(json_object_get(v, "elapsed_ms")) / 1000,
		       (long long)json_integer_value(json_object_get(v, "stdout_bytes")),
		       (long long)json_integer_value(json_object_get(v, "stderr_bytes")));
	}
	json_array_foreach(json_object_get(st, "queued"), i, v)
		printf("queued   %s  priority %lld\n", json_string_value(json_object_get(v, "id")),
		       (long long)json_integer_value(json_object_get(v, "priority")));
	json_array_foreach(json_object_get(st, "deferred"), i, v)
		printf("deferred %s  until %s\n", json_string_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "not_before")));
	json_array_foreach(json_object_get(st, "recent"), i, v)
		printf("done     %s  %s  %s\n", json_string_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "status")),
		       json_string_value(json_object_get(v, "finished_at")));
}

json_t *status_collect(struct spool *s, size_t max_task_bytes)
{
	int pid;
	json_t *st = json_object();
	json_object_set_new(st, "spool", json_string(s->root));
	json_object_set_new(st, "watcher", watcher_info(s, &pid));
	json_object_set_new(st, "paused", json_boolean(spool_paused(s)));
	json_object_set_new(st, "running", running_info(s, pid, max_task_bytes));
	json_object_set_new(st, "queued", queued_info(s, max_task_bytes));
	json_object_set_new(st, "deferred", deferred_info(s));
	json_object_set_new(st, "recent", recent_info(s));
	return st;
}
