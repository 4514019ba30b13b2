/* lookup: where a task id is in a spool, and its result and logs, read
 * the way a client must: nothing is created, nothing followed, nothing
 * opened that could block (a FIFO planted in results/ or logs/ is reported,
 * naming the file, instead of hanging the command).
 *
 * A task id is "taken" while a task file with that id is queued
 * (incoming/), running (active/), deferred (deferred/), or once a result
 * results/<id>.json exists. A file's id is its "id" field, or the one
 * derived from its name (as the watcher does). */
#ifndef SPOOLRUN_LOOKUP_H
#define SPOOLRUN_LOOKUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "spool.h"

enum task_place {
	PLACE_NONE,      /* never seen: no task file, no result */
	PLACE_QUEUED,    /* incoming/ */
	PLACE_ACTIVE,    /* active/: running (or interrupted, with no watcher) */
	PLACE_DEFERRED,  /* deferred/: waits for a retry */
	PLACE_FINISHED,  /* results/<id>.json exists */
};

struct task_location {
	enum task_place place;
	char file[256];  /* the task file's name in its directory ("" for NONE/FINISHED) */
};

/* "queued", "running", "deferred", "finished", "unknown". */
const char *lookup_place_name(enum task_place p);

/* Finds id: a result first, then active/, deferred/, incoming/. Reads the
 * task files whose name does not already tell (at most max bytes each). */
void lookup_task(struct spool *s, const char *id, size_t max, struct task_location *loc);

/* Reads results/NAME (e.g. "ID.json") as a result: 1 with *out set when it
 * is there and is a result (a JSON object with a "status"), 0 when it is
 * not there (yet), -1 with a reason naming the file in why when it is there
 * but is no result: a FIFO, a symbolic link, a directory, bad JSON... */
int lookup_result(struct spool *s, const char *name, json_t **out, char *why, size_t whylen);

/* Opens logs/NAME for reading: the fd, -1 with errno ENOENT when absent,
 * or -1 with a reason naming the file in why when it is not a regular
 * file (errno EINVAL then). */
int lookup_open_log(struct spool *s, const char *name, char *why, size_t whylen);

/* Whether a watcher holds the spool's lock, and its pid (0 if unknown). */
bool lookup_watcher(struct spool *s, int *pid);

#endif
