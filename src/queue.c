#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

static char tombstone;
#define TOMBSTONE (&tombstone)

void queue_init(struct queue *q)
{
	memset(q, 0, sizeof *q);
}

void queue_clear(struct queue *q)
{
	for (size_t i = 0; i < q->len; i++)
		queue_entry_free(&q->heap[i]);
	free(q->heap);
	free(q->slots);
	memset(q, 0, sizeof *q);
}

size_t queue_len(const struct queue *q)
{
	return q->len;
}

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603u; /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211u;
	return h;
}

/* Slot holding name, or the first free slot of its probe sequence. */
static size_t find_slot(const struct queue *q, const char *name, bool *found)
{
	size_t mask = q->nslots - 1, i = hash(name) & mask, free_slot = SIZE_MAX;
	for (;; i = (i + 1) & mask) {
		char *s = q->slots[i];
		if (!s) {
			*found = false;
			return free_slot != SIZE_MAX ? free_slot : i;
		}
		if (s == TOMBSTONE) {
			if (free_slot == SIZE_MAX)
				free_slot = i;
		} else if (strcmp(s, name) == 0) {
			*found = true;
			return i;
		}
	}
}

static int rehash(struct queue *q, size_t nslots)
{
	char **old = q->slots;
	size_t oldn = q->nslots;
	q->slots = calloc(nslots, sizeof *q->slots);
	if (!q->slots) {
		q->slots = old;
		return -1;
	}
	q->nslots = nslots;
	q->filled = 0;
	for (size_t i = 0; i < oldn; i++)
		if (old[i] && old[i] != TOMBSTONE) {
			bool found;
			q->slots[find_slot(q, old[i], &found)] = old[i];
			q->filled++;
		}
	free(old);
	return 0;
}

static bool before(const struct queue_entry *a, const struct queue_entry *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->mtime_ns != b->mtime_ns)
		return a->mtime_ns < b->mtime_ns;
	return strcmp(a->name, b->name) < 0;
}

static void swap(struct queue_entry *a, struct queue_entry *b)
{
	struct queue_entry t = *a;
	*a = *b;
	*b = t;
}

static void sift_down(struct queue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < q->len && before(&q->heap[l], &q->heap[m]))
			m = l;
		if (r < q->len && before(&q->heap[r], &q->heap[m]))
			m = r;
		if (m == i)
			return;
		swap(&q->heap[i], &q->heap[m]);
		i = m;
	}
}

static void sift_up(struct queue *q, size_t i)
{
	while (i > 0 && before(&q->heap[i], &q->heap[(i - 1) / 2])) {
		swap(&q->heap[i], &q->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
}

int queue_push(struct queue *q, const char *name, const char *id, int64_t priority,
	       int64_t mtime_ns)
{
	return queue_push_keyed(q, name, id, NULL, priority, mtime_ns);
}

static int push(struct queue *q, const char *name, const char *id, const char *key,
		int64_t priority, int64_t mtime_ns, int64_t retry_at_ms, int failures)
{
	/* Keep the set at most half full, counting tombstones. */
	if ((q->filled + 1) * 2 > q->nslots) {
		size_t n = 64;
		while (n < (q->len + 1) * 4)
			n *= 2;
		if (rehash(q, n) < 0)
			return -1;
	}
	bool found;
	size_t slot = find_slot(q, name, &found);
	if (found)
		return 0;
	struct queue_entry *h = grow(q->heap, &q->cap, q->len + 1, sizeof *h, 64);
	if (!h)
		return -1;
	q->heap = h;
	char *copy = strdup(name);
	char *id_copy = id ? strdup(id) : NULL;
	char *key_copy = key && *key ? strdup(key) : NULL;
	if (!copy || (id && !id_copy) || (key && *key && !key_copy)) {
		free(copy);
		free(id_copy);
		free(key_copy);
		return -1;
	}
	if (!q->slots[slot])
		q->filled++;
	q->slots[slot] = copy;
	q->heap[q->len] = (struct queue_entry){ priority, mtime_ns, copy, id_copy, key_copy,
						 retry_at_ms, failures };
	sift_up(q, q->len++);
	return 1;
}

const struct queue_entry *queue_peek(const struct queue *q)
{
	return q->len ? &q->heap[0] : NULL;
}

const char *queue_find_id(const struct queue *q, const char *id)
{
	for (size_t i = 0; i < q->len; i++)
		if (q->heap[i].id && strcmp(q->heap[i].id, id) == 0)
			return q->heap[i].name;
	return NULL;
}

/* Takes entry i out of the heap and the name set; the caller owns it. */
static struct queue_entry take(struct queue *q, size_t i)
{
	struct queue_entry e = q->heap[i];
	q->heap[i] = q->heap[--q->len];
	if (i < q->len) {
		sift_down(q, i);
		sift_up(q, i);
	}
	bool found;
	size_t slot = find_slot(q, e.name, &found);
	if (found)
		q->slots[slot] = TOMBSTONE;
	return e;
}

bool queue_remove(struct queue *q, const char *name)
{
	for (size_t i = 0; i < q->len; i++)
		if (strcmp(q->heap[i].name, name) == 0) {
			struct queue_entry e = take(q, i);
			queue_entry_free(&e);
			return true;
		}
	return false;
}

bool queue_pop(struct queue *q, struct queue_entry *out)
{
	if (q->len == 0)
		return false;
	*out = take(q, 0);
	return true;
}

void queue_entry_free(struct queue_entry *e)
{
	free(e->name);
	free(e->id);
	free(e->key);
	e->name = e->id = e->key = NULL;
}

const struct queue_entry *queue_at(const struct queue *q, size_t i)
{
	return i < q->len ? &q->heap[i] : NULL;
}

int queue_push_entry(struct queue *q, const struct queue_entry *e)
{
	return push(q, e->name, e->id, e->key, e->priority, e->mtime_ns, e->retry_at_ms,
		    e->failures);
}

int queue_push_keyed(struct queue *q, const char *name, const char *id, const char *key,
		     int64_t priority, int64_t mtime_ns)
{
	return push(q, name, id, key, priority, mtime_ns, 0, 0);
}
