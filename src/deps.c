#define _GNU_SOURCE
#include "deps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNRESOLVED (-1)

/* What one entry of an "after" list refers to. */
struct edge {
	const char *status; /* its result's status, or NULL */
	long task;          /* index of the waiting task of that id, or -1 */
};

struct graph {
	const struct dep_task *tasks;
	size_t n;
	struct edge **edges;   /* edges[i][j]: tasks[i].after[j] */
	int *state;            /* UNRESOLVED or an enum dep_state */
	struct dep_verdict *out;
	/* Tarjan's strongly connected components, over unresolved tasks. */
	long *index, *low, *stack;
	bool *on_stack;
	long next_index, depth;
};

const char *deps_state_name(enum dep_state s)
{
	static const char *const names[] = { "runnable", "waiting", "skipped", "cycle" };
	return (unsigned)s < 4 ? names[s] : "waiting";
}

static int by_id(const void *a, const void *b, void *tasks)
{
	const struct dep_task *t = tasks;
	return strcmp(t[*(const long *)a].id, t[*(const long *)b].id);
}

static long find_task(const struct graph *g, const long *order, const char *id)
{
	long lo = 0, hi = (long)g->n - 1;
	while (lo <= hi) {
		long mid = lo + (hi - lo) / 2;
		int c = strcmp(id, g->tasks[order[mid]].id);
		if (c == 0)
			return order[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

static void set_verdict(struct graph *g, size_t i, enum dep_state st, const char *dep,
			const char *dep_status)
{
	g->state[i] = (int)st;
	g->out[i].state = st;
	g->out[i].dep = dep;
	snprintf(g->out[i].dep_status, sizeof g->out[i].dep_status, "%s", dep_status ? dep_status : "");
}

/* Decides task i if its dependencies allow it now; true when decided. */
static bool decide(struct graph *g, size_t i)
{
	const struct dep_task *t = &g->tasks[i];
	const char *first_wait = NULL;
	bool pending = false;
	for (size_t j = 0; j < t->n_after; j++) {
		const struct edge *e = &g->edges[i][j];
		int st = e->task >= 0 ? g->state[e->task] : UNRESOLVED;
		if (e->status) {
			if (!t->after_finished && strcmp(e->status, "succeeded")) {
				set_verdict(g, i, DEP_SKIPPED, t->after[j], e->status);
				return true;
			}
		} else if (e->task >= 0 && (st == DEP_SKIPPED || st == DEP_CYCLE)) {
			if (!t->after_finished) {
				set_verdict(g, i, DEP_SKIPPED, t->after[j], "skipped");
				return true;
			}
		} else if (e->task >= 0 && st == UNRESOLVED)
			pending = true;
		else if (!first_wait)
			first_wait = t->after[j];
	}
	if (pending)
		return false;
	set_verdict(g, i, first_wait ? DEP_WAITING : DEP_RUNNABLE, first_wait, NULL);
	return true;
}

static void settle(struct graph *g)
{
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < g->n; i++)
			if (g->state[i] == UNRESOLVED && decide(g, i))
				changed = true;
	}
}

/* The dependency of i that leads back into its own component. */
static const char *ring_next(const struct graph *g, size_t i, long component_low)
{
	for (size_t j = 0; j < g->tasks[i].n_after; j++) {
		long k = g->edges[i][j].task;
		if (k >= 0 && !g->edges[i][j].status && g->state[k] == DEP_CYCLE &&
		    g->low[k] == component_low)
			return g->tasks[i].after[j];
	}
	return g->tasks[i].after[0];
}

static void strongconnect(struct graph *g, long v)
{
	g->index[v] = g->low[v] = g->next_index++;
	g->stack[g->depth++] = v;
	g->on_stack[v] = true;
	bool self_loop = false;
	for (size_t j = 0; j < g->tasks[v].n_after; j++) {
		long w = g->edges[v][j].task;
		if (w < 0 || g->edges[v][j].status || g->state[w] != UNRESOLVED)
			continue;
		self_loop |= w == v;
		if (g->index[w] < 0) {
			strongconnect(g, w);
			if (g->low[w] < g->low[v])
				g->low[v] = g->low[w];
		} else if (g->on_stack[w] && g->index[w] < g->low[v])
			g->low[v] = g->index[w];
	}
	if (g->low[v] != g->index[v])
		return;
	long size = 0, root = v;
	do
		size++;
	while (g->stack[g->depth - size] != root);
	for (long k = 0; k < size; k++) {
		long w = g->stack[--g->depth];
		g->on_stack[w] = false;
		g->low[w] = g->index[root];
		if (size > 1 || self_loop)
			set_verdict(g, (size_t)w, DEP_CYCLE, NULL, NULL);
	}
}

/* Marks every task on a cycle among the unresolved ones. */
static void find_cycles(struct graph *g)
{
	for (size_t i = 0; i < g->n; i++)
		g->index[i] = g->low[i] = -1;
	for (size_t i = 0; i < g->n; i++)
		if (g->state[i] == UNRESOLVED && g->index[i] < 0)
			strongconnect(g, (long)i);
	for (size_t i = 0; i < g->n; i++)
		if (g->state[i] == DEP_CYCLE && !g->out[i].dep)
			g->out[i].dep = ring_next(g, i, g->low[i]);
}

static void free_graph(struct graph *g)
{
	for (size_t i = 0; g->edges && i < g->n; i++)
		free(g->edges[i]);
	free(g->edges);
	free(g->state);
	free(g->index);
	free(g->low);
	free(g->stack);
	free(g->on_stack);
}

/* One "after" entry, for looking each distinct id up once. */
struct edge_ref {
	const char *dep;
	struct edge *e;
};

static int by_dep(const void *a, const void *b)
{
	return strcmp(((const struct edge_ref *)a)->dep, ((const struct edge_ref *)b)->dep);
}

/* Looks up every distinct dependency id once (many tasks often wait for
 * the same one), then finds which ids are waiting tasks. */
static int build_edges(struct graph *g, dep_lookup_fn lookup, void *ctx)
{
	size_t nrefs = 0, k = 0;
	for (size_t i = 0; i < g->n; i++)
		nrefs += g->tasks[i].n_after;
	long *order = malloc((g->n + 1) * sizeof *order);
	struct edge_ref *refs = malloc((nrefs + 1) * sizeof *refs);
	for (size_t i = 0; order && refs && i < g->n; i++) {
		order[i] = (long)i;
		if (!(g->edges[i] = calloc(g->tasks[i].n_after + 1, sizeof **g->edges)))
			break;
		for (size_t j = 0; j < g->tasks[i].n_after; j++)
			refs[k++] = (struct edge_ref){ g->tasks[i].after[j], &g->edges[i][j] };
	}
	if (!order || !refs || k != nrefs) {
		free(order);
		free(refs);
		return -1;
	}
	qsort_r(order, g->n, sizeof *order, by_id, (void *)g->tasks);
	qsort(refs, nrefs, sizeof *refs, by_dep);
	for (size_t r = 0; r < nrefs; r++) {
		bool same = r > 0 && !strcmp(refs[r].dep, refs[r - 1].dep);
		*refs[r].e = same ? *refs[r - 1].e : (struct edge){ lookup(ctx, refs[r].dep), -1 };
		if (!same && !refs[r].e->status)
			refs[r].e->task = find_task(g, order, refs[r].dep);
	}
	free(order);
	free(refs);
	return 0;
}

int deps_resolve(const struct dep_task *tasks, size_t n, dep_lookup_fn lookup, void *ctx,
		 struct dep_verdict *out)
{
	struct graph g = { .tasks = tasks, .n = n, .out = out };
	size_t m = n + 1;
	g.edges = calloc(m, sizeof *g.edges);
	g.state = malloc(m * sizeof *g.state);
	g.index = malloc(m * sizeof *g.index);
	g.low = malloc(m * sizeof *g.low);
	g.stack = malloc(m * sizeof *g.stack);
	g.on_stack = calloc(m, sizeof *g.on_stack);
	if (!g.edges || !g.state || !g.index || !g.low || !g.stack || !g.on_stack ||
	    build_edges(&g, lookup, ctx) < 0) {
		free_graph(&g);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		g.state[i] = UNRESOLVED;
		memset(&out[i], 0, sizeof out[i]);
	}
	settle(&g);
	find_cycles(&g);
	settle(&g);
	free_graph(&g);
	return 0;
}
