/* spoolrun: a file-spool batch runner. This file is the command line:
 * `watch` (runner.c), `exec` (one task in the foreground), help, version. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clean.h"
#include "client.h"
#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "log.h"
#include "node.h"
#include "result.h"
#include "run.h"
#include "runner.h"
#include "signals.h"
#include "spool.h"
#include "task.h"
#include "taskfile.h"
#include "version.h"

static const char usage_text[] =
	"usage: spoolrun watch    [--config FILE] [--spool DIR]\n"
	"       spoolrun drain    [--config FILE] [--spool DIR]\n"
	"       spoolrun exec     [--config FILE] TASKFILE|-\n"
	"       spoolrun submit   [options] [--wait] -- CMD [ARG...] | FILE|-\n"
	"       spoolrun wait     [--timeout S] ID... | --all\n"
	"       spoolrun cancel   [--wait] [--ahead] ID...\n"
	"       spoolrun status   [--all | -n N] [--failed] [--label L] [--json] [ID...]\n"
	"       spoolrun tail     [-f] [-n N] ID\n"
	"       spoolrun validate FILE...\n"
	"       spoolrun clean    [--older-than D] [--status S]... [--dry-run] [--json]\n"
	"       spoolrun resubmit [--id NEW] [--wait] ID\n"
	"       spoolrun pause    [--wait] | resume\n"
	"       spoolrun --help | --version\n"
	"\n"
	"A file-spool batch runner: takes JSON task files from DIR/incoming/, runs\n"
	"them with a timeout and full capture of stdout and stderr (one at a time,\n"
	"or [runner] slots at once, [concurrency] KEY = N per limit_key),\n"
	"and publishes one result JSON file per task in DIR/results/.\n"
	"\n"
	"commands (each has --help):\n"
	"  watch     run the watcher in the foreground, logging to stderr, until\n"
	"            SIGTERM or SIGINT (exit 0); SIGHUP reloads the config\n"
	"  drain     run what is queued (and deferred tasks that are due), then exit:\n"
	"            0 all succeeded, 1 some did not, 75 spool locked or paused\n"
	"  exec      run one task file (or stdin with -) without a spool and print\n"
	"            its result JSON on stdout\n"
	"  submit    validate a task and write it atomically into incoming/; print its id\n"
	"  wait      wait for results and print them, one JSON per line\n"
	"  cancel    cancel a queued, deferred or running task, saying what it did\n"
	"  status    a table of what runs, what waits, what finished last\n"
	"  tail      a task's output from its logs; -f follows it to its end\n"
	"  validate  check task files without submitting them\n"
	"  clean     remove finished results (and their logs) older than a duration\n"
	"  resubmit  submit again the task of a result (default id ID.r2, ID.r3, ...)\n"
	"  pause     stop starting tasks (--wait: until nothing runs); resume undoes it\n"
	"\n"
	"options:\n"
	"  -c, --config FILE  INI config, for every command (default: $SPOOLRUN_CONFIG,\n"
	"                     else built-in defaults); relative paths in it are\n"
	"                     relative to FILE\n"
	"  -s, --spool DIR    spool root, overriding [spool] root (all but exec and\n"
	"                     validate); watch and drain create what is missing, the\n"
	"                     other commands create nothing (exit 66 when it is not there)\n"
	"  -h, --help         help\n"
	"  -V, --version      the version\n"
	"\n"
	"spool: incoming/ (drop *.json by rename), active/, results/, logs/,\n"
	"rejected/, deferred/, cancel/, tmp/, and a pause file. Write a task file\n"
	"elsewhere, then rename it into incoming/, so the runner never sees it\n"
	"half-written (spoolrun submit does this for you).\n"
	"\n"
	"exit status of watch: 0 stopped by a signal, 2 usage, 71 system error,\n"
	"74 spool not usable, 75 spool locked by another runner, 78 bad config.\n"
	"exit status of exec, submit --wait, wait, cancel --wait (from the result):\n"
	"the task's exit code; 128+N killed by signal N; 124 timeout; 127 program\n"
	"not found; 126 could not start otherwise; 125 cancelled; 75 interrupted\n"
	"max_attempts times; 65 task rejected (or invalid, for submit/validate);\n"
	"66 task file unreadable, no such spool or task; 69 wait gave up (--timeout);\n"
	"73 id taken (queued, running, deferred, or it has a result); 74 a result or\n"
	"log that is not one (FIFO, link, bad JSON); 122 skipped: a dependency\n"
	"(after) did not succeed, or a dependency cycle.\n"
	"\n"
	"task lifecycle (docs/lifecycle.md): \"after\" (submit --after ID), \"not_before\"\n"
	"(--at TIME, --delay S), \"label\" (--label), \"timeout\": \"auto\" learned from\n"
	"the last 20 successful runs of the same \"history_key\" (SPOOL/history/).\n"
	"\n"
	"service keys (docs/service.md): [hooks] on_result, timeout (a command run\n"
	"after each result); [metrics] textfile (Prometheus text file); [log] events\n"
	"(JSON-lines event log); [spool] keep_results (clean old results hourly).\n"
	"Under systemd (Type=notify) the watcher sends READY=1 to $NOTIFY_SOCKET.\n"
	"\n"
	"Claude Code: with \"output\": \"jsonl\" its events fill \"summary\"; a usage\n"
	"limit (rate_limit_event, \"resets <when>\" text) defers the task and its\n"
	"limit_key until the reset, a 429/529 for [retry] rate_limit_backoff,\n"
	"without spending retries (docs/claude.md).\n"
	"\n"
	"With [runner] executor = slurm in the config, each task runs as a Slurm\n"
	"batch job (the internal command node-run); see docs/slurm.md.\n"
	"\n"
	"See spoolrun(1), README.md and docs/ for the task and result formats.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "spoolrun: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spoolrun --help)\n");
	return EXIT_USAGE;
}

struct options {
	const char *config;
	const char *spool;
};

/* Parses the options shared by the subcommands; returns the index of the
 * first operand, or -1 after a usage error, -2 after --help, -3 when
 * $SPOOLRUN_CONFIG names no file. */
