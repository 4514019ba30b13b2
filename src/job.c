#define _GNU_SOURCE
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "result.h"
#include "retry.h"
#include "run.h"
#include "timeutil.h"

/* What a claimed file is known as while it is handled. */
struct claimed {
	const char *name;       /* in active/ */
	char stamp[96];         /* inode, mtime and size: this file, not another of the same name */
	enum job_origin origin;
	struct identity user;   /* with run_as_owner: who it runs as */
	bool as_user;
	json_t *state;          /* attempt, interrupted, retries_used, attempts[] */
	bool cancel_done;       /* cancel/<id> is spent once the result is durable */
};

/* Passed to run_task's callbacks while the task runs. */
struct running {
	const struct job_env *env;
	const char *id;
	bool cancelled;
};

static void format_stamp(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "%ju:%jd.%09ld:%jd", (uintmax_t)st->st_ino, (intmax_t)st->st_mtim.tv_sec,
		 st->st_mtim.tv_nsec, (intmax_t)st->st_size);
}

static int state_int(const json_t *state, const char *key)
{
	return (int)json_integer_value(json_object_get(state, key));
}

static void state_set_int(json_t *state, const char *key, int64_t v)
{
	json_object_set_new(state, key, json_integer(v));
}

static json_t *state_attempts(json_t *state)
{
	json_t *a = json_object_get(state, "attempts");
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(state, "attempts", a);
	}
	return a;
}

/* Hands the result of a task that ends now to the publisher: the task file
 * leaves active/ once the result is durable (publisher.h). */
static void finish(const struct job_env *env, const struct claimed *c, const char *id,
		   json_t *result, struct job_report *rep)
{
	if (!result) {
		log_errx("%s: cannot build the result (out of memory); it stays in active/", id);
		rep->end = JOB_LEFT;
		return;
	}
	bool succeeded = !strcmp(result_status(result), "succeeded");
	if (publisher_submit(env->publisher, id, c->name, PUB_FINISH, c->cancel_done, result) < 0) {
		rep->end = JOB_LEFT;
		return;
	}
	rep->end = JOB_PUBLISHED;
	rep->succeeded = succeeded;
}

/* The id a refused file's result is filed under: its own when it has a
 * valid one, else one derived from its file name. */
static void rejection_id(json_t *doc, const char *name, char id[TASK_ID_MAX + 1])
{
	json_t *v = json_object_get(doc, "id");
	if (json_is_string(v) && task_id_valid(json_string_value(v), json_string_length(v)))
		memcpy(id, json_string_value(v), json_string_length(v) + 1);
	else
		task_id_from_filename(name, id);
}

static void reject(const struct job_env *env, const struct claimed *c, const char *id,
		   const struct task_error *e, json_t *doc, struct job_report *rep)
{
	char kept[320], kept_path[4096];
	spool_rejected_name(env->spool, c->name, kept, sizeof kept);
	snprintf(kept_path, sizeof kept_path, "%s/%s", env->spool->rejected_path, kept);
	struct result_context ctx = { .task_file = c->name, .task_file_stamp = c->stamp,
				      .attempt = 0 }; /* it never ran */
	json_t *result = result_rejected(id, e, doc, &ctx, kept_path);
	rep->end = JOB_LEFT;
	/* On failure it stays in active/; handled again at the next start. */
	if (!result || publisher_submit(env->publisher, id, c->name, PUB_REJECTED, false,
					result) < 0)
		return;
	rep->end = JOB_PUBLISHED;
	log_warnx("%s: rejected (%s): %s", c->name, e->code, e->message);
}

/* Whether a result for this very file (same stamp) is already published:
 * the runner stopped between publishing it and removing the file from
 * active/, or a reboot undid the claim's rename. Never run a task twice. */
static bool already_published(const struct job_env *env, const char *id, const char *stamp,
			      bool *was_rejected)
{
	char name[200], why[64];
	for (int n = 1; n < 100000; n++) {
		if (n == 1)
			snprintf(name, sizeof name, "%s.json", id);
		else
			snprintf(name, sizeof name, "%s@%d.json", id, n);
		char *buf;
		size_t len;
		struct stat st;
		if (spool_read_task(env->spool->results_fd, name, SIZE_MAX / 4, false, &buf, &len,
				    &st, why, sizeof why) < 0)
			return false; /* results of one id are numbered without gaps */
		json_t *doc = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
		free(buf);
		const char *s = json_string_value(json_object_get(doc, "task_file_stamp"));
		bool same = s && strcmp(s, stamp) == 0;
		*was_rejected = same && !strcmp(result_status(doc), "rejected");
		json_decref(doc);
		if (same)
			return true;
	}
	return false;
}

