/* slurm: what the Slurm executor says to Slurm and how it reads the answers.
 *
 * The pure half of the executor, so every decision is tested without a
 * cluster: the [slurm] config section and the task field "slurm", the
 * sbatch command line of a task, the parsing of sbatch/squeue/sacct/
 * scontrol output (fields by --format/--parsable2, never --json, whose
 * schema changes between Slurm versions), which sbatch failures are worth
 * retrying, and what a job STATE means for the task: still in Slurm, ended
 * (then the node's own result decides), or ended by Slurm itself (then the
 * state names the result's error.code; never the exit code alone, since a
 * job Slurm timed out reports exit 0:0).
 *
 * How a task runs on a node: the batch job runs this very binary as
 * `spoolrun node-run` (node.h), which runs the task from the shared spool
 * with spoolrun's own semantics and leaves its result beside the task file
 * in active/ for the watcher to publish. */
#ifndef SPOOLRUN_SLURM_H
#define SPOOLRUN_SLURM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* [slurm] of the config. Strings are malloc'ed (slurm_config_clear). */
struct slurm_config {
	char *partition;      /* NULL: Slurm's default partition */
	char **args;          /* extra sbatch arguments, split on white space */
	size_t n_args;
	double poll_interval; /* seconds between state checks */
	char *sbatch, *squeue, *scontrol, *scancel, *sacct; /* program paths or names */
};

void slurm_config_defaults(struct slurm_config *c);
void slurm_config_clear(struct slurm_config *c);
/* Deep copy (for a config that is copied whole); -1 on ENOMEM. */
int slurm_config_copy(struct slurm_config *dst, const struct slurm_config *src);

/* Splits s on white space (no quoting, no shell) into a malloc'ed array of
 * malloc'ed strings. -1 on ENOMEM. */
int slurm_split_args(const char *s, char ***out, size_t *n);

/* The task field "slurm". Strings point into the task's JSON. */
struct slurm_request {
	bool present;
	const char *partition;   /* overrides [slurm] partition */
	unsigned cpus_per_task;  /* 0: not asked */
	uint64_t mem_mb;         /* 0: not asked */
	const char *gres;
	uint64_t time_limit_s;   /* 0: not asked */
	const char **args;       /* extra sbatch arguments, after [slurm] args */
	size_t n_args;
};

/* Validates v (the value of "slurm") into r. On error returns -1 with the
 * offending field ("slurm.mem_mb") and a message in field/msg. */
int slurm_request_parse(json_t *v, struct slurm_request *r, char *field, size_t fieldlen,
			char *msg, size_t msglen);
void slurm_request_clear(struct slurm_request *r);

/* What the executor knows of one submission. */
struct slurm_submission {
	const char *job_name;    /* --job-name */
	const char *output_path; /* --output and --error of the batch script itself */
	const char *workdir;     /* --chdir */
	const char *const *node_argv; /* the node-side run, NULL-terminated */
	double timeout;          /* the task's own timeout, 0: none */
	double kill_grace;
};

/* Slurm's --time for a task, in seconds (rounded up to whole minutes by the
 * caller's formatting): above the task's timeout + kill grace + a margin
 * for start-up, so spoolrun on the node decides, not Slurm; at least the
 * task's slurm.time_limit_s. 0: leave Slurm's default (no timeout and no
 * time_limit_s). */
uint64_t slurm_time_limit_s(const struct slurm_request *r, double timeout, double kill_grace);

/* The whole sbatch argv (argv[0] = c->sbatch), NULL-terminated, malloc'ed:
 * free with slurm_argv_free. The job never requeues (spoolrun retries), its
 * script is `exec` of node_argv, each word quoted for /bin/sh. */
char **slurm_sbatch_argv(const struct slurm_config *c, const struct slurm_request *r,
			 const struct slurm_submission *s);
void slurm_argv_free(char **argv);

/* Quotes one word for /bin/sh ('...' with ' as '\''); malloc'ed. */
char *slurm_shell_quote(const char *word);

/* The job id from `sbatch --parsable` output ("123" or "123;cluster").
 * -1 when there is none. out has room for SLURM_JOB_ID_MAX + 1. */
#define SLURM_JOB_ID_MAX 31
int slurm_parse_job_id(const char *out, char *id);

/* Whether an sbatch failure (its stderr) is worth trying again: the
 * controller is down, busy or unreachable. Everything else (bad partition,
 * bad argument, over a limit) is permanent. */
bool slurm_submit_transient(const char *err);

/* One job as a poll saw it. */
struct slurm_job_info {
	char job_id[SLURM_JOB_ID_MAX + 1];
	char state[32];   /* e.g. RUNNING, "CANCELLED" (sacct's "by N" dropped) */
	char node[128];   /* "" when none yet */
	char reason[128]; /* "" for None */
};

/* Parsers of one poll's output, each line one job: squeue
 * --format=%i|%T|%N|%r, sacct --parsable2 --format=JobID,State,NodeList,Reason
 * (job steps such as 12.batch skipped), and scontrol -o show job. They
 * return how many entries went into out (at most max); lines that do not
 * parse are skipped. */
#define SLURM_SQUEUE_FORMAT "%i|%T|%N|%r"
#define SLURM_SACCT_FORMAT "JobID,State,NodeList,Reason"
size_t slurm_parse_squeue(const char *text, struct slurm_job_info *out, size_t max);
size_t slurm_parse_sacct(const char *text, struct slurm_job_info *out, size_t max);
size_t slurm_parse_scontrol(const char *text, struct slurm_job_info *out, size_t max);

enum slurm_phase {
	SLURM_QUEUED,   /* pending in Slurm (or held, requeued, suspended) */
	SLURM_RUNNING,  /* running or completing on a node */
	SLURM_ENDED,    /* over; the node's result (if any) decides */
};

/* The phase of a job STATE. Unknown states count as running: they are
 * never taken as an end. */
enum slurm_phase slurm_state_phase(const char *state);

/* How a job that ended without spoolrun's result on the node ends the
 * task. status is "killed" or "error"; code names the state
 * ("slurm_node_fail"…); retry_as says which retry_on it counts as. */
enum slurm_retry_as { SLURM_RETRY_AS_NONE, SLURM_RETRY_AS_SIGNAL, SLURM_RETRY_AS_TIMEOUT };
struct slurm_end {
	const char *status;
	const char *code;
	enum slurm_retry_as retry_as;
};

/* For an ENDED state, or "VANISHED" (gone from the controller and from
 * accounting). A job that COMPLETED or FAILED without a result is
 * "slurm_no_result": node-run could not run (most often: the node does not
 * see the spool; its own message is in the job's output file). */
void slurm_state_end(const char *state, struct slurm_end *e);

/* The retry_as of an error.code slurm_state_end gives (NONE for others). */
enum slurm_retry_as slurm_code_retry_as(const char *code);

/* One line for error.message: "Slurm job 12 ended NODE_FAIL (reason:
 * ...) on node n1". */
void slurm_end_message(const struct slurm_job_info *j, const struct slurm_end *e,
		       char *out, size_t len);

#endif
