#define _GNU_SOURCE
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "history.h"
#include "log.h"
#include "owner.h"
#include "result.h"
#include "run.h"
#include "signals.h"
#include "task.h"
#include "taskfile.h"


char **node_argv(const char *self, const char *config, const char *root, const char *name,
		 int attempt)
{
	char **v = calloc(12, sizeof *v);
	if (!v)
		return NULL;
	size_t n = 0;
	bool ok = (v[n++] = strdup(self)) && (v[n++] = strdup("node-run")) &&
		  (v[n++] = strdup("--spool")) && (v[n++] = strdup(root));
	if (ok && config)
		ok = (v[n++] = strdup("--config")) && (v[n++] = strdup(config));
	if (ok)
		ok = (v[n++] = strdup("--attempt")) && asprintf(&v[n++], "%d", attempt) >= 0;
	if (ok)
		ok = (v[n++] = strdup(name)) != NULL;
	if (!ok) {
		node_argv_free(v);
		errno = ENOMEM;
		return NULL;
	}
	return v;
}

void node_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

json_t *node_result_load(struct spool *s, const char *name)
{
	char file[SPOOL_NAME_SIZE], why[64];
	if (spool_name_node_result(name, false, file) < 0)
		return NULL;
	char *buf;
	size_t len;
	struct stat st;
	if (spool_read_task(s->active_fd, file, SIZE_MAX / 4, false, &buf, &len, &st, why,
			    sizeof why) < 0)
		return NULL;
	json_t *doc = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	free(buf);
	if (doc && !json_is_object(doc)) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

void node_result_remove(struct spool *s, const char *name)
{
	char file[SPOOL_NAME_SIZE];
	if (spool_name_node_result(name, false, file) == 0 && unlinkat(s->active_fd, file, 0) < 0 &&
	    errno != ENOENT)
		log_warn("cannot remove active/%s", file);
}

/* ---- node-run ---------------------------------------------------------- */

struct node_options {
	const char *spool, *config, *name;
	int attempt;
};

static int node_usage(const char *what)
{
	fprintf(stderr, "spoolrun node-run: %s (internal: the Slurm executor's batch jobs run it)\n", what);
	return EXIT_USAGE;
}

static int parse_node_options(int argc, char **argv, struct node_options *o)
{
	static const struct option longopts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "attempt", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof *o);
	o->attempt = 1;
	opterr = 0;
	optind = 1;
	int ch;
	char *end;
	while ((ch = getopt_long(argc, argv, "+s:c:a:", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o->spool = optarg; break;
		case 'c': o->config = optarg; break;
		case 'a':
			errno = 0;
			long n = strtol(optarg, &end, 10);
			if (*end || errno || n < 1 || n > INT_MAX)
				return node_usage("--attempt needs a whole number >= 1");
			o->attempt = (int)n;
			break;
		default: return node_usage("unknown option or missing value");
		}
	}
	if (!o->spool || optind != argc - 1)
		return node_usage("needs --spool ROOT and one task file NAME");
	o->name = argv[optind];
	if (!spool_is_task_name(o->name) || strchr(o->name, '/'))
		return node_usage("NAME must be a task file name in active/");
	return 0;
}

struct node_run {
	struct spool *spool;
	const char *id;
};

static int node_open_log(void *ctx, const char *stream)
{
	struct node_run *nr = ctx;
	return spool_open_log(nr->spool, nr->id, stream);
}

/* Slurm ends a job with SIGTERM (scancel, its own time limit, preemption):
 * the task is killed like on a stop of the watcher, and what it wrote so
 * far still reaches the result. */
static bool node_on_signal(void *ctx, int sig)
{
	(void)ctx;
	return sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
}

/* Leaves result as active/.NAME.node-result: written under a temporary
 * name in active/ itself (the watcher empties tmp/ when it starts, and may
 * start while this job runs), fsynced, renamed. */
static int leave_result(struct spool *s, const char *name, const json_t *result)
{
	char file[SPOOL_NAME_SIZE], tmp[SPOOL_NAME_SIZE];
	if (spool_name_node_result(name, false, file) < 0 || spool_name_node_result(name, true, tmp) < 0)
		return -1;
	size_t len;
	char *text = result_dump(result, &len);
	if (!text)
		return -1;
	unlinkat(s->active_fd, tmp, 0);
	int rc = publish_file(s->active_fd, tmp, s->active_fd, file, text, len, s->file_mode,
			      s->durable);
	free(text);
	return rc < 0 ? -1 : 0;
}

/* Runs the parsed task t of active/name and leaves its result. */
static int node_run_task(struct spool *s, const struct config *cfg, const struct node_options *no,
			 const struct task *t, const struct identity *as_user)
{
	int sigfd = signals_setup();
	if (sigfd < 0 || run_init() < 0) {
		log_err("node-run: cannot set up signals");
		return EXIT_OSERR;
	}
	struct node_run nr = { s, t->id };
	struct run_options opt = {
		.max_output = cfg->max_output, .max_log = cfg->max_log, .open_log = node_open_log,
		.sync_logs = s->durable, .ctx = &nr, .as_user = as_user,
	};
	spool_remove_logs(s, t->id);
	/* An auto timeout from the spool's history, as the watcher settled it
	 * for sbatch's time limit. */
	struct task settled = *t;
	struct history h;
	bool hist = t->timeout_auto && history_open(&h, s->root_fd, false) == 0;
	history_settle_timeout(hist ? &h : NULL, &cfg->task, &settled);
	if (hist)
		history_close(&h);
	t = &settled;
	struct run_outcome o;
	if (run_task(t, &opt, sigfd, node_on_signal, NULL, &o) < 0)
		log_err("node-run: %s: the runner failed while running it; the task was killed", t->id);
	char out_path[4096], err_path[4096];
	snprintf(out_path, sizeof out_path, "%s/%s.stdout", s->logs_path, t->id);
	snprintf(err_path, sizeof err_path, "%s/%s.stderr", s->logs_path, t->id);
	struct result_context ctx = {
		.task_file = no->name, .attempt = no->attempt,
		.stdout_log = o.out.log_created ? out_path : NULL,
		.stderr_log = o.err.log_created ? err_path : NULL,
	};
	json_t *result = result_from_run(t, &o, &ctx);
	int rc = EXIT_OK;
	if (!result || leave_result(s, no->name, result) < 0) {
		log_err("node-run: %s: cannot leave the result in %s/active", t->id, s->root);
		rc = EXIT_IOERR;
	}
	json_decref(result);
	run_outcome_clear(&o);
	close(sigfd);
	return rc;
}

/* Reads, checks and parses active/name through the watcher's own pipeline
 * (taskfile.h: the same limits, owner policy and parser as before it was
 * submitted), then runs it. */
static int node_run_file(struct spool *s, const struct config *cfg, const struct node_options *no)
{
	struct owner_policy owners;
	char why[400];
	if (owner_policy_init(&owners, cfg, why, sizeof why) < 0) {
		log_errx("node-run: %s", why);
		return EXIT_CONFIG;
	}
	struct taskfile tf;
	int rc;
	switch (taskfile_load_at(&tf, s->active_fd, no->name, cfg, &owners)) {
	case TASKFILE_OK:
		rc = node_run_task(s, cfg, no, &tf.task, tf.as_user ? &tf.user : NULL);
		break;
	case TASKFILE_UNREADABLE:
		log_errx("node-run: %s", tf.error.message);
		rc = EXIT_NOINPUT;
		break;
	default:
		log_errx("node-run: %s", tf.error.message);
		rc = EXIT_DATAERR;
		break;
	}
	taskfile_clear(&tf);
	owner_policy_clear(&owners);
	return rc;
}

int node_run_main(int argc, char **argv)
{
	struct node_options no;
	if (parse_node_options(argc, argv, &no) < 0)
		return EXIT_USAGE;
	char host[256] = "?";
	gethostname(host, sizeof host - 1);
	/* Before anything is created: a node that does not share the spool
	 * must not grow a spool of its own. */
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/active/%s", no.spool, no.name);
	if (lstat(path, &st) < 0) {
		fprintf(stderr, "spoolrun node-run: %s: not visible on node %s (%s): the spool must be "
			"on a file system every Slurm node shares, at the same path\n", path, host,
			strerror(errno));
		return EXIT_NOINPUT;
	}
	struct config cfg;
	if (config_setup(&cfg, no.config, "spoolrun node-run") < 0)
		return EXIT_CONFIG;
	cfg.task.slurm_allowed = true; /* the watcher took it with executor = slurm */
	char err[1024];
	struct spool s;
	int rc;
	if (spool_open(&s, &cfg, no.spool, err, sizeof err) < 0) {
		fprintf(stderr, "spoolrun node-run: %s\n", err);
		rc = EXIT_IOERR;
	} else {
		node_result_remove(&s, no.name); /* an earlier attempt's, never this one's */
		rc = node_run_file(&s, &cfg, &no);
		spool_close(&s);
	}
	config_clear(&cfg);
	return rc;
}