static int parse_options(int argc, char **argv, bool allow_spool, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "spool", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from_env = getenv("SPOOLRUN_CONFIG");
	if (from_env && !*from_env)
		from_env = NULL;
	o->config = from_env;
	opterr = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "+:c:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 's':
			if (!allow_spool)
				return usage_error("%s takes no --spool", argv[0]), -1;
			o->spool = optarg;
			break;
		case 'h': fputs(usage_text, stdout); return -2;
		case ':': return usage_error("option %s needs a value", argv[optind - 1]), -1;
		default: return usage_error("unknown option %s", argv[optind - 1]), -1;
		}
	}
	/* A variable set long ago and forgotten: name it, not only the file. */
	if (from_env && o->config == from_env && access(from_env, F_OK) < 0) {
		fprintf(stderr, "spoolrun: $SPOOLRUN_CONFIG (%s): %s\n", from_env, strerror(errno));
		return -3;
	}
	return optind;
}

static bool exec_on_signal(void *ctx, int sig)
{
	(void)ctx;
	return sig == SIGTERM || sig == SIGINT;
}

static int print_result(json_t *result)
{
	size_t len;
	char *text = result ? result_dump(result, &len) : NULL;
	if (!text || xwrite_all(STDOUT_FILENO, text, len) < 0) {
		fprintf(stderr, "spoolrun: cannot write the result: %s\n", strerror(errno));
		free(text);
		return EXIT_IOERR;
	}
	free(text);
	return result_exit_code(result);
}

