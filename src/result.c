#define _GNU_SOURCE
#include "result.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"
#include "timeutil.h"
#include "utf8.h"
#include "version.h"

static json_t *timestamp(int64_t ms)
{
	char buf[32];
	time_format_rfc3339(ms, buf, sizeof buf);
	return json_string(buf);
}

static json_t *runner_info(void)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) < 0)
		strcpy(host, "unknown");
	return json_pack("{s:s, s:s, s:i}", "version", SPOOLRUN_VERSION, "host", host,
			 "pid", (int)getpid());
}

static json_t *path_or_null(const char *p)
{
	return p ? json_string(p) : json_null();
}

static json_t *error_object(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static json_t *error_object(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Messages quote user input (paths, ids): keep the JSON valid. */
	bool repaired;
	size_t len;
	char *safe = utf8_repair(msg, strlen(msg), &len, &repaired);
	json_t *e = json_pack("{s:s, s:s%}", "code", code, "message", safe ? safe : "", len);
	free(safe);
	return e;
}

/* Adds stdout/stderr text and their counters under the given prefix. */
static void add_stream(json_t *r, const char *name, struct run_stream *s,
		       const char *log_path, json_t *warnings)
{
	size_t raw_len = 0, len = 0;
	bool repaired = false, truncated = capture_truncated(&s->cap);
	char *raw = capture_render(&s->cap, &raw_len);
	/* Rendered: the capture is no longer needed, and the result's peak
	 * memory is lower without it. */
	capture_clear(&s->cap);
	char *text = raw ? utf8_repair(raw, raw_len, &len, &repaired) : NULL;
	free(raw);
	char key[64];
	json_object_set_new(r, name, text ? json_stringn(text, len) : json_string(""));
	free(text);
	snprintf(key, sizeof key, "%s_bytes", name);
	json_object_set_new(r, key, json_integer((json_int_t)s->bytes));
	snprintf(key, sizeof key, "%s_truncated", name);
	json_object_set_new(r, key, json_boolean(truncated));
	snprintf(key, sizeof key, "%s_invalid_utf8", name);
	json_object_set_new(r, key, json_boolean(repaired));
	snprintf(key, sizeof key, "%s_log", name);
	json_object_set_new(r, key, path_or_null(log_path));
	snprintf(key, sizeof key, "%s_log_truncated", name);
	json_object_set_new(r, key, json_boolean(s->log_truncated));
	if (s->log_errno) {
		char w[512];
		if (s->log_created)
			snprintf(w, sizeof w, "%s log incomplete after %llu bytes: %s", name,
				 (unsigned long long)s->log_bytes, strerror(s->log_errno));
		else
			snprintf(w, sizeof w, "%s log could not be created: %s", name,
				 strerror(s->log_errno));
		json_array_append_new(warnings, json_string(w));
	}
	if (!text)
		json_array_append_new(warnings, json_sprintf("%s: out of memory rendering output", name));
}

static const char *run_status_name(const struct run_outcome *o, bool cancelled)
{
	if (cancelled)
		return "cancelled";
	switch (o->status) {
	case RUN_EXITED: return o->exit_code == 0 ? "succeeded" : "failed";
	case RUN_SIGNALED: return "killed";
	case RUN_TIMEOUT: return "timeout";
	case RUN_SPAWN_ERROR: return "error";
	case RUN_ABORTED: return "killed";
	}
	return "error";
}

/* Which limit killed the task, when the signal tells: SIGXCPU at the soft
 * CPU limit, SIGKILL at the hard one (one second later), SIGXFSZ for file
 * size. A task that hits its memory limit just sees allocations fail. */
static const char *limit_hit(const struct task *t, const struct run_outcome *o)
{
	if (o->status != RUN_SIGNALED)
		return NULL;
	int64_t cpu_ms = (int64_t)o->usage.ru_utime.tv_sec * 1000 + o->usage.ru_utime.tv_usec / 1000 +
			 (int64_t)o->usage.ru_stime.tv_sec * 1000 + o->usage.ru_stime.tv_usec / 1000;
	if (t->limits.cpu_seconds &&
	    (o->term_signal == SIGXCPU ||
	     (o->term_signal == SIGKILL && cpu_ms >= (int64_t)t->limits.cpu_seconds * 1000)))
		return "cpu_seconds";
	if (t->limits.file_size_mb && o->term_signal == SIGXFSZ)
		return "file_size_mb";
	return NULL;
}

static json_t *run_error(const struct task *t, const struct run_outcome *o)
{
	const struct spawn_error *se = &o->spawn_error;
	switch (o->status) {
	case RUN_TIMEOUT:
		if (o->idle_timeout)
			return error_object("idle_timeout", "killed after %g s without output (idle_timeout)",
					    t->idle_timeout);
		return error_object("timeout", "killed at its timeout of %g s", t->timeout);
	case RUN_SIGNALED:
		if (limit_hit(t, o))
			return error_object("limit_exceeded", "killed by %s: exceeded limits.%s",
					    signals_name(o->term_signal), limit_hit(t, o));
		return json_null();
	case RUN_ABORTED:
		return error_object("runner_stopped", "killed because the runner was stopped");
	case RUN_SPAWN_ERROR:
		if (strcmp(se->stage, "exec") == 0) {
			json_t *e = error_object("exec_failed", "cannot execute \"%s\": %s",
						 t->argv[0], strerror(se->err));
			/* "not found" and "found but not runnable" differ for
			 * callers, as 127 and 126 do for a shell. */
			json_object_set_new(e, "not_found", json_boolean(se->err == ENOENT));
			return e;
		}
		if (strcmp(se->stage, "chdir") == 0)
			return error_object("cwd_failed", "cannot change to directory \"%s\": %s",
					    t->cwd, strerror(se->err));
		if (strcmp(se->stage, "setrlimit") == 0)
			return error_object("limits_failed", "cannot apply the task's limits: %s",
					    strerror(se->err));
		if (strcmp(se->stage, "setuid") == 0)
			return error_object("setuid_failed", "cannot switch to the task file's owner: %s",
					    strerror(se->err));
		return error_object("spawn_failed", "cannot start the task (%s): %s", se->stage,
				    strerror(se->err));
	default:
		return json_null();
	}
}

/* For a JSON stream that ends without its final result event. */
static const char *how_it_ended(const struct run_outcome *o, bool cancelled, char *buf,
				size_t len)
{
	if (cancelled)
		return "the task was cancelled";
	switch (o->status) {
	case RUN_TIMEOUT: return o->idle_timeout ? "the task was killed at its idle_timeout"
						 : "the task was killed at its timeout";
	case RUN_SIGNALED:
		snprintf(buf, len, "the task was killed by %s", signals_name(o->term_signal));
		return buf;
	case RUN_ABORTED: return "the task was killed when the runner stopped";
	case RUN_SPAWN_ERROR: return "the task could not start";
	case RUN_EXITED: break;
	}
	snprintf(buf, len, "the task exited with status %d before writing one", o->exit_code);
	return buf;
}

static json_t *signal_object(int signo)
{
	if (!signo)
		return json_null();
	return json_pack("{s:i, s:s}", "number", signo, "name", signals_name(signo));
}

json_t *result_from_run(const struct task *t, struct run_outcome *o,
			const struct result_context *c)
{
	json_t *warnings = json_array();
	json_t *r = json_pack(
		"{s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:i}",
		"format", 1, "id", t->id, "status", run_status_name(o, c->cancelled),
		"exit_code", o->exit_code >= 0 ? json_integer(o->exit_code) : json_null(),
		"signal", signal_object(o->term_signal),
		"error", c->cancelled ? error_object("cancelled", "cancelled through cancel/%s while it ran", t->id)
				      : run_error(t, o),
		"started_at", timestamp(o->started_ms),
		"finished_at", timestamp(o->finished_ms),
		"duration_ms", (json_int_t)o->duration_ms,
		"pid", o->pid ? json_integer(o->pid) : json_null(),
		"attempt", c->attempt);
	if (!r || !warnings) {
		json_decref(r);
		json_decref(warnings);
		return NULL;
	}
	add_stream(r, "stdout", &o->out, c->stdout_log, warnings);
	add_stream(r, "stderr", &o->err, c->stderr_log, warnings);
	char how[96];
	events_add_to_result(&o->events, r, how_it_ended(o, c->cancelled, how, sizeof how));
	const char *limit = limit_hit(t, o);
	json_object_set_new(r, "limit_exceeded", limit ? json_string(limit) : json_null());
	json_object_set_new(r, "rusage", json_pack("{s:I, s:I, s:I}",
		"user_ms", (json_int_t)o->usage.ru_utime.tv_sec * 1000 + o->usage.ru_utime.tv_usec / 1000,
		"system_ms", (json_int_t)o->usage.ru_stime.tv_sec * 1000 + o->usage.ru_stime.tv_usec / 1000,
		"max_rss_kib", (json_int_t)o->usage.ru_maxrss));
	if (o->stdin_unwritten)
		json_array_append_new(warnings, json_sprintf(
			"the task closed stdin with %llu bytes unread",
			(unsigned long long)o->stdin_unwritten));
	if (c->recovered)
		json_array_append_new(warnings, json_string(
			"an earlier attempt was interrupted: the runner or the machine stopped during it; this is a new run"));
	if (o->leftovers_killed)
		json_array_append_new(warnings, json_string(
			"processes left running after the main process exited were killed"));
	json_object_set_new(r, "warnings", warnings);
	json_t *attempts = c->attempts ? json_deep_copy(c->attempts) : json_array();
	if (!c->attempts)
		json_array_append_new(attempts, result_attempt_record(c->attempt, o, c->cancelled));
	json_object_set_new(r, "attempts", attempts);
	json_object_set(r, "task", t->json);
	json_object_set_new(r, "task_file", path_or_null(c->task_file));
	json_object_set_new(r, "task_file_stamp", path_or_null(c->task_file_stamp));
	if (c->task_file_identity)
		json_object_set_new(r, "task_file_identity", json_string(c->task_file_identity));
	json_object_set_new(r, "runner", runner_info());
	json_object_set_new(r, "slurm", json_null()); /* the Slurm executor fills it in */
	return r;
}

/* A result for a task that did not run: same fields, empty outcome. */
json_t *result_not_run(const char *status, const char *id, const struct task_error *e,
		       json_t *task_json, const struct result_context *c)
{
	int64_t now = time_realtime_ms();
	json_t *r = json_pack(
		"{s:i, s:s, s:s, s:n, s:n, s:o, s:o, s:o, s:i, s:n, s:i}",
		"format", 1, "id", id, "status", status, "exit_code", "signal",
		"error", error_object(e->code, "%s", e->message),
		"started_at", timestamp(now), "finished_at", timestamp(now),
		"duration_ms", 0, "pid", "attempt", c->attempt);
	if (!r)
		return NULL;
	if (e->field[0])
		json_object_set_new(json_object_get(r, "error"), "field", json_string(e->field));
	static const char *const streams[] = { "stdout", "stderr" };
	for (int i = 0; i < 2; i++) {
		char key[64];
		json_object_set_new(r, streams[i], json_string(""));
		snprintf(key, sizeof key, "%s_bytes", streams[i]);
		json_object_set_new(r, key, json_integer(0));
		const char *flags[] = { "truncated", "invalid_utf8", "log_truncated" };
		for (int f = 0; f < 3; f++) {
			snprintf(key, sizeof key, "%s_%s", streams[i], flags[f]);
			json_object_set_new(r, key, json_false());
		}
		snprintf(key, sizeof key, "%s_log", streams[i]);
		json_object_set_new(r, key, json_null());
	}
	json_object_set_new(r, "rusage", json_null());
	json_object_set_new(r, "warnings", json_array());
	json_object_set_new(r, "attempts", c->attempts ? json_deep_copy(c->attempts) : json_array());
	json_object_set_new(r, "task", task_json ? json_incref(task_json) : json_null());
	json_object_set_new(r, "task_file", path_or_null(c->task_file));
	json_object_set_new(r, "task_file_stamp", path_or_null(c->task_file_stamp));
	if (c->task_file_identity)
		json_object_set_new(r, "task_file_identity", json_string(c->task_file_identity));
	json_object_set_new(r, "runner", runner_info());
	json_object_set_new(r, "slurm", json_null()); /* the Slurm executor fills it in */
	return r;
}

json_t *result_rejected(const char *id, const struct task_error *e, json_t *task_json,
			const struct result_context *c, const char *kept_as)
{
	json_t *r = result_not_run("rejected", id, e, task_json, c);
	if (r)
		json_object_set_new(r, "rejected_file", path_or_null(kept_as));
	return r;
}

json_t *result_attempt_record(int attempt, const struct run_outcome *o, bool cancelled)
{
	return json_pack("{s:i, s:o, s:o, s:s, s:o, s:o, s:n, s:n}",
		"attempt", attempt,
		"started_at", timestamp(o->started_ms), "finished_at", timestamp(o->finished_ms),
		"status", run_status_name(o, cancelled),
		"exit_code", o->exit_code >= 0 ? json_integer(o->exit_code) : json_null(),
		"signal", o->term_signal ? json_string(signals_name(o->term_signal)) : json_null(),
		"retry_reason", "retry_at");
}

char *result_dump(const json_t *result, size_t *len)
{
	char *s = json_dumps(result, JSON_INDENT(2));
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *out = realloc(s, n + 2);
	if (!out) {
		free(s);
		return NULL;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	*len = n + 1;
	return out;
}

const char *result_status(const json_t *result)
{
	const char *s = json_string_value(json_object_get(result, "status"));
	return s ? s : "error";
}

int result_exit_code(const json_t *result)
{
	const char *s = result_status(result);
	json_t *sig = json_object_get(json_object_get(result, "signal"), "number");
	if (!strcmp(s, "succeeded") || !strcmp(s, "failed"))
		return (int)json_integer_value(json_object_get(result, "exit_code"));
	if (!strcmp(s, "timeout"))
		return 124;
	if (!strcmp(s, "killed")) /* no signal: the runner's stop killed it */
		return 128 + (sig ? (int)json_integer_value(sig) : SIGTERM);
	if (!strcmp(s, "rejected"))
		return 65;
	if (!strcmp(s, "interrupted"))
		return 75;
	if (!strcmp(s, "cancelled"))
		return 125;
	json_t *not_found = json_object_get(json_object_get(result, "error"), "not_found");
	return json_is_true(not_found) ? 127 : 126;
}
