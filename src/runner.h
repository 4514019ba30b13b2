/* runner: the watcher. Takes task files from a spool's incoming/ (and, when
 * their time comes, from deferred/), one at a time in queue order, and hands
 * each to a job (job.h) that ends in exactly one result.
 *
 * One loop, one poll(): inotify on incoming/, cancel/ and the spool root
 * (for the pause file), the signalfd, and a timeout that is the next
 * deferred task's time. Events are hints; directory listings are the truth
 * (scanned at start-up and after an inotify overflow). */
#ifndef SPOOLRUN_RUNNER_H
#define SPOOLRUN_RUNNER_H

#include <stdbool.h>

/* Runs the watcher until SIGTERM or SIGINT, or with drain until nothing
 * runnable is left; returns an exit code (exitcodes.h; drain: 0 when every
 * task it ran succeeded, 1 otherwise). config_path may be NULL (built-in
 * defaults); spool_root, when not NULL, overrides the config's root. */
int runner_run(const char *config_path, const char *spool_root, bool drain);

#endif
