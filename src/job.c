#define _GNU_SOURCE
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "node.h"
#include "result.h"
#include "retry.h"
#include "run.h"
#include "service.h"
#include "slurmexec.h"
#include "taskfile.h"
#include "timeutil.h"

/* Back-off of a failing publication or move: 100 ms doubling to 30 s. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 30000

static void format_stamp(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "%ju:%jd.%09ld:%jd", (uintmax_t)st->st_ino, (intmax_t)st->st_mtim.tv_sec,
		 st->st_mtim.tv_nsec, (intmax_t)st->st_size);
}

/* The identity of the task file, for telling a reappearing file (the
 * very same inode, linked back) from a new one: its inode and its birth
 * time, which no producer can set (cp -p, tar and rsync -t preserve the
 * mtime, and a file system may hand a freed inode to the next file). ""
 * where the file system keeps no birth time: then no file is ever taken
 * for another. */
static void format_identity(int dirfd, const char *name, char *out, size_t len)
{
	struct statx sx;
	out[0] = '\0';
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &sx) == 0 &&
	    (sx.stx_mask & STATX_BTIME))
		snprintf(out, len, "%ju:b%jd.%09u", (uintmax_t)sx.stx_ino,
			 (intmax_t)sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec);
}

void job_init(struct job *j, const char *name, enum job_origin origin)
{
	memset(j, 0, sizeof *j);
	snprintf(j->name, sizeof j->name, "%s", name);
	j->origin = origin;
	j->phase = JOB_BEGIN;
	j->publish_first = 1;
	j->rep.end = JOB_LEFT;
	task_state_init(&j->st);
}

void job_clear(struct job *j)
{
	if (j->handle) {
		struct run_outcome o;
		j->ex->finish(j->handle, &o);
		run_outcome_clear(&o);
		j->handle = NULL;
	}
	json_decref(j->result);
	j->result = NULL;
	task_state_clear(&j->st);
	if (j->as_user)
		identity_clear(&j->user);
	j->as_user = false;
	task_clear(&j->t);
}

bool job_running(const struct job *j)
{
	return j->phase == JOB_RUNNING;
}

static int next_delay(const struct job *j)
{
	int d = j->retry_delay_ms ? j->retry_delay_ms * 2 : RETRY_FIRST_MS;
	return d > RETRY_MAX_MS ? RETRY_MAX_MS : d;
}

static void schedule_retry(struct job *j, int64_t now)
{
	j->retry_delay_ms = j->retry_delay_ms ? j->retry_delay_ms * 2 : RETRY_FIRST_MS;
	if (j->retry_delay_ms > RETRY_MAX_MS)
		j->retry_delay_ms = RETRY_MAX_MS;
	j->retry_at_ns = now + (int64_t)j->retry_delay_ms * NS_PER_MS;
}

/* Lets the task file go once its completion is recorded: into rejected/
 * for a refused file, else removed. A file already gone is let go. */
static int let_go(const struct job_env *env, struct job *j)
{
	int rc = j->rejected ? spool_keep_rejected(env->spool, j->name, j->kept, sizeof j->kept)
			     : spool_finish(env->spool, j->name);
	if (rc < 0 && errno == ENOENT)
		rc = 0;
	if (rc < 0)
		log_warn("%s: cannot %s", j->name,
			 j->rejected ? "move it to rejected/" : "remove it from active/");
	else if (env->cfg->slurm_executor)
		node_result_remove(env->spool, j->name); /* only now: the record is safe */
	return rc;
}

/* PUBLISHING, one try of the step it is at: record the completion
 * durably, let the task file go, make the result visible. A failing step
 * is tried again with back-off; what was done is never undone. */
static void try_publish(const struct job_env *env, struct job *j, int64_t now)
{
	char published[SPOOL_NAME_SIZE];
	if (j->pub_step == PUB_RECORD) {
		if (spool_record_done(env->spool, j->name, j->result, j->rec, sizeof j->rec) < 0) {
			log_err("%s: cannot publish the result in %s (writing it whole first); "
				"retrying in %d ms", j->rep.id, env->spool->results_path,
				next_delay(j));
			schedule_retry(j, now);
			return;
		}
		j->rep.succeeded = !strcmp(result_status(j->result), "succeeded");
		snprintf(j->status, sizeof j->status, "%s", result_status(j->result));
		j->pub_step = PUB_LET_GO; /* j->result is kept for the service's hook and events */
		j->retry_delay_ms = 0;
	}
	if (j->pub_step == PUB_LET_GO) {
		if (let_go(env, j) < 0) {
			schedule_retry(j, now);
			return;
		}
		j->pub_step = PUB_RENAME;
		j->retry_delay_ms = 0;
	}
	if (spool_publish_done(env->spool, j->rec, j->rep.id, j->publish_first, published,
			       sizeof published) < 0) {
		log_err("%s: cannot publish the result in %s; retrying in %d ms", j->rep.id,
			env->spool->results_path, next_delay(j));
		schedule_retry(j, now);
		return;
	}
	if (j->cancel_spent)
		spool_cancel_done(env->spool, j->rep.id);
	log_info("%s: %s -> %s", j->rep.id, j->status, published);
	service_published(env->service, j->name, j->result, published);
	json_decref(j->result);
	j->result = NULL;
	j->rep.end = JOB_PUBLISHED;
	j->phase = JOB_OVER;
}

