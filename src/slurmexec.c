#define _GNU_SOURCE
#include "slurmexec.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "node.h"
#include "timeutil.h"

#define SUBMIT_DELAY_FIRST_MS 1000
#define SUBMIT_DELAY_MAX_MS 60000
#define NS_PER_MS INT64_C(1000000)

/* Every flight in Slurm, polled together. */
static struct {
	struct slurm_flight *head;
	int64_t next_poll_ns;
	size_t n;
} fleet;

size_t slurm_fleet_size(void)
{
	return fleet.n;
}

static void fleet_add(struct slurm_flight *f)
{
	f->next = fleet.head;
	fleet.head = f;
	fleet.n++;
}

static void fleet_remove(struct slurm_flight *f)
{
	for (struct slurm_flight **p = &fleet.head; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			fleet.n--;
			break;
		}
	}
	f->next = NULL;
}

void slurm_job_name(const char *root, const char *name, int attempt, char *out, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a: the same spool gives the same tag */
	for (const char *p = root; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	size_t n = strlen(name);
	if (n > 5 && !strcmp(name + n - 5, ".json"))
		n -= 5;
	snprintf(out, len, "spoolrun-%08x-%.*s-%d", h, (int)n, name, attempt);
}

void slurm_flight_init(struct slurm_flight *f, const struct slurm_env *env, const char *name,
		       int attempt, const struct task *t, slurm_record_fn record, void *ctx)
{
	memset(f, 0, sizeof *f);
	f->env = env;
	snprintf(f->name, sizeof f->name, "%s", name);
	f->attempt = attempt;
	f->t = t;
	f->phase = FLIGHT_SUBMIT;
	f->delay_ms = SUBMIT_DELAY_FIRST_MS;
	f->record = record;
	f->record_ctx = ctx;
	slurm_job_name(env->spool->root, name, attempt, f->job_name, sizeof f->job_name);
	fleet_add(f);
}

void slurm_flight_attach(struct slurm_flight *f, const char *job_name, const char *job_id)
{
	if (job_name && *job_name)
		snprintf(f->job_name, sizeof f->job_name, "%s", job_name);
	f->recorded_name = true;
	if (job_id && *job_id) {
		snprintf(f->job.info.job_id, sizeof f->job.info.job_id, "%s", job_id);
		f->phase = FLIGHT_IN_SLURM;
	} else
		f->look_first = true;
}

/* A job of f's name that Slurm knows (a submission a crash interrupted
 * before its id was recorded). 1 found, 0 none, -1 cannot ask. */
static int look_up_by_name(struct slurm_flight *f)
{
	char *name_arg = NULL;
	if (asprintf(&name_arg, "--name=%s", f->job_name) < 0)
		return -1;
	const struct slurm_config *c = f->env->cfg;
	char *squeue[] = { c->squeue, "--noheader", "--states=all", "--format=%i", name_arg, NULL };
	struct slurmcmd_output o;
	int rc = slurmcmd_run(squeue, SLURMCMD_TIMEOUT_S, &o) < 0 || o.exit_code != 0 ? -1 : 0;
	char id[SLURM_JOB_ID_MAX + 1];
	if (rc == 0 && slurm_parse_job_id(o.out, id) == 0) {
		snprintf(f->job.info.job_id, sizeof f->job.info.job_id, "%s", id);
		rc = 1;
	}
	slurmcmd_output_clear(&o);
	if (rc == 0) { /* gone from the controller: accounting may remember it */
		char *sacct[] = { c->sacct, "--noheader", "--allocations", "--parsable2",
				  "--format=JobID", name_arg, NULL };
		if (slurmcmd_run(sacct, SLURMCMD_TIMEOUT_S, &o) == 0 && o.exit_code == 0 &&
		    slurm_parse_job_id(o.out, id) == 0) {
			snprintf(f->job.info.job_id, sizeof f->job.info.job_id, "%s", id);
			rc = 1;
		}
		slurmcmd_output_clear(&o);
	}
	free(name_arg);
	return rc;
}

static void submit_later(struct slurm_flight *f, int64_t now, const char *why)
{
	log_warnx("%s: not submitted to Slurm (%s); trying again in %d ms", f->name, why, f->delay_ms);
	f->next_try_ns = now + f->delay_ms * NS_PER_MS;
	f->delay_ms = f->delay_ms * 2 > SUBMIT_DELAY_MAX_MS ? SUBMIT_DELAY_MAX_MS : f->delay_ms * 2;
}

static void submit(struct slurm_flight *f, int64_t now)
{
	const struct slurm_env *env = f->env;
	if (f->look_first) {
		int found = look_up_by_name(f);
		if (found < 0)
			return submit_later(f, now, "cannot ask Slurm for an earlier submission");
		f->look_first = false;
		if (found) {
			log_info("%s: re-attached to Slurm job %s", f->name, f->job.info.job_id);
			if (f->record)
				f->record(f->record_ctx, f->job_name, f->job.info.job_id);
			f->phase = FLIGHT_IN_SLURM;
			return;
		}
	}
	if (!f->recorded_name && f->record && f->record(f->record_ctx, f->job_name, "") < 0)
		return submit_later(f, now, "cannot record the job in the task state");
	f->recorded_name = true;
	char out_path[PATH_MAX], **argv = node_argv(env->self, env->config_path, env->spool->root,
						   f->name, f->attempt);
	if (!argv)
		return submit_later(f, now, "out of memory");
	if (spool_path_log(env->spool, f->t->id, "slurm", out_path, sizeof out_path) < 0)
		snprintf(out_path, sizeof out_path, "/dev/null");
	struct slurm_submission s = {
		.job_name = f->job_name, .output_path = out_path, .workdir = env->spool->root,
		.node_argv = (const char *const *)argv, .timeout = f->t->timeout,
		.kill_grace = f->t->kill_grace,
	};
	char id[SLURM_JOB_ID_MAX + 1];
	enum slurmcmd_submit rc = slurmcmd_submit(env->cfg, &f->t->slurm, &s, id, f->error,
						  sizeof f->error);
	node_argv_free(argv);
	if (rc == SLURMCMD_TRANSIENT)
		return submit_later(f, now, f->error);
	if (rc == SLURMCMD_PERMANENT) {
		log_warnx("%s: Slurm refused it: %s", f->name, f->error);
		f->submit_failed = true;
		f->phase = FLIGHT_OVER;
		return;
	}
	snprintf(f->job.info.job_id, sizeof f->job.info.job_id, "%s", id);
	/* A crash now finds the job by its recorded name; the id saves a query. */
	if (f->record && f->record(f->record_ctx, f->job_name, id) < 0)
		log_warn("%s: cannot record Slurm job %s in its state", f->name, id);
	f->phase = FLIGHT_IN_SLURM;
	if (!fleet.next_poll_ns || fleet.next_poll_ns > now + time_seconds_to_ns(env->cfg->poll_interval))
		fleet.next_poll_ns = now + time_seconds_to_ns(env->cfg->poll_interval);
	log_info("%s: submitted as Slurm job %s", f->name, id);
}

/* One squeue (and at most one sacct or scontrol) for every flight in Slurm. */
static void poll_fleet(const struct slurm_config *c, int64_t now)
{
	fleet.next_poll_ns = now + time_seconds_to_ns(c->poll_interval);
	size_t n = 0;
	for (struct slurm_flight *f = fleet.head; f; f = f->next)
		n += f->phase == FLIGHT_IN_SLURM;
	if (!n)
		return;
	struct slurmcmd_job *jobs = calloc(n, sizeof *jobs);
	if (!jobs)
		return;
	size_t i = 0;
	for (struct slurm_flight *f = fleet.head; f; f = f->next)
		if (f->phase == FLIGHT_IN_SLURM)
			jobs[i++] = f->job;
	if (slurmcmd_poll(c, jobs, n) < 0)
		log_debug("Slurm's controller did not answer; its %zu job(s) are asked again later", n);
	else {
		i = 0;
		for (struct slurm_flight *f = fleet.head; f; f = f->next) {
			if (f->phase != FLIGHT_IN_SLURM)
				continue;
			f->job = jobs[i++];
			if (f->job.seen && slurm_state_phase(f->job.info.state) == SLURM_ENDED)
				f->phase = FLIGHT_OVER;
		}
	}
	free(jobs);
}

int64_t slurm_flight_advance(struct slurm_flight *f, int64_t now)
{
	if (f->phase == FLIGHT_SUBMIT && now >= f->next_try_ns)
		submit(f, now);
	if (f->phase == FLIGHT_IN_SLURM && now >= fleet.next_poll_ns)
		poll_fleet(f->env->cfg, now);
	switch (f->phase) {
	case FLIGHT_SUBMIT: return f->next_try_ns;
	case FLIGHT_IN_SLURM: return fleet.next_poll_ns;
	case FLIGHT_OVER: break;
	}
	return -1;
}

void slurm_flight_cancel(struct slurm_flight *f)
{
	f->cancel = true;
	/* Re-attached by name only: a job of that name may be in Slurm. */
	if (f->phase == FLIGHT_SUBMIT && f->look_first && look_up_by_name(f) == 1) {
		f->look_first = false;
		f->phase = FLIGHT_IN_SLURM;
	}
	if (f->phase == FLIGHT_SUBMIT) {
		f->phase = FLIGHT_OVER;
		return;
	}
	if (f->phase == FLIGHT_IN_SLURM && slurmcmd_cancel(f->env->cfg, f->job.info.job_id) == 0)
		fleet.next_poll_ns = 0; /* see it end soon */
}

void slurm_flight_leave(struct slurm_flight *f)
{
	if (f->phase == FLIGHT_IN_SLURM)
		log_info("%s: left running as Slurm job %s; followed again at the next start",
			 f->name, f->job.info.job_id);
	fleet_remove(f);
}

/* ---- results ----------------------------------------------------------------- */

static json_t *slurm_object(const struct slurm_job_info *j)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "job_id", j->job_id, "state", j->state,
			 "node", *j->node ? json_string(j->node) : json_null(),
			 "reason", *j->reason ? json_string(j->reason) : json_null());
}

