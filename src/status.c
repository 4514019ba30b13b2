#define _GNU_SOURCE
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "exitcodes.h"
#include "fsutil.h"
#include "grow.h"
#include "lookup.h"
#include "queue.h"
#include "task_state.h"
#include "timeutil.h"

#define COMMAND_MAX 200      /* bytes of a command kept for display */

/* ---- collecting ------------------------------------------------------------ */

static struct status_row *add_row(struct status_report *st, enum status_state state,
				  const char *id, const char *file)
{
	struct status_row *rows = grow(st->rows, &st->cap, st->n + 1, sizeof *rows, 16);
	if (!rows)
		return NULL;
	st->rows = rows;
	struct status_row *r = &st->rows[st->n++];
	memset(r, 0, sizeof *r);
	r->state = state;
	r->elapsed_ms = r->duration_ms = -1;
	snprintf(r->id, sizeof r->id, "%s", id);
	snprintf(r->file, sizeof r->file, "%s", file);
	return r;
}

/* A task file parsed, for its command and label: NULL when unreadable. */
static json_t *task_doc(int dirfd, const char *name, size_t max)
{
	char *buf = NULL, why[512];
	size_t len;
	struct stat st;
	if (spool_read_task(dirfd, name, max, false, &buf, &len, &st, why, sizeof why) < 0)
		return NULL;
	json_t *doc = json_loadb(buf, len, 0, NULL);
	free(buf);
	return doc;
}

/* The command on one line: an argv joined by spaces, quoting arguments
 * that need it; a shell string as it is, newlines shown as spaces. */
static char *command_line(const json_t *cmd)
{
	char line[COMMAND_MAX + 1] = "";
	size_t used = 0, i;
	json_t *a;
	if (json_is_string(cmd))
		snprintf(line, sizeof line, "%s", json_string_value(cmd));
	else if (json_is_array(cmd))
		json_array_foreach(cmd, i, a) {
			const char *s = json_string_value(a);
			bool quote = !s || !*s || strpbrk(s, " \t\n'\"$`\\;&|<>*?()");
			int n = snprintf(line + used, sizeof line - used, quote ? "%s'%s'" : "%s%s",
					 i ? " " : "", s ? s : "");
			if (n < 0 || (size_t)n >= sizeof line - used)
				break;
			used += (size_t)n;
		}
	else
		return NULL;
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\t' || *p == '\r')
			*p = ' ';
	return strdup(line);
}

static void describe(struct status_row *r, const json_t *task)
{
	json_t *label = json_object_get(task, "label");
	if (!json_is_string(label))
		label = json_object_get(json_object_get(task, "meta"), "label");
	r->command = command_line(json_object_get(task, "command"));
	if (json_is_string(label))
		r->label = strdup(json_string_value(label));
}

static int64_t parse_rfc3339_ms(const char *s)
{
	struct tm tm = { 0 };
	int ms = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* How long process pid has run: its start (clock ticks after boot, field
 * 22 of /proc/PID/stat) against /proc/uptime. -1 when unknown. */
static int64_t elapsed_ms(int64_t pid)
{
	char path[64], line[1024];
	double uptime;
	unsigned long long start;
	snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
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

/* The size of logs/ID.STREAM: what the task has written so far (0 before
 * its first byte, as no log exists yet, and for anything but a file). */
static int64_t log_size(struct spool *s, const char *id, const char *stream)
{
	char name[SPOOL_NAME_SIZE];
	struct stat st;
	return spool_name_log(id, stream, name) == 0 &&
			       fstatat(s->logs_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			       S_ISREG(st.st_mode)
		       ? (int64_t)st.st_size : 0;
}

/* A local task's process and start, from the watcher's running table
 * (task_state.h: one entry per slot in use, rewritten as tasks start and
 * end). */
static void running_entry(struct spool *s, struct status_row *r)
{
	struct task_running *t = NULL;
	size_t n = task_running_read(s, &t);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].name, r->file))
			continue;
		int64_t now = time_realtime_ms();
		r->pid = t[i].pid;
		r->started_ms = t[i].started_ms;
		if (t[i].attempt)
			r->attempt = t[i].attempt;
		snprintf(r->executor, sizeof r->executor, "%s", t[i].executor);
		if (t[i].started_ms)
			r->elapsed_ms = now > t[i].started_ms ? now - t[i].started_ms : 0;
		else if (t[i].pid)
			r->elapsed_ms = elapsed_ms(t[i].pid);
		break;
	}
	free(t);
}

/* What the running task is doing: who runs it and since when (the running
 * table; a task in Slurm: its state); its output so far is the size of its
 * logs. */