/* Durable: writes the result and hands the waiting for the disk to the
 * publisher's thread; false when it must be published here instead. */
static bool hand_over(const struct job_env *env, struct job *j)
{
	struct publication *q = &j->pub;
	if (!env->publisher || !env->spool->durable ||
	    spool_record_write(env->spool, j->name, j->result, &q->rec) < 0)
		return false;
	snprintf(q->task_name, sizeof q->task_name, "%s", j->name);
	snprintf(q->id, sizeof q->id, "%s", j->rep.id);
	q->first = j->publish_first;
	q->rejected = j->rejected;
	snprintf(q->kept, sizeof q->kept, "%s", j->kept);
	q->cancel_spent = j->cancel_spent;
	q->owner = j;
	if (publisher_submit(env->publisher, q) < 0) {
		spool_record_discard(env->spool, &q->rec);
		return false;
	}
	j->pub_pending = true;
	return true;
}

/* Submits result for publication; the task file is let go when it completes. */
static void submit(struct job *j, json_t *result)
{
	if (!result) {
		log_errx("%s: cannot build the result (out of memory); it stays in active/", j->rep.id);
		j->rep.end = JOB_LEFT;
		j->phase = JOB_OVER;
		return;
	}
	j->result = result;
	j->phase = JOB_PUBLISHING;
	j->pub_step = PUB_RECORD;
	j->retry_delay_ms = 0;
	j->retry_at_ns = 0;
	j->pub_fresh = true; /* written by job_hand_over, after the next start */
}

void job_hand_over(const struct job_env *env, struct job *j)
{
	if (j->phase != JOB_PUBLISHING || !j->pub_fresh)
		return;
	j->pub_fresh = false;
	if (!hand_over(env, j))
		try_publish(env, j, time_monotonic_ns());
}

/* The thread's outcome: done, or the step to go on from here, as
 * try_publish would (the record is durable from PUB_LET_GO on; the result
 * document is kept to the end for the service's hook and events). */
static void publication_returned(const struct job_env *env, struct job *j, int64_t now)
{
	const struct publication *q = &j->pub;
	if (q->reached >= PUBSTEP_RENAME && env->cfg->slurm_executor)
		node_result_remove(env->spool, j->name); /* as let_go does: the record is safe */
	if (q->reached >= PUBSTEP_LET_GO) {
		j->rep.succeeded = !strcmp(result_status(j->result), "succeeded");
		snprintf(j->status, sizeof j->status, "%s", result_status(j->result));
		snprintf(j->rec, sizeof j->rec, "%s", q->rec.rec);
		snprintf(j->kept, sizeof j->kept, "%s", q->kept);
	}
	if (q->reached == PUBSTEP_DONE) {
		log_info("%s: %s -> %s", j->rep.id, j->status, q->published);
		service_published(env->service, j->name, j->result, q->published);
		json_decref(j->result);
		j->result = NULL;
		j->rep.end = JOB_PUBLISHED;
		j->phase = JOB_OVER;
		return;
	}
	j->pub_step = q->reached == PUBSTEP_RECORD ? PUB_RECORD
		    : q->reached == PUBSTEP_LET_GO ? PUB_LET_GO : PUB_RENAME;
	errno = q->err;
	log_err("%s: cannot publish the result in %s; retrying in %d ms", j->rep.id,
		env->spool->results_path, next_delay(j));
	schedule_retry(j, now);
}

void job_published(struct job *j)
{
	j->pub_pending = false;
	j->retry_at_ns = 0; /* step at once */
}

