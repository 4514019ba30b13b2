/* publisher: durability off the loop's critical path.
 *
 * With [spool] fsync = yes a task's result goes through the completion
 * record protocol of spool.h (record durably in tmp/, let the task file go,
 * rename the record into results/), and each step waits for the disk. The
 * loop only writes; a thread of its own does the waiting, and the next task
 * starts meanwhile:
 *
 *   the loop                             the publishing thread
 *   --------                             ---------------------
 *   spool_record_write(): the result
 *   whole in its record tmp/done-NAME,
 *   unsynced ("written": nothing
 *   visible; a power cut may tear it)
 *   publisher_submit() ────────────────► for everything queued at once:
 *   ...the next task starts...             fsync each record        ("recorded")
 *                                          fsync tmp/ once          (durable)
 *                                          let each task file go (active/ ->
 *                                          removed, or rejected/)
 *                                          rename each record into results/
 *                                          as ID.json / ID@N.json   ("published")
 *                                          fsync results/ once; cancel/<id> spent
 *   publisher_reap() ◄──────────────────── completion (publisher_fd readable)
 *   the job ends, or, where a step
 *   failed, goes on from that step
 *   itself with back-off
 *
 * The promise is unchanged: a result is visible only once it is durable
 * (as a record, then under its name), never half-written; the task file goes
 * only after its record is durable. A crash between two steps leaves what
 * spool.h's recovery already handles: a record that is whole (published at
 * the start; the task never runs again) or torn by a power cut (it does not
 * parse: dropped, and the task, still in active/, runs again as an
 * interrupted attempt).
 *
 * Why a thread that batches the directory fsyncs, not io_uring or a
 * batch in the loop: measured, bench/README.md "Choosing the publication
 * mechanism".
 *
 * The claim of a task (its rename into active/) must also be durable before
 * the task starts, so that max_attempts counts a task that crashes the
 * machine; publisher_claim_sync_start/wait let the reading and checking of
 * the task file overlap that fsync.
 *
 * Every function here is called from the loop's thread only. */
#ifndef SPOOLRUN_PUBLISHER_H
#define SPOOLRUN_PUBLISHER_H

#include <limits.h>
#include <stdbool.h>

#include "spool.h"
#include "task.h"

/* How far the thread got with a publication. */
enum publication_step {
	PUBSTEP_RECORD,  /* nothing done: the record is gone, write it again */
	PUBSTEP_LET_GO,  /* the record is durable; the task file is still there */
	PUBSTEP_RENAME,  /* the task file is gone; the record waits in tmp/ */
	PUBSTEP_DONE,    /* published (and cancel/<id> removed when asked) */
};

/* One result on its way; owned by the submitter, which must keep it alive
 * until publisher_reap returns it. */
struct publication {
	/* Set by the submitter. */
	char task_name[NAME_MAX + 1];  /* in active/ */
	char id[TASK_ID_MAX + 1];
	int first;                     /* spool_place_done's first */
	bool rejected;                 /* the task file goes to rejected/kept */
	char kept[NAME_MAX + 1];
	bool cancel_spent;             /* remove cancel/<id> once published */
	struct spool_record rec;       /* filled by spool_record_write */
	void *owner;                   /* the submitter's, untouched */
	/* Set by the thread, read after publisher_reap. */
	enum publication_step reached;
	int err;                       /* errno of the step that failed */
	char published[200];           /* its name in results/ once DONE */
	struct publication *next;
};

struct publisher;

/* The publisher of a spool; its threads start when first needed. NULL when
 * out of memory. */
struct publisher *publisher_new(struct spool *s);

/* Waits for everything submitted to be done, stops the threads, frees. */
void publisher_free(struct publisher *p);

/* Readable (an eventfd) when completions wait for publisher_reap; -1 until
 * the first submission. */
int publisher_fd(const struct publisher *p);

/* Hands a written publication (q->rec from spool_record_write) to the
 * thread. -1 (errno) when no thread can be had: the caller then publishes
 * it itself. */
int publisher_submit(struct publisher *p, struct publication *q);

/* Clears publisher_fd's readiness; call it when poll found it readable,
 * then reap until NULL (a completion posted after the ack makes it
 * readable again). */
void publisher_ack(struct publisher *p);

/* The next completed publication, or NULL (never blocks, no system call). */
struct publication *publisher_reap(struct publisher *p);

/* Submitted and not yet reaped. */
unsigned publisher_in_flight(const struct publisher *p);

/* Starts the fsync of active/ after a claim; the ticket names it (0: none
 * was started, e.g. not durable). */
unsigned long publisher_claim_sync_start(struct publisher *p);

/* Waits for that fsync (ticket 0: does one here); 0, or -1 with errno. */
int publisher_claim_sync_wait(struct publisher *p, unsigned long ticket);

#endif
