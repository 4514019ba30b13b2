/* client: the commands users run against a spool, beside the watcher:
 * submit, wait, cancel, validate, tail and status. Each takes its own
 * arguments (argv[0] is the command name) and returns an exit code
 * (exitcodes.h; results map to codes with result_exit_code()).
 *
 * They only look and ask: none creates a spool (a missing one is exit 66,
 * naming the path), none follows a link or blocks on a FIFO planted in
 * results/ or logs/ (lookup.h), and every message names what the user
 * wrote (an option, a FILE), never a name spoolrun made up.
 *
 * Adding a flag: one row in the command's table of struct cliopt (cliopt.h)
 * and one case in its handler. Adding a command: a client_NAME function
 * here, its usage text, and one row in main.c's command table. */
#ifndef SPOOLRUN_CLIENT_H
#define SPOOLRUN_CLIENT_H

int client_submit(int argc, char **argv);
int client_wait(int argc, char **argv);
int client_cancel(int argc, char **argv);
int client_validate(int argc, char **argv);
int client_tail(int argc, char **argv);
int client_status(int argc, char **argv);

#endif
