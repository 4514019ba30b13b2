#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <iniparser/iniparser.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grow.h"
#include "timeutil.h"

#define MAX_SECONDS (10.0 * 365 * 24 * 3600)

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->spool_root = strdup("spool");
	c->fsync = true;
	c->check_perms = true;
	c->max_task_bytes = 1 << 20;
	c->file_mode = 0640;
	c->task.timeout = 3600;
	c->task.auto_timeout_factor = 3;
	c->task.auto_timeout_min = 60;
	c->task.auto_timeout_default = 3600;
	c->task.kill_grace = 5;
	c->max_attempts = 3;
	c->task.retry_backoff = 10;
	c->task.retry_backoff_max = 600;
	c->api_limits = (struct api_limit_policy){ .backoff = 60, .backoff_max = 1800,
						   .max_wait = 8 * 24 * 3600, .max_deferrals = 100 };
	c->usage_limit_pattern = strdup("usage limit reached\\|([0-9]{9,12})");
	c->max_output = 1 << 20;
	c->max_log = UINT64_C(100) << 20;
	c->log_level = LOG_INFO;
	slurm_config_defaults(&c->slurm);
	c->hook_timeout = 30;
	c->slots = 1;
}

void config_clear(struct config *c)
{
	free(c->path);
	free(c->spool_root);
	free(c->results_dir);
	free(c->allowed_owners);
	free(c->usage_limit_pattern);
	slurm_config_clear(&c->slurm);
	free(c->events_path);
	free(c->hook_on_result);
	free(c->metrics_path);
	for (size_t i = 0; i < c->nconcurrency; i++)
		free(c->concurrency[i].key);
	free(c->concurrency);
	memset(c, 0, sizeof *c);
}

