#define _GNU_SOURCE
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "timeutil.h"

/* Statuses of results seen, by id: a result never changes once published,
 * so each is parsed once; a removed one is noticed (stat on every lookup)
 * and then counts as absent again. Statuses are interned, so a pointer
 * handed out stays valid whatever happens to the cache. */
struct seen {
	char *id;
	const char *status;
	struct seen *next;
};

#define SEEN_BUCKETS 1024
static struct seen *seen[SEEN_BUCKETS];

static const char *intern_status(const char *s)
{
	static const char *const known[] = { "succeeded", "failed", "timeout", "killed",
		"cancelled", "rejected", "interrupted", "skipped", "error" };
	for (size_t i = 0; s && i < sizeof known / sizeof *known; i++)
		if (!strcmp(s, known[i]))
			return known[i];
	return "error";
}

static unsigned bucket(const char *id)
{
	unsigned h = 5381;
	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h % SEEN_BUCKETS;
}

void lifecycle_lookup_reset(void)
{
	for (size_t i = 0; i < SEEN_BUCKETS; i++)
		while (seen[i]) {
			struct seen *next = seen[i]->next;
			free(seen[i]->id);
			free(seen[i]);
			seen[i] = next;
		}
}

static const char *read_status(struct spool *s, const char *name)
{
	int fd = openat(s->results_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	json_t *r = json_loadfd(fd, JSON_ALLOW_NUL, NULL);
	close(fd);
	const char *status = r ? intern_status(json_string_value(json_object_get(r, "status"))) : NULL;
	json_decref(r);
	return status;
}

const char *lifecycle_result_status(void *spool, const char *id)
{
	struct spool *s = spool;
	char name[SPOOL_NAME_SIZE];
	struct stat st;
	if (spool_name_result(id, 1, name) < 0)
		return NULL;
	struct seen **slot = &seen[bucket(id)], *e = *slot;
	while (e && strcmp(e->id, id))
		e = e->next;
	if (fstatat(s->results_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		if (e)
			e->status = NULL; /* removed by a consumer: absent again */
		return NULL;
	}
	if (e && e->status)
		return e->status;
	const char *status = read_status(s, name);
	if (!status)
		return NULL; /* half-readable: look again next time */
	if (!e && (e = calloc(1, sizeof *e))) {
		if (!(e->id = strdup(id))) {
			free(e);
			return status; /* not cached: read again next time */
		}
		e->next = *slot;
		*slot = e;
	}
	if (e)
		e->status = status;
	return status;
}

struct gate_task lifecycle_gate_task(const struct task *t)
{
	return (struct gate_task){ t->id, t->after, t->n_after, t->after_finished,
				   t->not_before_ms };
}

/* Parses dir/name for its lifecycle fields; -1 when it is not a valid task. */
static int read_task(int dirfd, const char *name, size_t max, struct task *t)
{
	static const struct task_defaults none;
	char *buf, why[256];
	size_t len;
	struct stat st;
	struct task_error e;
	memset(t, 0, sizeof *t);
	if (!name || spool_read_task(dirfd, name, max, false, &buf, &len, &st, why, sizeof why) < 0)
		return -1;
	int rc = task_parse(buf, len, name, &none, t, &e);
	free(buf);
	return rc;
}

static const char *blocked_name(enum gate_state s)
{
	switch (s) {
	case GATE_OPEN: return NULL;
	case GATE_WAIT_DEPS: return "dependency";
	case GATE_WAIT_TIME: return "not_before";
	default: return gate_error_code(s);
	}
}

void lifecycle_annotate_rows(struct spool *s, struct status_report *st, size_t max)
{
	size_t n = st->n;
	struct task *tasks = calloc(n + 1, sizeof *tasks);
	struct gate_task *gt = calloc(n + 1, sizeof *gt);
	struct gate_verdict *gv = calloc(n + 1, sizeof *gv);
	bool *valid = calloc(n + 1, sizeof *valid);
	if (!tasks || !gt || !gv || !valid)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (st->rows[i].state == STATUS_QUEUED)
			valid[i] = read_task(s->incoming_fd, st->rows[i].file, max, &tasks[i]) == 0;
		gt[i] = valid[i] ? lifecycle_gate_task(&tasks[i]) : (struct gate_task){ .id = "" };
	}
	if (gate_decide(gt, n, lifecycle_result_status, s, time_realtime_ms(), gv) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct status_row *r = &st->rows[i];
		if (!valid[i])
			continue;
		r->blocked = blocked_name(gv[i].state);
		r->not_before_ms = tasks[i].not_before_ms;
		if (gv[i].dep)
			snprintf(r->waiting_for, sizeof r->waiting_for, "%s", gv[i].dep);
	}
out:
	for (size_t i = 0; tasks && i < n; i++)
		task_clear(&tasks[i]);
	free(tasks), free(gt), free(gv), free(valid);
}

void lifecycle_keep_label(struct status_report *st, const char *label)
{
	size_t kept = 0;
	for (size_t i = 0; i < st->n; i++) {
		struct status_row *r = &st->rows[i];
		if (r->label && !strcmp(r->label, label)) {
			st->rows[kept++] = *r;
			continue;
		}
		free(r->command);
		free(r->label);
		free(r->status);
	}
	st->n = kept;
	st->finished_total = 0; /* of this label: every one listed is shown */
	for (size_t i = 0; i < st->n; i++)
		st->finished_total += st->rows[i].state == STATUS_FINISHED;
}

struct status_report *lifecycle_status_collect(struct spool *s, size_t max_task_bytes,
					       const struct status_view *view)
{
	struct status_report *st = status_collect(s, max_task_bytes, view);
	if (st)
		lifecycle_annotate_rows(s, st, max_task_bytes);
	return st;
}
