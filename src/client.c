#define _GNU_SOURCE
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clean.h"
#include "cliopt.h"
#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "lifecycle.h"
#include "log.h"
#include "lookup.h"
#include "result.h"
#include "spool.h"
#include "status.h"
#include "task.h"
#include "taskfile.h"
#include "timeutil.h"
#include "watch.h"

#define LEN(a) (sizeof(a) / sizeof *(a))

/* How long wait stays silent before saying no watcher runs on the spool. */
#define NO_WATCHER_NOTICE_S 2.0

/* Options every client command takes, and what they opened. */
struct client {
	const char *cmd;
	struct cliopt_common o;
	struct config cfg;
	struct spool spool;
	bool opened;
};

static void say(const struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "spoolrun CMD: ..." on stderr. */
static void say(const struct client *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "spoolrun %s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The config: --config, else $SPOOLRUN_CONFIG (named in any error, since
 * the user may not remember having set it), else the built-in defaults. */
static int load_config(struct client *c)
{
	char err[1024];
	const char *env = getenv("SPOOLRUN_CONFIG");
	bool from_env = !c->o.config && env && *env;
	config_defaults(&c->cfg);
	if (from_env)
		c->o.config = env;
	if (c->o.config && config_load(&c->cfg, c->o.config, err, sizeof err) < 0) {
		if (from_env)
			say(c, "$SPOOLRUN_CONFIG (%s): %s", env, err);
		else
			say(c, "%s", err);
		return EXIT_CONFIG;
	}
	log_set_level(c->cfg.log_level);
	return EXIT_OK;
}

/* Opens an existing spool: the client commands never create one (a typo
 * in --spool would otherwise make a new, empty, unwatched spool). */
static int open_client(struct client *c)
{
	char err[1024];
	int rc = load_config(c);
	if (rc != EXIT_OK)
		return rc;
	const char *root = c->o.spool ? c->o.spool : c->cfg.spool_root;
	if (spool_open_existing(&c->spool, &c->cfg, root, err, sizeof err) < 0) {
		int missing = errno == ENOENT;
		say(c, "%s", err);
		spool_close(&c->spool);
		return missing ? EXIT_NOINPUT : EXIT_IOERR;
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

static int parse(struct client *c, int argc, char **argv, const struct cliopt *opts,
		 size_t nopts, const char *usage, cliopt_handler handle, void *ctx, bool *sep)
{
	bool ignored;
	c->cmd = argv[0];
	return cliopt_parse(argc, argv, opts, nopts, usage, &c->o, handle, ctx, sep ? sep : &ignored);
}

/* For commands whose options are flags: ctx is a bool per key. */
static int set_flag(void *ctx, const struct cliopt *opt, const char *value)
{
	(void)value;
	((bool *)ctx)[opt->key] = true;
	return 0;
}

static int check_ids(const char *cmd, char **ids, int n)
{
	for (int k = 0; k < n; k++)
		if (!task_id_valid(ids[k], strlen(ids[k])))
			return cliopt_error(cmd, "'%s' is not a valid task id (1 to %d of A-Z a-z 0-9 . _ -, "
					    "not starting with '.' or '-')", ids[k], TASK_ID_MAX);
	return EXIT_OK;
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

/* ---- waiting for results ------------------------------------------------ */

/* One result being waited for. own_file: the task file submit wrote (then
 * only the result of that very file counts, whatever else used the id). */
struct awaited {
	const char *id;
	const char *own_file;
	ino_t own_ino;
	bool done;
	int code;
};

/* Whether result r was published for the file submit wrote. The stamp
 * ("INODE:MTIME:SIZE") tells files of one name apart; a result without a
 * stamp this client can read is taken on its name alone. */
static bool is_own(const struct awaited *a, const json_t *r)
{
	const char *file = json_string_value(json_object_get(r, "task_file"));
	const char *stamp = json_string_value(json_object_get(r, "task_file_stamp"));
	unsigned long long ino;
	if (!file || strcmp(file, a->own_file))
		return false;
	return !stamp || sscanf(stamp, "%llu:", &ino) != 1 || ino == (unsigned long long)a->own_ino;
}

/* Whether a's result was removed by `spoolrun clean` and will not come
 * (said on stderr). A cleaned id that is queued, running or deferred again
 * (submit --wait of it, or a wait after such a submit) is waited for. */
static bool removed_by_clean(struct client *c, const struct awaited *a)
{
	int64_t when;
	struct task_location loc;
	if (a->own_file || clean_marker(&c->spool, a->id, &when) < 0)
		return false;
	lookup_task(&c->spool, a->id, c->cfg.max_task_bytes, &loc);
	return loc.place == PLACE_NONE && clean_said_removed(&c->spool, a->id, c->cmd);
}

/* Looks for a's result: 1 when printed, 0 not yet, -1 when what is there
 * is no result (said, naming the file). A duplicate id's result is
 * published as ID@N.json: for a submitted file, those are checked too. */
static int check_result(struct client *c, struct awaited *a)
{
	char name[SPOOL_NAME_SIZE], why[1024];
	for (unsigned n = 1; n < 10000; n++) {
		json_t *r;
		if (spool_name_result(a->id, n, name) < 0)
			return 0;
		int got = lookup_result(&c->spool, name, &r, why, sizeof why);
		if (got < 0 && (n == 1 || !a->own_file)) {
			say(c, "%s", why);
			a->code = EXIT_IOERR;
			return -1;
		}
		if (got == 0 && n == 1 && removed_by_clean(c, a)) {
			a->code = EXIT_NOINPUT; /* removed by clean: it will not come */
			return -1;
		}
		if (got == 0)
			return 0;
		if (got > 0 && (!a->own_file || is_own(a, r))) {
			print_compact(r);
			a->code = result_exit_code(r);
			json_decref(r);
			return 1;
		}
		json_decref(r);
		if (!a->own_file)
			return 0;
	}
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = sig;
}

/* Ctrl-C (or SIGTERM) during a wait stops the waiting, not the tasks:
 * poll returns EINTR, and the caller says what still runs. */
static void catch_interrupts(void)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Once, after a moment without results: a wait on a spool nobody watches
 * would otherwise look like a slow task forever. */
static void notice_no_watcher(struct client *c, int64_t started, bool *said)
{
	int pid;
	if (*said || time_monotonic_ns() - started < time_seconds_to_ns(NO_WATCHER_NOTICE_S))
		return;
	*said = true;
	if (!lookup_watcher(&c->spool, &pid))
		say(c, "no watcher is running on %s; still waiting (start one with: spoolrun watch "
		       "--spool %s)", c->spool.root, c->spool.root);
}

/* Waits (inotify on results/, no polling) until every awaited result is
 * there or timeout_s passes (< 0: no limit), printing each as one JSON
 * line as it arrives. Returns the first non-zero code in argument order,
 * 0, or EXIT_UNAVAILABLE when time ran out. */
static int wait_for_results(struct client *c, struct awaited *a, int n, double timeout_s)
{
	struct watch w;
	if (watch_open(&w) < 0 ||
	    watch_add(&w, c->spool.results_path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		say(c, "cannot watch %s: %s", c->spool.results_path, strerror(errno));
		return EXIT_OSERR;
	}
	int left = n, rc = EXIT_OK;
	bool said = false;
	int64_t started = time_monotonic_ns();
	catch_interrupts();
	int64_t deadline = timeout_s < 0 ? INT64_MAX : started + time_seconds_to_ns(timeout_s);
	while (left > 0 && !interrupted) {
		/* Check after the watch is in place: nothing can slip between. */
		for (int i = 0; i < n; i++)
			if (!a[i].done && check_result(c, &a[i]) != 0) {
				a[i].done = true;
				left--;
			}
		int64_t now = time_monotonic_ns();
		if (!left || now >= deadline)
			break;
		notice_no_watcher(c, started, &said);
		int64_t until = said ? deadline : started + time_seconds_to_ns(NO_WATCHER_NOTICE_S);
		if (until > deadline)
			until = deadline;
		/* At most an hour per poll: a --timeout of years must not
		 * overflow poll's int milliseconds; the loop just looks again. */
		int64_t left_ms = (until - now) / NS_PER_MS + 1;
		int ms = until == INT64_MAX ? -1 : left_ms > 3600000 ? 3600000 : (int)left_ms;
		struct pollfd p = { w.fd, POLLIN, 0 };
		if (poll(&p, 1, ms) > 0) {
			char buf[4096];
			while (read(w.fd, buf, sizeof buf) > 0)
				; /* the events only say "look again" */
		}
	}
	for (int i = 0; i < n && rc == EXIT_OK; i++)
		rc = a[i].done ? a[i].code : EXIT_OK;
	if (left > 0) {
		for (int i = 0; i < n; i++)
			if (!a[i].done && interrupted)
				say(c, "stopped waiting; %s goes on (spoolrun wait %s to wait again, "
				       "spoolrun cancel %s to stop it)", a[i].id, a[i].id, a[i].id);
			else if (!a[i].done)
				say(c, "no result for %s yet", a[i].id);
		rc = interrupted ? 128 + interrupted : EXIT_UNAVAILABLE;
	}
	watch_close(&w);
	return rc;
}

/* ---- wait ----------------------------------------------------------------- */

enum { OPT_TIMEOUT, OPT_WAIT, OPT_JSON, OPT_FOLLOW, OPT_AHEAD, OPT_ALL, OPT_FAILED, OPT_LAST,
       OPT_ID, OPT_PRIORITY, OPT_ENV, OPT_CWD, OPT_OUTPUT,
       OPT_AFTER, OPT_AT, OPT_DELAY, OPT_LABEL, OPT_HISTORY_KEY, N_OPT_KEYS };

struct wait_opts {
	double timeout;
	bool all;
};

static int wait_option(void *ctx, const struct cliopt *opt, const char *value)
{
	struct wait_opts *o = ctx;
	if (opt->key == OPT_ALL)
		return o->all = true, 0;
	if (config_parse_seconds(value, 1e9, &o->timeout) == 0)
		return 0;
	return cliopt_bad_value("wait", opt, value, "is not a number of seconds (0 to 1e9)");
}

static const char wait_usage[] =
	"usage: spoolrun wait [--timeout S] [--config FILE] [--spool DIR] ID...\n"
	"       spoolrun wait --all [--timeout S] [--config FILE] [--spool DIR]\n"
	"\n"
	"Waits until results/<ID>.json exists for every ID (at once when it does),\n"
	"printing each result as one line of JSON as it arrives. Says so on stderr\n"
	"when no watcher runs on the spool (and keeps waiting). Exit status: the\n"
	"first non-zero exit code of the results, in the order given (see\n"
	"spoolrun --help), 0 when all succeeded, 69 when --timeout ran out first,\n"
	"66 when there is no spool, 74 when a result is not a result (a FIFO, a\n"
	"symbolic link, bad JSON: the message names the file). Ctrl-C stops the\n"
	"waiting (exit 130), never the tasks. --all waits for every task queued,\n"
	"deferred or running when it is called (not those submitted later); 0 at\n"
	"once when there is none.\n";

/* Every id queued, deferred or running (or interrupted) now, in table
 * order. The spool is read twice, so a task moving from one directory to
 * the next between two reads is seen in one of them. */
static struct awaited *unfinished(struct client *c, int *n)
{
	struct status_view view = { .finished = 0 };
	struct awaited *a = NULL;
	*n = 0;
	for (int pass = 0; pass < 2; pass++) {
		struct status_report *st = lifecycle_status_collect(&c->spool, c->cfg.max_task_bytes, &view);
		for (size_t i = 0; st && i < st->n; i++) {
			const struct status_row *r = &st->rows[i];
			bool seen = r->state == STATUS_FINISHED;
			for (int k = 0; k < *n && !seen; k++)
				seen = !strcmp(a[k].id, r->id);
			struct awaited *grown = seen ? NULL : realloc(a, (size_t)(*n + 1) * sizeof *a);
			if (grown) {
				a = grown;
				a[*n] = (struct awaited){ .id = strdup(r->id) };
				*n += a[*n].id != NULL;
			}
		}
		status_free(st);
	}
	return a;
}

static int wait_all(struct client *c, double timeout_s)
{
	int n, rc = EXIT_OK;
	struct awaited *a = unfinished(c, &n);
	if (n)
		rc = wait_for_results(c, a, n, timeout_s);
	for (int k = 0; k < n; k++)
		free((char *)a[k].id);
	free(a);
	return rc;
}

int client_wait(int argc, char **argv)
{
	struct client c = { 0 };
	struct wait_opts w = { .timeout = -1 };
	double timeout;
	static const struct cliopt opts[] = { { "timeout", 't', true, OPT_TIMEOUT },
					      { "all", 0, false, OPT_ALL } };
	int i = parse(&c, argc, argv, opts, LEN(opts), wait_usage, wait_option, &w, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	timeout = w.timeout;
	if (w.all && i != argc)
		return cliopt_error("wait", "--all takes no IDs, got '%s'", argv[i]);
	if (w.all) {
		int rc = open_client(&c);
		if (rc == EXIT_OK)
			rc = wait_all(&c, timeout);
		close_client(&c);
		return rc;
	}
	if (i == argc)
		return cliopt_error("wait", "needs at least one ID");
	int rc = check_ids("wait", argv + i, argc - i);
	if (rc == EXIT_OK && (rc = open_client(&c)) == EXIT_OK) {
		struct awaited *a = calloc((size_t)(argc - i), sizeof *a);
		for (int k = 0; a && k < argc - i; k++) {
			struct task_location loc;
			a[k].id = argv[i + k];
			lookup_task(&c.spool, a[k].id, c.cfg.max_task_bytes, &loc);
			if (loc.place == PLACE_NONE)
				say(&c, "no task %s in %s yet (not queued, running, deferred or finished); "
				    "waiting for it to be submitted", a[k].id, c.spool.root);
		}
		rc = a ? wait_for_results(&c, a, argc - i, timeout) : EXIT_OSERR;
		free(a);
	}
	close_client(&c);
	return rc;
}

/* ---- submit --------------------------------------------------------------- */

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
 * fsyncs it, and renames it to NAME without replacing anything; *ino is the
 * inode of what was written (how --wait knows its own result). */
struct task_body {
	const char *text;
	size_t len;
	ino_t ino;
};

/* Writes the task text; notes the inode before the file is published,
 * since the watcher may claim it the moment it is. */
static int write_body(int fd, void *ctx)
{
	struct task_body *b = ctx;
	struct stat st;
	if (xwrite_all(fd, b->text, b->len) < 0 || fstat(fd, &st) < 0)
		return -1;
	b->ino = st.st_ino;
	return 0;
}

static int write_task(struct client *c, const char *name, const char *text, size_t len,
		      ino_t *ino)
{
	char tmp[320];
	struct task_body body = { text, len, 0 };
	snprintf(tmp, sizeof tmp, ".submit-%d-%s", (int)getpid(), name);
	unlinkat(c->spool.incoming_fd, tmp, 0);
	int rc = publish_stream(c->spool.incoming_fd, tmp, c->spool.incoming_fd, name, write_body,
				&body, 0644, true);
	*ino = body.ino;
	if (rc < 0 && errno == EEXIST) {
		say(c, "%s/incoming/%s is already queued", c->spool.root, name);
		return EXIT_CANTCREAT;
	}
	if (rc < 0) {
		say(c, "cannot write %s/incoming/%s: %s", c->spool.root, name, strerror(errno));
		return EXIT_IOERR;
	}
	return EXIT_OK;
}

/* Says the id of a task just written as name (inode ino): on stderr with
 * wait, so that stdout is the result alone (submit --wait | jq); then,
 * with wait, waits for that file's result. */
static int announce(struct client *c, const char *id, const char *name, ino_t ino, bool wait)
{
	FILE *out = wait ? stderr : stdout;
	fprintf(out, "%s\n", id);
	fflush(out);
	if (!wait)
		return EXIT_OK;
	struct awaited a = { .id = id, .own_file = name, .own_ino = ino };
	return wait_for_results(c, &a, 1, -1);
}

struct submit_opts {
	json_t *task;      /* built from the options */
	json_t *env;
	bool wait;
};

/* --cwd is the caller's: relative to the directory submit runs in, not
 * the watcher's. */
static json_t *absolute_dir(const char *dir)
{
	char *abs = realpath(dir, NULL), *cwd = NULL, *joined = NULL;
	if (!abs && dir[0] != '/' && (cwd = getcwd(NULL, 0)) &&
	    asprintf(&joined, "%s/%s", cwd, dir) < 0)
		joined = NULL;
	json_t *v = json_string(abs ? abs : joined ? joined : dir);
	free(abs);
	free(cwd);
	free(joined);
	return v;
}

/* --after ID (repeatable), --at TIME, --delay S, --label L, --history-key K. */
static int submit_lifecycle_option(json_t *task, const struct cliopt *opt, const char *value)
{
	int64_t when = 0;
	double secs;
	char stamp[32];
	switch (opt->key) {
	case OPT_AFTER:
		if (!task_id_valid(value, strlen(value)))
			return cliopt_bad_value("submit", opt, value, "is not a task id");
		if (!json_object_get(task, "after"))
			json_object_set_new(task, "after", json_array());
		json_array_append_new(json_object_get(task, "after"), json_string(value));
		return 0;
	case OPT_AT:
	case OPT_DELAY:
		if (json_object_get(task, "not_before"))
			return cliopt_bad_value("submit", opt, value, "sets the time --at or --delay set "
						"already: give one");
		if (opt->key == OPT_AT && time_parse_when(value, &when) < 0)
			return cliopt_bad_value("submit", opt, value, "is not an RFC 3339 time or Unix seconds");
		if (opt->key == OPT_DELAY && config_parse_seconds(value, 1e9, &secs) < 0)
			return cliopt_bad_value("submit", opt, value, "is not a number of seconds (0 to 1e9)");
		if (opt->key == OPT_DELAY)
			when = time_realtime_ms() + (int64_t)(secs * 1000);
		time_format_rfc3339(when, stamp, sizeof stamp);
		json_object_set_new(task, "not_before", json_string(stamp));
		return 0;
	case OPT_LABEL:
		json_object_set_new(task, "label", json_string(value));
		return 0;
	default:
		json_object_set_new(task, "history_key", json_string(value));
		return 0;
	}
}

static int submit_option(void *ctx, const struct cliopt *opt, const char *value)
{
	struct submit_opts *o = ctx;
	double secs;
	char *end;
	switch (opt->key) {
	case OPT_WAIT: o->wait = true; return 0;
	case OPT_ID:
		if (!task_id_valid(value, strlen(value)))
			return cliopt_bad_value("submit", opt, value, "is not a valid task id (1 to 128 of "
						"A-Z a-z 0-9 . _ -, not starting with '.' or '-')");
		json_object_set_new(o->task, "id", json_string(value));
		return 0;
	case OPT_CWD: json_object_set_new(o->task, "cwd", absolute_dir(value)); return 0;
	case OPT_OUTPUT: json_object_set_new(o->task, "output", json_string(value)); return 0;
	case OPT_TIMEOUT:
		if (!strcmp(value, "auto")) {
			json_object_set_new(o->task, "timeout", json_string("auto"));
			return 0;
		}
		if (config_parse_seconds(value, 1e9, &secs) < 0)
			return cliopt_bad_value("submit", opt, value, "is not a number of seconds (0 to 1e9) or auto");
		json_object_set_new(o->task, "timeout", json_real(secs));
		return 0;
	case OPT_AFTER: case OPT_AT: case OPT_DELAY: case OPT_LABEL: case OPT_HISTORY_KEY:
		return submit_lifecycle_option(o->task, opt, value);
	case OPT_PRIORITY: {
		errno = 0;
		long long v = strtoll(value, &end, 10);
		if (!*value || *end || errno)
			return cliopt_bad_value("submit", opt, value, "is not a whole number");
		json_object_set_new(o->task, "priority", json_integer(v));
		return 0;
	}
	case OPT_ENV: {
		const char *eq = strchr(value, '=');
		if (!eq || eq == value)
			return cliopt_bad_value("submit", opt, value, "is not NAME=VALUE");
		char *name = strndup(value, (size_t)(eq - value));
		if (!o->env)
			o->env = json_object();
		json_object_set_new(o->env, name, json_string(eq + 1));
		free(name);
		return 0;
	}
	}
	return -1;
}

static const char submit_usage[] =
	"usage: spoolrun submit [--id ID] [--timeout S|auto] [--priority N] [--env K=V]...\n"
	"                       [--cwd DIR] [--output text|jsonl|json] [--after ID]...\n"
	"                       [--at TIME | --delay S] [--label L] [--history-key K]\n"
	"                       [--wait] -- CMD [ARG...]\n"
	"       spoolrun submit [--wait] FILE|-\n"
	"         (both also take --config FILE and --spool DIR)\n"
	"\n"
	"Validates a task exactly as the watcher will, writes it atomically into\n"
	"incoming/ (a dot name there, fsync, rename) and prints its id; a unique id\n"
	"that sorts by time is generated when none is given. A command runs in\n"
	"--cwd (relative to where submit runs), else in the directory submit runs\n"
	"in, as with pueue and tsp; a FILE's own \"cwd\" is used as it is. With\n"
	"--wait, prints the id on stderr, waits for the result of this very task\n"
	"file, prints it on stdout and exits with the task's exit code (see\n"
	"spoolrun --help). Exit 65 when the task is invalid (nothing is written),\n"
	"66 when FILE cannot be read or there is no spool, 73 when the id is taken\n"
	"(queued, running, deferred, or it has a result).\n"
	"\n"
	"Lifecycle (docs/lifecycle.md): --after ID (repeatable) starts it only once\n"
	"every ID has a result (skipped if one did not succeed); --at TIME (RFC 3339\n"
	"or Unix seconds) or --delay S sets not_before; --label L tags it for\n"
	"status --label; --timeout auto learns the timeout from earlier runs with\n"
	"the same --history-key (default: the command).\n";

/* Prints a validation error naming what the user wrote: the option behind
 * the field for the command form, the FILE otherwise (never the name of
 * the task file submit made up). */
static void report_invalid(struct client *c, const struct task_error *e, const char *name,
			   const char *path)
{
	const char *msg = e->message;
	size_t n = strlen(name);
	if (!strncmp(msg, name, n) && !strncmp(msg + n, ": ", 2))
		msg += n + 2;
	static const char *const as_option[] = { "id", "timeout", "priority", "env", "cwd", "output",
						 "after", "label" };
	for (size_t i = 0; !path && i < LEN(as_option); i++)
		if (!strcmp(e->field, as_option[i])) {
			say(c, "--%s: %s", as_option[i], msg);
			return;
		}
	say(c, "%s: %s", path ? path : "the task", msg);
}

static int build_command_task(struct client *c, struct submit_opts *o, int argc, char **argv,
			      int i, char **text, size_t *len, char id[TASK_ID_MAX + 1])
{
	if (i == argc)
		return cliopt_error(c->cmd, "-- needs a command");
	json_t *cmd = json_array();
	for (int k = i; k < argc; k++)
		json_array_append_new(cmd, json_string(argv[k]));
	json_object_set_new(o->task, "command", cmd);
	if (o->env)
		json_object_set(o->task, "env", o->env);
	if (!json_object_get(o->task, "cwd")) {
		char *here = getcwd(NULL, 0);
		if (here)
			json_object_set_new(o->task, "cwd", json_string(here));
		free(here);
	}
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

static int read_task_file(struct client *c, struct submit_opts *o, const char *path,
			  char **text, size_t *len, char id[TASK_ID_MAX + 1])
{
	if (json_object_size(o->task) || o->env)
		return cliopt_error(c->cmd, "--id, --timeout, --priority, --env, --cwd, --output, --after, "
				    "--at, --delay, --label and --history-key go with -- CMD, not with a FILE");
	if (read_path_bounded(path, c->cfg.max_task_bytes, text, len) < 0) {
		int err = errno;
		say(c, "%s: %s%s", path, err == EFBIG ? "larger than max_task_bytes" : strerror(err),
		    err == ENOENT && !strchr(path, '/') && !strstr(path, ".json")
			    ? " (to run a command, put it after --: spoolrun submit -- CMD ARG...)" : "");
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

/* An id is used once: refused while a task of that id is anywhere in the
 * spool or has a result (the watcher would reject it as a duplicate, and
 * a --wait could meet the other task's result). */
static int refuse_taken(struct client *c, const char *id)
{
	struct task_location loc;
	lookup_task(&c->spool, id, c->cfg.max_task_bytes, &loc);
	if (loc.place == PLACE_NONE)
		return EXIT_OK;
	if (loc.place == PLACE_FINISHED)
		say(c, "id %s is taken: a result for it already exists in %s; ids must be unique",
		    id, c->spool.results_path);
	else
		say(c, "id %s is taken: a task with that id is already %s (%s/%s/%s); ids must be "
		    "unique", id, lookup_place_name(loc.place), c->spool.root,
		    loc.place == PLACE_QUEUED ? "incoming" : loc.place == PLACE_ACTIVE ? "active"
									 : "deferred",
		    loc.file);
	return EXIT_CANTCREAT;
}

static int submit(struct client *c, struct submit_opts *o, int argc, char **argv, int i,
		  bool command_form)
{
	char *text = NULL, id[TASK_ID_MAX + 1] = "", name[SPOOL_NAME_SIZE];
	size_t len = 0;
	int rc;
	if (o->wait)
		catch_interrupts(); /* before the task exists: Ctrl-C never kills submit --wait */
	if (!command_form && argc - i != 1)
		return cliopt_error(c->cmd, argc == i ? "needs -- CMD [ARG...] or one FILE (or -)"
				    : "takes one FILE (or -); to run a command, put it after --");
	rc = command_form ? build_command_task(c, o, argc, argv, i, &text, &len, id)
			  : read_task_file(c, o, argv[i], &text, &len, id);
	if (rc == EXIT_OK) {
		struct task t;
		struct task_error e;
		ino_t ino = 0;
		spool_name_result(id, 1, name); /* ID.json: an id always fits */
		if (task_parse(text, len, name, &c->cfg.task, &t, &e) < 0) {
			report_invalid(c, &e, name, command_form ? NULL : argv[i]);
			rc = EXIT_DATAERR;
		} else if ((rc = refuse_taken(c, id)) == EXIT_OK &&
			   (rc = write_task(c, name, text, len, &ino)) == EXIT_OK)
			rc = announce(c, id, name, ino, o->wait);
		task_clear(&t);
	}
	free(text);
	return rc;
}

int client_submit(int argc, char **argv)
{
	struct client c = { 0 };
	struct submit_opts o = { .task = json_object() };
	static const struct cliopt opts[] = {
		{ "id", 'i', true, OPT_ID }, { "timeout", 't', true, OPT_TIMEOUT },
		{ "priority", 'p', true, OPT_PRIORITY }, { "env", 'e', true, OPT_ENV },
		{ "cwd", 'd', true, OPT_CWD }, { "output", 'o', true, OPT_OUTPUT },
		{ "wait", 'w', false, OPT_WAIT }, { "after", 0, true, OPT_AFTER },
		{ "at", 0, true, OPT_AT }, { "delay", 0, true, OPT_DELAY },
		{ "label", 0, true, OPT_LABEL }, { "history-key", 0, true, OPT_HISTORY_KEY },
	};
	bool command_form;
	int rc, i = parse(&c, argc, argv, opts, LEN(opts), submit_usage, submit_option, &o,
			  &command_form);
	if (i < 0)
		rc = i == -2 ? EXIT_OK : EXIT_USAGE;
	else if ((rc = open_client(&c)) == EXIT_OK)
		rc = submit(&c, &o, argc, argv, i, command_form);
	json_decref(o.task);
	json_decref(o.env);
	close_client(&c);
	return rc;
}

/* ---- cancel --------------------------------------------------------------- */

static const char cancel_usage[] =
	"usage: spoolrun cancel [--wait] [--ahead] [--config FILE] [--spool DIR] ID...\n"
	"\n"
	"Cancels each task ID and says what it did:\n"
	"  queued or deferred  cancelled: published as \"cancelled\" without running\n"
	"  running             cancelling: its whole tree gets TERM, then KILL after\n"
	"                      kill_grace; published as \"cancelled\"\n"
	"  finished            nothing to do; says how it ended (exit 0)\n"
	"  unknown             no such task (exit 66)\n"
	"The watcher acts on the request (cancel/ID); with no watcher running, it\n"
	"does so when one starts. --ahead cancels an id not submitted yet, as soon\n"
	"as it arrives. With --wait, waits for the result, prints it and exits as\n"
	"spoolrun wait does (a finished task's result is printed at once). Exit:\n"
	"the first failure to cancel (66 no such task), else 0 (or, with --wait,\n"
	"as spoolrun wait).\n"
	"Messages go to stdout, or to stderr with --wait.\n";

/* Puts cancel/ID in place: 0, or an exit code after saying why not. */
static int request_cancel(struct client *c, const char *id)
{
	int fd = openat(c->spool.cancel_fd, id, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
			O_NONBLOCK, 0644);
	if (fd < 0) {
		say(c, "cannot create %s/cancel/%s: %s", c->spool.root, id, strerror(errno));
		return EXIT_IOERR;
	}
	close(fd);
	return EXIT_OK;
}

/* A finished task: says how it ended; with --wait prints its result. */
static int report_finished(struct client *c, const char *id, bool wait, FILE *out)
{
	char name[SPOOL_NAME_SIZE], why[1024];
	json_t *r;
	spool_name_result(id, 1, name);
	snprintf(why, sizeof why, "%s/%s: gone (moved away meanwhile)", c->spool.results_path, name);
	if (lookup_result(&c->spool, name, &r, why, sizeof why) <= 0) {
		say(c, "%s", why);
		return EXIT_IOERR;
	}
	fprintf(out, "%s: already finished (%s); nothing to cancel\n", id,
		json_string_value(json_object_get(r, "status")));
	fflush(out);
	if (wait)
		print_compact(r);
	json_decref(r);
	return EXIT_OK;
}

/* Asks for id to be cancelled and says what that does, on out. */
static int cancel(struct client *c, const char *id, bool ahead, FILE *out)
{
	struct task_location loc;
	int pid, rc;
	lookup_task(&c->spool, id, c->cfg.max_task_bytes, &loc);
	if (loc.place == PLACE_FINISHED)
		return report_finished(c, id, false, out);
	if (loc.place == PLACE_NONE && !ahead) {
		say(c, "no such task %s in %s (to cancel it when it is submitted, use --ahead)", id,
		    c->spool.root);
		return EXIT_NOINPUT;
	}
	if ((rc = request_cancel(c, id)) != EXIT_OK)
		return rc;
	/* It may have finished meanwhile: then the request must not stay to
	 * cancel a later task that reuses the id. */
	struct task_location now;
	lookup_task(&c->spool, id, c->cfg.max_task_bytes, &now);
	if (now.place == PLACE_FINISHED) {
		if (unlinkat(c->spool.cancel_fd, id, 0) < 0 && errno != ENOENT)
			say(c, "cannot remove %s/cancel/%s: %s", c->spool.root, id, strerror(errno));
		if (loc.place == PLACE_NONE)
			return report_finished(c, id, false, out);
	}
	bool watched = lookup_watcher(&c->spool, &pid);
	if (loc.place == PLACE_NONE)
		fprintf(out, "%s: not submitted yet; it will be cancelled when it arrives\n", id);
	else if (loc.place == PLACE_ACTIVE)
		fprintf(out, "%s: cancelling (running): its processes get TERM, then KILL\n", id);
	else
		fprintf(out, "%s: cancelled (%s): it will not run\n", id, lookup_place_name(loc.place));
	if (!watched && now.place != PLACE_FINISHED)
		fprintf(out, "%s: no watcher runs on %s: the cancel takes effect when one starts\n",
			id, c->spool.root);
	fflush(out);
	return EXIT_OK;
}

/* Cancels every id; with --wait, then waits for all their results.
 * Exit: the first failure to cancel, else (--wait) as wait does. */
static int cancel_all(struct client *c, char **ids, int n, bool wait, bool ahead)
{
	int rc = EXIT_OK, waiting = 0;
	struct awaited *a = calloc((size_t)n, sizeof *a);
	if (!a)
		return EXIT_OSERR;
	for (int i = 0; i < n; i++) {
		struct task_location loc;
		lookup_task(&c->spool, ids[i], c->cfg.max_task_bytes, &loc);
		int one = loc.place == PLACE_FINISHED ? report_finished(c, ids[i], wait,
								       wait ? stderr : stdout)
						      : cancel(c, ids[i], ahead, wait ? stderr : stdout);
		if (one != EXIT_OK && rc == EXIT_OK)
			rc = one;
		if (one == EXIT_OK && loc.place != PLACE_FINISHED)
			a[waiting++].id = ids[i];
	}
	if (wait && waiting && rc == EXIT_OK)
		rc = wait_for_results(c, a, waiting, -1);
	free(a);
	return rc;
}

int client_cancel(int argc, char **argv)
{
	struct client c = { 0 };
	bool flags[N_OPT_KEYS] = { 0 };
	static const struct cliopt opts[] = { { "wait", 'w', false, OPT_WAIT },
					      { "ahead", 0, false, OPT_AHEAD } };
	int i = parse(&c, argc, argv, opts, LEN(opts), cancel_usage, set_flag, flags, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (argc == i)
		return cliopt_error("cancel", "needs at least one task ID");
	int rc = check_ids("cancel", argv + i, argc - i);
	if (rc == EXIT_OK && (rc = open_client(&c)) == EXIT_OK)
		rc = cancel_all(&c, argv + i, argc - i, flags[OPT_WAIT], flags[OPT_AHEAD]);
	close_client(&c);
	return rc;
}

/* ---- validate ------------------------------------------------------------- */

static const char validate_usage[] =
	"usage: spoolrun validate [--config FILE] FILE...\n"
	"\n"
	"Checks task files with the watcher's own validator, without submitting\n"
	"them: prints \"FILE: ok\" for each valid one and \"FILE: error\" (naming the\n"
	"field, or the line and column of bad JSON) for each invalid one. Exit 0\n"
	"when all are valid, 65 when any is not, 66 when one cannot be read.\n"
	"--config matters: it sets the defaults and limits tasks are checked against.\n";

static int validate_one(struct client *c, const char *path)
{
	struct taskfile tf;
	enum taskfile_stage stage = taskfile_load_path(&tf, path, &c->cfg);
	int rc = EXIT_OK;
	/* The message opens with the file's base name: say the path once. */
	const char *msg = tf.error.message;
	size_t n = strlen(tf.name);
	if (n && !strncmp(msg, tf.name, n) && !strncmp(msg + n, ": ", 2))
		msg += n + 2;
	if (stage == TASKFILE_OK)
		printf("%s: ok\n", path);
	else if (stage == TASKFILE_UNREADABLE) {
		fprintf(stderr, "%s: %s\n", path, msg);
		rc = EXIT_NOINPUT;
	} else {
		/* The id says where the watcher would file the rejection. */
		fprintf(stderr, "%s: %s (rejected as id \"%s\")\n", path, msg, tf.id);
		rc = EXIT_DATAERR;
	}
	taskfile_clear(&tf);
	return rc;
}

int client_validate(int argc, char **argv)
{
	struct client c = { 0 };
	int i = parse(&c, argc, argv, NULL, 0, validate_usage, set_flag, NULL, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (i == argc)
		return cliopt_error("validate", "needs at least one FILE");
	int rc = load_config(&c);
	for (; rc != EXIT_CONFIG && i < argc; i++) {
		int one = validate_one(&c, argv[i]);
		if (one == EXIT_NOINPUT || (one != EXIT_OK && rc == EXIT_OK))
			rc = one;
	}
	config_clear(&c.cfg);
	return rc;
}

/* ---- tail ----------------------------------------------------------------- */

/* One log being followed: copies what was added since the last call. */
struct followed {
	const char *suffix;
	int out;      /* where it goes: 1 or 2 */
	int fd;
	off_t offset;
	bool seen;    /* the log exists (or existed) */
	long lines;   /* -n: start at the last this many lines; < 0 all */
};

/* Where the last n lines of fd begin (a final newline ends the last line,
 * it does not start an empty one). */
static off_t last_lines_start(int fd, long n)
{
	struct stat st;
	char buf[65536];
	if (fstat(fd, &st) < 0 || st.st_size == 0)
		return 0;
	off_t end = st.st_size, pos = end;
	long seen = 0;
	while (pos > 0) {
		size_t chunk = pos < (off_t)sizeof buf ? (size_t)pos : sizeof buf;
		ssize_t got = pread(fd, buf, chunk, pos - (off_t)chunk);
		if (got != (ssize_t)chunk)
			return 0;
		for (size_t k = chunk; k-- > 0;)
			if (buf[k] == '\n' && pos - (off_t)chunk + (off_t)k != end - 1 && ++seen >= n)
				return pos - (off_t)chunk + (off_t)k + 1;
		pos -= (off_t)chunk;
	}
	return 0;
}

/* -1 when the log is there but is not a log (said); 0 otherwise. */
static int copy_new(struct client *c, const char *id, struct followed *f)
{
	char why[1024];
	if (f->fd < 0) {
		char name[SPOOL_NAME_SIZE];
		if (spool_name_log(id, f->suffix, name) < 0)
			return 0;
		f->fd = lookup_open_log(&c->spool, name, why, sizeof why);
		if (f->fd < 0 && errno == EINVAL) {
			say(c, "%s", why);
			return -1;
		}
		if (f->fd < 0)
			return 0;
		f->seen = true;
		if (f->lines >= 0)
			f->offset = f->lines ? last_lines_start(f->fd, f->lines) : lseek(f->fd, 0, SEEK_END);
	}
	struct stat st;
	if (fstat(f->fd, &st) == 0 && st.st_size < f->offset)
		f->offset = 0; /* truncated: a new attempt started */
	char buf[65536];
	ssize_t n;
	while ((n = pread(f->fd, buf, sizeof buf, f->offset)) > 0) {
		if (xwrite_all(f->out, buf, (size_t)n) < 0)
			return 0;
		f->offset += n;
	}
	return 0;
}

static int copy_both(struct client *c, const char *id, struct followed f[2])
{
	return copy_new(c, id, &f[0]) < 0 || copy_new(c, id, &f[1]) < 0 ? -1 : 0;
}

static const char tail_usage[] =
	"usage: spoolrun tail [-f] [-n N] [--config FILE] [--spool DIR] ID\n"
	"\n"
	"Prints task ID's output from logs/ID.stdout (to stdout) and logs/ID.stderr\n"
	"(to stderr); for a finished task whose logs are gone, the output kept in\n"
	"its result. With -f (--follow), keeps printing what the task writes until\n"
	"its result is published (waiting for it to start if it is queued).\n"
	"With -n N (--lines N), starts at the last N lines of each stream.\n"
	"Exit 0 (also for a task that wrote nothing, or has not started), 66 when\n"
	"there is no such task, 74 when a log or the result is not a regular file.\n";

/* 1 when the result is there, 0 not yet, -1 when it is no result. */
static int result_there(struct client *c, const char *id)
{
	char name[SPOOL_NAME_SIZE], why[1024];
	json_t *r;
	spool_name_result(id, 1, name);
	int got = lookup_result(&c->spool, name, &r, why, sizeof why);
	if (got < 0)
		say(c, "%s", why);
	json_decref(r);
	return got;
}

static int follow_logs(struct client *c, const char *id, struct followed f[2])
{
	struct watch w;
	if (watch_open(&w) < 0 ||
	    watch_add(&w, c->spool.logs_path, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE) < 0 ||
	    watch_add(&w, c->spool.results_path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		say(c, "cannot watch the spool: %s", strerror(errno));
		watch_close(&w);
		return EXIT_OSERR;
	}
	int rc = EXIT_OK;
	for (;;) {
		int done = result_there(c, id);
		if (copy_both(c, id, f) < 0 || done < 0) {
			rc = EXIT_IOERR;
			break;
		}
		if (done)
			break;
		struct pollfd p = { w.fd, POLLIN, 0 };
		if (poll(&p, 1, -1) > 0) {
			char buf[4096];
			while (read(w.fd, buf, sizeof buf) > 0)
				;
		}
	}
	watch_close(&w);
	return rc;
}

/* The output a result keeps, for a finished task whose logs are gone. */
static int print_from_result(struct client *c, const char *id)
{
	char name[SPOOL_NAME_SIZE], why[1024];
	json_t *r;
	spool_name_result(id, 1, name);
	if (lookup_result(&c->spool, name, &r, why, sizeof why) < 0) {
		say(c, "%s", why);
		return EXIT_IOERR;
	}
	json_t *out = json_object_get(r, "stdout"), *err = json_object_get(r, "stderr");
	/* The kept output may hold NUL bytes: write lengths, not C strings. */
	if (json_is_string(out))
		xwrite_all(STDOUT_FILENO, json_string_value(out), json_string_length(out));
	if (json_is_string(err))
		xwrite_all(STDERR_FILENO, json_string_value(err), json_string_length(err));
	json_decref(r);
	return EXIT_OK;
}

static int tail(struct client *c, const char *id, bool follow, long lines)
{
	struct followed f[2] = { { "stdout", STDOUT_FILENO, -1, 0, false, lines },
				 { "stderr", STDERR_FILENO, -1, 0, false, lines } };
	struct task_location loc;
	int rc = EXIT_OK;
	lookup_task(&c->spool, id, c->cfg.max_task_bytes, &loc);
	if (loc.place == PLACE_NONE) {
		say(c, "no such task %s in %s", id, c->spool.root);
		rc = EXIT_NOINPUT;
	} else if (follow)
		rc = follow_logs(c, id, f);
	else if (copy_both(c, id, f) < 0)
		rc = EXIT_IOERR;
	else if (!f[0].seen && !f[1].seen && loc.place == PLACE_FINISHED)
		rc = print_from_result(c, id);
	else if (!f[0].seen && !f[1].seen && loc.place != PLACE_ACTIVE)
		say(c, "%s is %s and has not written anything yet", id, lookup_place_name(loc.place));
	for (int k = 0; k < 2; k++)
		if (f[k].fd >= 0)
			close(f[k].fd);
	return rc;
}

struct tail_opts {
	bool follow;
	long lines;
};

static int tail_option(void *ctx, const struct cliopt *opt, const char *value)
{
	struct tail_opts *o = ctx;
	char *end;
	if (opt->key == OPT_FOLLOW) {
		o->follow = true;
		return 0;
	}
	errno = 0;
	o->lines = strtol(value, &end, 10);
	if (!*value || *end || errno || o->lines < 0)
		return cliopt_bad_value("tail", opt, value, "is not a number of lines (0 or more)");
	return 0;
}

int client_tail(int argc, char **argv)
{
	struct client c = { 0 };
	struct tail_opts o = { false, -1 };
	static const struct cliopt opts[] = { { "follow", 'f', false, OPT_FOLLOW },
					      { "lines", 'n', true, OPT_LAST } };
	int i = parse(&c, argc, argv, opts, LEN(opts), tail_usage, tail_option, &o, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return cliopt_error("tail", "needs one task ID");
	int rc = check_ids("tail", argv + i, 1);
	if (rc == EXIT_OK && (rc = open_client(&c)) == EXIT_OK)
		rc = tail(&c, argv[i], o.follow, o.lines);
	close_client(&c);
	return rc;
}

/* ---- status --------------------------------------------------------------- */

struct status_opts {
	struct status_view view;
	bool json;
	const char *label;
};

static int status_option(void *ctx, const struct cliopt *opt, const char *value)
{
	struct status_opts *o = ctx;
	char *end;
	switch (opt->key) {
	case OPT_JSON: o->json = true; return 0;
	case OPT_LABEL: o->label = value; return 0;
	case OPT_ALL: o->view.finished = -1; return 0;
	case OPT_FAILED: o->view.only_failed = true; return 0;
	case OPT_LAST: {
		errno = 0;
		long n = strtol(value, &end, 10);
		if (!*value || *end || errno || n < 0 || n > 1000000)
			return cliopt_bad_value("status", opt, value, "is not a count from 0 to 1000000");
		o->view.finished = (int)n;
		return 0;
	}
	}
	return -1;
}

static const char status_usage[] =
	"usage: spoolrun status [--all | -n N] [--failed] [--label L] [--json] [--config FILE]\n"
	"                       [--spool DIR] [ID...]\n"
	"\n"
	"Shows whether a watcher runs on the spool, then one table row per task:\n"
	"running (with pid, elapsed time and output so far, or \"interrupted\" when\n"
	"no watcher runs), queued in run order, deferred (when it runs again), and\n"
	"the 10 latest finished (-n N: the N latest; --all: every one; --failed:\n"
	"only those that did not succeed). Colour only on a terminal, never with\n"
	"NO_COLOR set. --json prints one JSON object instead, for programs.\n"
	"With IDs, only those tasks (and every result of each). Exit 66 when there\n"
	"is no spool, or no task of one of the IDs. A queued task that waits says\n"
	"for what: a dependency's id or its not_before time; --label L shows only\n"
	"the tasks labelled L (docs/lifecycle.md).\n";

int client_status(int argc, char **argv)
{
	struct client c = { 0 };
	struct status_opts o = { .view = { .finished = STATUS_DEFAULT_FINISHED } };
	static const struct cliopt opts[] = {
		{ "json", 'j', false, OPT_JSON }, { "all", 'a', false, OPT_ALL },
		{ "failed", 0, false, OPT_FAILED }, { "last", 'n', true, OPT_LAST },
		{ "label", 0, true, OPT_LABEL },
	};
	int i = parse(&c, argc, argv, opts, LEN(opts), status_usage, status_option, &o, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	int rc = check_ids("status", argv + i, argc - i);
	if (i < argc)
		o.view.finished = -1; /* every result of the ids asked about */
	if (rc == EXIT_OK && (rc = open_client(&c)) == EXIT_OK) {
		struct status_report *st = lifecycle_status_collect(&c.spool, c.cfg.max_task_bytes, &o.view);
		int missing = st && i < argc ? status_keep_ids(st, argv + i, argc - i) : 0;
		if (st && o.label)
			lifecycle_keep_label(st, o.label);
		if (missing) {
			for (int k = i; k < argc; k++) {
				struct task_location loc;
				lookup_task(&c.spool, argv[k], c.cfg.max_task_bytes, &loc);
				if (loc.place == PLACE_NONE)
					say(&c, "no such task %s in %s", argv[k], c.spool.root);
			}
			rc = EXIT_NOINPUT;
		}
		if (!st)
			rc = EXIT_OSERR;
		else if (o.json)
			rc = status_print_json(st, stdout);
		else
			status_print_table(st, stdout, status_use_colour(STDOUT_FILENO));
		status_free(st);
	}
	close_client(&c);
	return rc;
}

/* ---- resubmit, pause, resume (docs/lifecycle.md) -------------------------- */

static bool id_taken(struct client *c, const char *id)
{
	struct task_location loc;
	lookup_task(&c->spool, id, c->cfg.max_task_bytes, &loc);
	return loc.place != PLACE_NONE;
}

/* The default id of a resubmission: ID.r2, ID.r3, ... (of the id without
 * its own ".rN", so resubmitting ID.r2 gives ID.r3): the first not queued,
 * running, deferred or finished. */
static int next_resubmit_id(struct client *c, const char *id, char out[TASK_ID_MAX + 1])
{
	size_t base = strlen(id);
	const char *dot = strrchr(id, '.');
	if (dot && dot[1] == 'r' && dot[2] && strspn(dot + 2, "0123456789") == strlen(dot + 2))
		base = (size_t)(dot - id);
	for (unsigned n = 2; n < 100000; n++) {
		char suffix[16];
		int slen = snprintf(suffix, sizeof suffix, ".r%u", n);
		size_t keep = base + (size_t)slen > TASK_ID_MAX ? TASK_ID_MAX - (size_t)slen : base;
		snprintf(out, TASK_ID_MAX + 1, "%.*s%s", (int)keep, id, suffix);
		if (!id_taken(c, out))
			return 0;
	}
	return -1;
}

struct resubmit_opts {
	const char *id;
	bool wait;
};

static int resubmit_option(void *ctx, const struct cliopt *opt, const char *value)
{
	struct resubmit_opts *o = ctx;
	if (opt->key == OPT_WAIT)
		return o->wait = true, 0;
	if (!task_id_valid(value, strlen(value)))
		return cliopt_bad_value("resubmit", opt, value, "is not a valid task id");
	o->id = value;
	return 0;
}

static const char resubmit_usage[] =
	"usage: spoolrun resubmit [--id NEW] [--wait] [--config FILE] [--spool DIR] ID\n"
	"\n"
	"Submits again the task echoed in results/ID.json (which is kept), under\n"
	"the id NEW, by default ID.r2 (then ID.r3, ...: the first free one; the\n"
	"resubmission of ID.r2 is ID.r3). Prints the new id. Works for rejected\n"
	"tasks too when their file was JSON: the task is validated again first\n"
	"(an invalid \"id\" is simply replaced). Exit 66 when ID has no result,\n"
	"65 when its task cannot be submitted (not JSON, or invalid: the error\n"
	"names the field), 73 when NEW is taken; --wait as for submit.\n";

/* The echoed task of results/ID.json, under its new id, as text. */
static int resubmission(struct client *c, const char *id, const char *new_id, char **text)
{
	char name[SPOOL_NAME_SIZE], why[512];
	json_t *r = NULL;
	spool_name_result(id, 1, name);
	int found = lookup_result(&c->spool, name, &r, why, sizeof why);
	if (found <= 0) {
		if (found < 0)
			say(c, "%s", why);
		else
			say(c, "no result for %s in %s", id, c->spool.results_path);
		return found < 0 ? EXIT_IOERR : EXIT_NOINPUT;
	}
	json_t *task = json_deep_copy(json_object_get(r, "task"));
	json_decref(r);
	if (!json_is_object(task)) {
		say(c, "%s was rejected before it could be read as a JSON object: there is no task "
		    "to submit again", id);
		json_decref(task);
		return EXIT_DATAERR;
	}
	json_object_set_new(task, "id", json_string(new_id));
	*text = json_dumps(task, JSON_INDENT(2));
	json_decref(task);
	return *text ? EXIT_OK : EXIT_SOFTWARE;
}

static int resubmit(struct client *c, const struct resubmit_opts *o, const char *id)
{
	char new_id[TASK_ID_MAX + 1], name[SPOOL_NAME_SIZE], *text = NULL;
	if (!o->id && next_resubmit_id(c, id, new_id) < 0) {
		say(c, "no free id %s.rN; give one with --id", id);
		return EXIT_CANTCREAT;
	}
	if (o->id)
		snprintf(new_id, sizeof new_id, "%s", o->id);
	if (o->id && id_taken(c, new_id)) {
		say(c, "%s is already queued, running, deferred or finished; ids must be unique",
		    new_id);
		return EXIT_CANTCREAT;
	}
	int rc = resubmission(c, id, new_id, &text);
	struct task t = { 0 };
	struct task_error e;
	ino_t ino = 0;
	spool_name_result(new_id, 1, name); /* ID.json, the task file's name too */
	if (rc == EXIT_OK && task_parse(text, strlen(text), name, &c->cfg.task, &t, &e) < 0) {
		say(c, "the task of %s is not valid: %s", id, e.message);
		rc = EXIT_DATAERR;
	} else if (rc == EXIT_OK && (rc = write_task(c, name, text, strlen(text), &ino)) == EXIT_OK)
		rc = announce(c, new_id, name, ino, o->wait);
	task_clear(&t);
	free(text);
	return rc;
}

int client_resubmit(int argc, char **argv)
{
	struct client c = { 0 };
	struct resubmit_opts o = { 0 };
	static const struct cliopt opts[] = { { "id", 'i', true, OPT_ID },
					      { "wait", 'w', false, OPT_WAIT } };
	int i = parse(&c, argc, argv, opts, LEN(opts), resubmit_usage, resubmit_option, &o, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return cliopt_error("resubmit", "needs one task ID");
	int rc = check_ids("resubmit", argv + i, 1);
	if (rc == EXIT_OK && (rc = open_client(&c)) == EXIT_OK) {
		if (o.wait)
			catch_interrupts();
		rc = resubmit(&c, &o, argv[i]);
	}
	close_client(&c);
	return rc;
}

static const char pause_usage[] =
	"usage: spoolrun pause [--wait] [--timeout S] [--config FILE] [--spool DIR]\n"
	"       spoolrun resume [--config FILE] [--spool DIR]\n"
	"\n"
	"pause creates the spool's pause file: the watcher starts no new task\n"
	"(running ones go on). With --wait, returns once nothing runs any more (at\n"
	"once when no watcher runs); --timeout S gives up after S seconds (exit 69).\n"
	"resume removes the pause file: tasks start again.\n";

static int pause_option(void *ctx, const struct cliopt *opt, const char *value)
{
	struct wait_opts *o = ctx;
	if (opt->key == OPT_WAIT)
		return o->all = true, 0; /* all: --wait */
	if (config_parse_seconds(value, 1e9, &o->timeout) == 0)
		return 0;
	return cliopt_bad_value("pause", opt, value, "is not a number of seconds (0 to 1e9)");
}

/* How many tasks run now: 0 as well when no watcher runs. */
static size_t running_now(struct client *c)
{
	struct status_view view = { .finished = 0 };
	struct status_report *st = lifecycle_status_collect(&c->spool, c->cfg.max_task_bytes, &view);
	size_t n = 0;
	for (size_t i = 0; st && st->watcher_running && i < st->n; i++)
		n += st->rows[i].state == STATUS_RUNNING;
	status_free(st);
	return n;
}

/* Waits until nothing runs: inotify on active/ says when a task leaves it;
 * a check every second also notices a watcher that went away. */
static int wait_until_idle(struct client *c, double timeout_s)
{
	struct watch w;
	char active[4096];
	snprintf(active, sizeof active, "%s/active", c->spool.root);
	if (watch_open(&w) < 0 || watch_add(&w, active, IN_MOVED_FROM | IN_DELETE) < 0) {
		say(c, "cannot watch %s: %s", active, strerror(errno));
		watch_close(&w);
		return EXIT_OSERR;
	}
	int64_t deadline = timeout_s < 0 ? INT64_MAX
					 : time_monotonic_ns() + time_seconds_to_ns(timeout_s);
	int rc = EXIT_OK;
	while (running_now(c) > 0) {
		int64_t now = time_monotonic_ns();
		if (now >= deadline) {
			say(c, "paused, but tasks still run");
			rc = EXIT_UNAVAILABLE;
			break;
		}
		int64_t left_ms = (deadline - now) / NS_PER_MS + 1;
		struct pollfd p = { w.fd, POLLIN, 0 };
		if (poll(&p, 1, left_ms < 1000 ? (int)left_ms : 1000) > 0) {
			char buf[4096];
			while (read(w.fd, buf, sizeof buf) > 0)
				;
		}
	}
	watch_close(&w);
	return rc;
}

int client_pause(int argc, char **argv)
{
	struct client c = { 0 };
	struct wait_opts o = { .timeout = -1 };
	static const struct cliopt opts[] = { { "wait", 'w', false, OPT_WAIT },
					      { "timeout", 't', true, OPT_TIMEOUT } };
	int i = parse(&c, argc, argv, opts, LEN(opts), pause_usage, pause_option, &o, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (i != argc)
		return cliopt_error("pause", "takes no operands, got '%s'", argv[i]);
	int rc = open_client(&c);
	if (rc == EXIT_OK) {
		int fd = openat(c.spool.root_fd, "pause", O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
				0644);
		if (fd < 0) {
			say(&c, "cannot create %s/pause: %s", c.spool.root, strerror(errno));
			rc = EXIT_IOERR;
		} else {
			close(fd);
			if (o.all)
				rc = wait_until_idle(&c, o.timeout);
		}
	}
	close_client(&c);
	return rc;
}

int client_resume(int argc, char **argv)
{
	struct client c = { 0 };
	int i = parse(&c, argc, argv, NULL, 0, pause_usage, set_flag, NULL, NULL);
	if (i < 0)
		return i == -2 ? EXIT_OK : EXIT_USAGE;
	if (i != argc)
		return cliopt_error("resume", "takes no operands, got '%s'", argv[i]);
	int rc = open_client(&c);
	if (rc == EXIT_OK && unlinkat(c.spool.root_fd, "pause", 0) < 0 && errno != ENOENT) {
		say(&c, "cannot remove %s/pause: %s", c.spool.root, strerror(errno));
		rc = EXIT_IOERR;
	}
	close_client(&c);
	return rc;
}
