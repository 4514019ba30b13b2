/* lifecycle: what the spool's files say about each task's lifecycle, for
 * the commands beside the watcher: labels, dependency and not_before waits
 * (decided by gate.h exactly as the watcher decides them), and the ids of
 * everything unfinished (for `wait --all`). Reads only; never creates. */
#ifndef SPOOLRUN_LIFECYCLE_H
#define SPOOLRUN_LIFECYCLE_H

#include <jansson.h>
#include <stddef.h>

#include "gate.h"
#include "spool.h"
#include "task.h"

/* The status of results/ID.json, or NULL when there is none (yet, or any
 * more: a removed result is noticed) or it cannot be read. A dep_lookup_fn
 * for gate_decide(); spool is the struct spool. Each result is parsed once
 * per process (a published result never changes); the returned string is
 * static (statuses are interned). */
const char *lifecycle_result_status(void *spool, const char *id);

/* Frees what lifecycle_result_status() cached. */
void lifecycle_lookup_reset(void);

/* Adds to a status_collect() document: "label" on every item; on queued
 * items "after", "not_before", "waiting_for" (an id or null) and "blocked"
 * (null, "dependency", "not_before", "dependency_failed" or
 * "dependency_cycle"). */
void lifecycle_annotate_status(struct spool *s, json_t *status, size_t max_task_bytes);

/* Keeps only the items of running/queued/deferred/recent whose label is
 * label. */
void lifecycle_filter_label(json_t *status, const char *label);

/* A short text for a status line: "  [label]  waiting for b" etc.; "" when
 * there is nothing to say. Valid until the next call. */
const char *lifecycle_status_suffix(const json_t *item);

/* The gate fields of a parsed task. */
struct gate_task lifecycle_gate_task(const struct task *t);

#endif
