#define _GNU_SOURCE
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
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

static void set_label(json_t *item, const struct task *t)
{
	json_object_set_new(item, "label", t->label ? json_string(t->label) : json_null());
}

static json_t *time_or_null(int64_t ms)
{
	char when[32];
	if (!ms)
		return json_null();
	time_format_rfc3339(ms, when, sizeof when);
	return json_string(when);
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

static void annotate_queued(struct spool *s, json_t *queued, size_t max)
{
	size_t n = json_array_size(queued), i;
	struct task *tasks = calloc(n + 1, sizeof *tasks);
	struct gate_task *gt = calloc(n + 1, sizeof *gt);
	struct gate_verdict *gv = calloc(n + 1, sizeof *gv);
	bool *valid = calloc(n + 1, sizeof *valid);
	json_t *item;
	if (!tasks || !gt || !gv || !valid)
		goto out;
	json_array_foreach(queued, i, item) {
		const char *file = json_string_value(json_object_get(item, "task_file"));
		valid[i] = read_task(s->incoming_fd, file, max, &tasks[i]) == 0;
		gt[i] = valid[i] ? lifecycle_gate_task(&tasks[i]) : (struct gate_task){ .id = "" };
	}
	if (gate_decide(gt, n, lifecycle_result_status, s, time_realtime_ms(), gv) < 0)
		goto out;
	json_array_foreach(queued, i, item) {
		set_label(item, &tasks[i]);
		json_t *after = json_array();
		for (size_t k = 0; k < tasks[i].n_after; k++)
			json_array_append_new(after, json_string(tasks[i].after[k]));
		json_object_set_new(item, "after", after);
		json_object_set_new(item, "not_before", time_or_null(tasks[i].not_before_ms));
		const char *blocked = valid[i] ? blocked_name(gv[i].state) : NULL;
		json_object_set_new(item, "blocked", blocked ? json_string(blocked) : json_null());
		json_object_set_new(item, "waiting_for", valid[i] && gv[i].dep
				    ? json_string(gv[i].dep) : json_null());
	}
out:
	for (i = 0; tasks && i < n; i++)
		task_clear(&tasks[i]);
	free(tasks), free(gt), free(gv), free(valid);
}

static void label_from_file(json_t *list, int dirfd, size_t max)
{
	size_t i;
	json_t *item;
	json_array_foreach(list, i, item) {
		struct task t;
		read_task(dirfd, json_string_value(json_object_get(item, "task_file")), max, &t);
		set_label(item, &t);
		task_clear(&t);
	}
}

static void label_from_result(struct spool *s, json_t *recent)
{
	size_t i;
	json_t *item;
	json_array_foreach(recent, i, item) {
		const char *name = json_string_value(json_object_get(item, "result_file"));
		int fd = name ? openat(s->results_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		json_t *r = fd >= 0 ? json_loadfd(fd, JSON_ALLOW_NUL, NULL) : NULL;
		if (fd >= 0)
			close(fd);
		json_t *label = json_object_get(json_object_get(r, "task"), "label");
		json_object_set_new(item, "label", json_is_string(label) ? json_copy(label) : json_null());
		json_decref(r);
	}
}

void lifecycle_annotate_status(struct spool *s, json_t *st, size_t max)
{
	annotate_queued(s, json_object_get(st, "queued"), max);
	label_from_file(json_object_get(st, "running"), s->active_fd, max);
	label_from_file(json_object_get(st, "deferred"), s->deferred_fd, max);
	label_from_result(s, json_object_get(st, "recent"));
}

void lifecycle_filter_label(json_t *st, const char *label)
{
	static const char *const lists[] = { "running", "queued", "deferred", "recent" };
	for (size_t l = 0; l < 4; l++) {
		json_t *list = json_object_get(st, lists[l]);
		for (size_t i = json_array_size(list); i-- > 0;) {
			const char *have = json_string_value(json_object_get(json_array_get(list, i), "label"));
			if (!have || strcmp(have, label))
				json_array_remove(list, i);
		}
	}
}

const char *lifecycle_status_suffix(const json_t *item)
{
	static char buf[512];
	const char *label = json_string_value(json_object_get(item, "label"));
	const char *blocked = json_string_value(json_object_get(item, "blocked"));
	const char *dep = json_string_value(json_object_get(item, "waiting_for"));
	const char *when = json_string_value(json_object_get(item, "not_before"));
	int n = snprintf(buf, sizeof buf, "%s%s%s", label ? "  [" : "", label ? label : "",
			 label ? "]" : "");
	if (n < 0 || (size_t)n >= sizeof buf || !blocked)
		return buf;
	if (!strcmp(blocked, "dependency"))
		snprintf(buf + n, sizeof buf - (size_t)n, "  waiting for %s", dep ? dep : "?");
	else if (!strcmp(blocked, "not_before"))
		snprintf(buf + n, sizeof buf - (size_t)n, "  not before %s", when ? when : "?");
	else
		snprintf(buf + n, sizeof buf - (size_t)n, "  to be skipped (%s%s%s)", blocked,
			 dep ? ": " : "", dep ? dep : "");
	return buf;
}