static json_t *error_json(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code, "message", message);
}

json_t *slurm_compose_result(const struct task *t, const struct slurm_job_info *j,
			     json_t *node_result, bool cancelled, const struct result_context *ctx)
{
	bool normal_end = !strcmp(j->state, "COMPLETED") || !strcmp(j->state, "FAILED");
	json_t *r;
	if (node_result && normal_end && !cancelled) {
		r = json_deep_copy(node_result); /* the node's own account decides */
	} else {
		struct task_error e = { .field = "" };
		const char *status;
		if (cancelled) {
			status = "cancelled";
			snprintf(e.code, sizeof e.code, "cancelled");
			snprintf(e.message, sizeof e.message, "cancelled through cancel/%s (Slurm job %s, scancel)",
				 t->id, j->job_id);
		} else {
			struct slurm_end end;
			slurm_state_end(j->state, &end);
			status = end.status;
			snprintf(e.code, sizeof e.code, "%s", end.code);
			slurm_end_message(j, &end, e.message, sizeof e.message);
		}
		if (node_result) { /* keep what the task wrote before Slurm ended it */
			r = json_deep_copy(node_result);
			json_object_set_new(r, "status", json_string(status));
			json_object_set_new(r, "error", error_json(e.code, e.message));
			json_object_set_new(r, "exit_code", json_null());
		} else
			r = result_not_run(status, t->id, &e, t->json, ctx);
	}
	if (!r)
		return NULL;
	json_object_set_new(r, "attempt", json_integer(ctx->attempt));
	if (ctx->attempts)
		json_object_set_new(r, "attempts", json_deep_copy(ctx->attempts));
	json_object_set_new(r, "task_file", ctx->task_file ? json_string(ctx->task_file) : json_null());
	json_object_set_new(r, "task_file_stamp",
			    ctx->task_file_stamp ? json_string(ctx->task_file_stamp) : json_null());
	json_object_set_new(r, "slurm", slurm_object(j));
	return r;
}

