/* queue: the task files waiting in incoming/, in the order they run.
 *
 * Higher priority first, then older mtime, then name. A file reported twice
 * (an inotify event and a scan, or a rescan after an overflow) is queued
 * once. Memory is one small entry per waiting file: no task is held parsed. */
#ifndef SPOOLRUN_QUEUE_H
#define SPOOLRUN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue_entry {
	int64_t priority;
	int64_t mtime_ns;
	char *name;
	char *id;           /* the task's id when known, else NULL */
	char *key;          /* its limit_key, or NULL */
	int64_t retry_at_ms; /* a failed claim is tried again then (0: not failed) */
	int failures;       /* claims of it that failed in a row */
};

struct queue {
	struct queue_entry *heap;
	size_t len, cap;
	char **slots;       /* hash set of queued names; TOMBSTONE marks removals */
	size_t nslots, filled;
};

void queue_init(struct queue *q);
void queue_clear(struct queue *q);

/* 1 when added, 0 when name is already queued, -1 (ENOMEM) on failure.
 * id may be NULL. */
int queue_push(struct queue *q, const char *name, const char *id, int64_t priority,
	       int64_t mtime_ns);

/* The same with the task's limit_key (NULL or "": none). */
int queue_push_keyed(struct queue *q, const char *name, const char *id, const char *key,
		     int64_t priority, int64_t mtime_ns);

/* Pushes a copy of e (its retry time and failures too); as queue_push. */
int queue_push_entry(struct queue *q, const struct queue_entry *e);

/* Frees what a popped entry owns (name, id, key). */
void queue_entry_free(struct queue_entry *e);

/* Entry i of the heap (in no particular order), for listing; NULL past the end. */
const struct queue_entry *queue_at(const struct queue *q, size_t i);

/* The first entry, without taking it; NULL when empty. */
const struct queue_entry *queue_peek(const struct queue *q);

/* The name of a queued entry with this id, or NULL (a linear search: for
 * cancellation, which is rare). */
const char *queue_find_id(const struct queue *q, const char *id);

/* Takes the entry of this name out of the queue, wherever it is; false
 * when it is not queued. */
bool queue_remove(struct queue *q, const char *name);

/* Takes the first entry; the caller frees out->name and out->id. False
 * when empty. */
bool queue_pop(struct queue *q, struct queue_entry *out);

size_t queue_len(const struct queue *q);

#endif
