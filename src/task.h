/* task: a task file (format 1) parsed and validated into a struct task.
 *
 * The validator is the contract of the task format: every field is checked
 * for type and range, unknown fields are refused, and every error names the
 * field (or, for bad JSON, the line and column). The same function serves
 * the watcher and `spoolrun exec`, so both accept exactly the same files. */
#ifndef SPOOLRUN_TASK_H
#define SPOOLRUN_TASK_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "slurm.h"

#define TASK_ID_MAX 128

struct env_override {
	const char *name;
	const char *value; /* NULL: unset the variable */
};

/* Resource limits applied with setrlimit() in the child; 0 = not limited. */
struct task_limits {
	uint64_t memory_mb;     /* RLIMIT_AS */
	uint64_t cpu_seconds;   /* RLIMIT_CPU: SIGXCPU, then SIGKILL a second later */
	uint64_t open_files;    /* RLIMIT_NOFILE */
	uint64_t processes;     /* RLIMIT_NPROC (counts all processes of the user) */
	uint64_t file_size_mb;  /* RLIMIT_FSIZE: SIGXFSZ */
};

/* When a finished run is tried again (retry.h decides). */
struct retry_policy {
	unsigned retries;        /* extra attempts; 0 = none */
	double backoff;          /* first delay, seconds */
	double backoff_max;      /* delays double up to this */
	bool has_retry_on;       /* false: every non-success is retried */
	int *exit_codes;         /* retry_on.exit_codes */
	size_t n_exit_codes;
	bool on_timeout;         /* retry_on.timeout */
	bool on_signal;          /* retry_on.signal */
	regex_t *patterns;       /* retry_on.output_patterns, compiled (ERE) */
	const char **pattern_src; /* their text, for saying which matched */
	size_t n_patterns;
};

struct task {
	json_t *json;            /* the task as submitted; owns every string below */
	char id[TASK_ID_MAX + 1];
	const char **argv;       /* NULL-terminated; "/bin/sh -c STRING" for a string command */
	bool shell;              /* command was a string */
	const char *cwd;         /* NULL: the runner's directory */
	struct env_override *env;
	size_t env_count;
	const char *stdin_data;  /* NULL: /dev/null */
	size_t stdin_len;
	double timeout;          /* seconds; 0 = none */
	double kill_grace;       /* seconds */
	double idle_timeout;     /* seconds without output on either stream; 0 = none */
	struct task_limits limits;
	int64_t priority;
	struct retry_policy retry;
	const char *limit_key;   /* tasks sharing a usage limit; NULL: none */
	enum output_mode output; /* how stdout is read: text, jsonl, json */
	struct slurm_request slurm; /* "slurm": only with [runner] executor = slurm */
};

struct task_defaults {
	double timeout;
	double kill_grace;
	double idle_timeout;
	struct task_limits limits;
	unsigned retries;
	double retry_backoff;
	double retry_backoff_max;
	bool slurm_allowed;      /* [runner] executor = slurm: the field "slurm" is taken */
};

struct task_error {
	char code[32];           /* "invalid_json" or "invalid_task" */
	char field[64];          /* the offending field, "" when not about one */
	char message[512];       /* one line; names the file and the field */
};

/* Parses buf (len bytes) read from the file named filename (used for the
 * default id and in messages). Returns 0 and fills t, or -1 and fills e.
 * Whatever the outcome, call task_clear(t) afterwards. On a validation error
 * t->json still holds the parsed document, for echoing in the result. */
int task_parse(const char *buf, size_t len, const char *filename,
	       const struct task_defaults *defaults, struct task *t, struct task_error *e);

void task_clear(struct task *t);

/* True for 1..128 characters of [A-Za-z0-9._-] not starting with '.' or
 * '-' (an id given to a command must not read as an option). */
bool task_id_valid(const char *id, size_t len);

/* Derives an id from a file name that is safe as a file name under results/
 * even if the file name itself is not a valid id: drops ".json", replaces
 * other characters by '_', never starts with '.', at most 128 chars. */
void task_id_from_filename(const char *filename, char out[TASK_ID_MAX + 1]);

/* The id a file's result goes under, valid task or not: the "id" doc states
 * when it is a valid id (doc may be NULL), else task_id_from_filename. */
void task_id_of_file(const json_t *doc, const char *filename, char out[TASK_ID_MAX + 1]);

#endif