static int64_t parse_ms(const json_t *v)
{
	struct tm tm = { 0 };
	int ms = 0;
	const char *s = json_string_value(v);
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return time_realtime_ms();
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

void slurm_outcome_of(const json_t *result, struct run_outcome *o)
{
	memset(o, 0, sizeof *o);
	o->exit_code = -1;
	const char *status = result_status(result);
	json_t *code = json_object_get(result, "exit_code");
	json_t *sig = json_object_get(json_object_get(result, "signal"), "number");
	const char *ecode = json_string_value(json_object_get(json_object_get(result, "error"), "code"));
	o->started_ms = parse_ms(json_object_get(result, "started_at"));
	o->finished_ms = parse_ms(json_object_get(result, "finished_at"));
	o->duration_ms = json_integer_value(json_object_get(result, "duration_ms"));
	if (!strcmp(status, "succeeded") || !strcmp(status, "failed")) {
		o->status = RUN_EXITED;
		o->exit_code = (int)json_integer_value(code);
	} else if (!strcmp(status, "timeout") ||
		   (ecode && slurm_code_retry_as(ecode) == SLURM_RETRY_AS_TIMEOUT)) {
		o->status = RUN_TIMEOUT; /* retry_on.timeout counts Slurm's time limit too */
	} else if (!strcmp(status, "killed") ||
		   (ecode && slurm_code_retry_as(ecode) == SLURM_RETRY_AS_SIGNAL)) {
		o->status = RUN_SIGNALED; /* retry_on.signal: node failure, preemption, vanished */
		o->term_signal = sig ? (int)json_integer_value(sig) : SIGKILL;
	} else if (!strcmp(status, "cancelled")) {
		o->status = RUN_ABORTED;
	} else {
		o->status = RUN_SPAWN_ERROR;
	}
}

json_t *slurm_flight_result(struct slurm_flight *f, const struct result_context *ctx,
			    struct run_outcome *o, char **out, char **err)
{
	fleet_remove(f);
	json_t *r;
	if (f->submit_failed || (f->cancel && !*f->job.info.job_id)) {
		struct task_error e = { .field = "" };
		bool cancelled = f->cancel;
		snprintf(e.code, sizeof e.code, "%s", cancelled ? "cancelled" : "submit_failed");
		snprintf(e.message, sizeof e.message, "%s", cancelled ? "cancelled before Slurm took it" : f->error);
		r = result_not_run(cancelled ? "cancelled" : "error", f->t->id, &e, f->t->json, ctx);
	} else {
		json_t *node = node_result_load(f->env->spool, f->name);
		if (node && json_integer_value(json_object_get(node, "attempt")) != f->attempt) {
			json_decref(node); /* an earlier attempt's: not this job's */
			node = NULL;
		}
		bool cancelled = f->cancel && !strcmp(f->job.info.state, "CANCELLED");
		r = slurm_compose_result(f->t, &f->job.info, node, cancelled, ctx);
		json_decref(node);
	}
	slurm_outcome_of(r, o);
	const char *s = json_string_value(json_object_get(r, "stdout"));
	const char *e = json_string_value(json_object_get(r, "stderr"));
	*out = s ? strdup(s) : NULL;
	*err = e ? strdup(e) : NULL;
	return r;
}

/* ---- behind the executor seam ---------------------------------------------- */

/* The loop starts, cancels, stops and concludes Slurm flights itself
 * (job.c: they need the task file's name, attempt and state); the seam
 * gives them what every running task has: no descriptors, a timer. */
static void *slurm_seam_start(const struct task *t, const struct run_options *opt)
{
	(void)t;
	(void)opt;
	errno = ENOTSUP;
	return NULL;
}

static int slurm_seam_pollfds(void *h, struct pollfd *fds, int max)
{
	(void)h;
	(void)fds;
	(void)max;
	return 0;
}

static void slurm_seam_on_ready(void *h, const struct pollfd *fds, int n)
{
	(void)h;
	(void)fds;
	(void)n;
}

static int64_t slurm_seam_advance(void *h, int64_t now)
{
	return slurm_flight_advance(h, now);
}

static void slurm_seam_abort(void *h)
{
	slurm_flight_cancel(h);
}

/* Only reached when a job is cleared without its conclusion (the runner
 * gives up on it): the flight is forgotten, the job left to Slurm. */
static void slurm_seam_finish(void *h, struct run_outcome *o)
{
	memset(o, 0, sizeof *o);
	o->status = RUN_ABORTED;
	o->exit_code = -1;
	slurm_flight_leave(h);
	free(h);
}

static pid_t slurm_seam_pid(const void *h)
{
	(void)h;
	return 0; /* no local process; status shows the job id instead */
}

static void slurm_seam_bytes(const void *h, uint64_t *out, uint64_t *err)
{
	(void)h;
	*out = *err = 0;
}

const struct executor executor_slurm = {
	.name = "slurm", .start = slurm_seam_start, .pollfds = slurm_seam_pollfds,
	.on_ready = slurm_seam_on_ready, .on_child = NULL, .advance = slurm_seam_advance,
	.abort = slurm_seam_abort, .finish = slurm_seam_finish, .pid = slurm_seam_pid,
	.bytes = slurm_seam_bytes,
};