static void reject(const struct job_env *env, struct job *j, const struct task_error *e)
{
	char kept_path[4096];
	spool_rejected_name(env->spool, j->name, j->kept, sizeof j->kept);
	if (spool_path_rejected(env->spool, j->kept, kept_path, sizeof kept_path) < 0)
		kept_path[0] = '\0';
	struct result_context ctx = { .task_file = j->name, .task_file_stamp = j->stamp,
				      .task_file_identity = j->identity[0] ? j->identity : NULL,
				      .attempt = 0 }; /* it never ran */
	j->rejected = true;
	log_warnx("%s: rejected (%s): %s", j->name, e->code, e->message);
	snprintf(j->status, sizeof j->status, "rejected");
	submit(j, result_rejected(j->rep.id, e, j->t.json, &ctx, kept_path[0] ? kept_path : NULL));
}

/* Whether a result for this very file (same stamp) is already published:
 * the runner stopped between publishing it and removing the file from
 * active/, or a reboot undid the claim's rename. Never run a task twice. */
static bool already_published(const struct job_env *env, const char *id, const char *stamp,
			      bool *was_rejected)
{
	char name[SPOOL_NAME_SIZE], why[64];
	for (unsigned n = 1; n < 100000; n++) {
		if (spool_name_result(id, n, name) < 0)
			return false;
		char *buf;
		size_t len;
		struct stat st;
		if (spool_read_task(env->spool->results_fd, name, SIZE_MAX / 4, false, &buf, &len,
				    &st, why, sizeof why) < 0)
			return false; /* results of one id are numbered without gaps */
		json_t *doc = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
		free(buf);
		const char *s = json_string_value(json_object_get(doc, "task_file_identity"));
		bool same = s && stamp[0] && strcmp(s, stamp) == 0;
		*was_rejected = same && !strcmp(result_status(doc), "rejected");
		json_decref(doc);
		if (same)
			return true;
	}
	return false;
}

/* Reads and validates active/NAME through the one task file pipeline
 * (taskfile.h); false with e filled when it is refused. rep.id gets the
 * task's id, or the one its rejection is filed under. */
static bool load_claimed(const struct job_env *env, struct job *j, struct task_error *e)
{
	struct taskfile tf;
	bool ok = taskfile_load_at(&tf, env->spool->active_fd, j->name, env->cfg, env->owners) ==
		  TASKFILE_OK;
	/* The job takes over what the pipeline found. */
	j->t = tf.task;
	*e = tf.error;
	j->user = tf.user;
	j->as_user = tf.as_user;
	memcpy(j->rep.id, tf.id, TASK_ID_MAX + 1);
	format_stamp(&tf.st, j->stamp, sizeof j->stamp);
	format_identity(env->spool->active_fd, j->name, j->identity, sizeof j->identity);
	j->parsed = ok;
	return ok;
}

static struct result_context context_of(const struct job *j)
{
	return (struct result_context){
		.task_file = j->name, .task_file_stamp = j->stamp,
		.task_file_identity = j->identity[0] ? j->identity : NULL,
		.recovered = j->st.interrupted > 0,
		.attempt = j->st.attempt,
		.attempts = j->st.attempts,
	};
}

/* Publishes a task that does not run: cancelled before its turn, or
 * interrupted too often. */
static void end_unrun(struct job *j, const char *status, const char *message)
{
	struct task_error e = { 0 };
	snprintf(e.code, sizeof e.code, "%s", status);
	snprintf(e.message, sizeof e.message, "%s: %s", j->name, message);
	struct result_context ctx = context_of(j);
	submit(j, result_not_run(status, j->t.id, &e, j->t.json, &ctx));
}

static int job_open_log(void *ctx, const char *stream)
{
	struct job *j = ctx;
	return spool_open_log(j->log_spool, j->t.id, stream);
}

/* Counts the attempt about to start, so that a crash during it is counted
 * too; false when the task was interrupted max_attempts times and has been
 * submitted as such instead. */
