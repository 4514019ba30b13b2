/* client: the commands users run against a spool, beside the watcher:
 * submit, wait, cancel, validate, tail and status; resubmit, pause and
 * resume (docs/lifecycle.md). Each takes its own
 * arguments (argv[0] is the command name) and returns an exit code
 * (exitcodes.h; results map to codes with result_exit_code()). */
#ifndef SPOOLRUN_CLIENT_H
#define SPOOLRUN_CLIENT_H

int client_submit(int argc, char **argv);
int client_wait(int argc, char **argv);
int client_cancel(int argc, char **argv);
int client_validate(int argc, char **argv);
int client_tail(int argc, char **argv);
int client_status(int argc, char **argv);
int client_resubmit(int argc, char **argv);
int client_pause(int argc, char **argv);
int client_resume(int argc, char **argv);

#endif
