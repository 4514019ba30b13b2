#define _GNU_SOURCE
#include "clean.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#define MARKERS "cleaned"

bool clean_selects(const struct clean_filter *f, const char *status, int64_t finished_ms)
{
	if (finished_ms >= f->cutoff_ms)
		return false;
	if (!f->nstatuses)
		return true;
	for (size_t i = 0; i < f->nstatuses; i++)
		if (status && !strcmp(status, f->statuses[i]))
			return true;
	return false;
}

int clean_parse_time(const char *s, int64_t *ms)
{
	struct tm tm = { 0 };
	const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!p)
		return -1;
	int64_t frac = 0, scale = 1000;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	int64_t offset = 0;
	if (*p == 'Z' && !p[1])
		offset = 0;
	else {
		int hh, mm;
		char sign;
		if (sscanf(p, "%c%2d:%2d", &sign, &hh, &mm) != 3 || (sign != '+' && sign != '-') ||
		    strlen(p) != 6)
			return -1;
		offset = (sign == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
	}
	time_t t = timegm(&tm);
	*ms = ((int64_t)t - offset) * 1000 + frac;
	return 0;
}

/* What a result says about itself: the fields clean needs. */
struct seen {
	json_t *doc;
	const char *id, *status, *task_file, *out_log, *err_log, *rejected;
	int64_t finished_ms;
};

static int load(struct spool *s, const char *name, struct seen *r)
{
	char *buf, why[512];
	size_t len;
	struct stat st;
	memset(r, 0, sizeof *r);
	if (spool_read_task(s->results_fd, name, SIZE_MAX / 4, false, &buf, &len, &st, why,
			    sizeof why) < 0)
		return -1;
	r->doc = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	free(buf);
	const char *fin = json_string_value(json_object_get(r->doc, "finished_at"));
	r->id = json_string_value(json_object_get(r->doc, "id"));
	r->status = json_string_value(json_object_get(r->doc, "status"));
	r->task_file = json_string_value(json_object_get(r->doc, "task_file"));
	r->out_log = json_string_value(json_object_get(r->doc, "stdout_log"));
	r->err_log = json_string_value(json_object_get(r->doc, "stderr_log"));
	r->rejected = json_string_value(json_object_get(r->doc, "rejected_file"));
	/* A result that is not ours to read (foreign, damaged): its file time. */
	if (!fin || clean_parse_time(fin, &r->finished_ms) < 0)
		r->finished_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / NS_PER_MS;
	return 0;
}

/* base name of path when path is dir/base, else NULL: only files the
 * spool itself placed are removed. */
static const char *inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	if (!path || strncmp(path, dir, n) || path[n] != '/' || strchr(path + n + 1, '/'))
		return NULL;
	return path + n + 1;
}