static void running_data(struct spool *s, struct status_row *r)
{
	struct task_state ts;
	task_state_load(s, s->active_fd, r->file, &ts);
	r->stdout_bytes = log_size(s, r->id, "stdout");
	r->stderr_bytes = log_size(s, r->id, "stderr");
	r->attempt = ts.attempt ? ts.attempt : 1;
	if (!strcmp(ts.executor, "slurm") && ts.slurm_job_name[0]) {
		/* A task in Slurm has no local process: its job id and state. */
		int64_t now = time_realtime_ms();
		r->in_slurm = true;
		snprintf(r->executor, sizeof r->executor, "%s", ts.executor);
		snprintf(r->slurm_job_id, sizeof r->slurm_job_id, "%s", ts.slurm_job_id);
		snprintf(r->slurm_state, sizeof r->slurm_state, "%s",
			 ts.slurm_state[0] ? ts.slurm_state : "SUBMITTING");
		r->started_ms = ts.started_ms;
		if (ts.started_ms)
			r->elapsed_ms = now > ts.started_ms ? now - ts.started_ms : 0;
	} else
		running_entry(s, r);
	task_state_clear(&ts);
}

struct collector {
	struct spool *s;
	struct status_report *st;
	size_t max;
	struct queue q;
	size_t n;
	bool failed; /* out of memory */
};

/* Whether results/ID.json was published for this very file (its name and
 * inode in the result's task_file_stamp "INODE:MTIME:SIZE"): the runner
 * publishes first and lets the file go after, and status must not show a
 * finished task as running in between. */
static bool published(struct spool *s, const char *id, const char *name, const struct stat *sb)
{
	char rname[SPOOL_NAME_SIZE], why[1024];
	json_t *r;
	unsigned long long ino;
	spool_name_result(id, 1, rname);
	if (lookup_result(s, rname, &r, why, sizeof why) <= 0)
		return false;
	const char *file = json_string_value(json_object_get(r, "task_file"));
	const char *stamp = json_string_value(json_object_get(r, "task_file_stamp"));
	bool same = file && !strcmp(file, name) && stamp && sscanf(stamp, "%llu:", &ino) == 1 &&
		    ino == (unsigned long long)sb->st_ino;
	json_decref(r);
	return same;
}

static void add_active(void *ctx, const char *name)
{
	struct collector *c = ctx;
	char id[TASK_ID_MAX + 1];
	int64_t prio;
	struct stat sb;
	if (name[0] == '.' || spool_peek_task(c->s, c->s->active_fd, name, c->max, &prio, id,
					      sizeof id, &sb) < 0)
		return;
	if (published(c->s, id, name, &sb))
		return; /* between its publication and its removal: finished */
	struct status_row *r = add_row(c->st, c->st->watcher_running ? STATUS_RUNNING
								    : STATUS_INTERRUPTED, id, name);
	if (!r) {
		c->failed = true;
		return;
	}
	json_t *doc = task_doc(c->s->active_fd, name, c->max);
	describe(r, doc);
	json_decref(doc);
	if (r->state == STATUS_RUNNING)
		running_data(c->s, r);
}

static void add_queued(void *ctx, const char *name)
{
	struct collector *c = ctx;
	struct stat sb;
	char id[TASK_ID_MAX + 1];
	int64_t prio;
	if (spool_is_task_name(name) &&
	    spool_peek_task(c->s, c->s->incoming_fd, name, c->max, &prio, id, sizeof id, &sb) == 0)
		queue_push(&c->q, name, id, prio,
			   (int64_t)sb.st_mtim.tv_sec * NS_PER_SEC + sb.st_mtim.tv_nsec);
}

static void add_deferred(void *ctx, const char *name)
{
	struct collector *c = ctx;
	if (name[0] == '.')
		return;
	struct task_state st;
	char derived[TASK_ID_MAX + 1];
	task_state_load(c->s, c->s->deferred_fd, name, &st);
	task_id_from_filename(name, derived);
	queue_push(&c->q, name, st.id[0] ? st.id : derived, 0, time_ms_to_ns(st.not_before_ms));
	task_state_clear(&st);
}

/* Drains the queue into rows of state, reading each task file in dirfd. */
static void rows_from_queue(struct collector *c, int dirfd, enum status_state state)
{
	struct queue_entry e;
	while (queue_pop(&c->q, &e)) {
		struct status_row *r = add_row(c->st, state, e.id, e.name);
		json_t *doc = r ? task_doc(dirfd, e.name, c->max) : NULL;
		if (!r)
			c->failed = true;
		else if (state == STATUS_QUEUED) {
			r->priority = e.priority;
			r->when_ms = e.mtime_ns / NS_PER_MS;
		} else {
			struct task_state st;
			task_state_load(c->s, dirfd, e.name, &st);
			r->when_ms = e.mtime_ns / NS_PER_MS;
			r->attempts = (int)json_array_size(st.attempts);
			task_state_clear(&st);
		}
		if (r)
			describe(r, doc);
		json_decref(doc);
		free(e.name);
		free(e.id);
	}
}

/* results/, newest first. */
struct result_name {
	int64_t mtime_ns;
	char name[256];
};

struct result_lister {
	struct spool *s;
	struct result_name *v;
	size_t n, cap;
	bool failed;
};

