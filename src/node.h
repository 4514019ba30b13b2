/* node: the half of a Slurm task that runs on the node.
 *
 * The batch job of a task runs `spoolrun node-run` (internal; its command
 * line is built by node_argv), which runs the task straight from the
 * shared spool with spoolrun's own semantics: the same task parser and
 * defaults (the same config file), run_task with its timeout, idle
 * timeout, kill of descendants, rlimits, stdin, env, cwd, capture caps and
 * output modes, logs in logs/ (so `tail -f` works while it runs), and the
 * same result document. Instead of publishing, it leaves the result beside
 * the task as active/.NAME.node-result (atomic, durable); the watcher, the
 * spool's single owner, decides on retries and publishes.
 *
 *   watcher: active/NAME --sbatch--> job --node-run--> active/.NAME.node-result
 *   watcher: job ended -> node_result_load -> publish -> node_result_remove
 *
 * A node that cannot see active/NAME (the spool is not on a shared file
 * system) creates nothing: node-run says so on stderr (the job's output
 * file) and exits EXIT_NOINPUT; the watcher then reports slurm_no_result. */
#ifndef SPOOLRUN_NODE_H
#define SPOOLRUN_NODE_H

#include <jansson.h>

#include "spool.h"

/* `spoolrun node-run --spool ROOT [--config FILE] --attempt N NAME`. */
int node_run_main(int argc, char **argv);

/* The argv of node-run for active/name of the spool at root (absolute),
 * with the config file (absolute, or NULL) and the attempt number:
 * NULL-terminated, every string malloc'ed (free with node_argv_free).
 * self is the spoolrun binary the node runs (the watcher's own). */
char **node_argv(const char *self, const char *config, const char *root, const char *name,
		 int attempt);
void node_argv_free(char **argv);

/* The node's result (spool_name_node_result) for active/name, or NULL when there is none (yet) or
 * it is not a JSON object. */
json_t *node_result_load(struct spool *s, const char *name);
void node_result_remove(struct spool *s, const char *name);

#endif
