#define _GNU_SOURCE
#include "cliopt.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "exitcodes.h"

enum { COMMON_CONFIG = -1, COMMON_SPOOL = -2, COMMON_HELP = -3, MAX_OPTS = 32 };

static const struct cliopt common_opts[] = {
	{ "config", 'c', true, COMMON_CONFIG },
	{ "spool", 's', true, COMMON_SPOOL },
	{ "help", 'h', false, COMMON_HELP },
};

int cliopt_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "spoolrun %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see spoolrun %s --help)\n", cmd);
	return EXIT_USAGE;
}

int cliopt_bad_value(const char *cmd, const struct cliopt *opt, const char *value,
		     const char *why)
{
	cliopt_error(cmd, "--%s: '%s' %s", opt->name, value, why);
	return -1;
}

/* The option a getopt return value or optopt stands for: getopt gives the
 * short letter for -x and our index + 256 for --name. */
static const struct cliopt *find(const struct cliopt *const *all, size_t n, int ch)
{
	for (size_t i = 0; i < n; i++)
		if (ch == 256 + (int)i || (all[i]->short_name && ch == all[i]->short_name))
			return all[i];
	return NULL;
}

/* How the user wrote the option getopt stopped at, for a message. */
static const char *spelled(char **argv, const struct cliopt *o, char *buf, size_t len)
{
	if (o) {
		snprintf(buf, len, "--%s", o->name);
		return buf;
	}
	return argv[optind - 1];
}

int cliopt_parse(int argc, char **argv, const struct cliopt *opts, size_t nopts,
		 const char *usage, struct cliopt_common *common, cliopt_handler handle,
		 void *ctx, bool *after_separator)
{
	const struct cliopt *all[MAX_OPTS];
	struct option longopts[MAX_OPTS + 1];
	char shortopts[2 * MAX_OPTS + 3] = "+:", *sp = shortopts + 2, buf[80];
	size_t n = 0;
	for (size_t i = 0; i < sizeof common_opts / sizeof *common_opts; i++)
		all[n++] = &common_opts[i];
	for (size_t i = 0; i < nopts && n < MAX_OPTS; i++)
		all[n++] = &opts[i];
	for (size_t i = 0; i < n; i++) {
		longopts[i] = (struct option){ all[i]->name,
			all[i]->takes_value ? required_argument : no_argument, NULL, 256 + (int)i };
		if (all[i]->short_name) {
			*sp++ = all[i]->short_name;
			if (all[i]->takes_value)
				*sp++ = ':';
		}
	}
	longopts[n] = (struct option){ 0 };
	*sp = '\0';
	opterr = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct cliopt *o = find(all, n, ch == ':' || ch == '?' ? optopt : ch);
		if (ch == ':')
			return cliopt_error(argv[0], "option %s needs a value",
					    spelled(argv, o, buf, sizeof buf)), -1;
		if (ch == '?' || !o)
			return cliopt_error(argv[0], "unknown option %s", argv[optind - 1]), -1;
		if (o->takes_value && !strcmp(optarg, "--"))
			return cliopt_error(argv[0], "option --%s needs a value (got the -- separator)",
					    o->name), -1;
		switch (o->key) {
		case COMMON_CONFIG: common->config = optarg; break;
		case COMMON_SPOOL: common->spool = optarg; break;
		case COMMON_HELP: fputs(usage, stdout); return -2;
		default:
			if (handle(ctx, o, o->takes_value ? optarg : NULL) < 0)
				return -1;
		}
	}
	*after_separator = optind > 1 && !strcmp(argv[optind - 1], "--");
	return optind;
}