static void add_result_name(void *ctx, const char *name)
{
	struct result_lister *l = ctx;
	struct stat sb;
	size_t len = strlen(name);
	if (name[0] == '.' || len < 6 || len >= sizeof l->v[0].name ||
	    strcmp(name + len - 5, ".json") ||
	    fstatat(l->s->results_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	struct result_name *v = grow(l->v, &l->cap, l->n + 1, sizeof *v, 64);
	if (!v) {
		l->failed = true;
		return;
	}
	l->v = v;
	l->v[l->n].mtime_ns = (int64_t)sb.st_mtim.tv_sec * NS_PER_SEC + sb.st_mtim.tv_nsec;
	snprintf(l->v[l->n].name, sizeof l->v[0].name, "%s", name);
	l->n++;
}

static int newest_first(const void *a, const void *b)
{
	const struct result_name *x = a, *y = b;
	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void add_finished(struct collector *c, const char *name, const json_t *res)
{
	const char *id = json_string_value(json_object_get(res, "id"));
	struct status_row *r = add_row(c->st, STATUS_FINISHED, id ? id : name, name);
	if (!r) {
		c->failed = true;
		return;
	}
	json_t *code = json_object_get(res, "exit_code"), *dur = json_object_get(res, "duration_ms");
	r->status = strdup(json_string_value(json_object_get(res, "status")));
	r->has_exit_code = json_is_integer(code);
	r->exit_code = (int)json_integer_value(code);
	r->duration_ms = json_is_integer(dur) ? json_integer_value(dur) : -1;
	const char *sig = json_string_value(json_object_get(json_object_get(res, "signal"), "name"));
	snprintf(r->signal, sizeof r->signal, "%s", sig ? sig : "");
	r->when_ms = parse_rfc3339_ms(json_string_value(json_object_get(res, "finished_at")));
	describe(r, json_object_get(res, "task"));
}

static void collect_finished(struct collector *c, const struct status_view *view)
{
	struct result_lister l = { .s = c->s };
	dir_each(c->s->results_fd, add_result_name, &l);
	c->failed |= l.failed;
	c->st->finished_total = l.n;
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, newest_first);
	size_t want = view->finished < 0 ? l.n : (size_t)view->finished;
	for (size_t i = 0, shown = 0; i < l.n && shown < want; i++) {
		char why[1024];
		json_t *res;
		if (lookup_result(c->s, l.v[i].name, &res, why, sizeof why) <= 0)
			continue; /* not a result: wait and tail name it; status lists results */
		const char *status = json_string_value(json_object_get(res, "status"));
		if (!view->only_failed || strcmp(status, "succeeded")) {
			add_finished(c, l.v[i].name, res);
			shown++;
		}
		json_decref(res);
	}
	free(l.v);
}

struct status_report *status_collect(struct spool *s, size_t max_task_bytes,
				     const struct status_view *view)
{
	struct status_report *st = calloc(1, sizeof *st);
	if (!st || !(st->spool = strdup(s->root))) {
		free(st);
		return NULL;
	}
	st->watcher_running = lookup_watcher(s, &st->watcher_pid);
	st->paused = spool_paused(s);
	struct collector c = { .s = s, .st = st, .max = max_task_bytes };
	dir_each(s->active_fd, add_active, &c);
	queue_init(&c.q);
	dir_each(s->incoming_fd, add_queued, &c);
	rows_from_queue(&c, s->incoming_fd, STATUS_QUEUED);
	dir_each(s->deferred_fd, add_deferred, &c);
	rows_from_queue(&c, s->deferred_fd, STATUS_DEFERRED);
	queue_clear(&c.q);
	for (size_t i = 0; i < st->n; i++)
		st->rows[i].cancel_requested =
			faccessat(s->cancel_fd, st->rows[i].id, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	collect_finished(&c, view);
	if (c.failed) {
		status_free(st);
		return NULL;
	}
	return st;
}

int status_keep_ids(struct status_report *st, char **ids, int n)
{
	size_t kept = 0;
	int missing = 0;
	for (size_t i = 0; i < st->n; i++) {
		bool wanted = false;
		for (int k = 0; k < n && !wanted; k++)
			wanted = !strcmp(st->rows[i].id, ids[k]);
		if (wanted)
			st->rows[kept++] = st->rows[i];
		else {
			free(st->rows[i].command);
			free(st->rows[i].label);
			free(st->rows[i].status);
		}
	}
	st->n = kept;
	st->finished_total = 0; /* of these ids: every one is shown */
	for (size_t i = 0; i < st->n; i++)
		st->finished_total += st->rows[i].state == STATUS_FINISHED;
	for (int k = 0; k < n; k++) {
		bool found = false;
		for (size_t i = 0; i < st->n && !found; i++)
			found = !strcmp(st->rows[i].id, ids[k]);
		missing += !found;
	}
	return missing;
}

void status_free(struct status_report *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		free(st->rows[i].command);
		free(st->rows[i].label);
		free(st->rows[i].status);
	}
	free(st->rows);
	free(st->spool);
	free(st);
}