int config_parse_seconds(const char *s, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -1;
	unsigned shift = 0;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		default: return -1;
		}
		end++;
		/* Accept "1M", "1MB", "1MiB". */
		if (strcasecmp(end, "") && strcasecmp(end, "b") && strcasecmp(end, "ib"))
			return -1;
	}
	if (v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

/* Relative paths in a config file are relative to the file's directory. */
static char *resolve_path(const char *config_path, const char *value)
{
	if (value[0] == '/')
		return strdup(value);
	const char *slash = strrchr(config_path, '/');
	if (!slash)
		return strdup(value);
	char *out;
	if (asprintf(&out, "%.*s/%s", (int)(slash - config_path), config_path, value) < 0)
		return NULL;
	return out;
}

/* K_SIZE and K_COUNT fields are size_t, uint64_t or unsigned: width says which. */
enum key_type { K_PATH, K_STRING, K_BOOL, K_SECONDS, K_SIZE, K_COUNT, K_MODE, K_LEVEL, K_STOP,
		K_TIMEOUT, K_FACTOR, K_DURATION, K_EXECUTOR, K_PROGRAM, K_ARGS, K_INTERVAL };

struct key_spec {
	const char *name; /* "section:key", as iniparser lowercases it */
	enum key_type type;
	size_t offset, width;
	uint64_t min, max; /* K_SIZE and K_COUNT */
};

#define KEY(n, t, field, lo, hi) \
	{ n, t, offsetof(struct config, field), sizeof(((struct config *)0)->field), lo, hi }
#define LIMIT(n, field) KEY("limits:" n, K_COUNT, task.limits.field, 0, UINT64_C(1) << 40)
static const struct key_spec keys[] = {
	KEY("spool:root", K_PATH, spool_root, 0, 0),
	KEY("spool:results_dir", K_PATH, results_dir, 0, 0),
	KEY("spool:fsync", K_BOOL, fsync, 0, 0),
	KEY("spool:check_permissions", K_BOOL, check_perms, 0, 0),
	KEY("spool:max_task_bytes", K_SIZE, max_task_bytes, 2, SIZE_MAX / 4),
	KEY("spool:file_mode", K_MODE, file_mode, 0, 0),
	KEY("spool:allowed_owners", K_STRING, allowed_owners, 0, 0),
	KEY("spool:run_as_owner", K_BOOL, run_as_owner, 0, 0),
	KEY("spool:allow_root_tasks", K_BOOL, allow_root_tasks, 0, 0),
	KEY("task:timeout", K_TIMEOUT, task, 0, 0),
	KEY("task:auto_timeout_factor", K_FACTOR, task.auto_timeout_factor, 0, 0),
	KEY("task:auto_timeout_min", K_SECONDS, task.auto_timeout_min, 0, 0),
	KEY("task:auto_timeout_default", K_SECONDS, task.auto_timeout_default, 0, 0),
	KEY("task:kill_grace", K_SECONDS, task.kill_grace, 0, 0),
	KEY("task:idle_timeout", K_SECONDS, task.idle_timeout, 0, 0),
	KEY("task:max_attempts", K_COUNT, max_attempts, 1, 1000),
	KEY("task:on_stop", K_STOP, finish_on_stop, 0, 0),
	KEY("retry:retries", K_COUNT, task.retries, 0, 1000),
	KEY("retry:backoff", K_SECONDS, task.retry_backoff, 0, 0),
	KEY("retry:backoff_max", K_SECONDS, task.retry_backoff_max, 0, 0),
	KEY("retry:usage_limit_pattern", K_STRING, usage_limit_pattern, 0, 0),
	KEY("retry:rate_limit_backoff", K_SECONDS, api_limits.backoff, 0, 0),
	KEY("retry:rate_limit_backoff_max", K_SECONDS, api_limits.backoff_max, 0, 0),
	KEY("retry:usage_limit_max_wait", K_SECONDS, api_limits.max_wait, 0, 0),
	KEY("retry:limit_deferrals", K_COUNT, api_limits.max_deferrals, 0, 100000),
	KEY("output:max_output", K_SIZE, max_output, 0, SIZE_MAX / 4),
	KEY("output:max_log", K_SIZE, max_log, 0, UINT64_MAX),
	KEY("log:level", K_LEVEL, log_level, 0, 0),
	KEY("log:events", K_PATH, events_path, 0, 0),
	KEY("spool:keep_results", K_DURATION, keep_results, 0, 0),
	KEY("hooks:on_result", K_STRING, hook_on_result, 0, 0),
	KEY("hooks:timeout", K_SECONDS, hook_timeout, 0, 0),
	KEY("metrics:textfile", K_PATH, metrics_path, 0, 0),
	KEY("runner:slots", K_COUNT, slots, 1, 1024),
	LIMIT("memory_mb", memory_mb),
	LIMIT("cpu_seconds", cpu_seconds),
	LIMIT("open_files", open_files),
	LIMIT("processes", processes),
	LIMIT("file_size_mb", file_size_mb),
	KEY("runner:executor", K_EXECUTOR, slurm_executor, 0, 0),
	KEY("slurm:partition", K_STRING, slurm.partition, 0, 0),
	KEY("slurm:args", K_ARGS, slurm.args, 0, 0),
	KEY("slurm:poll_interval", K_INTERVAL, slurm.poll_interval, 0, 0),
	KEY("slurm:sbatch", K_PROGRAM, slurm.sbatch, 0, 0),
	KEY("slurm:squeue", K_PROGRAM, slurm.squeue, 0, 0),
	KEY("slurm:scontrol", K_PROGRAM, slurm.scontrol, 0, 0),
	KEY("slurm:scancel", K_PROGRAM, slurm.scancel, 0, 0),
	KEY("slurm:sacct", K_PROGRAM, slurm.sacct, 0, 0),
};

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "size fields are stored as 64-bit");

static int parse_uint(bool with_suffix, const char *s, uint64_t *out)
{
	if (with_suffix)
		return config_parse_size(s, out);
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno)
		return -1;
	*out = v;
	return 0;
}

static void store_uint(void *field, size_t width, uint64_t v)
{
	if (width == sizeof(uint64_t))
		*(uint64_t *)field = v;
	else if (width == sizeof(unsigned))
		*(unsigned *)field = (unsigned)v;
}

