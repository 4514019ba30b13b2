/* config: the INI file, turned into a plain struct.
 *
 * The only module that includes iniparser. Every key is parsed and checked
 * here, so the rest of the program sees typed, in-range values. Relative
 * paths in a config file are resolved against the directory of that file,
 * so a config works whatever the current directory. */
#ifndef SPOOLRUN_CONFIG_H
#define SPOOLRUN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apilimit.h"
#include "log.h"
#include "slurm.h"
#include "task.h"

struct config {
	char *path;          /* file loaded, or NULL for built-in defaults */
	char *spool_root;    /* [spool] root */
	char *results_dir;   /* [spool] results_dir; NULL: <root>/results */
	bool fsync;          /* [spool] fsync: durable results */
	bool check_perms;    /* [spool] check_permissions */
	size_t max_task_bytes; /* [spool] max_task_bytes */
	unsigned file_mode;  /* [spool] file_mode: results and logs, whatever the umask */
	char *allowed_owners; /* [spool] allowed_owners: users besides the runner's, or NULL */
	bool run_as_owner;   /* [spool] run_as_owner: as root, run as the file's owner */
	bool allow_root_tasks; /* [spool] allow_root_tasks: with run_as_owner */
	struct task_defaults task; /* [task] timeout, kill_grace, idle_timeout; [limits] */
	unsigned max_attempts; /* [task] max_attempts: interrupted runs before giving up */
	bool finish_on_stop; /* [task] on_stop = finish (else requeue) */
	char *usage_limit_pattern; /* [retry] usage_limit_pattern: ERE, group 1 = epoch */
	struct api_limit_policy api_limits; /* [retry] rate_limit_backoff, rate_limit_backoff_max,
					       usage_limit_max_wait, limit_deferrals */
	size_t max_output;   /* [output] max_output: inline bytes per stream */
	uint64_t max_log;    /* [output] max_log: log file bytes per stream */
	enum log_level log_level; /* [log] level */
	bool slurm_executor; /* [runner] executor = slurm (else local) */
	struct slurm_config slurm; /* [slurm] */
	char *events_path;   /* [log] events: JSON-lines event log, or NULL */
	int64_t keep_results; /* [spool] keep_results: seconds; 0 = forever */
	char *hook_on_result; /* [hooks] on_result: shell command, or NULL */
	double hook_timeout; /* [hooks] timeout: seconds; 0 = none */
	char *metrics_path;  /* [metrics] textfile: Prometheus text file, or NULL */
	unsigned slots;      /* [runner] slots: tasks running at once (1-1024) */
	struct config_cap {  /* [concurrency] KEY = N: per limit_key caps */
		char *key;   /* as iniparser gives it: lowercased; matched ignoring case */
		unsigned cap;
	} *concurrency;
	size_t nconcurrency;
};

/* Built-in defaults: spool "spool" in the current directory, 1 hour timeout,
 * 5 s grace, 1 MiB inline output, 100 MiB logs, durable, level info. */
void config_defaults(struct config *c);

/* Loads path on top of the defaults. On error returns -1 and writes a
 * one-line message naming the file, section and key into err; c is then
 * left untouched, so a reload can keep the old config. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

void config_clear(struct config *c);

/* For a command that runs once (exec, clean, node-run): the defaults, then
 * path when not NULL, then the log level it names. On error prints
 * "WHO: message" on stderr, leaves nothing to clear and returns -1. */
int config_setup(struct config *c, const char *path, const char *who);

/* Parsers shared with the task validator and command line, exposed so they
 * are tested once: a number of seconds (>= 0, finite, at most max) and a
 * byte size with an optional K, M or G suffix (powers of 1024). */
int config_parse_seconds(const char *s, double max, double *out);
int config_parse_size(const char *s, uint64_t *out);

#endif
