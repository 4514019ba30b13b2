/* cliopt: the option parser of the client commands (submit, wait, cancel,
 * validate, tail, status). Each command describes its own options in one
 * table of struct cliopt; --config, --spool and --help are added here, so
 * a new flag is one table row and one case in the command's handler.
 *
 * Errors always name the option: "spoolrun submit: --timeout: '-1' is not
 * a number of seconds ...". An option's value is never the "--" separator
 * ("submit --id -- true" is "--id needs a value", not an id "--"). */
#ifndef SPOOLRUN_CLIOPT_H
#define SPOOLRUN_CLIOPT_H

#include <stdbool.h>
#include <stddef.h>

struct cliopt {
	const char *name;       /* long name, without the leading -- */
	char short_name;        /* e.g. 'f' for -f; 0 for none */
	bool takes_value;
	int key;                /* what the command's handler switches on */
};

/* The options every client command shares. */
struct cliopt_common {
	const char *config;     /* --config, else NULL */
	const char *spool;      /* --spool, else NULL */
};

/* Called for each of the command's own options; value is NULL for flags.
 * Returns 0, or -1 after printing an error (cliopt_bad_value). */
typedef int (*cliopt_handler)(void *ctx, const struct cliopt *opt, const char *value);

/* Parses argv (argv[0] is the command name) up to the first operand or
 * "--". Returns the index of the first operand; -1 after a usage error
 * (printed), -2 after printing usage for --help. *after_separator says
 * whether the operands follow "--". */
int cliopt_parse(int argc, char **argv, const struct cliopt *opts, size_t nopts,
		 const char *usage, struct cliopt_common *common, cliopt_handler handle,
		 void *ctx, bool *after_separator);

/* "spoolrun CMD: MESSAGE (see spoolrun CMD --help)" on stderr; returns the
 * usage exit code (2). */
int cliopt_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "spoolrun CMD: --NAME: 'VALUE' WHY"; returns -1 (for a handler). */
int cliopt_bad_value(const char *cmd, const struct cliopt *opt, const char *value,
		     const char *why);

#endif