static int set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The keys of [runner] executor and [slurm]: NULL, or what was expected. */
static const char *apply_slurm_key(struct config *c, const char *path, const struct key_spec *k,
				   const char *val, void *field)
{
	switch (k->type) {
	case K_EXECUTOR:
		if (strcmp(val, "local") && strcmp(val, "slurm"))
			return "local or slurm";
		*(bool *)field = !strcmp(val, "slurm");
		return NULL;
	case K_PROGRAM: { /* a bare name is looked up in PATH; a path is relative to the file */
		char *p = !*val ? NULL : strchr(val, '/') ? resolve_path(path, val) : strdup(val);
		if (!p)
			return "a program name or path";
		free(*(char **)field);
		*(char **)field = p;
		return NULL;
	}
	case K_ARGS: {
		char **args;
		size_t n;
		if (slurm_split_args(val, &args, &n) < 0)
			return "sbatch arguments (out of memory)";
		for (size_t i = 0; i < c->slurm.n_args; i++)
			free(c->slurm.args[i]);
		free(c->slurm.args);
		c->slurm.args = args;
		c->slurm.n_args = n;
		return NULL;
	}
	case K_INTERVAL:
		if (config_parse_seconds(val, 3600, field) < 0 || *(double *)field < 0.1)
			return "a number of seconds from 0.1 to 3600";
		return NULL;
	default:
		return "a value";
	}
}

static int apply_key(struct config *c, const char *path, const struct key_spec *k,
		     const char *val, char *err, size_t errlen)
{
	void *field = (char *)c + k->offset;
	const char *colon = strchr(k->name, ':');
	int slen = (int)(colon - k->name);
	const char *key = colon + 1;
	const char *expected = NULL;
	char range[128];
	uint64_t n;
	char *end;
	switch (k->type) {
	case K_PATH:
	case K_STRING: {
		char **dst = field;
		char *p = !*val ? NULL : k->type == K_PATH ? resolve_path(path, val) : strdup(val);
		if (!p && *val)
			return set_error(err, errlen, "%s: out of memory", path);
		if (!p && k->type == K_PATH)
			expected = "a path";
		else {
			free(*dst);
			*dst = p;
		}
		break;
	}
	case K_BOOL:
		if (parse_bool(val, field) < 0)
			expected = "yes or no";
		break;
	case K_SECONDS:
		if (config_parse_seconds(val, MAX_SECONDS, field) < 0)
			expected = "a number of seconds >= 0";
		break;
	case K_SIZE:
	case K_COUNT:
		if (parse_uint(k->type == K_SIZE, val, &n) < 0 || n < k->min || n > k->max) {
			snprintf(range, sizeof range, "%s from %llu to %llu",
				 k->type == K_SIZE ? "a byte size such as 1048576 or 1M" : "a whole number",
				 (unsigned long long)k->min, (unsigned long long)k->max);
			expected = range;
		} else
			store_uint(field, k->width, n);
		break;
	case K_MODE:
		errno = 0;
		n = strtoull(val, &end, 8);
		if (!*val || *end || errno || n > 0777)
			expected = "an octal file mode such as 0640";
		else
			*(unsigned *)field = (unsigned)n;
		break;
	case K_LEVEL:
		if (log_level_parse(val, field) < 0)
			expected = "error, warn, info or debug";
		break;
	case K_TIMEOUT: {
		/* Seconds, or "auto": learned from each task's history. */
		struct task_defaults *t = field;
		t->timeout_auto = !strcasecmp(val, "auto");
		if (!t->timeout_auto && config_parse_seconds(val, MAX_SECONDS, &t->timeout) < 0)
			expected = "a number of seconds >= 0 or auto";
		break;
	}
	case K_FACTOR: {
		double f;
		if (config_parse_seconds(val, 1000, &f) < 0 || !(f >= 1))
			expected = "a number from 1 to 1000";
		else
			*(double *)field = f;
		break;
	}
	case K_DURATION:
		if (time_parse_duration(val, field) < 0)
			expected = "a duration such as 90s, 30m, 12h or 7d (0 = forever)";
		break;
	case K_STOP:
		if (!strcasecmp(val, "finish") || !strcasecmp(val, "requeue"))
			*(bool *)field = !strcasecmp(val, "finish");
		else
			expected = "requeue or finish";
		break;
	default:
		expected = apply_slurm_key(c, path, k, val, field);
		break;
	}
	if (expected)
		return set_error(err, errlen, "%s: [%.*s] %s: expected %s, got \"%s\"", path, slen,
				 k->name, key, expected, val);
	return 0;
}

