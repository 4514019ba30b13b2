#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <iniparser/iniparser.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECONDS (10.0 * 365 * 24 * 3600)

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->spool_root = strdup("spool");
	c->fsync = true;
	c->check_perms = true;
	c->max_task_bytes = 1 << 20;
	c->timeout = 3600;
	c->kill_grace = 5;
	c->max_output = 1 << 20;
	c->max_log = UINT64_C(100) << 20;
	c->log_level = LOG_INFO;
}

void config_clear(struct config *c)
{
	free(c->path);
	free(c->spool_root);
	free(c->results_dir);
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

enum key_type { K_PATH, K_BOOL, K_SECONDS, K_SIZE, K_LEVEL };

struct key_spec {
	const char *name; /* "section:key", as iniparser lowercases it */
	enum key_type type;
	size_t offset;
	uint64_t min_size; /* K_SIZE only */
};

#define KEY(n, t, field, min) { n, t, offsetof(struct config, field), min }
static const struct key_spec keys[] = {
	KEY("spool:root", K_PATH, spool_root, 0),
	KEY("spool:results_dir", K_PATH, results_dir, 0),
	KEY("spool:fsync", K_BOOL, fsync, 0),
	KEY("spool:check_permissions", K_BOOL, check_perms, 0),
	KEY("spool:max_task_bytes", K_SIZE, max_task_bytes, 2),
	KEY("task:timeout", K_SECONDS, timeout, 0),
	KEY("task:kill_grace", K_SECONDS, kill_grace, 0),
	KEY("output:max_output", K_SIZE, max_output, 0),
	KEY("output:max_log", K_SIZE, max_log, 0),
	KEY("log:level", K_LEVEL, log_level, 0),
};

static int set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int apply_key(struct config *c, const char *path, const struct key_spec *k,
		     const char *val, char *err, size_t errlen)
{
	void *field = (char *)c + k->offset;
	const char *colon = strchr(k->name, ':');
	int slen = (int)(colon - k->name);
	const char *key = colon + 1;
	uint64_t size;
	switch (k->type) {
	case K_PATH: {
		char **dst = field;
		if (!*val)
			return set_error(err, errlen, "%s: [%.*s] %s: must not be empty",
					 path, slen, k->name, key);
		char *p = resolve_path(path, val);
		if (!p)
			return set_error(err, errlen, "%s: out of memory", path);
		free(*dst);
		*dst = p;
		return 0;
	}
	case K_BOOL:
		if (parse_bool(val, field) == 0)
			return 0;
		return set_error(err, errlen, "%s: [%.*s] %s: expected yes or no, got \"%s\"",
				 path, slen, k->name, key, val);
	case K_SECONDS:
		if (config_parse_seconds(val, MAX_SECONDS, field) == 0)
			return 0;
		return set_error(err, errlen,
				 "%s: [%.*s] %s: expected a number of seconds >= 0, got \"%s\"",
				 path, slen, k->name, key, val);
	case K_SIZE:
		if (config_parse_size(val, &size) < 0 || size < k->min_size ||
		    (k->offset != offsetof(struct config, max_log) && size > SIZE_MAX / 4))
			return set_error(err, errlen,
					 "%s: [%.*s] %s: expected a byte size such as 1048576 or 1M"
					 " (at least %llu), got \"%s\"",
					 path, slen, k->name, key, (unsigned long long)k->min_size, val);
		if (k->offset == offsetof(struct config, max_log))
			*(uint64_t *)field = size;
		else
			*(size_t *)field = (size_t)size;
		return 0;
	case K_LEVEL:
		if (log_level_parse(val, field) == 0)
			return 0;
		return set_error(err, errlen,
				 "%s: [%.*s] %s: expected error, warn, info or debug, got \"%s\"",
				 path, slen, k->name, key, val);
	}
	return -1;
}

static int apply_entry(struct config *c, const char *path, const char *name,
		       const char *val, char *err, size_t errlen)
{
	const char *colon = strchr(name, ':');
	if (!colon) {
		/* A section header. */
		static const char *const sections[] = { "spool", "task", "output", "log" };
		for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
			if (strcmp(name, sections[i]) == 0)
				return 0;
		return set_error(err, errlen, "%s: [%s]: unknown section", path, name);
	}
	if (colon == name)
		return set_error(err, errlen, "%s: %s: key outside of any section", path,
				 colon + 1);
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		if (strcmp(name, keys[i].name) == 0)
			return apply_key(c, path, &keys[i], val ? val : "", err, errlen);
	return set_error(err, errlen, "%s: [%.*s] %s: unknown key", path,
			 (int)(colon - name), name, colon + 1);
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

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *probe = fopen(path, "re");
	if (!probe)
		return set_error(err, errlen, "%s: %s", path, strerror(errno));
	fclose(probe);

	ini_error[0] = '\0';
	iniparser_set_error_callback(capture_ini_error);
	dictionary *d = iniparser_load(path);
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
