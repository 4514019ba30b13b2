/* signals: how the runner receives signals, and how a task is shielded from
 * the runner's own settings.
 *
 * The runner installs no handlers: SIGCHLD, SIGTERM, SIGINT and SIGHUP are
 * blocked and read from a signalfd inside the one poll() of each loop, and
 * SIGPIPE is ignored so a closed pipe is an EPIPE, never a death. */
#ifndef SPOOLRUN_SIGNALS_H
#define SPOOLRUN_SIGNALS_H

/* Blocks the handled signals, ignores SIGPIPE and returns a non-blocking,
 * close-on-exec signalfd for them; -1 with errno on failure. Also notes
 * which signals the runner was started with ignored (by nohup, say), the
 * one piece of state this module keeps, so a child resets just those. */
int signals_setup(void);

/* Reads one pending signal number from the signalfd: 0 when none is
 * pending, -1 on error. */
int signals_read(int sigfd);

/* For a forked child before exec: every disposition back to default and an
 * empty mask, so nothing of the runner's leaks into a task. exec resets
 * caught signals itself and the runner catches none, so only the ignored
 * ones need it. Uses only async-signal-safe calls. */
void signals_reset_child(void);

/* "SIGTERM" for 15; "SIG?" for numbers without a name. */
const char *signals_name(int signo);

#endif