static bool count_attempt(const struct job_env *env, struct job *j)
{
	struct task_state *st = &j->st;
	if (j->origin == JOB_RECOVERED) {
		/* A first run leaves no state: its absence means attempt 1. */
		int last = st->attempt ? st->attempt : 1;
		st->attempt = last;
		st->interrupted++;
		json_array_append_new(task_state_attempts(st), json_pack("{s:i, s:s, s:s}",
			"attempt", last, "status", "interrupted",
			"retry_reason", "the runner or the machine stopped during this attempt"));
		if (st->interrupted >= (int)env->cfg->max_attempts) {
			char why[200];
			snprintf(why, sizeof why, "interrupted %d times (max_attempts = %u): the "
				 "runner stopped during every attempt, so it is not run again",
				 st->interrupted, env->cfg->max_attempts);
			log_warnx("%s: interrupted too often; not run again", j->t.id);
			end_unrun(j, "interrupted", why);
			return false;
		}
	}
	st->attempt++;
	/* A later attempt must be counted before it starts, durably; a first
	 * one is counted by its claim (no state means attempt 1). A local
	 * process waits for the claim's fsync only just before it is created
	 * (claim_synced), so that preparing it overlaps the wait. */
	if (st->attempt == 1 && env->publisher && j->claim_ticket && !env->cfg->slurm_executor) {
		j->claim_unsynced = env->publisher;
		return true;
	}
	int rc = st->attempt > 1 ? task_state_save(env->spool, env->spool->active_fd, j->name, st, true)
		 : env->publisher ? publisher_claim_sync_wait(env->publisher, j->claim_ticket)
				  : spool_sync_active(env->spool);
	if (rc < 0)
		log_warn("%s: cannot record attempt %d durably", j->t.id, st->attempt);
	return true;
}

/* The spawn gate of a first attempt (count_attempt): its claim is durable
 * before its process exists. */
static void claim_synced(void *ctx)
{
	struct job *j = ctx;
	if (!j->claim_unsynced)
		return;
	if (publisher_claim_sync_wait(j->claim_unsynced, j->claim_ticket) < 0)
		log_warn("%s: cannot record attempt %d durably", j->t.id, j->st.attempt);
	j->claim_unsynced = NULL;
}

/* MOVING (defer): one try at moving the task to deferred/, its history with it. */
struct defer_save {
	const struct job_env *env;
	struct job *j;
};

static int save_deferred_state(void *ctx, const char *deferred_name)
{
	struct defer_save *d = ctx;
	return task_state_save(d->env->spool, d->env->spool->deferred_fd, deferred_name, &d->j->st,
			       true);
}

static void try_defer(const struct job_env *env, struct job *j, int64_t now)
{
	struct task_state *st = &j->st;
	st->not_before_ms = j->defer_until_ms;
	snprintf(st->id, sizeof st->id, "%s", j->t.id);
	st->usage_limit = j->defer_usage_limit;
	snprintf(st->limit_key, sizeof st->limit_key, "%s", j->t.limit_key ? j->t.limit_key : "");
	struct defer_save ds = { env, j };
	if (spool_defer(env->spool, j->name, save_deferred_state, &ds, j->rep.deferred_name,
			sizeof j->rep.deferred_name) < 0) {
		log_warn("%s: cannot move it to deferred/; it stays in active/ and is tried again",
			 j->t.id);
		schedule_retry(j, now);
		return;
	}
	j->rep.end = j->requeueing ? JOB_REQUEUED : JOB_DEFERRED;
	j->rep.not_before_ms = j->defer_until_ms;
	if (j->defer_usage_limit && j->t.limit_key)
		snprintf(j->rep.limit_key, sizeof j->rep.limit_key, "%s", j->t.limit_key);
	j->phase = JOB_OVER;
	char when[32];
	time_format_rfc3339(j->defer_until_ms, when, sizeof when);
	if (j->requeueing) {
		log_info("%s: interrupted by the stop; put back in deferred/ (due at once), "
			 "its history kept", j->t.id);
		service_requeued(env->service, j->t.id, j->name);
	} else
		log_info("%s: deferred until %s", j->t.id, when);
}

static void defer(const struct job_env *env, struct job *j, int64_t until_ms, bool usage_limit)
{
	j->phase = JOB_MOVING;
	j->move = MOVE_DEFER;
	j->defer_until_ms = until_ms;
	j->defer_usage_limit = usage_limit;
	j->retry_delay_ms = 0;
	try_defer(env, j, time_monotonic_ns());
}

/* MOVING (requeue): a task interrupted by the stop goes back into
 * incoming/ when it has no history, else into deferred/ (due at once) so
 * its attempts are kept. incoming/ may hold a new file of the same name by
 * now: it is never replaced, the task goes to deferred/ instead. */
static void try_requeue(const struct job_env *env, struct job *j, int64_t now)
{
	if (spool_requeue(env->spool, j->name) == 0) {
		j->rep.end = JOB_REQUEUED;
		j->phase = JOB_OVER;
		log_info("%s: interrupted by the stop; put back in incoming/", j->t.id);
		service_requeued(env->service, j->t.id, j->name);
		return;
	}
	if (errno == EEXIST) {
		log_info("%s: incoming/%s is taken by another file; putting it in deferred/ instead",
			 j->t.id, j->name);
		defer(env, j, time_realtime_ms(), false);
		return;
	}
	log_warn("%s: cannot put it back in incoming/; it stays in active/ and is tried again",
		 j->name);
	schedule_retry(j, now);
}

