#define _GNU_SOURCE
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clean.h"
#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "log.h"
#include "result.h"
#include "spool.h"
#include "status.h"
#include "task.h"
#include "taskfile.h"
#include "timeutil.h"
#include "watch.h"

/* Options every client command takes, and what they opened. */
struct client {
	const char *config_path;
	const char *spool_root;
	struct config cfg;
	struct spool spool;
	bool opened;
};

static int client_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "spoolrun %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spoolrun %s --help)\n", cmd);
	return EXIT_USAGE;
}

static int open_client(struct client *c)
{
	char err[1024];
	config_defaults(&c->cfg);
	if (!c->config_path && getenv("SPOOLRUN_CONFIG") && *getenv("SPOOLRUN_CONFIG"))
		c->config_path = getenv("SPOOLRUN_CONFIG");
	if (c->config_path && config_load(&c->cfg, c->config_path, err, sizeof err) < 0) {
		fprintf(stderr, "spoolrun: %s\n", err);
		return EXIT_CONFIG;
	}
	log_set_level(c->cfg.log_level);
	if (spool_open(&c->spool, &c->cfg, c->spool_root ? c->spool_root : c->cfg.spool_root, err,
		       sizeof err) < 0) {
		fprintf(stderr, "spoolrun: %s\n", err);
		spool_close(&c->spool);
		return EXIT_IOERR;
	}
	c->opened = true;
	return EXIT_OK;
}

static void close_client(struct client *c)
{
	if (c->opened)
		spool_close(&c->spool);
	config_clear(&c->cfg);
}

/* Shared option parsing: extra is the command's own getopt string and
 * long options; handle() gets each of its own options. Returns the index
 * of the first operand, -1 after a usage error, -2 after --help. */
static int parse_client_options(int argc, char **argv, struct client *c, const char *extra,
				const struct option *more, const char *usage,
				int (*handle)(void *ctx, int ch, const char *arg), void *ctx)
{
	struct option longopts[16] = {
		{ "config", required_argument, NULL, 'c' },
		{ "spool", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
	};
	size_t n = 3;
	for (; more && more[n - 3].name && n < 15; n++)
		longopts[n] = more[n - 3];
	char shortopts[64];
	snprintf(shortopts, sizeof shortopts, "+:c:s:h%s", extra);
	opterr = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': c->config_path = optarg; break;
		case 's': c->spool_root = optarg; break;
		case 'h': fputs(usage, stdout); return -2;
		case ':': client_error(argv[0], "option %s needs a value", argv[optind - 1]); return -1;
		case '?': client_error(argv[0], "unknown option %s", argv[optind - 1]); return -1;
		default:
			if (handle(ctx, ch, optarg) < 0)
				return -1;
		}
	}
	return optind;
}

/* For commands whose one option of their own is a flag (--wait, --json). */
static int set_flag(void *ctx, int ch, const char *arg)
{
	(void)ch, (void)arg;
	*(bool *)ctx = true;
	return 0;
}