/* Reads and validates active/NAME; false with e filled when it is refused.
 * id gets the task's id, or the one its rejection is filed under. */
static bool load_claimed(const struct job_env *env, struct claimed *c, struct task *t,
			 struct task_error *e, char id[TASK_ID_MAX + 1])
{
	char *buf = NULL, why[400];
	size_t len = 0;
	struct stat st;
	bool ok = false;
	if (spool_read_task(env->spool->active_fd, c->name, env->cfg->max_task_bytes, true, &buf,
			    &len, &st, e->message, sizeof e->message) < 0) {
		snprintf(e->code, sizeof e->code, "invalid_file");
		if (fstatat(env->spool->active_fd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			memset(&st, 0, sizeof st);
	} else if (owner_check(env->owners, st.st_uid, &c->user, &c->as_user, why, sizeof why) < 0) {
		snprintf(e->code, sizeof e->code, "invalid_owner");
		snprintf(e->message, sizeof e->message, "%s: %s", c->name, why);
	} else
		ok = task_parse(buf, len, c->name, &env->cfg->task, t, e) == 0;
	free(buf);
	format_stamp(&st, c->stamp, sizeof c->stamp);
	if (ok)
		memcpy(id, t->id, TASK_ID_MAX + 1);
	else
		rejection_id(t->json, c->name, id);
	return ok;
}

static struct result_context context_of(const struct claimed *c)
{
	return (struct result_context){
		.task_file = c->name, .task_file_stamp = c->stamp,
		.recovered = state_int(c->state, "interrupted") > 0,
		.attempt = state_int(c->state, "attempt"),
		.attempts = json_object_get(c->state, "attempts"),
	};
}

/* Publishes a task that does not run: cancelled before its turn, or
 * interrupted too often. */
static void end_unrun(const struct job_env *env, const struct claimed *c, const struct task *t,
		      const char *status, const char *message, struct job_report *rep)
{
	struct task_error e = { 0 };
	snprintf(e.code, sizeof e.code, "%s", status);
	snprintf(e.message, sizeof e.message, "%s: %s", c->name, message);
	struct result_context ctx = context_of(c);
	finish(env, c, t->id, result_not_run(status, t->id, &e, t->json, &ctx), rep);
}

static bool running_on_signal(void *ctx, int sig)
{
	struct running *rn = ctx;
	return rn->env->on_signal(rn->env->ctx, sig);
}

static int running_open_log(void *ctx, const char *stream)
{
	struct running *rn = ctx;
	return spool_open_log(rn->env->spool, rn->id, stream);
}

/* The runner's inotify fd woke: a cancel request for this very task kills it. */
static bool running_on_extra(void *ctx)
{
	struct running *rn = ctx;
	bool stop = rn->env->on_extra(rn->env->ctx);
	if (spool_cancel_requested(rn->env->spool, rn->id))
		rn->cancelled = true;
	return stop || rn->cancelled;
}

/* Counts the attempt about to start, durably, so that a crash of the
 * machine during it is counted too; false when the task was interrupted
 * max_attempts times and has been published as such instead. */
static bool start_attempt(const struct job_env *env, struct claimed *c, const struct task *t,
			  struct job_report *rep)
{
	json_t *st = c->state;
	if (c->origin == JOB_RECOVERED) {
		/* A first run leaves no state: its absence means attempt 1. */
		int last = state_int(st, "attempt") ? state_int(st, "attempt") : 1;
		state_set_int(st, "attempt", last);
		state_set_int(st, "interrupted", state_int(st, "interrupted") + 1);
		json_array_append_new(state_attempts(st), json_pack("{s:i, s:s, s:s}",
			"attempt", last, "status", "interrupted",
			"retry_reason", "the runner or the machine stopped during this attempt"));
		if (state_int(st, "interrupted") >= (int)env->cfg->max_attempts) {
			char why[200];
			snprintf(why, sizeof why, "interrupted %d times (max_attempts = %u): the "
				 "runner stopped during every attempt, so it is not run again",
				 state_int(st, "interrupted"), env->cfg->max_attempts);
			end_unrun(env, c, t, "interrupted", why, rep);
			log_warnx("%s: interrupted too often; not run again", t->id);
			return false;
		}
	}
	int attempt = state_int(st, "attempt") + 1;
	state_set_int(st, "attempt", attempt);
	int rc = attempt > 1 ? spool_save_state(env->spool, env->spool->active_fd, c->name, st)
			     : publisher_claim_sync_wait(env->publisher);
	if (rc < 0)
		log_warn("%s: cannot record attempt %d durably", t->id, attempt);
	return true;
}

/* Moves the task to deferred/ until not_before_ms, its history with it. */
static void defer(const struct job_env *env, struct claimed *c, const struct task *t,
		  int64_t not_before_ms, bool usage_limit, struct job_report *rep)
{
	json_object_set_new(c->state, "not_before_ms", json_integer(not_before_ms));
	json_object_set_new(c->state, "id", json_string(t->id));
	json_object_set_new(c->state, "usage_limit", json_boolean(usage_limit));
	json_object_set_new(c->state, "limit_key", t->limit_key ? json_string(t->limit_key)
								 : json_null());
	if (spool_defer(env->spool, c->name, c->state, rep->deferred_name,
			sizeof rep->deferred_name) < 0) {
		log_warn("%s: cannot move it to deferred/; it stays in active/", t->id);
		rep->end = JOB_LEFT;
		return;
	}
	rep->end = JOB_DEFERRED;
	rep->not_before_ms = not_before_ms;
	if (usage_limit && t->limit_key)
		snprintf(rep->limit_key, sizeof rep->limit_key, "%s", t->limit_key);
	char when[32];
	time_format_rfc3339(not_before_ms, when, sizeof when);
	log_info("%s: deferred until %s", t->id, when);
}

/* Puts a task interrupted by the stop back: into incoming/ when it has no
 * history, else into deferred/ (due at once) so its attempts are kept. */
static void requeue(const struct job_env *env, struct claimed *c, const struct task *t,
		    struct job_report *rep)
{
	state_set_int(c->state, "attempt", state_int(c->state, "attempt") - 1);
	if (state_int(c->state, "attempt") > 0 || json_array_size(state_attempts(c->state))) {
		defer(env, c, t, time_realtime_ms(), false, rep);
		if (rep->end == JOB_DEFERRED)
			rep->end = JOB_REQUEUED;
		return;
	}
	rep->end = JOB_LEFT;
	if (spool_requeue(env->spool, c->name) < 0)
		log_warn("%s: cannot put it back in incoming/; it stays in active/", c->name);
	else {
		rep->end = JOB_REQUEUED;
		log_info("%s: interrupted by the stop; put back in incoming/", t->id);
	}
}

/* Renders a capture for pattern matching (raw bytes, head and tail). */
static char *rendered(const struct run_stream *s, size_t *len)
{
	char *text = capture_render(&s->cap, len);
	if (!text)
		*len = 0;
	return text;
}

/* After a run: publish its result, or defer it for a retry. */
static void conclude(const struct job_env *env, struct claimed *c, const struct task *t,
		     struct run_outcome *o, bool cancelled, const char *out_log,
		     const char *err_log, struct job_report *rep)
{
	struct retry_decision d = { .action = RETRY_NONE };
	if (!cancelled) {
		size_t olen, elen;
		char *out = rendered(&o->out, &olen), *err = rendered(&o->err, &elen);
		double jitter = (double)rand_r(env->jitter_seed) / ((double)RAND_MAX + 1.0);
		retry_decide(t, o, out ? out : "", olen, err ? err : "", elen,
			     (unsigned)state_int(c->state, "retries_used"), env->usage_limit,
			     time_realtime_ms(), jitter, &d);
		free(out);
		free(err);
	}
	json_t *record = result_attempt_record(state_int(c->state, "attempt"), o, cancelled);
	if (d.action != RETRY_NONE) {
		char when[32];
		time_format_rfc3339(d.not_before_ms, when, sizeof when);
		json_object_set_new(record, "retry_reason", json_string(d.reason));
		json_object_set_new(record, "retry_at", json_string(when));
	}
	json_array_append_new(state_attempts(c->state), record);
	if (d.action == RETRY_BACKOFF)
		state_set_int(c->state, "retries_used", state_int(c->state, "retries_used") + 1);
	if (d.action != RETRY_NONE) {
		log_info("%s: attempt %d %s; %s", t->id, state_int(c->state, "attempt"),
			 o->status == RUN_EXITED ? "failed" : "did not succeed", d.reason);
		defer(env, c, t, d.not_before_ms, d.action == RETRY_USAGE_LIMIT, rep);
		return;
	}
	struct result_context ctx = context_of(c);
	ctx.cancelled = cancelled;
	ctx.stdout_log = out_log;
	ctx.stderr_log = err_log;
	finish(env, c, t->id, result_from_run(t, o, &ctx), rep);
}

static void run_claimed(const struct job_env *env, struct claimed *c, const struct task *t,
			struct job_report *rep)
{
	struct running rn = { env, t->id, false };
	struct run_options opt = {
		.max_output = env->cfg->max_output, .max_log = env->cfg->max_log,
		.open_log = running_open_log, .sync_logs = env->spool->durable,
		.signal_fd = env->signal_fd, .on_signal = running_on_signal,
		.extra_fd = env->extra_fd, .on_extra = running_on_extra, .ctx = &rn,
		.as_user = c->as_user ? &c->user : NULL,
	};
	struct run_outcome o;
	spool_remove_logs(env->spool, t->id);
	log_debug("%s: starting %s", t->id, t->argv[0]);
	if (run_task(t, &opt, &o) < 0)
		log_err("%s: the runner failed while running it; the task was killed", t->id);
	char out_path[4096], err_path[4096];
	snprintf(out_path, sizeof out_path, "%s/%s.stdout", env->spool->logs_path, t->id);
	snprintf(err_path, sizeof err_path, "%s/%s.stderr", env->spool->logs_path, t->id);
	/* Done either way, killed or finished first: the request is spent
	 * once the result is published. */
	c->cancel_done = rn.cancelled;
	if (o.status == RUN_ABORTED && !rn.cancelled)
		requeue(env, c, t, rep);
	else
		conclude(env, c, t, &o, rn.cancelled && o.status == RUN_ABORTED,
			 o.out.log_created ? out_path : NULL, o.err.log_created ? err_path : NULL, rep);
	run_outcome_clear(&o);
}

/* True when this very file's result is already published (same stamp): the
 * bookkeeping the runner did not finish before it stopped is done now. */
static bool finish_if_published(const struct job_env *env, const struct claimed *c,
				const char *id, struct job_report *rep)
{
	bool was_rejected = false;
	if (!spool_result_exists(env->spool, id) ||
	    !already_published(env, id, c->stamp, &was_rejected))
		return false;
	char kept[320];
	log_info("%s: result already published; finishing its bookkeeping", c->name);
	if (was_rejected ? spool_keep_rejected(env->spool, c->name, kept, sizeof kept)
			 : spool_finish(env->spool, c->name))
		log_warn("%s: cannot clear it from active/", c->name);
	rep->end = JOB_PUBLISHED;
	return true;
}

static void duplicate_error(const struct job_env *env, const struct claimed *c, const char *id,
			    struct task_error *e)
{
	snprintf(e->code, sizeof e->code, "duplicate_id");
	snprintf(e->field, sizeof e->field, "id");
	snprintf(e->message, sizeof e->message,
		 "%s: field \"id\": a result for \"%s\" already exists in %s; "
		 "ids must be unique, so this task was not run",
		 c->name, id, env->spool->results_path);
}

void job_handle(const struct job_env *env, const char *name, enum job_origin origin,
		struct job_report *rep)
{
	struct claimed c = { .name = name, .origin = origin };
	struct task t = { 0 };
	struct task_error e = { 0 };
	memset(rep, 0, sizeof *rep);
	rep->end = JOB_LEFT;
	bool ok = load_claimed(env, &c, &t, &e, rep->id);
	/* A result of this id still on its way must be in results/ before
	 * this file is checked against it. */
	publisher_settle(env->publisher, rep->id, NULL);
	if (finish_if_published(env, &c, rep->id, rep))
		goto out;
	if (ok && spool_result_exists(env->spool, rep->id)) {
		duplicate_error(env, &c, rep->id, &e);
		ok = false;
	}
	if (!ok) {
		reject(env, &c, rep->id, &e, t.json, rep);
		goto out;
	}
	c.state = spool_load_state(env->spool, env->spool->active_fd, name);
	if (!c.state)
		c.state = json_object();
	if (spool_cancel_requested(env->spool, t.id)) {
		c.cancel_done = true;
		end_unrun(env, &c, &t, "cancelled", "cancelled through cancel/ before it ran", rep);
		goto out;
	}
	int64_t until = t.limit_key ? env->key_blocked_until(env->ctx, t.limit_key) : 0;
	if (until > time_realtime_ms()) {
		/* Another task found this key's usage limit: wait with it. */
		defer(env, &c, &t, until, true, rep);
		goto out;
	}
	if (start_attempt(env, &c, &t, rep))
		run_claimed(env, &c, &t, rep);
out:
	json_decref(c.state);
	if (c.as_user)
		identity_clear(&c.user);
	task_clear(&t);
}
