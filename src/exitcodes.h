/* exitcodes: what spoolrun's own exit status means (sysexits.h values, so
 * a service manager or a script can tell a bad config from a busy spool). */
#ifndef SPOOLRUN_EXITCODES_H
#define SPOOLRUN_EXITCODES_H

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 2,       /* bad command line */
	EXIT_FAILURE_ANY = 1, /* drain: a task it ran did not succeed */
	EXIT_DATAERR = 65,    /* task file rejected (exec, submit, validate) */
	EXIT_NOINPUT = 66,    /* task file cannot be opened (exec, submit, validate) */
	EXIT_UNAVAILABLE = 69, /* wait: gave up before every result was there */
	EXIT_CANTCREAT = 73,  /* submit: a task file of that name is already queued */
	EXIT_SOFTWARE = 70,   /* internal error */
	EXIT_OSERR = 71,      /* a system call the runner needs failed */
	EXIT_IOERR = 74,      /* the spool cannot be read or written */
	EXIT_TEMPFAIL = 75,   /* another runner holds the spool's lock */
	EXIT_CONFIG = 78,     /* bad config file */
};

#endif