static int exec_task(const struct config *cfg, const char *path)
{
	struct taskfile tf;
	enum taskfile_stage stage = taskfile_load_path(&tf, path, cfg);
	if (stage == TASKFILE_UNREADABLE) {
		fprintf(stderr, "spoolrun: %s: %s\n", path, tf.error.message);
		taskfile_clear(&tf);
		return EXIT_NOINPUT;
	}
	struct task t = tf.task;
	struct result_context ctx = { .task_file = tf.name, .attempt = 1 };
	int rc;
	if (stage != TASKFILE_OK) {
		ctx.attempt = 0; /* it never ran */
		json_t *r = taskfile_rejection(&tf, &ctx, NULL);
		print_result(r);
		json_decref(r);
		fprintf(stderr, "spoolrun: %s\n", tf.error.message);
		rc = EXIT_DATAERR;
	} else {
		int sigfd = signals_setup();
		if (sigfd < 0 || run_init() < 0) {
			fprintf(stderr, "spoolrun: cannot set up signals: %s\n", strerror(errno));
			taskfile_clear(&tf);
			return EXIT_OSERR;
		}
		struct run_options opt = { .max_output = cfg->max_output };
		struct run_outcome o;
		if (run_task(&t, &opt, sigfd, exec_on_signal, NULL, &o) < 0)
			fprintf(stderr, "spoolrun: runner failure: %s\n", strerror(errno));
		json_t *r = result_from_run(&t, &o, &ctx);
		rc = print_result(r);
		json_decref(r);
		run_outcome_clear(&o);
		close(sigfd);
	}
	taskfile_clear(&tf);
	return rc;
}

static int cmd_exec(int argc, char **argv)
{
	struct options o = { 0 };
	int i = parse_options(argc, argv, false, &o);
	if (i < 0)
		return i == -2 ? EXIT_OK : i == -3 ? EXIT_CONFIG : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error("%s needs exactly one TASKFILE (or - for stdin)", "exec");
	struct config cfg;
	if (config_setup(&cfg, o.config, "spoolrun") < 0)
		return EXIT_CONFIG;
	int rc = exec_task(&cfg, argv[i]);
	config_clear(&cfg);
	return rc;
}

static int cmd_watch(int argc, char **argv)
{
	struct options o = { 0 };
	int i = parse_options(argc, argv, true, &o);
	if (i < 0)
		return i == -2 ? EXIT_OK : i == -3 ? EXIT_CONFIG : EXIT_USAGE;
	if (i != argc)
		return usage_error("this command takes no operands, got '%s'", argv[i]);
	return runner_run(o.config, o.spool, !strcmp(argv[0], "drain"));
}

/* fds 0-2 closed by whoever started us would be reused by the first
 * open(), and a task's output could then land in a spool file. Descriptors
 * inherited above 2 must not reach tasks: mark them close-on-exec now, so
 * this holds even where the child's close_range() is not available. */
static void sanitize_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			_exit(EXIT_OSERR);
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (fd > 2 && fd != self)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	sanitize_fds();
	if (argc < 2)
		return usage_error("%s", "missing command: watch, drain, exec, submit, wait, cancel, status, tail, validate, clean, resubmit, pause or resume");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("spoolrun %s\n", SPOOLRUN_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "node-run")) /* internal: a Slurm batch job on its node */
		return node_run_main(argc - 1, argv + 1);
	/* Every command, in one table. */
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} commands[] = {
		{ "watch", cmd_watch }, { "drain", cmd_watch }, { "exec", cmd_exec },
		{ "submit", client_submit }, { "wait", client_wait }, { "cancel", client_cancel },
		{ "validate", client_validate }, { "tail", client_tail }, { "status", client_status },
		{ "clean", clean_command }, { "resubmit", client_resubmit }, { "pause", client_pause },
		{ "resume", client_resume },
	};
	const char *guess = NULL;
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
		/* A prefix of one command ("stat", "can") is most likely that one. */
		if (*cmd && !strncmp(commands[i].name, cmd, strlen(cmd)))
			guess = guess ? "" : commands[i].name;
	}
	if (guess && *guess) {
		fprintf(stderr, "spoolrun: unknown command '%s'; did you mean '%s'? (see spoolrun --help)\n",
			cmd, guess);
		return EXIT_USAGE;
	}
	return usage_error("unknown command '%s'", cmd);
}