/* [concurrency] KEY = N: at most N tasks with limit_key KEY run at once. */
static int apply_concurrency(struct config *c, const char *path, const char *key,
			     const char *val, char *err, size_t errlen)
{
	uint64_t n;
	if (!task_id_valid(key, strlen(key)))
		return set_error(err, errlen, "%s: [concurrency] %s: not a valid limit_key (1 to 128 "
				 "of A-Z a-z 0-9 . _ -, not starting with '.')", path, key);
	if (parse_uint(false, val, &n) < 0 || n < 1 || n > 1024)
		return set_error(err, errlen, "%s: [concurrency] %s: expected a whole number from 1 "
				 "to 1024, got \"%s\"", path, key, val);
	struct config_cap *grown = realloc(c->concurrency,
					   (c->nconcurrency + 1) * sizeof *grown);
	if (!grown)
		return set_error(err, errlen, "%s: out of memory", path);
	c->concurrency = grown;
	if (!(grown[c->nconcurrency].key = strdup(key)))
		return set_error(err, errlen, "%s: out of memory", path);
	grown[c->nconcurrency++].cap = (unsigned)n;
	return 0;
}

static int apply_entry(struct config *c, const char *path, const char *name,
		       const char *val, char *err, size_t errlen)
{
	const char *colon = strchr(name, ':');
	if (!colon) {
		/* A section header. */
		static const char *const sections[] = { "spool", "task", "output", "log", "limits",
						       "retry", "runner", "concurrency", "hooks", "metrics",
						       "slurm" };
		for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
			if (strcmp(name, sections[i]) == 0)
				return 0;
		return set_error(err, errlen, "%s: [%s]: unknown section", path, name);
	}
	if (colon == name)
		return set_error(err, errlen, "%s: %s: key outside of any section", path,
				 colon + 1);
	if (!strncmp(name, "concurrency:", 12))
		return apply_concurrency(c, path, colon + 1, val ? val : "", err, errlen);
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		if (strcmp(name, keys[i].name) == 0)
			return apply_key(c, path, &keys[i], val ? val : "", err, errlen);
	return set_error(err, errlen, "%s: [%.*s] %s: unknown key", path,
			 (int)(colon - name), name, colon + 1);
}

/* The usage-limit pattern must compile and capture the epoch. */
static int check_pattern(const struct config *c, const char *path, char *err, size_t errlen)
{
	if (!c->usage_limit_pattern)
		return 0;
	regex_t re;
	int rc = regcomp(&re, c->usage_limit_pattern, REG_EXTENDED);
	if (rc != 0) {
		char why[128];
		regerror(rc, &re, why, sizeof why);
		return set_error(err, errlen, "%s: [retry] usage_limit_pattern: invalid POSIX extended "
				 "regular expression: %s", path, why);
	}
	size_t groups = re.re_nsub;
	regfree(&re);
	if (groups < 1)
		return set_error(err, errlen, "%s: [retry] usage_limit_pattern: needs a group "
				 "capturing the Unix time, e.g. \"limit reached\\|([0-9]+)\"", path);
	return 0;
}

/* The limit back-off must be able to grow from its start to its cap. */
static int check_limit_policy(const struct config *c, const char *path, char *err, size_t errlen)
{
	const struct api_limit_policy *p = &c->api_limits;
	if (p->backoff_max < p->backoff)
		return set_error(err, errlen, "%s: [retry] rate_limit_backoff_max: %g is less than "
				 "rate_limit_backoff (%g)", path, p->backoff_max, p->backoff);
	return 0;
}

static char ini_error[512];

/* iniparser reports syntax errors through a printf-like callback; keep the
 * last one so the caller's message can carry it. */
static int capture_ini_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(ini_error, sizeof ini_error, fmt, ap);
	va_end(ap);
	/* iniparser's messages span lines; flatten them. */
	for (char *p = ini_error; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return n;
}

/* iniparser keeps the last of two settings of one key without a word; a
 * key set twice is almost always a mistake (an edit appended instead of
 * replacing), so it is refused, naming both lines. Sections and keys are
 * compared case-insensitively, as iniparser does. */