static void requeue(const struct job_env *env, struct job *j)
{
	j->requeueing = true;
	j->st.attempt--;
	if (j->st.attempt > 0 || json_array_size(task_state_attempts(&j->st))) {
		defer(env, j, time_realtime_ms(), false);
		return;
	}
	spool_remove_state(env->spool, env->spool->active_fd, j->name);
	j->phase = JOB_MOVING;
	j->move = MOVE_REQUEUE;
	j->retry_delay_ms = 0;
	try_requeue(env, j, time_monotonic_ns());
}

/* Renders a capture for pattern matching (raw bytes, head and tail). */
static char *rendered(const struct run_stream *s, size_t *len)
{
	char *text = capture_render(&s->cap, len);
	if (!text)
		*len = 0;
	return text;
}

/* Decides on a retry of run o (inline output out/err) and records the
 * attempt; true when the task was deferred for it. */
static bool retried(const struct job_env *env, struct job *j, const struct run_outcome *o,
		    bool cancelled, const char *out, size_t olen, const char *err, size_t elen)
{
	const struct task *t = &j->t;
	struct retry_decision d = { .action = RETRY_NONE };
	if (!cancelled) {
		double jitter = (double)rand_r(env->jitter_seed) / ((double)RAND_MAX + 1.0);
		struct retry_limits lim = { env->usage_limit, &env->cfg->api_limits,
					    (unsigned)j->st.limit_deferrals };
		retry_decide(t, o, out ? out : "", olen, err ? err : "", elen,
			     (unsigned)j->st.retries_used, &lim, time_realtime_ms(), jitter, &d);
	}
	json_t *record = result_attempt_record(j->st.attempt, o, cancelled);
	if (d.action != RETRY_NONE) {
		char when[32];
		time_format_rfc3339(d.not_before_ms, when, sizeof when);
		json_object_set_new(record, "retry_reason", json_string(d.reason));
		json_object_set_new(record, "retry_at", json_string(when));
		if (d.action == RETRY_USAGE_LIMIT)
			json_object_set_new(record, "retry_limit",
					    api_limit_to_json(&d.limit, d.not_before_ms));
	}
	json_array_append_new(task_state_attempts(&j->st), record);
	if (d.action == RETRY_BACKOFF)
		j->st.retries_used++;
	if (d.action == RETRY_USAGE_LIMIT)
		j->st.limit_deferrals++;
	if (d.action != RETRY_NONE) {
		log_info("%s: attempt %d %s; %s", t->id, j->st.attempt,
			 o->status == RUN_EXITED ? "failed" : "did not succeed", d.reason);
		service_deferred(env->service, t->id, j->name, j->st.attempt,
				 d.action == RETRY_BACKOFF, d.not_before_ms, d.reason);
		defer(env, j, d.not_before_ms, d.action == RETRY_USAGE_LIMIT);
		return true;
	}
	return false;
}

/* After a run: submit its result, or defer it for a retry. */
static void conclude(const struct job_env *env, struct job *j, struct run_outcome *o,
		     bool cancelled)
{
	const struct task *t = &j->t;
	size_t olen = 0, elen = 0;
	char *out = cancelled ? NULL : rendered(&o->out, &olen);
	char *err = cancelled ? NULL : rendered(&o->err, &elen);
	bool deferred = retried(env, j, o, cancelled, out, olen, err, elen);
	free(out);
	free(err);
	if (deferred)
		return;
	char out_path[4096], err_path[4096];
	if (spool_path_log(env->spool, t->id, "stdout", out_path, sizeof out_path) < 0)
		out_path[0] = '\0';
	if (spool_path_log(env->spool, t->id, "stderr", err_path, sizeof err_path) < 0)
		err_path[0] = '\0';
	struct result_context ctx = context_of(j);
	ctx.cancelled = cancelled;
	ctx.stdout_log = o->out.log_created && out_path[0] ? out_path : NULL;
	ctx.stderr_log = o->err.log_created && err_path[0] ? err_path : NULL;
	/* Done either way, killed or finished first: the request is spent. */
	j->cancel_spent = j->cancelled;
	json_t *result = result_from_run(t, o, &ctx);
	history_note_result(env->history, t, result);
	submit(j, result);
}

/* --- Slurm (slurmexec.h): the job's flight is its executor handle ------ */

