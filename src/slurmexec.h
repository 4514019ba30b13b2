/* slurmexec: tasks in flight in Slurm — one flight per task, one fleet per
 * watcher.
 *
 * A flight is the Slurm side of one attempt of one task in active/:
 *
 *   SUBMIT --sbatch ok--> IN_SLURM --poll: job ENDED--> OVER
 *     |  ^  transient failure: again after a back-off (1 s doubling to 60 s)
 *     |  +--+
 *     +--permanent failure (bad partition...)--> OVER (error/submit_failed)
 *
 * Crash safety: before sbatch runs, the job's name (unique per spool, task
 * file and attempt: slurm_job_name) is recorded durably in the task's
 * state through env->record; after sbatch, its job id. A watcher killed
 * at any point re-attaches at its next start (slurm_flight_attach): with a
 * job id it simply follows the job; with only a name it asks Slurm for a
 * job of that name before submitting, so a task is never submitted twice.
 *
 * The fleet polls every flight IN_SLURM with one squeue call (slurmcmd.h)
 * at most every [slurm] poll_interval. A stop of the watcher leaves jobs
 * running (slurm_flight_leave); a cancel runs scancel and ends the task as
 * cancelled once Slurm confirms.
 *
 * What a flight ends with is a result document (slurm_compose_result):
 * the node's own result (node.h) when the job completed, Slurm's state
 * otherwise; with "slurm": {job_id, state, node, reason}. */
#ifndef SPOOLRUN_SLURMEXEC_H
#define SPOOLRUN_SLURMEXEC_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "executor.h"
#include "result.h"
#include "run.h"
#include "slurm.h"
#include "slurmcmd.h"
#include "spool.h"
#include "task.h"

struct slurm_env {
	const struct slurm_config *cfg;
	struct spool *spool;
	const char *self;        /* the spoolrun binary nodes run (absolute) */
	const char *config_path; /* absolute, or NULL: built-in defaults */
};

/* Records, durably, what a flight must not forget: job_name before sbatch
 * (job_id ""), then job_id. 0, or -1 (then the flight does not submit). */
typedef int (*slurm_record_fn)(void *ctx, const char *job_name, const char *job_id);

enum slurm_flight_phase { FLIGHT_SUBMIT, FLIGHT_IN_SLURM, FLIGHT_OVER };

struct slurm_flight {
	struct slurm_flight *next;   /* in the fleet */
	const struct slurm_env *env;
	char name[NAME_MAX + 1];     /* in active/ */
	int attempt;
	const struct task *t;        /* borrowed: outlives the flight */
	enum slurm_flight_phase phase;
	char job_name[NAME_MAX + 64];
	struct slurmcmd_job job;     /* job_id "" until submitted */
	bool recorded_name;          /* job_name is in the task state */
	bool look_first;             /* re-attached by name: ask Slurm before submitting */
	int64_t next_try_ns;         /* FLIGHT_SUBMIT: next sbatch */
	int delay_ms;
	bool cancel;                 /* spoolrun cancel: scancel sent, waiting for the end */
	bool submit_failed;          /* OVER without a job: message in error */
	char error[512];
	slurm_record_fn record;
	void *record_ctx;
};

/* "spoolrun-<8 hex of the spool root>-<name without .json>-<attempt>". */
void slurm_job_name(const char *root, const char *name, int attempt, char *out, size_t len);

/* A new flight for attempt of active/name (task t), to be submitted at the
 * first slurm_flight_advance. */
void slurm_flight_init(struct slurm_flight *f, const struct slurm_env *env, const char *name,
		       int attempt, const struct task *t, slurm_record_fn record, void *ctx);

/* A flight re-attached after a restart from what the task state recorded:
 * job_id (followed) or only job_name (looked up before any sbatch). */
void slurm_flight_attach(struct slurm_flight *f, const char *job_name, const char *job_id);

/* Steps f at monotonic ns now (submits, polls the fleet when due): the next
 * time to be called, or -1 once it is OVER. */
int64_t slurm_flight_advance(struct slurm_flight *f, int64_t now);

/* spoolrun cancel: scancel (or, not submitted yet, over at once). */
void slurm_flight_cancel(struct slurm_flight *f);

/* The watcher stops: leave the job to Slurm, forget the flight. */
void slurm_flight_leave(struct slurm_flight *f);

/* An OVER flight's result (and forgets it): composed with ctx (attempts,
 * stamp...) of the task. o gets what retry_decide needs (status, exit
 * code, signal, times) and out/err the inline output (malloc'ed, NULL
 * when none). */
json_t *slurm_flight_result(struct slurm_flight *f, const struct result_context *ctx,
			    struct run_outcome *o, char **out, char **err);

/* Pure: the result of a job that ended as j says, given the node's result
 * (NULL: none, or one of another attempt) and whether spoolrun cancelled
 * it. The task's JSON and id come from t. */
json_t *slurm_compose_result(const struct task *t, const struct slurm_job_info *j,
			     json_t *node_result, bool cancelled, const struct result_context *ctx);

/* Pure: what retry_decide needs of a result document. */
void slurm_outcome_of(const json_t *result, struct run_outcome *o);

/* The seam's view of a flight (handle = struct slurm_flight *, malloc'ed):
 * no descriptors, advance on a timer, abort = cancel. Starting, stopping
 * and concluding are slurm_flight_* calls job.c makes itself. */
extern const struct executor executor_slurm;

/* How many flights the fleet follows (for tests and status). */
size_t slurm_fleet_size(void);

#endif