static int refuse_duplicate_keys(FILE *f, const char *path, char *err, size_t errlen)
{
	struct seen { char name[160]; int line; } *seen = NULL;
	size_t n = 0, cap = 0;
	char line[4096], section[64] = "";
	int lineno = 0, rc = 0;
	bool continued = false;
	while (rc == 0 && fgets(line, sizeof line, f)) {
		lineno++;
		size_t len = strcspn(line, "\r\n");
		bool was_continued = continued;
		continued = len > 0 && line[len - 1] == '\\';
		char *p = line + strspn(line, " \t");
		if (was_continued || *p == ';' || *p == '#' || *p == '\n' || *p == '\0')
			continue;
		if (*p == '[') {
			snprintf(section, sizeof section, "%.*s", (int)strcspn(p + 1, "]"), p + 1);
			continue;
		}
		size_t klen = strcspn(p, "=:");
		if (!p[klen])
			continue; /* not a key line: iniparser reports it */
		while (klen && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
			klen--;
		char name[160];
		snprintf(name, sizeof name, "%s:%.*s", section, (int)klen, p);
		for (size_t i = 0; i < n && rc == 0; i++)
			if (!strcasecmp(seen[i].name, name))
				rc = set_error(err, errlen, "%s: [%s] %.*s: set twice, on lines %d and %d "
					       "(remove one)", path, section, (int)klen, p, seen[i].line,
					       lineno);
		if (rc == 0) {
			struct seen *grown = grow(seen, &cap, n + 1, sizeof *seen, 32);
			if (!grown)
				rc = set_error(err, errlen, "%s: out of memory", path);
			else
				seen = grown;
		}
		if (rc == 0) {
			snprintf(seen[n].name, sizeof seen[n].name, "%s", name);
			seen[n++].line = lineno;
		}
	}
	free(seen);
	return rc;
}

/* iniparser's message names the file it opened: say the user's name. */
static void name_the_file(const char *opened, const char *path)
{
	char *at = strstr(ini_error, opened);
	if (!at || opened == path)
		return;
	char rest[sizeof ini_error];
	snprintf(rest, sizeof rest, "%s", at + strlen(opened));
	snprintf(at, sizeof ini_error - (size_t)(at - ini_error), "%s%s", path, rest);
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	/* Never blocks (a FIFO put in its place would freeze start-up, or a
	 * SIGHUP reload), never takes a directory for an empty config. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return set_error(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		return set_error(err, errlen, "%s: cannot stat: %s", path, strerror(saved));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return set_error(err, errlen, "%s: is %s, not a regular file; a config must be an "
				 "INI file", path, S_ISDIR(st.st_mode) ? "a directory"
				 : S_ISFIFO(st.st_mode) ? "a FIFO" : "a special file");
	}
	/* iniparser 4.1 loads only by name: give it this very file through
	 * /proc, so the name cannot be swapped for a FIFO between the check
	 * and the load. */
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	const char *load_path = access(self, R_OK) == 0 ? self : path;
	int dupfd = dup(fd);
	FILE *f = dupfd >= 0 ? fdopen(dupfd, "re") : NULL;
	if (!f || refuse_duplicate_keys(f, path, err, errlen) < 0) {
		if (!f)
			set_error(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		if (f)
			fclose(f);
		else if (dupfd >= 0)
			close(dupfd);
		close(fd);
		return -1;
	}
	fclose(f);
	ini_error[0] = '\0';
	iniparser_set_error_callback(capture_ini_error);
	dictionary *d = iniparser_load(load_path);
	close(fd);
	name_the_file(load_path, path);
	if (!d)
		return set_error(err, errlen, "%s: cannot parse: %s", path,
				 ini_error[0] ? ini_error : "syntax error");

	struct config next;
	config_defaults(&next);
	int rc = 0;
	for (ssize_t i = 0; i < d->size && rc == 0; i++)
		if (d->key[i])
			rc = apply_entry(&next, path, d->key[i], d->val[i], err, errlen);
	iniparser_freedict(d);
	if (rc == 0)
		rc = check_pattern(&next, path, err, errlen);
	if (rc == 0)
		rc = check_limit_policy(&next, path, err, errlen);
	next.task.slurm_allowed = next.slurm_executor;
	if (rc == 0 && !(next.path = strdup(path)))
		rc = set_error(err, errlen, "%s: out of memory", path);
	if (rc < 0) {
		config_clear(&next);
		return -1;
	}
	config_clear(c);
	*c = next;
	return 0;
}

int config_setup(struct config *c, const char *path, const char *who)
{
	char err[1024];
	config_defaults(c);
	if (path && config_load(c, path, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", who, err);
		config_clear(c);
		return -1;
	}
	log_set_level(c->log_level);
	return 0;
}
