#include "task_state.h"

#include <stdio.h>
#include <string.h>

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
#define K_PID "pid"
#define K_STARTED "started_ms"
#define K_EXECUTOR "executor"

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
	bool was = s->durable;
	s->durable = was && durable;
	int rc = spool_save_state(s, dirfd, name, doc);
	s->durable = was;
	json_decref(doc);
	return rc;
}
