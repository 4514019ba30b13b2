#include "task.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TASK_SECONDS (10.0 * 365 * 24 * 3600)
#define PRIORITY_LIMIT INT64_C(1000000000)

static const char *const known_fields[] = {
	"format", "id", "command", "cwd", "env", "stdin", "timeout",
	"kill_grace", "idle_timeout", "limits", "priority", "meta",
	"retries", "retry_backoff", "retry_backoff_max", "retry_on", "limit_key", "output",
	"slurm",
};

static const char *const limit_fields[] = {
	"memory_mb", "cpu_seconds", "open_files", "processes", "file_size_mb",
};

#define LIMIT_MAX (UINT64_C(1) << 40)

bool task_id_valid(const char *id, size_t len)
{
	if (len < 1 || len > TASK_ID_MAX || id[0] == '.' || id[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

void task_id_from_filename(const char *filename, char out[TASK_ID_MAX + 1])
{
	size_t len = strlen(filename);
	if (len > 5 && strcmp(filename + len - 5, ".json") == 0)
		len -= 5;
	if (len > TASK_ID_MAX)
		len = TASK_ID_MAX;
	for (size_t i = 0; i < len; i++) {
		char c = filename[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		out[i] = ok ? c : '_';
	}
	if (len == 0)
		out[len++] = '_';
	if (out[0] == '.' || out[0] == '-')
		out[0] = '_';
	out[len] = '\0';
}

void task_id_of_file(const json_t *doc, const char *filename, char out[TASK_ID_MAX + 1])
{
	json_t *v = json_object_get(doc, "id");
	if (json_is_string(v) && task_id_valid(json_string_value(v), json_string_length(v)))
		memcpy(out, json_string_value(v), json_string_length(v) + 1);
	else
		task_id_from_filename(filename, out);
}

static int fail(struct task_error *e, const char *code, const char *field,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct task_error *e, const char *code, const char *field,
		const char *fmt, ...)
{
	snprintf(e->code, sizeof e->code, "%s", code);
	snprintf(e->field, sizeof e->field, "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* A JSON string as a C string: refuses embedded NUL, which could not reach
 * execve() or the environment intact. */
static const char *c_string(const json_t *v)
{
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

#define BAD(field, ...) fail(e, "invalid_task", field, __VA_ARGS__)

static int parse_command(const char *file, json_t *cmd, struct task *t, struct task_error *e)
{
	if (!cmd)
		return BAD("command", "%s: field \"command\": missing (an array of strings or a string)", file);
	if (json_is_string(cmd)) {
		const char *s = c_string(cmd);
		if (!s || !*s)
			return BAD("command", "%s: field \"command\": must be a non-empty string without NUL bytes", file);
		t->argv = calloc(4, sizeof *t->argv);
		if (!t->argv)
			return BAD("command", "%s: out of memory", file);
		t->argv[0] = "/bin/sh";
		t->argv[1] = "-c";
		t->argv[2] = s;
		t->shell = true;
		return 0;
	}
	if (!json_is_array(cmd) || json_array_size(cmd) == 0)
		return BAD("command", "%s: field \"command\": must be a non-empty array of strings or a string, got %s%s",
			   file, type_name(cmd), json_is_array(cmd) ? " that is empty" : "");
	size_t n = json_array_size(cmd);
	t->argv = calloc(n + 1, sizeof *t->argv);
	if (!t->argv)
		return BAD("command", "%s: out of memory", file);
	for (size_t i = 0; i < n; i++) {
		const char *arg = c_string(json_array_get(cmd, i));
		if (!arg)
			return BAD("command", "%s: field \"command\"[%zu]: must be a string without NUL bytes, got %s",
				   file, i, type_name(json_array_get(cmd, i)));
		t->argv[i] = arg;
	}
	if (!*t->argv[0])
		return BAD("command", "%s: field \"command\"[0]: the program name must not be empty", file);
	return 0;
}

static int parse_env(const char *file, json_t *env, struct task *t, struct task_error *e)
{
	if (!json_is_object(env))
		return BAD("env", "%s: field \"env\": must be an object of strings or nulls, got %s",
			   file, type_name(env));
	t->env = calloc(json_object_size(env) + 1, sizeof *t->env);
	if (!t->env)
		return BAD("env", "%s: out of memory", file);
	for (void *it = json_object_iter(env); it; it = json_object_iter_next(env, it)) {
		const char *name = json_object_iter_key(it);
		json_t *val = json_object_iter_value(it);
		if (!*name || strchr(name, '=') || strlen(name) != json_object_iter_key_len(it))
			return BAD("env", "%s: field \"env\": variable name \"%s\" must be non-empty and contain no '=' or NUL",
				   file, name);
		const char *value = NULL;
		if (!json_is_null(val) && !(value = c_string(val)))
			return BAD("env", "%s: field \"env\".%s: must be a string without NUL bytes or null, got %s",
				   file, name, type_name(val));
		t->env[t->env_count].name = name;
		t->env[t->env_count].value = value;
		t->env_count++;
	}
	return 0;
}

static int parse_seconds(const char *file, json_t *obj, const char *field, double dflt,
			 double *out, struct task_error *e)
{
	json_t *v = json_object_get(obj, field);
	if (!v) {
		*out = dflt;
		return 0;
	}
	double s = json_number_value(v);
	if (!json_is_number(v) || !isfinite(s) || s < 0 || s > MAX_TASK_SECONDS)
		return BAD(field, "%s: field \"%s\": must be a number of seconds from 0 to %.0f, got %s",
			   file, field, MAX_TASK_SECONDS, json_is_number(v) ? "a value out of range" : type_name(v));
	*out = s;
	return 0;
}

/* "limits": each key overrides the config's default; 0 lifts a limit. */
static int parse_limits(const char *file, json_t *v, struct task *t, struct task_error *e)
{
	if (!json_is_object(v))
		return BAD("limits", "%s: field \"limits\": must be an object, got %s", file, type_name(v));
	uint64_t *slots[] = { &t->limits.memory_mb, &t->limits.cpu_seconds, &t->limits.open_files,
			      &t->limits.processes, &t->limits.file_size_mb };
	for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
		const char *key = json_object_iter_key(it);
		json_t *n = json_object_iter_value(it);
		size_t i = 0;
		while (i < 5 && strcmp(key, limit_fields[i]))
			i++;
		if (i == 5)
			return BAD("limits", "%s: field \"limits\".%s: unknown limit (known: memory_mb, cpu_seconds, open_files, processes, file_size_mb)",
				   file, key);
		if (!json_is_integer(n) || json_integer_value(n) < 0 ||
		    (uint64_t)json_integer_value(n) > LIMIT_MAX)
			return BAD("limits", "%s: field \"limits\".%s: must be a whole number from 0 (no limit) to %llu, got %s",
				   file, key, (unsigned long long)LIMIT_MAX,
				   json_is_integer(n) ? "a value out of range" : type_name(n));
		*slots[i] = (uint64_t)json_integer_value(n);
	}
	return 0;
}

static int parse_exit_codes(const char *file, json_t *v, struct retry_policy *r,
			    struct task_error *e)
{
	if (!json_is_array(v))
		return BAD("retry_on", "%s: field \"retry_on\".exit_codes: must be an array of integers from 0 to 255, got %s",
			   file, type_name(v));
	r->exit_codes = calloc(json_array_size(v) + 1, sizeof *r->exit_codes);
	if (!r->exit_codes)
		return BAD("retry_on", "%s: out of memory", file);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *n = json_array_get(v, i);
		if (!json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 255)
			return BAD("retry_on", "%s: field \"retry_on\".exit_codes[%zu]: must be an integer from 0 to 255",
				   file, i);
		r->exit_codes[r->n_exit_codes++] = (int)json_integer_value(n);
	}
	return 0;
}

static int parse_patterns(const char *file, json_t *v, struct retry_policy *r,
			  struct task_error *e)
{
	if (!json_is_array(v))
		return BAD("retry_on", "%s: field \"retry_on\".output_patterns: must be an array of regular expressions, got %s",
			   file, type_name(v));
	r->patterns = calloc(json_array_size(v) + 1, sizeof *r->patterns);
	r->pattern_src = calloc(json_array_size(v) + 1, sizeof *r->pattern_src);
	if (!r->patterns || !r->pattern_src)
		return BAD("retry_on", "%s: out of memory", file);
	for (size_t i = 0; i < json_array_size(v); i++) {
		const char *re = c_string(json_array_get(v, i));
		int rc = re ? regcomp(&r->patterns[i], re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) : -1;
		if (rc != 0) {
			char why[128] = "not a string without NUL bytes";
			if (re)
				regerror(rc, &r->patterns[i], why, sizeof why);
			return BAD("retry_on", "%s: field \"retry_on\".output_patterns[%zu]: invalid POSIX extended regular expression: %s",
				   file, i, why);
		}
		r->pattern_src[r->n_patterns++] = re;
	}
	return 0;
}

/* "retry_on": which outcomes are retried; absent, every failure is. */
static int parse_retry_on(const char *file, json_t *v, struct retry_policy *r,
			  struct task_error *e)
{
	if (!json_is_object(v))
		return BAD("retry_on", "%s: field \"retry_on\": must be an object, got %s", file, type_name(v));
	r->has_retry_on = true;
	for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
		const char *key = json_object_iter_key(it);
		json_t *val = json_object_iter_value(it);
		int rc = 0;
		if (!strcmp(key, "exit_codes"))
			rc = parse_exit_codes(file, val, r, e);
		else if (!strcmp(key, "output_patterns"))
			rc = parse_patterns(file, val, r, e);
		else if (!strcmp(key, "timeout") || !strcmp(key, "signal")) {
			if (!json_is_boolean(val))
				return BAD("retry_on", "%s: field \"retry_on\".%s: must be true or false, got %s",
					   file, key, type_name(val));
			*(key[0] == 't' ? &r->on_timeout : &r->on_signal) = json_is_true(val);
		} else
			return BAD("retry_on", "%s: field \"retry_on\".%s: unknown key (known: exit_codes, timeout, signal, output_patterns)",
				   file, key);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int parse_retry(const char *file, json_t *root, const struct task_defaults *d,
		       struct task *t, struct task_error *e)
{
	struct retry_policy *r = &t->retry;
	json_t *v = json_object_get(root, "retries");
	r->retries = d->retries;
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)
			return BAD("retries", "%s: field \"retries\": must be an integer from 0 to 1000, got %s",
				   file, json_is_integer(v) ? "a value out of range" : type_name(v));
		r->retries = (unsigned)json_integer_value(v);
	}
	if (parse_seconds(file, root, "retry_backoff", d->retry_backoff, &r->backoff, e) < 0 ||
	    parse_seconds(file, root, "retry_backoff_max", d->retry_backoff_max, &r->backoff_max, e) < 0)
		return -1;
	if ((v = json_object_get(root, "retry_on")) && parse_retry_on(file, v, r, e) < 0)
		return -1;
	if ((v = json_object_get(root, "limit_key"))) {
		if (!json_is_string(v) || !task_id_valid(json_string_value(v), json_string_length(v)))
			return BAD("limit_key", "%s: field \"limit_key\": must be 1 to 128 of A-Z a-z 0-9 . _ -, got %s",
				   file, json_is_string(v) ? "an invalid string" : type_name(v));
		t->limit_key = json_string_value(v);
	}
	return 0;
}

/* "slurm" is taken only where tasks go to Slurm: elsewhere it would be
 * silently ignored, and the task would run without what it asked for. */
static int parse_slurm(const char *file, json_t *v, const struct task_defaults *d,
		       struct task *t, struct task_error *e)
{
	if (!d->slurm_allowed)
		return BAD("slurm", "%s: field \"slurm\": only taken with [runner] executor = slurm", file);
	char field[64], msg[400];
	if (slurm_request_parse(v, &t->slurm, field, sizeof field, msg, sizeof msg) < 0)
		return BAD(field, "%s: field \"%s\": %s", file, field, msg);
	return 0;
}

static int check_known_fields(const char *file, json_t *root, struct task_error *e)
{
	for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
		const char *key = json_object_iter_key(it);
		bool known = false;
		for (size_t i = 0; i < sizeof known_fields / sizeof *known_fields; i++)
			known |= strcmp(key, known_fields[i]) == 0 &&
				 json_object_iter_key_len(it) == strlen(key);
		if (!known)
			return BAD(key, "%s: field \"%s\": unknown field (known: format, id, command, cwd, env, stdin, timeout, kill_grace, idle_timeout, limits, priority, meta, retries, retry_backoff, retry_backoff_max, retry_on, limit_key, output, slurm)",
				   file, key);
	}
	return 0;
}

static int parse_id(const char *file, json_t *root, struct task *t, struct task_error *e)
{
	json_t *v = json_object_get(root, "id");
	if (!v) {
		size_t len = strlen(file);
		if (len > 5 && strcmp(file + len - 5, ".json") == 0)
			len -= 5;
		if (!task_id_valid(file, len))
			return BAD("id", "%s: field \"id\": missing, and the file name is not a valid id "
				   "(1 to 128 of A-Z a-z 0-9 . _ -, not starting with '.' or '-')", file);
		memcpy(t->id, file, len);
		t->id[len] = '\0';
		return 0;
	}
	if (!json_is_string(v) || !task_id_valid(json_string_value(v), json_string_length(v)))
		return BAD("id", "%s: field \"id\": must be 1 to 128 of A-Z a-z 0-9 . _ - and not start with '.' or '-', got %s",
			   file, json_is_string(v) ? "an invalid string" : type_name(v));
	memcpy(t->id, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_fields(const char *file, json_t *root, const struct task_defaults *d,
			struct task *t, struct task_error *e)
{
	json_t *v;
	if (check_known_fields(file, root, e) < 0 || parse_id(file, root, t, e) < 0)
		return -1;
	if ((v = json_object_get(root, "format")) && !(json_is_integer(v) && json_integer_value(v) == 1))
		return BAD("format", "%s: field \"format\": must be 1 (the only task format), got %s",
			   file, json_is_integer(v) ? "another number" : type_name(v));
	if (parse_command(file, json_object_get(root, "command"), t, e) < 0)
		return -1;
	if ((v = json_object_get(root, "cwd")) && (!(t->cwd = c_string(v)) || !*t->cwd))
		return BAD("cwd", "%s: field \"cwd\": must be a non-empty string without NUL bytes, got %s",
			   file, json_is_string(v) ? "an empty string or NUL bytes" : type_name(v));
	if ((v = json_object_get(root, "env")) && parse_env(file, v, t, e) < 0)
		return -1;
	if ((v = json_object_get(root, "stdin"))) {
		if (!json_is_string(v))
			return BAD("stdin", "%s: field \"stdin\": must be a string, got %s", file, type_name(v));
		t->stdin_data = json_string_value(v);
		t->stdin_len = json_string_length(v);
	}
	if (parse_seconds(file, root, "timeout", d->timeout, &t->timeout, e) < 0 ||
	    parse_seconds(file, root, "kill_grace", d->kill_grace, &t->kill_grace, e) < 0 ||
	    parse_seconds(file, root, "idle_timeout", d->idle_timeout, &t->idle_timeout, e) < 0)
		return -1;
	t->limits = d->limits;
	if ((v = json_object_get(root, "limits")) && parse_limits(file, v, t, e) < 0)
		return -1;
	if (parse_retry(file, root, d, t, e) < 0)
		return -1;
	if ((v = json_object_get(root, "output")) &&
	    (!json_is_string(v) || output_mode_parse(json_string_value(v), &t->output) < 0))
		return BAD("output", "%s: field \"output\": must be \"text\", \"jsonl\" or \"json\", got %s",
			   file, json_is_string(v) ? "another string" : type_name(v));
	if ((v = json_object_get(root, "priority"))) {
		if (!json_is_integer(v) || json_integer_value(v) < -PRIORITY_LIMIT ||
		    json_integer_value(v) > PRIORITY_LIMIT)
			return BAD("priority", "%s: field \"priority\": must be an integer from -1000000000 to 1000000000, got %s",
				   file, json_is_integer(v) ? "a value out of range" : type_name(v));
		t->priority = json_integer_value(v);
	}
	if ((v = json_object_get(root, "slurm")))
		return parse_slurm(file, v, d, t, e);
	return 0;
}

int task_parse(const char *buf, size_t len, const char *filename,
	       const struct task_defaults *defaults, struct task *t, struct task_error *e)
{
	memset(t, 0, sizeof *t);
	memset(e, 0, sizeof *e);
	json_error_t jerr;
	t->json = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!t->json)
		return fail(e, "invalid_json", "", "%s: invalid JSON at line %d, column %d: %s",
			    filename, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(t->json))
		return BAD("", "%s: a task must be a JSON object, got %s", filename, type_name(t->json));
	return parse_fields(filename, t->json, defaults, t, e);
}

void task_clear(struct task *t)
{
	slurm_request_clear(&t->slurm);
	for (size_t i = 0; i < t->retry.n_patterns; i++)
		regfree(&t->retry.patterns[i]);
	free(t->retry.patterns);
	free(t->retry.pattern_src);
	free(t->retry.exit_codes);
	free(t->argv);
	free(t->env);
	json_decref(t->json);
	memset(t, 0, sizeof *t);
}
