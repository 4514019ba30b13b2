#include "holds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "grow.h"
#include "spool.h"

void holds_init(struct holds *h)
{
	memset(h, 0, sizeof *h);
}

static void free_hold(struct hold *x)
{
	free(x->name);
	task_clear(&x->t);
}

void holds_clear(struct holds *h)
{
	for (size_t i = 0; i < h->n; i++)
		free_hold(&h->v[i]);
	free(h->v);
	holds_init(h);
}

/* The index of name, or where it would go (*found false). */
static size_t locate(const struct holds *h, const char *name, bool *found)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, h->v[mid].name);
		if (c == 0)
			return *found = true, mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

int holds_add(struct holds *h, int dirfd, const char *name, size_t max)
{
	static const struct task_defaults none;
	char *buf, why[256];
	size_t len;
	struct stat st;
	struct task_error e;
	struct hold x = { 0 };
	if (spool_read_task(dirfd, name, max, true, &buf, &len, &st, why, sizeof why) < 0)
		return 0;
	int rc = task_parse(buf, len, name, &none, &x.t, &e);
	free(buf);
	bool found;
	size_t at = locate(h, name, &found);
	if (rc < 0 || (!x.t.n_after && !x.t.not_before_ms) || found) {
		task_clear(&x.t);
		return 0;
	}
	struct hold *grown = grow(h->v, &h->cap, h->n + 1, sizeof *grown, 16);
	if (grown)
		h->v = grown;
	if (!grown || !(x.name = strdup(name))) {
		task_clear(&x.t);
		errno = ENOMEM;
		return -1;
	}
	x.v.state = GATE_WAIT_DEPS; /* until evaluated */
	memmove(&h->v[at + 1], &h->v[at], (h->n - at) * sizeof *h->v);
	h->v[at] = x;
	h->n++;
	h->waiting++;
	return 1;
}

static bool waits(const struct gate_verdict *v)
{
	return v->state == GATE_WAIT_DEPS || v->state == GATE_WAIT_TIME;
}

void holds_remove(struct holds *h, const char *name)
{
	bool found;
	size_t at = locate(h, name, &found);
	if (!found)
		return;
	h->waiting -= waits(&h->v[at].v);
	free_hold(&h->v[at]);
	memmove(&h->v[at], &h->v[at + 1], (h->n - at - 1) * sizeof *h->v);
	h->n--;
}

const struct gate_verdict *holds_find(const struct holds *h, const char *name)
{
	bool found;
	size_t at = locate(h, name, &found);
	return found ? &h->v[at].v : NULL;
}

int holds_evaluate(struct holds *h, dep_lookup_fn lookup, void *ctx, int64_t now_ms)
{
	struct gate_task *g = calloc(h->n + 1, sizeof *g);
	struct gate_verdict *out = calloc(h->n + 1, sizeof *out);
	if (!g || !out) {
		free(g);
		free(out);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < h->n; i++) {
		const struct task *t = &h->v[i].t;
		g[i] = (struct gate_task){ t->id, t->after, t->n_after, t->after_finished,
					   t->not_before_ms };
	}
	int rc = gate_decide(g, h->n, lookup, ctx, now_ms, out);
	if (rc == 0) {
		h->waiting = 0;
		for (size_t i = 0; i < h->n; i++) {
			h->v[i].v = out[i];
			h->waiting += waits(&out[i]);
		}
	}
	free(g);
	free(out);
	return rc;
}

size_t holds_skips(const struct holds *h, const char ***names)
{
	size_t n = 0;
	*names = calloc(h->n + 1, sizeof **names);
	for (size_t i = 0; *names && i < h->n; i++)
		if (gate_error_code(h->v[i].v.state))
			(*names)[n++] = h->v[i].name;
	return n;
}

int64_t holds_next_ms(const struct holds *h, int64_t now_ms)
{
	int64_t best = -1;
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i].v.state != GATE_WAIT_TIME)
			continue;
		int64_t left = h->v[i].v.not_before_ms - now_ms;
		if (left < 0)
			left = 0;
		if (best < 0 || left < best)
			best = left;
	}
	return best;
}
