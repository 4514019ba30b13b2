/* status: what a spool holds, read from the spool itself (the watcher
 * keeps no status file, so asking costs it nothing): the lock for whether a
 * watcher runs and its pid, active/ and /proc for the running task,
 * incoming/ in run order, deferred/ with times, the latest results. */
#ifndef SPOOLRUN_STATUS_H
#define SPOOLRUN_STATUS_H

#include <jansson.h>
#include <stddef.h>

#include "spool.h"

/* {"spool", "watcher": {running, pid}, "paused", "running": [...],
 * "queued": [...], "deferred": [...], "recent": [...]}; see README.md. */
json_t *status_collect(struct spool *s, size_t max_task_bytes);

/* The same for a person: one line per item. */
void status_print_text(const json_t *status);

#endif
