/* slurmcmd: the Slurm executor's conversations with Slurm's commands.
 *
 * Runs sbatch, squeue, sacct, scontrol and scancel as child processes
 * (never through a shell) with a deadline, reading their output, and turns
 * what they say into slurm.h's terms. A poll asks about every job in
 * flight with ONE squeue call (--states=all, so jobs that ended recently
 * are seen too); only jobs squeue no longer knows cost one more call, to
 * sacct, or, on a cluster without accounting, to scontrol. A job is
 * declared VANISHED only after it has been missing from all of them for
 * SLURMCMD_VANISH_POLLS polls in a row while the controller answered
 * (accounting lags behind the controller).
 *
 * Calls block for at most their deadline (SLURMCMD_TIMEOUT_S): Slurm's
 * commands retry internally while the controller is down. */
#ifndef SPOOLRUN_SLURMCMD_H
#define SPOOLRUN_SLURMCMD_H

#include <stdbool.h>
#include <stddef.h>

#include "slurm.h"

#define SLURMCMD_TIMEOUT_S 30.0
#define SLURMCMD_VANISH_POLLS 3

/* What one command did. */
struct slurmcmd_output {
	int exit_code;   /* -1: did not exit normally (killed at its deadline, or not started) */
	char *out, *err; /* NUL-terminated, malloc'ed (may be "" but not NULL after success) */
};

/* Runs argv (argv[0] looked up in PATH unless it holds a '/') with stdin
 * from /dev/null, signals unblocked and at their defaults, and waits up to
 * timeout_s. Returns 0 when it ran (whatever its exit code), -1 with errno
 * when it could not be started (then err says why, too). */
int slurmcmd_run(char *const argv[], double timeout_s, struct slurmcmd_output *o);
void slurmcmd_output_clear(struct slurmcmd_output *o);

enum slurmcmd_submit {
	SLURMCMD_SUBMITTED,
	SLURMCMD_TRANSIENT,  /* try again later: controller down or busy */
	SLURMCMD_PERMANENT,  /* sbatch refused the job for good */
};

/* Submits the job; on SLURMCMD_SUBMITTED job_id (SLURM_JOB_ID_MAX + 1)
 * holds its id, otherwise msg says what sbatch said. */
enum slurmcmd_submit slurmcmd_submit(const struct slurm_config *c, const struct slurm_request *r,
				     const struct slurm_submission *s, char *job_id, char *msg,
				     size_t msglen);

/* One job the executor follows. */
struct slurmcmd_job {
	struct slurm_job_info info; /* job_id set by the caller; the rest by polls */
	unsigned missing;           /* polls in a row that found it nowhere */
	bool seen;                  /* found by some poll (info.state is real) */
};

/* Refreshes jobs[0..n) (see the header comment). Returns 0, or -1 when
 * the controller could not be asked (then nothing changed). */
int slurmcmd_poll(const struct slurm_config *c, struct slurmcmd_job *jobs, size_t n);

/* scancel of one job; 0 when scancel succeeded. */
int slurmcmd_cancel(const struct slurm_config *c, const char *job_id);

#endif
