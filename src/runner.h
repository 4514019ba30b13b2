/* runner: the watcher. Takes task files from a spool's incoming/, one at a
 * time in queue order, runs each and publishes exactly one result for it.
 *
 * Life of a task: incoming/NAME --claim (rename)--> active/NAME --read,
 * validate--> run (logs/ID.stdout, logs/ID.stderr) --> result written in
 * tmp/, fsynced, renamed to results/ID.json, directory fsynced --> active/NAME
 * removed. A refused file ends in rejected/ with a "rejected" result. */
#ifndef SPOOLRUN_RUNNER_H
#define SPOOLRUN_RUNNER_H

/* Runs until SIGTERM or SIGINT; returns an exit code (exitcodes.h).
 * config_path may be NULL (built-in defaults); spool_root, when not NULL,
 * overrides the config's root. */
int runner_watch(const char *config_path, const char *spool_root);

#endif