/* What a flight must not forget, in the task state: durably. */
static int record_slurm_job(void *ctx, const char *job_name, const char *job_id)
{
	struct job *j = ctx;
	snprintf(j->st.slurm_job_name, sizeof j->st.slurm_job_name, "%s", job_name);
	snprintf(j->st.slurm_job_id, sizeof j->st.slurm_job_id, "%s", job_id);
	snprintf(j->st.executor, sizeof j->st.executor, "slurm");
	return task_state_save(j->log_spool, j->log_spool->active_fd, j->name, &j->st, true);
}

/* A flight for the counted attempt; re-attached to the job the state
 * names when there is one (a watcher that stopped or crashed meanwhile). */
static void start_slurm(const struct job_env *env, struct job *j, bool reattach)
{
	struct slurm_flight *f = malloc(sizeof *f);
	if (!f) {
		log_errx("%s: out of memory starting it; it stays in active/", j->t.id);
		j->phase = JOB_OVER;
		return;
	}
	j->log_spool = env->spool;
	slurm_flight_init(f, env->slurm, j->name, j->st.attempt, &j->t, record_slurm_job, j);
	if (reattach) {
		slurm_flight_attach(f, j->st.slurm_job_name, j->st.slurm_job_id);
		log_info("%s: following Slurm job %s again", j->t.id,
			 j->st.slurm_job_id[0] ? j->st.slurm_job_id : j->st.slurm_job_name);
	} else {
		j->st.started_ms = time_realtime_ms();
		service_started(env->service, j->t.id, j->name, j->st.attempt); /* in Slurm's hands */
	}
	j->ex = &executor_slurm;
	j->handle = f;
	j->phase = JOB_RUNNING;
	j->started_ms = j->st.started_ms ? j->st.started_ms : time_realtime_ms();
}

/* A flight is over: its result (the node's, or Slurm's end), a retry, or
 * publication. The state forgets the job before either. */
static void conclude_slurm(const struct job_env *env, struct job *j)
{
	struct slurm_flight *f = j->handle;
	struct result_context ctx = context_of(j);
	struct run_outcome o;
	char *out, *err;
	json_t *result = slurm_flight_result(f, &ctx, &o, &out, &err);
	free(f);
	j->handle = NULL;
	j->st.slurm_job_name[0] = j->st.slurm_job_id[0] = j->st.slurm_state[0] = '\0';
	/* A cancelled task is never retried, also when its job finished first. */
	bool cancelled = o.status == RUN_ABORTED || j->cancelled;
	bool deferred = retried(env, j, &o, cancelled, out, out ? strlen(out) : 0, err,
				err ? strlen(err) : 0);
	free(out);
	free(err);
	if (deferred) {
		json_decref(result);
		node_result_remove(env->spool, j->name);
		return;
	}
	if (result)
		json_object_set_new(result, "attempts", json_deep_copy(task_state_attempts(&j->st)));
	j->cancel_spent = j->cancelled;
	history_note_result(env->history, &j->t, result);
	submit(j, result);
}

/* For status: the job's id and state, saved (not durably) when they change. */
static void note_slurm_state(const struct job_env *env, struct job *j)
{
	const struct slurm_flight *f = j->handle;
	if (!strcmp(j->st.slurm_state, f->job.info.state) &&
	    !strcmp(j->st.slurm_job_id, f->job.info.job_id))
		return;
	snprintf(j->st.slurm_state, sizeof j->st.slurm_state, "%s", f->job.info.state);
	snprintf(j->st.slurm_job_id, sizeof j->st.slurm_job_id, "%s", f->job.info.job_id);
	task_state_save(env->spool, env->spool->active_fd, j->name, &j->st, false);
}

/* Starts the counted attempt on the executor and records who runs it. */
static void start_run(const struct job_env *env, struct job *j)
{
	history_settle_timeout(env->history, &env->cfg->task, &j->t);
	if (env->cfg->slurm_executor) {
		start_slurm(env, j, false);
		return;
	}
	j->log_spool = env->spool;
	j->opt = (struct run_options){
		.max_output = env->cfg->max_output, .max_log = env->cfg->max_log,
		.open_log = job_open_log, .sync_logs = env->spool->durable,
		.as_user = j->as_user ? &j->user : NULL, .ctx = j,
		.before_spawn = claim_synced,
	};
	spool_remove_logs(env->spool, j->t.id);
	log_debug("%s: starting %s (timeout %g s, %s)", j->t.id, j->t.argv[0], j->t.timeout,
		  timeout_source_name(j->t.timeout_source));
	j->ex = env->executor;
	j->handle = j->ex->start(&j->t, &j->opt);
	if (!j->handle) {
		log_errx("%s: out of memory starting it; it stays in active/", j->t.id);
		j->phase = JOB_OVER;
		return;
	}
	j->phase = JOB_RUNNING;
	j->started_ms = time_realtime_ms();
	service_started(env->service, j->t.id, j->name, j->st.attempt);
}