static void remove_at(int dirfd, const char *name, const char *path, bool dry)
{
	if (!dry && unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		log_warn("clean: cannot remove %s", path);
}

static void leave_marker(struct spool *s, const char *id)
{
	if (mkdirat(s->root_fd, MARKERS, 0755) < 0 && errno != EEXIST)
		return;
	int dfd = openat(s->root_fd, MARKERS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	int fd = openat(dfd, id, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	close(dfd);
}

struct run_ctx {
	struct spool *s;
	const struct clean_filter *f;
	bool dry;
	long count;
	void (*fn)(void *ctx, const struct clean_item *item);
	void *ctx;
};

static void clean_one(void *vctx, const char *name)
{
	struct run_ctx *c = vctx;
	struct spool *s = c->s;
	size_t n = strlen(name);
	struct seen r;
	struct stat st;
	if (name[0] == '.' || n < 6 || strcmp(name + n - 5, ".json") || load(s, name, &r) < 0)
		return;
	/* A result whose task file is still in active/: published a moment
	 * ago, its bookkeeping not done; recovery still needs it. */
	if (!clean_selects(c->f, r.status, r.finished_ms) ||
	    (r.task_file && fstatat(s->active_fd, r.task_file, &st, AT_SYMLINK_NOFOLLOW) == 0)) {
		json_decref(r.doc);
		return;
	}
	char own[TASK_ID_MAX + 16], result_path[4096];
	bool plain = r.id && snprintf(own, sizeof own, "%s.json", r.id) > 0 && !strcmp(own, name);
	snprintf(result_path, sizeof result_path, "%s/%s", s->results_path, name);
	struct clean_item item = { .result_name = name, .id = r.id ? r.id : name,
				   .status = r.status ? r.status : "", .finished_ms = r.finished_ms };
	const char *base;
	if (plain && (base = inside(s->logs_path, r.out_log)))
		remove_at(s->logs_fd, base, item.files[item.nfiles++] = r.out_log, c->dry);
	if (plain && (base = inside(s->logs_path, r.err_log)))
		remove_at(s->logs_fd, base, item.files[item.nfiles++] = r.err_log, c->dry);
	if ((base = inside(s->rejected_path, r.rejected)) &&
	    fstatat(s->rejected_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
		remove_at(s->rejected_fd, base, item.files[item.nfiles++] = r.rejected, c->dry);
	remove_at(s->results_fd, name, item.files[item.nfiles++] = result_path, c->dry);
	if (plain && !c->dry)
		leave_marker(s, r.id);
	c->count++;
	if (c->fn)
		c->fn(c->ctx, &item);
	json_decref(r.doc);
}

/* Markers older than the cutoff go with the results they stood for. */
static void clean_markers(struct spool *s, int64_t cutoff_ms, bool dry)
{
	int dfd = openat(s->root_fd, MARKERS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || dry) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	struct stat st;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (int64_t)st.st_mtim.tv_sec * 1000 < cutoff_ms)
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
}

long clean_run(struct spool *s, const struct clean_filter *f, bool dry,
	       void (*fn)(void *ctx, const struct clean_item *item), void *ctx)
{
	struct run_ctx c = { s, f, dry, 0, fn, ctx };
	/* Old markers first: with a cutoff of now (clean with no age), the
	 * markers this run leaves would otherwise go at once. */
	if (!f->nstatuses)
		clean_markers(s, f->cutoff_ms, dry);
	if (dir_each(s->results_fd, clean_one, &c) < 0)
		return -1;
	if (!dry && c.count && s->durable)
		fsync_dirfd(s->results_fd);
	return c.count;
}

int clean_marker(struct spool *s, const char *id, int64_t *when_ms)
{
	char path[sizeof MARKERS + TASK_ID_MAX + 2];
	struct stat st;
	snprintf(path, sizeof path, MARKERS "/%s", id);
	if (fstatat(s->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	*when_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / NS_PER_MS;
	return 0;
}

bool clean_said_removed(struct spool *s, const char *id, const char *cmd)
{
	int64_t when;
	char stamp[32];
	if (clean_marker(s, id, &when) < 0)
		return false;
	time_format_rfc3339(when, stamp, sizeof stamp);
	fprintf(stderr, "spoolrun %s: %s: its result was removed by spoolrun clean at %s "
		"(keep_results or clean --older-than); it will not appear again\n", cmd, id, stamp);
	return true;
}

void clean_forget(struct spool *s, const char *id)
{
	char path[sizeof MARKERS + TASK_ID_MAX + 2];
	snprintf(path, sizeof path, MARKERS "/%s", id);
	unlinkat(s->root_fd, path, 0);
}

/* ---- the command ---- */

static const char clean_usage[] =
	"usage: spoolrun clean [--older-than DURATION] [--status STATUS]... [--dry-run] [--json]\n"
	"                      [--config FILE] [--spool DIR]\n"
	"Removes finished results (results/ID.json) with their logs and rejected\n"
	"originals; never anything queued, running or deferred. Lists what it\n"
	"removed (or, with --dry-run, would remove).\n"
	"  -o, --older-than D  only results finished more than D ago: 90s, 30m, 12h, 7d\n"
	"                      (default: [spool] keep_results when set, else 0: all)\n"
	"  -S, --status S      only results with this status (repeatable): succeeded,\n"
	"                      failed, timeout, killed, error, rejected, cancelled,\n"
	"                      interrupted\n"
	"  -n, --dry-run       list, remove nothing\n"
	"  -j, --json          one JSON object: {\"dry_run\", \"older_than_s\", \"removed\": [...]}\n"
	"  -c, --config FILE   INI config (default: $SPOOLRUN_CONFIG)\n"
	"  -s, --spool DIR     spool root, overriding [spool] root\n"
	"exit status: 0 done (also when nothing matched), 2 usage, 74 spool not\n"
	"usable, 78 bad config.\n";

struct clean_cli {
	const char *config, *spool;
	int64_t older_than;
	bool has_older_than, dry, json;
	const char *statuses[METRICS_STATUSES];
	size_t nstatuses;
	json_t *list;
};

static int clean_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "spoolrun clean: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spoolrun clean --help)\n");
	return EXIT_USAGE;
}

static int add_status(struct clean_cli *o, const char *s)
{
	if (metrics_status_index(s) < 0)
		return clean_usage_error("--status: unknown status '%s' (succeeded, failed, timeout, "
					 "killed, error, rejected, cancelled, interrupted)", s);
	for (size_t i = 0; i < o->nstatuses; i++)
		if (!strcmp(o->statuses[i], s))
			return 0;
	o->statuses[o->nstatuses++] = s;
	return 0;
}

/* 0 to go on, 1 after --help, or an exit status. */
static int parse_clean(int argc, char **argv, struct clean_cli *o)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' }, { "status", required_argument, NULL, 'S' },
		{ "dry-run", no_argument, NULL, 'n' }, { "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' }, { "spool", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	opterr = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "+:o:S:njc:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			if (time_parse_duration(optarg, &o->older_than) < 0)
				return clean_usage_error("--older-than: bad duration '%s' (expected e.g. "
							 "90s, 30m, 12h or 7d)", optarg);
			o->has_older_than = true;
			break;
		case 'S':
			if (add_status(o, optarg))
				return EXIT_USAGE;
			break;
		case 'n': o->dry = true; break;
		case 'j': o->json = true; break;
		case 'c': o->config = optarg; break;
		case 's': o->spool = optarg; break;
		case 'h': fputs(clean_usage, stdout); return 1;
		case ':': return clean_usage_error("option %s needs a value", argv[optind - 1]);
		default: return clean_usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return clean_usage_error("takes no operands, got '%s'", argv[optind]);
	return 0;
}

static void print_item(void *ctx, const struct clean_item *it)
{
	struct clean_cli *o = ctx;
	char when[32];
	time_format_rfc3339(it->finished_ms, when, sizeof when);
	if (o->json) {
		json_t *files = json_array();
		for (size_t i = 0; i < it->nfiles; i++)
			json_array_append_new(files, json_string(it->files[i]));
		json_array_append_new(o->list, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", it->id,
			"status", it->status, "finished_at", when, "result_file",
			it->files[it->nfiles - 1], "files", files));
		return;
	}
	printf("%s %s (%s, finished %s):", o->dry ? "would remove" : "removed", it->id,
	       it->status, when);
	for (size_t i = 0; i < it->nfiles; i++)
		printf(" %s", it->files[i]);
	putchar('\n');
}

static int run_clean(struct clean_cli *o, struct config *cfg)
{
	char err[1024];
	struct spool s;
	/* Like every client command, clean never creates a spool (a typo in
	 * --spool is exit 66 naming the path). */
	if (spool_open_existing(&s, cfg, o->spool ? o->spool : cfg->spool_root, err,
				sizeof err) < 0) {
		int missing = errno == ENOENT;
		fprintf(stderr, "spoolrun clean: %s\n", err);
		spool_close(&s);
		return missing ? EXIT_NOINPUT : EXIT_IOERR;
	}
	int64_t age = o->has_older_than ? o->older_than : cfg->keep_results;
	struct clean_filter f = { time_realtime_ms() - age * 1000, o->statuses, o->nstatuses };
	o->list = json_array();
	long n = clean_run(&s, &f, o->dry, print_item, o);
	int rc = EXIT_OK;
	if (n < 0) {
		fprintf(stderr, "spoolrun clean: cannot list %s: %s\n", s.results_path, strerror(errno));
		rc = EXIT_IOERR;
	} else if (o->json) {
		json_t *doc = json_pack("{s:b, s:I, s:O}", "dry_run", o->dry, "older_than_s",
					(json_int_t)age, "removed", o->list);
		char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
		json_decref(doc);
	} else if (n == 0)
		fprintf(stderr, "spoolrun clean: no result finished more than %llds ago%s\n",
			(long long)age, o->nstatuses ? " with that status" : "");
	json_decref(o->list);
	spool_close(&s);
	return rc;
}

int clean_command(int argc, char **argv)
{
	struct clean_cli o = { 0 };
	o.config = getenv("SPOOLRUN_CONFIG");
	if (o.config && !*o.config)
		o.config = NULL;
	int rc = parse_clean(argc, argv, &o);
	if (rc)
		return rc == 1 ? EXIT_OK : rc;
	struct config cfg;
	if (config_setup(&cfg, o.config, "spoolrun") < 0)
		return EXIT_CONFIG;
	rc = run_clean(&o, &cfg);
	config_clear(&cfg);
	return rc;
}
