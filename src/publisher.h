/* publisher: makes results durable off the loop's critical path.
 *
 * The life of one result with [spool] fsync = yes:
 *
 *   the loop's thread                     the publishing thread
 *   -----------------                     ---------------------
 *   publisher_submit(): the document is
 *   written whole into tmp/, unsynced
 *   ("written": nothing visible yet) ───►  fsync(file); rename into results/
 *   ...the next task starts...             as ID.json or ID@N.json, never
 *                                          replacing; then, once for every
 *                                          result it took at once, fsync(results/)
 *                                          ("durable"); only then the task file
 *                                          goes: removed from active/ (or moved
 *                                          to rejected/), cancel/<id> removed
 *   publisher_reap() ◄──────────────────   completion (publisher_fd readable)
 *   frees it; a failed one is published
 *   again synchronously, as before
 *
 * So a result is never visible before its bytes are on disk, and its task
 * file is let go only once the result's name is on disk too. A crash (kill -9
 * or the machine) anywhere in between leaves the task file in active/: its
 * result was renamed in (the restart sees it "already published" and only
 * finishes the bookkeeping) or not (tmp/ is cleaned at the start and the task
 * runs again, as an interrupted attempt).
 *
 * Why a thread that batches the directory fsync (and not io_uring, or
 * batching across tasks in the loop): measured, see bench/README.md
 * "Choosing the publication mechanism".
 *
 * With fsync = no every step happens inside publisher_submit, in the
 * caller's thread (a thread hop costs more than a rename), and the
 * completion is ready for publisher_reap at once.
 *
 * All functions but the thread's own are called from one thread, the loop's.
 * While a publication of task file NAME (id ID) is in flight, NAME is still
 * in active/ and ID's result may not be in results/ yet: a claim of another
 * file NAME, or the duplicate check of another task with id ID, must first
 * publisher_settle() them. */
#ifndef SPOOLRUN_PUBLISHER_H
#define SPOOLRUN_PUBLISHER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "spool.h"

/* What happens to the task file once its result is durable. */
enum publication_then {
	PUB_FINISH,   /* removed from active/ with its state (spool_finish) */
	PUB_REJECTED, /* moved to rejected/ (spool_keep_rejected) */
};

/* Called between retries of a publication the disk refused: waits up to ms;
 * true when the runner must stop now (the task file then stays in active/). */
typedef bool (*publisher_wait_fn)(void *ctx, int ms);

struct publisher;

/* One publisher per spool. The thread starts at the first durable
 * submission. NULL when out of memory. */
struct publisher *publisher_new(struct spool *s, publisher_wait_fn wait_or_stop, void *ctx);

/* Completes every publication in flight (waiting for the disk), stops the
 * thread and frees everything. */
void publisher_free(struct publisher *p);

/* Readable (eventfd) when completions wait for publisher_reap; -1 while no
 * thread was ever needed. */
int publisher_fd(const struct publisher *p);

/* Publishes result for id (the task file active/task_name, let go as then;
 * cancel_done: cancel/<id> is removed too) and takes the reference to
 * result. A disk that refuses the write is retried with back-off
 * (wait_or_stop) like a failing publish always was. Returns 0 once the
 * publication is on its way (durable) or done (not durable), -1 when
 * the runner stopped while retrying or memory ran out: the task file then
 * stays in active/. status is the result's status, logged on completion. */
int publisher_submit(struct publisher *p, const char *id, const char *task_name,
		     enum publication_then then, bool cancel_done, json_t *result);

/* Handles every completion that is ready: logs "ID: STATUS -> NAME", frees
 * it; one the thread could not make durable (fsync or rename failed) is
 * published again here, synchronously, with back-off. Never blocks otherwise. */
void publisher_reap(struct publisher *p);

/* Waits (reaping) until no publication in flight has this id or this task
 * file name (either may be NULL). */
void publisher_settle(struct publisher *p, const char *id, const char *task_name);

/* Waits (reaping) until nothing is in flight. */
void publisher_flush(struct publisher *p);

/* The claim of a task (its rename into active/) must be durable before the
 * task starts (so max_attempts counts a task that crashes the machine):
 * start syncs active/ in a thread of its own right after the claim, and
 * wait, just before the spawn, returns its outcome (0, or -1 with errno),
 * so the reading and checking of the task file overlaps the disk's work.
 * A wait without a start syncs itself. No-ops when not durable. */
void publisher_claim_sync_start(struct publisher *p);
int publisher_claim_sync_wait(struct publisher *p);

/* Publications submitted and not yet reaped. */
size_t publisher_in_flight(const struct publisher *p);

#endif