/* True when this very file's result is already published (same stamp): the
 * bookkeeping the runner did not finish before it stopped is done now.
 * Called only when a result for its id exists. */
static bool finish_if_published(const struct job_env *env, struct job *j)
{
	bool was_rejected = false;
	if (!already_published(env, j->rep.id, j->identity, &was_rejected))
		return false;
	log_info("%s: result already published; finishing its bookkeeping", j->name);
	if (was_rejected ? spool_keep_rejected(env->spool, j->name, j->kept, sizeof j->kept)
			 : spool_finish(env->spool, j->name))
		log_warn("%s: cannot clear it from active/", j->name);
	j->rep.end = JOB_PUBLISHED;
	j->phase = JOB_OVER;
	return true;
}

static void duplicate_error(const struct job_env *env, const struct job *j, struct task_error *e)
{
	snprintf(e->code, sizeof e->code, "duplicate_id");
	snprintf(e->field, sizeof e->field, "id");
	snprintf(e->message, sizeof e->message,
		 "%s: field \"id\": a result for \"%s\" already exists in %s; "
		 "ids must be unique, so this task was not run",
		 j->name, j->rep.id, env->spool->results_path);
}

void job_skip(struct job *j, const struct task_error *e)
{
	j->skipping = true;
	j->skip = *e;
}

/* A completion record a stop left (spool.h): let its task file go if it
 * is still there, then publish it. name is the record's. */
static void begin_completed(const struct job_env *env, struct job *j)
{
	snprintf(j->rec, sizeof j->rec, "%s", j->name);
	json_t *doc = spool_load_done(env->spool, j->rec);
	const char *file = json_string_value(json_object_get(doc, "task_file"));
	const char *id = json_string_value(json_object_get(doc, "id"));
	const char *kept = json_string_value(json_object_get(doc, "rejected_file"));
	if (!doc || !id || !task_id_valid(id, strlen(id))) {
		/* Not ours, or torn by a failing disk: nothing to publish. */
		log_warnx("%s: unreadable completion record; removed", j->rec);
		spool_drop_done(env->spool, j->rec);
		json_decref(doc);
		j->phase = JOB_OVER;
		j->rep.end = JOB_LEFT;
		return;
	}
	snprintf(j->rep.id, sizeof j->rep.id, "%s", id);
	snprintf(j->status, sizeof j->status, "%s", result_status(doc));
	j->rep.succeeded = !strcmp(j->status, "succeeded");
	j->rejected = !strcmp(j->status, "rejected");
	if (kept && strrchr(kept, '/'))
		kept = strrchr(kept, '/') + 1;
	snprintf(j->kept, sizeof j->kept, "%s", kept ? kept : "");
	j->name[0] = '\0';
	if (file && !strchr(file, '/') && strlen(file) < sizeof j->name)
		snprintf(j->name, sizeof j->name, "%s", file);
	json_decref(doc);
	log_info("%s: completed before the last stop; publishing its result", j->rep.id);
	j->phase = JOB_PUBLISHING;
	j->pub_step = j->name[0] ? PUB_LET_GO : PUB_RENAME;
	try_publish(env, j, time_monotonic_ns());
}

static void in_use_error(const struct job *j, struct task_error *e)
{
	snprintf(e->code, sizeof e->code, "duplicate_id");
	snprintf(e->field, sizeof e->field, "id");
	snprintf(e->message, sizeof e->message,
		 "%.200s: field \"id\": a task with id \"%s\" is already running or waiting "
		 "in deferred/ for a retry; ids must be unique, so this task was not run",
		 j->name, j->rep.id);
}