/* Reads results/<id>.json if it is there: NULL when it is not (yet). */
static json_t *load_result(struct client *c, const char *id)
{
	char name[SPOOL_NAME_SIZE];
	if (spool_name_result(id, 1, name) < 0)
		return NULL;
	int fd = openat(c->spool.results_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	json_t *r = json_loadfd(fd, JSON_ALLOW_NUL, NULL);
	close(fd);
	return r;
}

static void print_compact(const json_t *r)
{
	char *s = json_dumps(r, JSON_COMPACT);
	if (s) {
		printf("%s\n", s);
		fflush(stdout);
	}
	free(s);
}

/* Waits (inotify on results/, no polling) until every id has a result or
 * timeout_s passes (< 0: no limit), printing each result as one JSON line
 * as it arrives. Returns the first non-zero exit code of the results in
 * argument order, 0, or EXIT_UNAVAILABLE when time ran out. */
static int wait_for_results(struct client *c, char **ids, int n, double timeout_s)
{
	struct watch w;
	if (watch_open(&w) < 0 ||
	    watch_add(&w, c->spool.results_path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		fprintf(stderr, "spoolrun: cannot watch %s: %s\n", c->spool.results_path,
			strerror(errno));
		return EXIT_OSERR;
	}
	int *codes = calloc((size_t)n, sizeof *codes), left = n, rc = EXIT_OK;
	bool *done = calloc((size_t)n, sizeof *done);
	int64_t deadline = timeout_s < 0 ? INT64_MAX
					 : time_monotonic_ns() + time_seconds_to_ns(timeout_s);
	while (codes && done && left > 0) {
		/* Check after the watch is in place: nothing can slip between. */
		for (int i = 0; i < n; i++) {
			json_t *r = done[i] ? NULL : load_result(c, ids[i]);
			if (!r && !done[i] && clean_said_removed(&c->spool, ids[i], "wait")) {
				codes[i] = EXIT_NOINPUT; /* removed by clean: it will not come */
				done[i] = true;
				left--;
			}
			if (!r)
				continue;
			print_compact(r);
			codes[i] = result_exit_code(r);
			done[i] = true;
			left--;
			json_decref(r);
		}
		int64_t now = time_monotonic_ns();
		if (!left || now >= deadline)
			break;
		int ms = deadline == INT64_MAX ? -1 : (int)((deadline - now) / NS_PER_MS) + 1;
		struct pollfd p = { w.fd, POLLIN, 0 };
		if (poll(&p, 1, ms) > 0) {
			char buf[4096];
			while (read(w.fd, buf, sizeof buf) > 0)
				; /* the events only say "look again" */
		}
	}
	for (int i = 0; codes && i < n && rc == EXIT_OK; i++)
		rc = codes[i];
	if (left > 0 && codes && done) {
		for (int i = 0; i < n; i++)
			if (!done[i])
				fprintf(stderr, "spoolrun wait: no result for %s yet\n", ids[i]);
		rc = EXIT_UNAVAILABLE;
	}
	free(codes);
	free(done);
	watch_close(&w);
	return rc;
}

struct wait_opts {
	double timeout;
};

static int wait_option(void *ctx, int ch, const char *arg)
{
	struct wait_opts *o = ctx;
	if (ch == 't' && config_parse_seconds(arg, 1e9, &o->timeout) == 0)
		return 0;
	client_error("wait", "--timeout needs a number of seconds, got '%s'", arg);
	return -1;
}

static const char wait_usage[] =
	"usage: spoolrun wait [--timeout S] [--config FILE] [--spool DIR] ID...\n"
	"\n"
	"Waits until results/<ID>.json exists for every ID (at once when it does),\n"
	"printing each result as one line of JSON as it arrives. Exit status: the\n"
	"first non-zero exit code of the results, in the order given (see\n"
	"spoolrun --help), 0 when all succeeded, 69 when --timeout ran out first,\n"
	"66 when `spoolrun clean` removed the result (said on stderr).\n";

int client_wait(int argc, char **argv)
{
	struct client c = { 0 };
	struct wait_opts o = { -1 };
	static const struct option opts[] = { { "timeout", required_argument, NULL, 't' }, { 0 } };
	int i = parse_client_options(argc, argv, &c, "t:", opts, wait_usage, wait_option, &o);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (i == argc)
		return client_error("wait", "%s", "needs at least one ID");
	for (int k = i; k < argc; k++)
		if (!task_id_valid(argv[k], strlen(argv[k])))
			return client_error("wait", "'%s' is not a valid task id", argv[k]);
	int rc = open_client(&c);
	if (rc == EXIT_OK)
		rc = wait_for_results(&c, argv + i, argc - i, o.timeout);
	close_client(&c);
	return rc;
}

/* A unique id that sorts by submission time: UTC to the millisecond and a
 * random suffix, e.g. 20261124T060425.123Z-1f3a9c2e. */
static void generate_id(char out[TASK_ID_MAX + 1])
{
	int64_t ms = time_realtime_ms();
	char stamp[32];
	time_format_rfc3339(ms, stamp, sizeof stamp); /* 2026-11-24T06:04:25.123Z */
	unsigned rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (unsigned)time_monotonic_ns() ^ (unsigned)getpid();
	snprintf(out, TASK_ID_MAX + 1, "%.4s%.2s%.2sT%.2s%.2s%.2s.%.3sZ-%08x", stamp, stamp + 5,
		 stamp + 8, stamp + 11, stamp + 14, stamp + 17, stamp + 20, rnd);
}

/* Writes the task under a dot name in incoming/ (ignored by the watcher),
 * fsyncs it, and renames it to NAME without replacing anything. */
static int write_task(struct client *c, const char *name, const char *text, size_t len)
{
	char tmp[320];
	snprintf(tmp, sizeof tmp, ".submit-%d-%s", (int)getpid(), name);
	unlinkat(c->spool.incoming_fd, tmp, 0);
	int rc = publish_file(c->spool.incoming_fd, tmp, c->spool.incoming_fd, name, text, len,
			      0644, true);
	if (rc < 0 && errno == EEXIST) {
		fprintf(stderr, "spoolrun submit: %s/incoming/%s is already queued\n",
			c->spool.root, name);
		return EXIT_CANTCREAT;
	}
	if (rc < 0) {
		fprintf(stderr, "spoolrun submit: cannot write %s/incoming/%s: %s\n", c->spool.root,
			name, strerror(errno));
		return EXIT_IOERR;
	}
	return EXIT_OK;
}

struct submit_opts {
	json_t *task;      /* built from the options */
	json_t *env;
	bool wait;
	bool bad;
};

static int submit_option(void *ctx, int ch, const char *arg)
{
	struct submit_opts *o = ctx;
	double secs;
	char *end;
	switch (ch) {
	case 'w': o->wait = true; return 0;
	case 'i': json_object_set_new(o->task, "id", json_string(arg)); return 0;
	case 'd': json_object_set_new(o->task, "cwd", json_string(arg)); return 0;
	case 'o': json_object_set_new(o->task, "output", json_string(arg)); return 0;
	case 't':
		if (config_parse_seconds(arg, 1e9, &secs) < 0)
			break;
		json_object_set_new(o->task, "timeout", json_real(secs));
		return 0;
	case 'p': {
		long long v = strtoll(arg, &end, 10);
		if (!*arg || *end)
			break;
		json_object_set_new(o->task, "priority", json_integer(v));
		return 0;
	}
	case 'e': {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			break;
		char *name = strndup(arg, (size_t)(eq - arg));
		if (!o->env)
			o->env = json_object();
		json_object_set_new(o->env, name, json_string(eq + 1));
		free(name);
		return 0;
	}
	}
	client_error("submit", "bad value '%s'", arg);
	return -1;
}

static const char submit_usage[] =
	"usage: spoolrun submit [--id ID] [--timeout S] [--priority N] [--env K=V]...\n"
	"                       [--cwd DIR] [--output text|jsonl|json] [--wait] -- CMD [ARG...]\n"
	"       spoolrun submit [--wait] FILE|-\n"
	"         (both also take --config FILE and --spool DIR)\n"
	"\n"
	"Validates a task exactly as the watcher will, writes it atomically into\n"
	"incoming/ (a dot name there, fsync, rename) and prints its id; a unique id\n"
	"that sorts by time is generated when none is given. With --wait, waits for\n"
	"the result, prints it and exits with the task's exit code (see spoolrun\n"
	"--help). Exit 65 when the task is invalid (nothing is written), 66 when\n"
	"FILE cannot be read, 73 when a task file of that name is already queued.\n";

/* The task text and its id, from the options (-- CMD ARGS) or a file. */
static int build_submission(struct submit_opts *o, int argc, char **argv, int i,
			    const struct config *cfg, char **text, size_t *len,
			    char id[TASK_ID_MAX + 1])
{
	bool command_form = i > 0 && !strcmp(argv[i - 1], "--");
	if (command_form) {
		if (i == argc)
			return client_error("submit", "%s", "-- needs a command");
		json_t *cmd = json_array();
		for (int k = i; k < argc; k++)
			json_array_append_new(cmd, json_string(argv[k]));
		json_object_set_new(o->task, "command", cmd);
		if (o->env)
			json_object_set(o->task, "env", o->env);
		const char *given = json_string_value(json_object_get(o->task, "id"));
		if (given)
			snprintf(id, TASK_ID_MAX + 1, "%s", given);
		else {
			generate_id(id);
			json_object_set_new(o->task, "id", json_string(id));
		}
		*text = json_dumps(o->task, JSON_INDENT(2));
		*len = *text ? strlen(*text) : 0;
		return *text ? EXIT_OK : EXIT_SOFTWARE;
	}
	if (argc - i != 1)
		return client_error("submit", "%s", "takes one FILE (or -), or -- CMD [ARG...]");
	if (json_object_size(o->task) || o->env)
		return client_error("submit", "%s", "--id, --timeout, --priority, --env, --cwd and --output go with -- CMD");
	const char *path = argv[i];
	if (read_path_bounded(path, cfg->max_task_bytes, text, len) < 0) {
		fprintf(stderr, "spoolrun submit: %s: %s\n", path,
			errno == EFBIG ? "larger than max_task_bytes" : strerror(errno));
		return EXIT_NOINPUT;
	}
	json_t *doc = json_loadb(*text, *len, 0, NULL), *v = json_object_get(doc, "id");
	if (json_is_string(v))
		snprintf(id, TASK_ID_MAX + 1, "%s", json_string_value(v));
	else
		generate_id(id); /* the file name gives the watcher the id */
	json_decref(doc);
	return EXIT_OK;
}

int client_submit(int argc, char **argv)
{
	struct client c = { 0 };
	struct submit_opts o = { .task = json_object() };
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' }, { "timeout", required_argument, NULL, 't' },
		{ "priority", required_argument, NULL, 'p' }, { "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'd' }, { "output", required_argument, NULL, 'o' },
		{ "wait", no_argument, NULL, 'w' }, { 0 },
	};
	char *text = NULL, id[TASK_ID_MAX + 1] = "", name[TASK_ID_MAX + 8];
	size_t len = 0;
	int rc, i = parse_client_options(argc, argv, &c, "i:t:p:e:d:o:w", opts, submit_usage,
					 submit_option, &o);
	if (i < 0)
		rc = i == -2 ? EXIT_OK : EXIT_USAGE;
	else if ((rc = open_client(&c)) == EXIT_OK &&
		 (rc = build_submission(&o, argc, argv, i, &c.cfg, &text, &len, id)) == EXIT_OK) {
		struct task t;
		struct task_error e;
		snprintf(name, sizeof name, "%s.json", id);
		if (task_parse(text, len, name, &c.cfg.task, &t, &e) < 0) {
			fprintf(stderr, "spoolrun submit: %s\n", e.message);
			rc = EXIT_DATAERR;
		} else if (spool_result_exists(&c.spool, id)) {
			/* The watcher would refuse it as a duplicate, and a --wait
			 * would return the old result: say so now. */
			fprintf(stderr, "spoolrun submit: a result for %s already exists in %s; "
					"ids must be unique\n", id, c.spool.results_path);
			rc = EXIT_CANTCREAT;
		} else if ((rc = write_task(&c, name, text, len)) == EXIT_OK) {
			printf("%s\n", id);
			fflush(stdout);
			char *ids[] = { id };
			if (o.wait)
				rc = wait_for_results(&c, ids, 1, -1);
		}
		task_clear(&t);
	}
	free(text);
	json_decref(o.task);
	json_decref(o.env);
	close_client(&c);
	return rc;
}


static const char cancel_usage[] =
	"usage: spoolrun cancel [--wait] [--config FILE] [--spool DIR] ID\n"
	"\n"
	"Asks the watcher to cancel task ID by creating cancel/ID: a queued or\n"
	"deferred task is published as \"cancelled\" without running; a running one\n"
	"is killed (TERM, grace, KILL of its whole tree) and published as\n"
	"\"cancelled\". A request for a task not submitted yet waits for it. With\n"
	"--wait, waits for the result and exits as spoolrun wait does.\n";

int client_cancel(int argc, char **argv)
{
	struct client c = { 0 };
	bool wait = false;
	static const struct option opts[] = { { "wait", no_argument, NULL, 'w' }, { 0 } };
	int i = parse_client_options(argc, argv, &c, "w", opts, cancel_usage, set_flag, &wait);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1 || !task_id_valid(argv[i], strlen(argv[i])))
		return client_error("cancel", "%s", "needs one valid task ID");
	int rc = open_client(&c);
	if (rc == EXIT_OK) {
		int fd = openat(c.spool.cancel_fd, argv[i], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
				0644);
		if (fd < 0) {
			fprintf(stderr, "spoolrun cancel: cannot create %s/cancel/%s: %s\n",
				c.spool.root, argv[i], strerror(errno));
			rc = EXIT_IOERR;
		} else {
			close(fd);
			if (wait)
				rc = wait_for_results(&c, argv + i, 1, -1);
		}
	}
	close_client(&c);
	return rc;
}

static int no_option(void *ctx, int ch, const char *arg)
{
	(void)ctx, (void)ch, (void)arg;
	return 0;
}

static const char validate_usage[] =
	"usage: spoolrun validate [--config FILE] FILE...\n"
	"\n"
	"Checks task files with the watcher's own validator, without submitting\n"
	"them: prints \"FILE: ok\" for each valid one and the error (naming the\n"
	"field, or the line and column of bad JSON) for each invalid one. Exit 0\n"
	"when all are valid, 65 when any is not, 66 when one cannot be read.\n";

int client_validate(int argc, char **argv)
{
	struct client c = { 0 };
	int i = parse_client_options(argc, argv, &c, "", NULL, validate_usage, no_option, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (i == argc)
		return client_error("validate", "%s", "needs at least one FILE");
	char err[1024];
	config_defaults(&c.cfg);
	if (c.config_path && config_load(&c.cfg, c.config_path, err, sizeof err) < 0) {
		fprintf(stderr, "spoolrun: %s\n", err);
		config_clear(&c.cfg);
		return EXIT_CONFIG;
	}
	int rc = EXIT_OK;
	for (; i < argc; i++) {
		struct taskfile tf;
		enum taskfile_stage stage = taskfile_load_path(&tf, argv[i], &c.cfg);
		if (stage == TASKFILE_OK)
			printf("%s: ok\n", argv[i]);
		else if (stage == TASKFILE_UNREADABLE) {
			fprintf(stderr, "%s: %s\n", argv[i], tf.error.message);
			rc = EXIT_NOINPUT;
		} else {
			/* The id says where the watcher would file the rejection. */
			fprintf(stderr, "%s: %s (rejected as id \"%s\")\n", argv[i], tf.error.message,
				tf.id);
			if (rc == EXIT_OK)
				rc = EXIT_DATAERR;
		}
		taskfile_clear(&tf);
	}
	config_clear(&c.cfg);
	return rc;
}

/* One log being followed: copies what was added since the last call. */
struct followed {
	const char *suffix;
	int out;      /* where it goes: 1 or 2 */
	int fd;
	off_t offset;
};

static void copy_new(struct client *c, const char *id, struct followed *f)
{
	if (f->fd < 0) {
		char name[SPOOL_NAME_SIZE];
		if (spool_name_log(id, f->suffix, name) < 0)
			return;
		f->fd = openat(c->spool.logs_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (f->fd < 0)
			return;
	}
	struct stat st;
	if (fstat(f->fd, &st) == 0 && st.st_size < f->offset)
		f->offset = 0; /* truncated: a new attempt started */
	char buf[65536];
	ssize_t n;
	while ((n = pread(f->fd, buf, sizeof buf, f->offset)) > 0) {
		if (xwrite_all(f->out, buf, (size_t)n) < 0)
			return;
		f->offset += n;
	}
}

static const char tail_usage[] =
	"usage: spoolrun tail [-f] [--config FILE] [--spool DIR] ID\n"
	"\n"
	"Prints task ID's output from logs/ID.stdout (to stdout) and logs/ID.stderr\n"
	"(to stderr). With -f (--follow), keeps printing what the task writes until\n"
	"its result is published (waiting for it to start if it has not yet).\n";

static int follow_logs(struct client *c, const char *id, struct followed f[2])
{
	struct watch w;
	if (watch_open(&w) < 0 ||
	    watch_add(&w, c->spool.logs_path, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE) < 0 ||
	    watch_add(&w, c->spool.results_path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		fprintf(stderr, "spoolrun tail: cannot watch the spool: %s\n", strerror(errno));
		watch_close(&w);
		return EXIT_OSERR;
	}
	for (;;) {
		json_t *r = load_result(c, id);
		copy_new(c, id, &f[0]);
		copy_new(c, id, &f[1]);
		if (r) {
			json_decref(r);
			break;
		}
		struct pollfd p = { w.fd, POLLIN, 0 };
		if (poll(&p, 1, -1) > 0) {
			char buf[4096];
			while (read(w.fd, buf, sizeof buf) > 0)
				;
		}
	}
	watch_close(&w);
	return EXIT_OK;
}

int client_tail(int argc, char **argv)
{
	struct client c = { 0 };
	bool follow = false;
	static const struct option opts[] = { { "follow", no_argument, NULL, 'f' }, { 0 } };
	int i = parse_client_options(argc, argv, &c, "f", opts, tail_usage, set_flag, &follow);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1 || !task_id_valid(argv[i], strlen(argv[i])))
		return client_error("tail", "%s", "needs one valid task ID");
	int rc = open_client(&c);
	struct followed f[2] = { { "stdout", STDOUT_FILENO, -1, 0 },
				 { "stderr", STDERR_FILENO, -1, 0 } };
	if (rc == EXIT_OK && follow)
		rc = follow_logs(&c, argv[i], f);
	else if (rc == EXIT_OK) {
		copy_new(&c, argv[i], &f[0]);
		copy_new(&c, argv[i], &f[1]);
		if (f[0].fd < 0 && f[1].fd < 0) {
			fprintf(stderr, "spoolrun tail: no logs for %s in %s\n", argv[i],
				c.spool.logs_path);
			rc = EXIT_NOINPUT;
		}
	}
	for (int k = 0; k < 2; k++)
		if (f[k].fd >= 0)
			close(f[k].fd);
	close_client(&c);
	return rc;
}

static const char status_usage[] =
	"usage: spoolrun status [--json] [--config FILE] [--spool DIR]\n"
	"\n"
	"Shows whether a watcher runs on the spool, the running task (id, pid,\n"
	"elapsed time, bytes written so far), the queue in run order, deferred\n"
	"tasks with the time they run again, and the 10 latest results. --json\n"
	"prints one JSON object instead, for programs.\n";

int client_status(int argc, char **argv)
{
	struct client c = { 0 };
	bool as_json = false;
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	int i = parse_client_options(argc, argv, &c, "j", opts, status_usage, set_flag, &as_json);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (i != argc)
		return client_error("status", "takes no operands, got '%s'", argv[i]);
	int rc = open_client(&c);
	if (rc == EXIT_OK) {
		json_t *st = status_collect(&c.spool, c.cfg.max_task_bytes);
		if (as_json) {
			char *text = json_dumps(st, JSON_INDENT(2));
			printf("%s\n", text ? text : "{}");
			free(text);
		} else
			status_print_text(st);
		json_decref(st);
	}
	close_client(&c);
	return rc;
}
