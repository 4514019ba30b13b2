#include "sched.h"

#include <string.h>
#include <strings.h>

static bool due(const struct sched_task *t, int64_t now_ms)
{
	return t->deferred && t->due_ms <= now_ms;
}

bool sched_before(const struct sched_task *a, const struct sched_task *b, int64_t now_ms)
{
	bool da = due(a, now_ms), db = due(b, now_ms);
	if (da != db)
		return da;
	if (da && a->due_ms != b->due_ms)
		return a->due_ms < b->due_ms;
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->arrival_ns != b->arrival_ns)
		return a->arrival_ns < b->arrival_ns;
	return strcmp(a->name, b->name) < 0;
}

unsigned sched_cap_of(const struct sched_limits *lim, const char *key)
{
	if (!key || !*key)
		return 0;
	for (size_t i = 0; i < lim->ncaps; i++)
		if (!strcasecmp(lim->caps[i].key, key))
			return lim->caps[i].cap;
	return 0;
}

static unsigned running_with(const struct sched_load *load, const char *key)
{
	unsigned n = 0;
	for (size_t i = 0; i < load->nkeys; i++)
		n += load->keys[i] && !strcasecmp(load->keys[i], key);
	return n;
}

enum sched_verdict sched_eligible(const struct sched_limits *lim, const struct sched_load *load,
				  const struct sched_task *t, int64_t now_ms)
{
	if (lim->paused || load->running >= lim->slots)
		return SCHED_NO_SLOT;
	if (t->deferred && t->due_ms > now_ms)
		return SCHED_NOT_DUE;
	if (t->retry_at_ms > now_ms)
		return SCHED_BACKING_OFF;
	if (t->name_busy)
		return SCHED_NAME_BUSY;
	unsigned cap = sched_cap_of(lim, t->limit_key);
	if (cap && running_with(load, t->limit_key) >= cap)
		return SCHED_KEY_AT_CAP;
	return SCHED_RUNNABLE;
}

int sched_pick(const struct sched_limits *lim, const struct sched_load *load,
	       const struct sched_task *tasks, size_t n, int64_t now_ms)
{
	int best = -1;
	for (size_t i = 0; i < n; i++)
		if (sched_eligible(lim, load, &tasks[i], now_ms) == SCHED_RUNNABLE &&
		    (best < 0 || sched_before(&tasks[i], &tasks[best], now_ms)))
			best = (int)i;
	return best;
}