void job_begin(const struct job_env *env, struct job *j)
{
	struct task_error e = { 0 };
	if (j->origin == JOB_COMPLETED) {
		begin_completed(env, j);
		return;
	}
	bool ok = load_claimed(env, j, &e);
	bool has_result = spool_result_exists(env->spool, j->rep.id);
	if (has_result && finish_if_published(env, j))
		return;
	/* A retry holds its id (a new file with it was refused while it
	 * waited), whatever was published meanwhile; a new or recovered file
	 * whose id has a result (not its own: see finish_if_published) is a
	 * duplicate. */
	if (ok && j->origin == JOB_NEW && env->id_in_use &&
	    env->id_in_use(env->ctx, j->rep.id, j->name)) {
		in_use_error(j, &e);
		j->publish_first = 2; /* ID.json stays the first task's */
		ok = false;
	} else if (ok && j->origin != JOB_RETRY && has_result) {
		duplicate_error(env, j, &e);
		ok = false;
	}
	if (!ok) {
		reject(env, j, &e);
		return;
	}
	task_state_load(env->spool, env->spool->active_fd, j->name, &j->st);
	if (env->cfg->slurm_executor && j->st.slurm_job_name[0]) {
		start_slurm(env, j, true); /* its job may be running: never submit twice */
		return;
	}
	if (spool_cancel_requested(env->spool, j->t.id)) {
		j->cancel_spent = true;
		end_unrun(j, "cancelled", "cancelled through cancel/ before it ran");
		return;
	}
	if (j->skipping) {
		struct result_context ctx = context_of(j);
		log_info("%s: skipped (%s): %s", j->t.id, j->skip.code, j->skip.message);
		submit(j, result_not_run("skipped", j->t.id, &j->skip, j->t.json, &ctx));
		return;
	}
	int64_t until = j->t.limit_key ? env->key_blocked_until(env->ctx, j->t.limit_key) : 0;
	if (until > time_realtime_ms()) {
		/* Another task found this key's usage limit: wait with it. */
		service_deferred(env->service, j->t.id, j->name, j->st.attempt, false, until,
				 "another task of its limit_key met a usage limit");
		defer(env, j, until, true);
		return;
	}
	if (count_attempt(env, j))
		start_run(env, j);
}

static void step_running(const struct job_env *env, struct job *j, int64_t now)
{
	if (j->ex == &executor_slurm && j->stopping) {
		/* Its job runs on in Slurm: followed again at the next start. */
		slurm_flight_leave(j->handle);
		free(j->handle);
		j->handle = NULL;
		j->rep.end = JOB_LEFT;
		j->phase = JOB_OVER;
		return;
	}
	int64_t wake = j->ex->advance(j->handle, now);
	if (j->ex == &executor_slurm) {
		if (wake >= 0) {
			note_slurm_state(env, j);
			j->retry_at_ns = wake;
		} else
			conclude_slurm(env, j);
		return;
	}
	if (wake >= 0) {
		j->retry_at_ns = wake;
		return;
	}
	struct run_outcome o;
	j->ex->finish(j->handle, &o);
	j->handle = NULL;
	if (o.status == RUN_ABORTED && !j->cancelled)
		requeue(env, j);
	else
		conclude(env, j, &o, j->cancelled && o.status == RUN_ABORTED);
	run_outcome_clear(&o);
}

void job_step(const struct job_env *env, struct job *j, int64_t now)
{
	switch (j->phase) {
	case JOB_RUNNING:
		step_running(env, j, now);
		break;
	case JOB_PUBLISHING:
		if (j->pub_fresh) {
			job_hand_over(env, j);
			break;
		}
		if (j->pub_pending)
			break;
		if (j->pub.owner) {
			j->pub.owner = NULL;
			publication_returned(env, j, now);
		} else if (now >= j->retry_at_ns)
			try_publish(env, j, now);
		break;
	case JOB_MOVING:
		if (now < j->retry_at_ns)
			break;
		if (j->move == MOVE_DEFER)
			try_defer(env, j, now);
		else
			try_requeue(env, j, now);
		break;
	case JOB_BEGIN:
	case JOB_OVER:
		break;
	}
}

int64_t job_wake(const struct job *j, int64_t now)
{
	(void)now;
	switch (j->phase) {
	case JOB_PUBLISHING:
		/* In the publisher's hands: its completion is an event. */
		return j->pub_pending ? INT64_MAX : j->retry_at_ns;
	case JOB_RUNNING:
	case JOB_MOVING:
		return j->retry_at_ns;
	default:
		return INT64_MAX;
	}
}

void job_cancel(struct job *j)
{
	if (j->phase != JOB_RUNNING || j->cancelled)
		return;
	j->cancelled = true;
	j->ex->abort(j->handle);
}

void job_stop(struct job *j)
{
	if (j->phase != JOB_RUNNING || j->stopping)
		return;
	j->stopping = true;
	if (j->ex == &executor_slurm) {
		j->retry_at_ns = 0; /* left to Slurm at the next step */
		return;
	}
	j->ex->abort(j->handle);
}
