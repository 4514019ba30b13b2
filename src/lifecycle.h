/* lifecycle: what the spool's files say about each task's lifecycle, for
 * the commands beside the watcher: dependency and not_before waits in
 * status (decided by gate.h exactly as the watcher decides them), labels to
 * filter on, and the result lookup both status and the watcher use. Reads
 * only; never creates. */
#ifndef SPOOLRUN_LIFECYCLE_H
#define SPOOLRUN_LIFECYCLE_H

#include <stddef.h>

#include "gate.h"
#include "spool.h"
#include "status.h"
#include "task.h"

/* The status of results/ID.json, or NULL when there is none (yet, or any
 * more: a removed result is noticed) or it cannot be read. A dep_lookup_fn
 * for gate_decide(); spool is the struct spool. Each result is parsed once
 * per process (a published result never changes); the returned string is
 * static (statuses are interned). */
const char *lifecycle_result_status(void *spool, const char *id);

/* Frees what lifecycle_result_status() cached. */
void lifecycle_lookup_reset(void);

/* Fills the lifecycle fields of the queued rows of a status report:
 * blocked (NULL, "dependency", "not_before", "dependency_failed",
 * "dependency_cycle"), waiting_for (a dependency's id) and not_before_ms,
 * decided by gate.h exactly as the watcher decides. */
void lifecycle_annotate_rows(struct spool *s, struct status_report *st, size_t max_task_bytes);

/* status_collect() with lifecycle_annotate_rows() applied: what the
 * status and wait commands show. NULL when out of memory. */
struct status_report *lifecycle_status_collect(struct spool *s, size_t max_task_bytes,
					       const struct status_view *view);

/* Keeps only the rows whose label is label. */
void lifecycle_keep_label(struct status_report *st, const char *label);

/* The gate fields of a parsed task. */
struct gate_task lifecycle_gate_task(const struct task *t);

#endif
