#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arrival.h"
#include "cgroup.h"
#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "grow.h"
#include "history.h"
#include "holds.h"
#include "lifecycle.h"
#include "executor.h"
#include "job.h"
#include "log.h"
#include "owner.h"
#include "publisher.h"
#include "queue.h"
#include "run.h"
#include "sched.h"
#include "service.h"
#include "signals.h"
#include "spool.h"
#include "task.h"
#include "task_state.h"
#include "timeutil.h"
#include "version.h"
#include "watch.h"

/* A usage limit shared by the tasks of one limit_key. */
struct key_block {
	char key[TASK_ID_MAX + 1];
	int64_t until_ms;
};

/* A task in flight: the job (its own state machine) in the runner's list. */
struct flight {
	struct job job;
	struct flight *next;
	int pfd_first, pfd_count;  /* its entries in the poll set, this turn */
};

struct runner {
	struct config cfg;
	const char *spool_root;   /* command-line override, or NULL */
	bool drain;               /* exit once nothing runnable is left */
	struct spool spool;
	struct publisher *publisher; /* waits for the disk off the critical path */
	unsigned long claim_ticket;  /* the last claim's fsync, for its job */
	struct queue incoming;    /* waiting in incoming/, in run order */
	struct queue deferred;    /* waiting in deferred/, by time (mtime_ns) */
	struct queue recovered;   /* found in active/ at start-up: run first */
	struct watch watch;
	int w_incoming, w_cancel, w_root;
	struct owner_policy owners;
	regex_t usage_limit;
	bool has_usage_limit;
	struct key_block *blocks;
	size_t nblocks;
	unsigned jitter_seed;
	int sigfd;
	int stop_signal;          /* SIGTERM or SIGINT once received */
	int stops;                /* how many were received */
	bool stop_applied;        /* running tasks were told (or let finish) */
	size_t requeued;          /* tasks put back by the stop */
	bool reload;              /* SIGHUP received */
	bool child_exited;        /* SIGCHLD received */
	bool paused;              /* ROOT/pause exists */
	bool cancels_pending;     /* cancel/ changed */
	bool cancels_after_flight; /* a cancel named a task past running: look again when one ends */
	bool sched_dirty;         /* something changed that may let a task start */
	size_t claims_failed;     /* claims that failed (then backing off) since the start */
	size_t ran, unsuccessful; /* results published, and how many not "succeeded" */
	size_t left;              /* tasks left in active/ (a failing disk at the stop) */
	struct queue retrying;    /* names this run deferred: drain fails if any is still there */
	struct flight *flights;   /* every task in flight */
	unsigned nrunning;        /* of those, how many hold a slot (executor running) */
	struct pollfd *pfds;
	size_t pfd_cap;
	struct holds holds;       /* queued tasks with after / not_before (holds.h) */
	struct history history;   /* SPOOL/history/: run times for auto timeouts */
	/* Which of the loop's own descriptors the last poll found readable
	 * (all of them when it did not poll): reading the others would only
	 * cost a system call each, per wakeup, i.e. per 64 KiB of a task's
	 * output. */
	bool sig_ready, watch_ready, publisher_ready;
	int running_fd;           /* ROOT/.running, the running table (task_state.h) */
	bool running_changed;     /* a task started or ended since it was written */
	struct slurm_env slurm;   /* [runner] executor = slurm: what its jobs run */
	char self[PATH_MAX];      /* this binary, for node-run on the nodes */
	char *config_abs;         /* the config file, absolute, or NULL */
	struct arrivals arrivals; /* created in incoming/, not yet whole (arrival.h) */
	struct service service;   /* event log, metrics, hooks, retention, sd_notify */
};

static void note_signal(struct runner *r, int sig)
{
	if (sig == SIGTERM || sig == SIGINT) {
		if (!r->stops++)
			log_info("received %s: stopping", signals_name(sig));
		r->stop_signal = sig;
		r->stop_applied = false;
	} else if (sig == SIGHUP)
		r->reload = true;
	else if (sig == SIGCHLD)
		r->child_exited = true;
}

static void read_signals(struct runner *r)
{
	int sig;
	while ((sig = signals_read(r->sigfd)) > 0)
		note_signal(r, sig);
}

static int64_t key_blocked_until(void *ctx, const char *key)
{
	struct runner *r = ctx;
	for (size_t i = 0; i < r->nblocks; i++)
		if (!strcmp(r->blocks[i].key, key))
			return r->blocks[i].until_ms;
	return 0;
}

static void block_key(struct runner *r, const char *key, int64_t until_ms)
{
	for (size_t i = 0; i < r->nblocks; i++)
		if (!strcmp(r->blocks[i].key, key)) {
			if (until_ms > r->blocks[i].until_ms)
				r->blocks[i].until_ms = until_ms;
			return;
		}
	struct key_block *grown = realloc(r->blocks, (r->nblocks + 1) * sizeof *grown);
	if (!grown)
		return; /* the tasks then meet the limit themselves and wait */
	r->blocks = grown;
	snprintf(r->blocks[r->nblocks].key, sizeof r->blocks[r->nblocks].key, "%s", key);
	r->blocks[r->nblocks++].until_ms = until_ms;
}

static void set_usage_limit(struct runner *r)
{
	if (r->has_usage_limit)
		regfree(&r->usage_limit);
	r->has_usage_limit = r->cfg.usage_limit_pattern &&
			     regcomp(&r->usage_limit, r->cfg.usage_limit_pattern, REG_EXTENDED) == 0;

}

static void reload_config(struct runner *r)
{
	r->reload = false;
	if (!r->cfg.path) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	char err[1024];
	struct config next = { 0 };
	struct owner_policy owners;
	config_defaults(&next);
	if (config_load(&next, r->cfg.path, err, sizeof err) < 0 ||
	    owner_policy_init(&owners, &next, err, sizeof err) < 0) {
		log_errx("SIGHUP: keeping the running config: %s", err);
		config_clear(&next);
		return;
	}
	owner_policy_clear(&r->owners);
	r->owners = owners;
	if (!r->spool_root && strcmp(next.spool_root, r->cfg.spool_root) != 0)
		log_warnx("SIGHUP: [spool] root changed; takes effect at the next start");
	if ((next.results_dir || r->cfg.results_dir) &&
	    (!next.results_dir || !r->cfg.results_dir || strcmp(next.results_dir, r->cfg.results_dir)))
		log_warnx("SIGHUP: [spool] results_dir changed; takes effect at the next start");
	config_clear(&r->cfg);
	r->cfg = next;
	r->spool.durable = r->cfg.fsync;
	r->spool.file_mode = r->cfg.file_mode;
	set_usage_limit(r);
	log_set_level(r->cfg.log_level);
	if (r->cfg.slots > 1 && !cgroup_enabled())
		cgroup_setup();
	service_reload(&r->service, &r->cfg);
	log_info("SIGHUP: reloaded %s", r->cfg.path);
}

/* Queues incoming/name. from_scan: found by a directory listing (start-up,
 * overflow), not told whole by an event or by arrival.h. */
static void enqueue_file(struct runner *r, const char *name, bool from_scan)
{
	if (!spool_is_task_name(name))
		return;
	/* The priority decides the order, the id finds it for a cancel, the
	 * limit_key its cap: read them now; a file that cannot be read or
	 * parsed still queues and is rejected with its reason when its turn
	 * comes. */
	struct spool_peeked p;
	if (spool_peek(&r->spool, r->spool.incoming_fd, name, r->cfg.max_task_bytes, &p) < 0)
		return; /* gone already: claimed by an earlier event, or removed */
	/* A listing can catch a linking producer (ln, then rm) between its two
	 * steps: a second link is given arrival.h's grace, as for an event. */
	if (from_scan && S_ISREG(p.st.st_mode) && p.st.st_nlink > 1) {
		if (arrival_note(&r->arrivals, name, time_monotonic_ns() / NS_PER_MS) < 0)
			log_warn("cannot keep track of %s now; it is picked up at the next scan", name);
		return;
	}
	int64_t mtime = (int64_t)p.st.st_mtim.tv_sec * NS_PER_SEC + p.st.st_mtim.tv_nsec;
	int pushed = queue_push_keyed(&r->incoming, name, p.id, p.limit_key, p.priority, mtime);
	if (pushed < 0)
		log_warn("cannot queue %s now; it is picked up at the next scan", name);
	else {
		if (pushed > 0)
			service_queued(&r->service, p.id, name);
		if (p.lifecycle && holds_add(&r->holds, r->spool.incoming_fd, name,
					     r->cfg.max_task_bytes) < 0)
			log_warn("%s: cannot hold it for its dependencies now; it runs when its turn "
				 "comes", name);
	}
	r->sched_dirty = true;
}

static void enqueue(struct runner *r, const char *name)
{
	enqueue_file(r, name, false);
}

/* A regular file created in incoming/ is taken once it is whole, which
 * arrival.h decides; links, FIFOs and directories are rejected as soon as
 * they appear. */
static void enqueue_created(struct runner *r, const char *name)
{
	struct stat st;
	if (!spool_is_task_name(name) ||
	    fstatat(r->spool.incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISREG(st.st_mode))
		enqueue(r, name);
	else if (arrival_note(&r->arrivals, name, time_monotonic_ns() / NS_PER_MS) < 0)
		log_warn("cannot keep track of %s now; it is picked up at the next scan", name);
}

static void on_event(void *ctx, const struct watch_event *ev)
{
	struct runner *r = ctx;
	if (ev->which == r->w_incoming) {
		if (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE))
			enqueue(r, ev->name);
		else if (ev->mask & IN_CREATE)
			enqueue_created(r, ev->name);
	} else if (ev->which == r->w_cancel)
		r->cancels_pending = true;
	else if (ev->which == r->w_root && !strcmp(ev->name, "pause")) {
		bool paused = spool_paused(&r->spool);
		if (paused != r->paused)
			log_info(paused ? "paused: %s/pause exists; no new task starts"
					: "resumed: %s/pause is gone", r->spool.root);
		r->paused = paused;
	}
}

static void enqueue_entry(void *ctx, const char *name)
{
	enqueue(ctx, name);
}

static void enqueue_scanned(void *ctx, const char *name)
{
	enqueue_file(ctx, name, true);
}

/* Queues the created files that are whole now (arrival.h). */
static void take_arrivals(struct runner *r)
{
	if (arrival_count(&r->arrivals))
		arrival_poll(&r->arrivals, r->spool.incoming_fd, time_monotonic_ns() / NS_PER_MS,
			     enqueue_entry, r);
}

/* Reads pending inotify events; false when a watched directory vanished. */
static bool read_events(struct runner *r)
{
	bool overflow = false;
	if (watch_read(&r->watch, on_event, r, &overflow) < 0) {
		log_err("watching %s", r->spool.root);
		return false;
	}
	if (overflow) {
		log_warnx("inotify queue overflowed; rescanning");
		dir_each(r->spool.incoming_fd, enqueue_scanned, r);
		r->cancels_pending = true;
		r->paused = spool_paused(&r->spool);
	}
	return true;
}

static struct flight *find_flight_id(struct runner *r, const char *id);

static bool id_in_use(void *ctx, const char *id, const char *name)
{
	struct runner *r = ctx;
	struct flight *f = find_flight_id(r, id);
	return queue_find_id(&r->deferred, id) || (f && strcmp(f->job.name, name));
}

static struct job_env job_env_of(struct runner *r)
{
	return (struct job_env){
		.cfg = &r->cfg, .spool = &r->spool, .owners = &r->owners,
		.usage_limit = r->has_usage_limit ? &r->usage_limit : NULL,
		.executor = r->cfg.slurm_executor ? &executor_slurm : &executor_local,
		.publisher = r->publisher, .slurm = &r->slurm,
		.key_blocked_until = key_blocked_until, .id_in_use = id_in_use, .ctx = r,
		.jitter_seed = &r->jitter_seed, .history = &r->history, .service = &r->service,
	};
}

static void push_deferred(struct runner *r, const char *name, const char *id, const char *key,
			  int64_t when_ms)
{
	if (queue_push_keyed(&r->deferred, name, id, key, 0, time_ms_to_ns(when_ms)) < 0)
		log_warn("%s: cannot keep it scheduled now; it runs at the next start", name);
	r->sched_dirty = true;
}

/* --- Tasks in flight ------------------------------------------------- */

static struct flight *find_flight_name(struct runner *r, const char *name)
{
	for (struct flight *f = r->flights; f; f = f->next)
		if (!strcmp(f->job.name, name))
			return f;
	return NULL;
}

static struct flight *find_flight_id(struct runner *r, const char *id)
{
	for (struct flight *f = r->flights; f; f = f->next)
		if (f->job.parsed && !strcmp(f->job.t.id, id))
			return f;
	return NULL;
}

/* Acts on how a job ended, once it is over. */
static void account(struct runner *r, const struct job *j)
{
	const struct job_report *rep = &j->rep;
	switch (rep->end) {
	case JOB_PUBLISHED:
		r->ran++;
		r->unsuccessful += !rep->succeeded;
		break;
	case JOB_DEFERRED:
		push_deferred(r, rep->deferred_name, rep->id, j->t.limit_key, rep->not_before_ms);
		if (rep->limit_key[0])
			block_key(r, rep->limit_key, rep->not_before_ms);
		queue_push(&r->retrying, rep->deferred_name, NULL, 0, 0);
		break;
	case JOB_REQUEUED:
		r->requeued++;
		break;
	case JOB_LEFT:
		r->left++;
		break;
	}
}

/* Starts the job of a task now in active/ (its work item: BEGIN); with
 * skip, the job publishes it "skipped" with that error instead. */
static void launch_job(struct runner *r, const char *name, enum job_origin origin,
		       const struct task_error *skip)
{
	struct flight *f = calloc(1, sizeof *f);
	if (!f) {
		log_errx("%s: out of memory; it stays in active/ until the next start", name);
		r->left++;
		return;
	}
	job_init(&f->job, name, origin);
	if (skip)
		job_skip(&f->job, skip);
	f->job.claim_ticket = r->claim_ticket;
	r->claim_ticket = 0;
	struct job_env env = job_env_of(r);
	job_begin(&env, &f->job);
	f->next = r->flights;
	r->flights = f;
	if (job_running(&f->job)) {
		r->nrunning++;
		r->running_changed = true;
	}
}

static void launch(struct runner *r, const char *name, enum job_origin origin)
{
	launch_job(r, name, origin, NULL);
}

/* Hands every publication the thread completed back to its job. */
static void reap_publications(struct runner *r)
{
	struct publication *q;
	while ((q = publisher_reap(r->publisher)))
		job_published(q->owner);
}

/* Steps every job; an over job is accounted for and freed. */
static void step_flights(struct runner *r)
{
	struct job_env env = job_env_of(r);
	struct flight **pp = &r->flights;
	while (*pp) {
		struct flight *f = *pp;
		bool was_running = job_running(&f->job);
		job_step(&env, &f->job, time_monotonic_ns());
		if (was_running && !job_running(&f->job)) {
			r->nrunning--;
			r->sched_dirty = true;
			r->running_changed = true;
		}
		if (f->job.phase == JOB_OVER) {
			if (r->cancels_after_flight) {
				r->cancels_after_flight = false;
				r->cancels_pending = true;
			}
			account(r, &f->job);
			job_clear(&f->job);
			*pp = f->next;
			free(f);
			r->sched_dirty = true;
		} else
			pp = &f->next;
	}
}

/* Writes the results of the jobs that ended in this turn, now that the
 * tasks that could start have started (job_hand_over). */
static void hand_over_results(struct runner *r)
{
	struct job_env env = job_env_of(r);
	for (struct flight *f = r->flights; f; f = f->next)
		job_hand_over(&env, &f->job);
}

/* --- Starting tasks --------------------------------------------------- */

/* A claim (or take-back from deferred/) that failed for a reason other
 * than the file being gone, a disk full or failing say: the entry goes
 * back into its queue and is tried again after a back-off (100 ms doubling
 * to 30 s), without spinning; nothing of the task's history changes. */
static void claim_failed(struct runner *r, struct queue *q, struct queue_entry *e,
			 const char *from)
{
	r->claims_failed++;
	int failures = e->failures + 1;
	int64_t delay = failures >= 9 ? 30000 : (int64_t)100 << (failures - 1);
	if (delay > 30000)
		delay = 30000;
	log_warn("%s: cannot take it from %s/; trying again in %jd ms", e->name, from,
		 (intmax_t)delay);
	e->failures = failures;
	e->retry_at_ms = time_realtime_ms() + delay;
	if (queue_push_entry(q, e) < 0)
		log_warn("%s: cannot keep it queued now; it is picked up at the next scan", e->name);
}

/* Takes a queued incoming/ task and launches its job. */
static void take_incoming(struct runner *r, struct queue_entry *e)
{
	if (spool_claim(&r->spool, e->name) == 0) {
		holds_remove(&r->holds, e->name);
		/* Durable before the task starts; the job reads and checks the
		 * file meanwhile. */
		r->claim_ticket = publisher_claim_sync_start(r->publisher);
		launch(r, e->name, JOB_NEW);
	} else if (errno != ENOENT)
		claim_failed(r, &r->incoming, e, "incoming"); /* its hold stays */
	else
		holds_remove(&r->holds, e->name);
}

static void take_deferred(struct runner *r, struct queue_entry *e)
{
	if (spool_undefer(&r->spool, e->name) == 0)
		launch(r, e->name, JOB_RETRY);
	else if (errno != ENOENT)
		claim_failed(r, &r->deferred, e, "deferred");
}

/* What sched.h needs to know of a queued entry. */
static struct sched_task sched_view(struct runner *r, const struct queue_entry *e, bool deferred)
{
	const struct gate_verdict *held = deferred ? NULL : holds_find(&r->holds, e->name);
	return (struct sched_task){
		.name = e->name, .deferred = deferred,
		.due_ms = deferred ? e->mtime_ns / NS_PER_MS : 0,
		.priority = e->priority, .arrival_ns = deferred ? 0 : e->mtime_ns,
		.limit_key = e->key, .name_busy = find_flight_name(r, e->name) != NULL,
		.deps_pending = held && held->state == GATE_WAIT_DEPS,
		.not_before_ms = held && held->state == GATE_WAIT_TIME ? held->not_before_ms : 0,
		.retry_at_ms = e->retry_at_ms,
	};
}

/* Tasks held for after / not_before: decided anew from results/ and the
 * clock; those ruled out by their dependencies are taken now and
 * published "skipped" (they need no slot, like a cancel). */
static void settle_holds(struct runner *r)
{
	if (!r->holds.n)
		return;
	if (holds_evaluate(&r->holds, lifecycle_result_status, &r->spool, time_realtime_ms()) < 0) {
		log_warn("cannot decide the dependencies of waiting tasks now");
		return;
	}
	const char **skips;
	size_t n = holds_skips(&r->holds, &skips);
	for (size_t i = 0; i < n; i++) {
		char name[NAME_MAX + 1];
		struct task_error e;
		gate_skip_error(holds_find(&r->holds, skips[i]), skips[i], &e);
		snprintf(name, sizeof name, "%s", skips[i]);
		holds_remove(&r->holds, name);
		queue_remove(&r->incoming, name);
		if (spool_claim(&r->spool, name) == 0)
			launch_job(r, name, JOB_NEW, &e);
		else if (errno != ENOENT)
			log_warn("%s: cannot claim it from incoming/ to publish it skipped", name);
	}
	free(skips);
}

struct load_view {
	struct sched_limits lim;
	struct sched_load load;
	const char **keys;
	struct sched_cap *caps;
};

static int build_load(struct runner *r, struct load_view *v)
{
	memset(v, 0, sizeof *v);
	v->keys = calloc(r->nrunning + 1, sizeof *v->keys);
	v->caps = calloc(r->cfg.nconcurrency + 1, sizeof *v->caps);
	if (!v->keys || !v->caps) {
		free(v->keys);
		free(v->caps);
		return -1;
	}
	size_t n = 0;
	for (struct flight *f = r->flights; f; f = f->next)
		if (job_running(&f->job) && n < r->nrunning)
			v->keys[n++] = f->job.t.limit_key;
	for (size_t i = 0; i < r->cfg.nconcurrency; i++)
		v->caps[i] = (struct sched_cap){ r->cfg.concurrency[i].key,
						 r->cfg.concurrency[i].cap };
	v->lim = (struct sched_limits){ r->cfg.slots, v->caps, r->cfg.nconcurrency, r->paused };
	v->load = (struct sched_load){ r->nrunning, v->keys, n };
	return 0;
}

/* Pops entries of q in order until one is eligible (sched.h); the others
 * are put back. True with *out filled when one was found. */
static bool pick_from(struct runner *r, struct queue *q, bool deferred, const struct load_view *v,
		      int64_t now_ms, struct queue_entry *out)
{
	struct queue_entry *aside = NULL;
	size_t naside = 0, cap = 0;
	bool found = false;
	struct queue_entry e;
	while (!found && queue_pop(q, &e)) {
		struct sched_task t = sched_view(r, &e, deferred);
		enum sched_verdict why = sched_eligible(&v->lim, &v->load, &t, now_ms);
		if (why == SCHED_RUNNABLE) {
			*out = e;
			found = true;
			break;
		}
		struct queue_entry *grown = grow(aside, &cap, naside + 1, sizeof *grown, 16);
		if (!grown) {
			queue_push_entry(q, &e);
			queue_entry_free(&e);
			break;
		}
		aside = grown;
		aside[naside++] = e;
		if (why == SCHED_NOT_DUE || why == SCHED_NO_SLOT)
			break; /* deferred/ is by time: the rest are later still; no slot: none */
	}
	for (size_t i = 0; i < naside; i++) {
		queue_push_entry(q, &aside[i]);
		queue_entry_free(&aside[i]);
	}
	free(aside);
	return found;
}

/* Starts tasks while a slot is free: tasks found in active/ at start-up
 * first, then deferred tasks whose time has come, then incoming/. */
static void start_tasks(struct runner *r)
{
	if (!r->sched_dirty)
		return;
	r->sched_dirty = false;
	settle_holds(r); /* skips are published whether or not a slot is free */
	if (r->paused || r->nrunning >= r->cfg.slots)
		return; /* nothing may start: a slot freeing sets sched_dirty again */
	for (;;) {
		struct load_view v;
		if (build_load(r, &v) < 0)
			return;
		int64_t now_ms = time_realtime_ms();
		struct queue_entry e;
		bool started = false;
		if (pick_from(r, &r->recovered, true, &v, now_ms, &e)) {
			log_warnx("%s: found in active/, interrupted by an earlier stop; running it "
				  "again", e.name);
			launch(r, e.name, JOB_RECOVERED);
			started = true;
		} else if (pick_from(r, &r->deferred, true, &v, now_ms, &e)) {
			take_deferred(r, &e);
			started = true;
		} else if (pick_from(r, &r->incoming, false, &v, now_ms, &e)) {
			take_incoming(r, &e);
			started = true;
		}
		free(v.keys);
		free(v.caps);
		if (!started)
			return;
		queue_entry_free(&e);
	}
}

/* --- Cancels ----------------------------------------------------------- */

struct id_list {
	char **ids;
	size_t n, cap;
};

static void id_list_add(struct id_list *l, const char *id)
{
	char **grown = grow(l->ids, &l->cap, l->n + 1, sizeof *grown, 16);
	if (!grown)
		return;
	l->ids = grown;
	if ((l->ids[l->n] = strdup(id)))
		l->n++;
}

static void collect_id(void *ctx, const char *id)
{
	if (id[0] != '.')
		id_list_add(ctx, id);
}

/* Takes the entry with this id out of q into *out; false when none. */
static bool take_id(struct queue *q, const char *id, struct queue_entry *out)
{
	const char *name = queue_find_id(q, id);
	if (!name)
		return false;
	for (size_t i = 0; ; i++) {
		const struct queue_entry *e = queue_at(q, i);
		if (e && e->name == name) {
			*out = *e;
			out->name = strdup(e->name);
			out->id = e->id ? strdup(e->id) : NULL;
			out->key = e->key ? strdup(e->key) : NULL;
			break;
		}
	}
	queue_remove(q, out->name);
	return out->name != NULL;
}

/* cancel/<id>: a queued or deferred task is taken now and its job
 * publishes the cancellation (it never runs, and needs no slot); a running
 * one is killed; an unknown id waits for its task to arrive, unless its
 * result exists already. */
static void cancel_one(struct runner *r, const char *id)
{
	struct flight *f = find_flight_id(r, id);
	struct queue_entry e;
	if (f) {
		if (job_running(&f->job) && !f->job.cancelled) {
			log_info("%s: cancel requested while running; stopping it", id);
			job_cancel(&f->job);
		} else if (!job_running(&f->job))
			/* Its result (or move) is on its way: once the job is over,
			 * the request is for a finished task and is removed. */
			r->cancels_after_flight = true;
	} else if (take_id(&r->deferred, id, &e)) {
		log_info("%s: cancel requested while deferred", id);
		take_deferred(r, &e);
		queue_entry_free(&e);
	} else if (take_id(&r->incoming, id, &e)) {
		log_info("%s: cancel requested while queued", id);
		take_incoming(r, &e);
		queue_entry_free(&e);
	} else if (task_id_valid(id, strlen(id)) && spool_result_exists(&r->spool, id)) {
		log_info("%s: cancel requested, but it has finished already", id);
		spool_cancel_done(&r->spool, id);
	}
}

static void process_cancels(struct runner *r)
{
	r->cancels_pending = false;
	if (r->stop_signal)
		return;
	/* Listed first, acted on after: nothing starts inside a directory walk. */
	struct id_list l = { 0 };
	dir_each(r->spool.cancel_fd, collect_id, &l);
	for (size_t i = 0; i < l.n; i++) {
		cancel_one(r, l.ids[i]);
		free(l.ids[i]);
	}
	free(l.ids);
}

/* --- Recovery ---------------------------------------------------------- */

static void recover_one(void *ctx, const char *name)
{
	struct runner *r = ctx;
	if (name[0] == '.')
		return; /* state files */
	if (find_flight_name(r, name))
		return; /* completed: its record is being published */
	if (queue_push(&r->recovered, name, NULL, 0, 0) < 0)
		log_warn("%s: cannot queue it now; it runs at the next start", name);
	else
		service_recovered(&r->service, name);
}

/* A completion record found at start-up: its job publishes it. Listed
 * first, launched after, like every work item. */
static void complete_one(void *ctx, const char *rec)
{
	id_list_add(ctx, rec);
}

/* Deferred tasks keep their times across restarts: read them back. */
static void restore_deferred(void *ctx, const char *name)
{
	struct runner *r = ctx;
	if (name[0] == '.')
		return;
	struct task_state st;
	task_state_load(&r->spool, r->spool.deferred_fd, name, &st);
	if (st.limit_key[0] && st.usage_limit)
		block_key(r, st.limit_key, st.not_before_ms);
	push_deferred(r, name, st.id[0] ? st.id : NULL, st.limit_key, st.not_before_ms);
	task_state_clear(&st);
}

/* --- The loop ---------------------------------------------------------- */

/* The wall-clock ms until the first deferred task is due (-1: none). */
static int64_t next_due_ms(struct runner *r)
{
	const struct queue_entry *e = queue_peek(&r->deferred);
	if (!e)
		return -1;
	int64_t left = e->mtime_ns / NS_PER_MS - time_realtime_ms();
	return left < 0 ? 0 : left;
}

/* Whether anything could start now if slots were free (a task waiting for
 * a dependency or its not_before could not). */
static bool runnable_left(struct runner *r)
{
	/* Files still arriving: wait for them. */
	return queue_len(&r->incoming) > r->holds.waiting || queue_len(&r->recovered) ||
	       next_due_ms(r) == 0 || arrival_count(&r->arrivals);
}

/* Drain: whether a task it ran is still waiting in deferred/ for a retry. */
static bool left_waiting(struct runner *r)
{
	struct queue_entry e;
	bool waiting = false;
	while (queue_pop(&r->retrying, &e)) {
		struct stat st;
		waiting |= fstatat(r->spool.deferred_fd, e.name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		queue_entry_free(&e);
	}
	return waiting;
}

/* The stop: running tasks are killed and put back, or with on_stop =
 * finish let run to their end (a second signal insists). */
static void apply_stop(struct runner *r)
{
	r->stop_applied = true;
	if (r->cfg.finish_on_stop && r->stops == 1) {
		if (r->nrunning == 1)
			log_info("letting the running task finish first (on_stop = finish); "
				 "send %s again to interrupt it", signals_name(r->stop_signal));
		else if (r->nrunning)
			log_info("letting the %u running tasks finish first (on_stop = finish); "
				 "send %s again to interrupt them", r->nrunning,
				 signals_name(r->stop_signal));
		return;
	}
	for (struct flight *f = r->flights; f; f = f->next)
		job_stop(&f->job);
}

/* Builds the poll set: the signal fd, inotify, the publisher's completions,
 * then every running task's descriptors. Returns how many entries. */
static nfds_t build_pollset(struct runner *r)
{
	size_t need = 3 + (size_t)r->nrunning * EXECUTOR_MAX_FDS;
	if (need > r->pfd_cap) {
		struct pollfd *grown = realloc(r->pfds, need * sizeof *grown);
		if (!grown)
			return 0;
		r->pfds = grown;
		r->pfd_cap = need;
	}
	nfds_t n = 0;
	r->pfds[n++] = (struct pollfd){ r->sigfd, POLLIN, 0 };
	r->pfds[n++] = (struct pollfd){ r->watch.fd, POLLIN, 0 };
	r->pfds[n++] = (struct pollfd){ publisher_fd(r->publisher), POLLIN, 0 };
	for (struct flight *f = r->flights; f; f = f->next) {
		f->pfd_first = (int)n;
		f->pfd_count = 0;
		if (job_running(&f->job) && n + EXECUTOR_MAX_FDS <= r->pfd_cap) {
			f->pfd_count = f->job.ex->pollfds(f->job.handle, &r->pfds[n], EXECUTOR_MAX_FDS);
			n += (nfds_t)f->pfd_count;
		}
	}
	return n;
}

/* The earliest time in the future (wall clock ms) at which a waiting task
 * becomes due or its failed claim may be tried again; -1 for none. Tasks
 * due already wait for an event instead (a slot freeing, say): timing out
 * at once for them would spin. */
static int64_t next_timer_ms(struct runner *r, int64_t now_ms)
{
	int64_t next = -1;
	const struct queue_entry *e;
	struct queue *qs[] = { &r->deferred, &r->incoming };
	/* incoming/ only matters once a claim failed: its entries are due at once. */
	for (int k = 0; k < (r->claims_failed ? 2 : 1); k++)
		for (size_t i = 0; (e = queue_at(qs[k], i)); i++) {
			int64_t due = k == 0 ? e->mtime_ns / NS_PER_MS : 0;
			if (e->retry_at_ms > due)
				due = e->retry_at_ms;
			if (due > now_ms && (next < 0 || due < next))
				next = due;
		}
	return next;
}

/* The poll timeout in ms: the earliest job deadline or retry, and the next
 * waiting task's time (unless nothing may start anyway); -1 for none. */
static int poll_timeout(struct runner *r)
{
	int64_t now = time_monotonic_ns(), wake = INT64_MAX;
	for (struct flight *f = r->flights; f; f = f->next) {
		int64_t w = job_wake(&f->job, now);
		if (w < wake)
			wake = w;
	}
	int64_t ms = wake == INT64_MAX ? -1 : wake <= now ? 0 : (wake - now + NS_PER_MS - 1) / NS_PER_MS;
	if (!r->paused && !r->stop_signal && r->nrunning < r->cfg.slots) {
		int64_t now_ms = time_realtime_ms(), at = next_timer_ms(r, now_ms);
		if (at >= 0 && (ms < 0 || at - now_ms + 1 < ms))
			ms = at - now_ms + 1;
		/* A not_before in the future; one due now waits for an event,
		 * like a due retry (a timeout of 0 would spin). */
		int64_t held = holds_next_ms(&r->holds, now_ms);
		if (held > 0 && (ms < 0 || held + 1 < ms))
			ms = held + 1;
	}
	int arriving = arrival_timeout_ms(&r->arrivals, now / NS_PER_MS);
	if (arriving >= 0 && (ms < 0 || arriving < ms))
		ms = arriving;
	int svc = service_next_ms(&r->service); /* metrics file, hourly clean */
	if (svc >= 0 && (ms < 0 || svc < ms))
		ms = svc;
	return ms > 3600000 ? 3600000 : (int)ms;
}

static void wait_for_events(struct runner *r)
{
	nfds_t n = build_pollset(r);
	int timeout = poll_timeout(r);
	r->sig_ready = r->watch_ready = r->publisher_ready = true;
	if (n == 0) {
		struct pollfd p[3] = { { r->sigfd, POLLIN, 0 }, { r->watch.fd, POLLIN, 0 },
				       { publisher_fd(r->publisher), POLLIN, 0 } };
		poll(p, 3, timeout < 0 || timeout > 100 ? 100 : timeout);
		return;
	}
	int ready = poll(r->pfds, n, timeout);
	if (ready < 0) {
		if (errno != EINTR)
			log_warn("poll");
		return;
	}
	if (ready == 0)
		r->sched_dirty = true; /* a timer: a deferred or not_before task may be due */
	r->sig_ready = r->pfds[0].revents != 0;
	r->watch_ready = r->pfds[1].revents != 0;
	r->publisher_ready = r->pfds[2].revents != 0;
	for (struct flight *f = r->flights; f; f = f->next)
		if (f->pfd_count && job_running(&f->job))
			f->job.ex->on_ready(f->job.handle, &r->pfds[f->pfd_first], f->pfd_count);
	/* A timer may have fired: starting is reconsidered after every wakeup
	 * that is not only output. */
	if (ready == 0 || r->pfds[0].revents || r->pfds[1].revents)
		r->sched_dirty = true;
}

/* When the stop is complete: nothing runs; a job still waiting on a
 * failing disk stays in active/ and is recovered at the next start. */
static bool stop_complete(struct runner *r)
{
	if (r->nrunning)
		return false;
	/* Results on their way are waited for: the disk is busy, not failing. */
	for (struct flight *f = r->flights; f; f = f->next)
		if (f->job.pub_pending || f->job.pub_fresh)
			return false;
	for (struct flight *f = r->flights; f; f = f->next)
		log_warnx("%s: stopping while its %s fails; it stays in active/", f->job.name,
			  f->job.phase == JOB_PUBLISHING ? "publication" : "move");
	return true;
}

struct counter {
	size_t n;
	bool tasks_only;  /* incoming/: *.json names only */
};

static void count_entry(void *ctx, const char *name)
{
	struct counter *c = ctx;
	if (name[0] != '.' && (!c->tasks_only || spool_is_task_name(name)))
		c->n++;
}

/* Drain: whether what is left in flight is only jobs whose publication or
 * move has failed several times in a row (a disk that stays full): drain
 * does not wait on them forever; they stay in active/, and say so. */
static bool only_stuck(struct runner *r)
{
	if (r->nrunning)
		return false;
	for (struct flight *f = r->flights; f; f = f->next)
		if (f->job.phase == JOB_RUNNING || f->job.phase == JOB_BEGIN ||
		    f->job.retry_delay_ms < 800)
			return false;
	return true;
}

/* Drain's exit status, from what is really left: 0 only when every task it
 * ran succeeded, none waits for a retry, and active/ is empty. */
static int drain_status(struct runner *r)
{
	for (struct flight *f = r->flights; f; f = f->next)
		log_warnx("%s: its %s keeps failing; drain leaves it in active/ for the next start",
			  f->job.name, f->job.phase == JOB_PUBLISHING ? "publication" : "move");
	struct counter act = { 0, false };
	dir_each(r->spool.active_fd, count_entry, &act);
	if (act.n)
		log_warnx("drain: %zu task(s) left in active/", act.n);
	return r->unsuccessful || r->left || act.n || left_waiting(r) ? EXIT_FAILURE_ANY : EXIT_OK;
}

/* Rewrites the running table for status when the running set changed. */
static void write_running(struct runner *r)
{
	if (!r->running_changed || r->running_fd < 0)
		return;
	r->running_changed = false;
	struct task_running *t = calloc(r->nrunning + 1, sizeof *t);
	if (!t)
		return;
	size_t n = 0;
	for (struct flight *f = r->flights; f && n < r->nrunning; f = f->next) {
		const struct job *j = &f->job;
		if (!job_running(j))
			continue;
		snprintf(t[n].name, sizeof t[n].name, "%s", j->name);
		t[n].pid = (int)j->ex->pid(j->handle);
		t[n].started_ms = j->started_ms;
		t[n].attempt = j->st.attempt;
		snprintf(t[n].executor, sizeof t[n].executor, "%s", j->ex->name);
		n++;
	}
	if (task_running_write(r->running_fd, t, n) < 0)
		log_warn("cannot write %s/.running (for status)", r->spool.root);
	free(t);
}

/* The loop's own counts, for the metrics file and systemd's STATUS=. */
static void report_counts(struct runner *r)
{
	service_counts(&r->service, queue_len(&r->incoming) + queue_len(&r->recovered),
		       r->nrunning, queue_len(&r->deferred), r->cfg.slots);
	service_tick(&r->service);
}

static int main_loop(struct runner *r)
{
	r->sig_ready = r->watch_ready = r->publisher_ready = true;
	for (;;) {
		if (r->sig_ready)
			read_signals(r);
		if (r->child_exited) {
			r->child_exited = false;
			executor_local.on_child();
		}
		if (r->stop_signal && !r->stop_applied)
			apply_stop(r);
		if (r->reload) {
			reload_config(r);
			r->sched_dirty = true;
		}
		if (r->watch_ready && !read_events(r)) {
			for (struct flight *f = r->flights; f; f = f->next)
				job_stop(&f->job);
			return EXIT_IOERR;
		}
		if (r->cancels_pending)
			process_cancels(r);
		take_arrivals(r);
		if (r->publisher_ready)
			publisher_ack(r->publisher);
		reap_publications(r);
		/* Until the next poll says otherwise, read everything. */
		r->sig_ready = r->watch_ready = r->publisher_ready = true;
		step_flights(r);
		if (r->stop_signal) {
			if (stop_complete(r))
				return EXIT_OK;
		} else if (r->paused && r->drain) {
			hand_over_results(r); /* a task that just ended keeps its result */
			log_warnx("%s/pause exists: drain runs nothing", r->spool.root);
			return EXIT_TEMPFAIL;
		} else {
			start_tasks(r);
			if (r->flights && !r->nrunning)
				step_flights(r); /* jobs that ended at once (refused, cancelled…) */
		}
		hand_over_results(r);
		report_counts(r);
		if (r->drain && !runnable_left(r) && (!r->flights || only_stuck(r)))
			return drain_status(r);
		if (!r->sched_dirty || r->nrunning >= r->cfg.slots || r->paused) {
			write_running(r);
			wait_for_events(r);
		}
	}
}

static int add_watches(struct runner *r)
{
	char path[4096];
	if (watch_open(&r->watch) < 0)
		return -1;
	snprintf(path, sizeof path, "%s/incoming", r->spool.root);
	r->w_incoming = watch_add(&r->watch, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE);
	snprintf(path, sizeof path, "%s/cancel", r->spool.root);
	r->w_cancel = watch_add(&r->watch, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE);
	r->w_root = watch_add(&r->watch, r->spool.root,
			      IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM);
	return r->w_incoming < 0 || r->w_cancel < 0 || r->w_root < 0 ? -1 : 0;
}

/* Nodes run this very binary and config (same paths: a shared install). */
static int setup_slurm(struct runner *r, const char *config_path)
{
	ssize_t n = readlink("/proc/self/exe", r->self, sizeof r->self - 1);
	r->self[n > 0 ? n : 0] = '\0';
	if (config_path && !(r->config_abs = realpath(config_path, NULL))) {
		log_err("cannot resolve %s", config_path);
		return -1;
	}
	r->slurm = (struct slurm_env){ &r->cfg.slurm, &r->spool, r->self, r->config_abs };
	if (r->cfg.slurm_executor)
		log_info("executor slurm: each task is a Slurm batch job running %s node-run; "
			 "the spool must be shared with the nodes", r->self);
	return 0;
}

static int start(struct runner *r, const char *config_path)
{
	char err[1024];
	config_defaults(&r->cfg);
	if (config_path && config_load(&r->cfg, config_path, err, sizeof err) < 0) {
		log_errx("%s", err);
		return EXIT_CONFIG;
	}
	log_set_level(r->cfg.log_level);
	if (owner_policy_init(&r->owners, &r->cfg, err, sizeof err) < 0) {
		log_errx("%s", err);
		return EXIT_CONFIG;
	}
	set_usage_limit(r);
	if ((r->sigfd = signals_setup()) < 0 || run_init() < 0) {
		log_err("cannot set up signal handling");
		return EXIT_OSERR;
	}
	/* With one slot every orphan is the one task's: no cgroup needed. */
	if (r->cfg.slots > 1)
		cgroup_setup();
	const char *root = r->spool_root ? r->spool_root : r->cfg.spool_root;
	if (spool_open(&r->spool, &r->cfg, root, err, sizeof err) < 0) {
		log_errx("%s", err);
		return EXIT_IOERR;
	}
	if (spool_lock(&r->spool) < 0) {
		if (errno == EWOULDBLOCK) {
			log_errx("%s is in use by another spoolrun (lock %s/.lock held); exiting",
				 r->spool.root, r->spool.root);
			return EXIT_TEMPFAIL;
		}
		log_err("cannot lock %s/.lock", r->spool.root);
		return EXIT_IOERR;
	}
	if (!(r->publisher = publisher_new(&r->spool))) {
		log_err("cannot set up publication");
		return EXIT_OSERR;
	}
	spool_clean_tmp(&r->spool);
	if (history_open(&r->history, r->spool.root_fd, r->cfg.fsync) < 0)
		log_warn("cannot open %s/history; auto timeouts use auto_timeout_default",
			 r->spool.root);
	if (setup_slurm(r, config_path) < 0)
		return EXIT_CONFIG;
	service_start(&r->service, &r->cfg, &r->spool);
	/* Watch before scanning: a file renamed in between is then an event
	 * and a scan entry, and the queue keeps it once. */
	if (add_watches(r) < 0) {
		log_err("cannot watch %s", r->spool.root);
		return EXIT_OSERR;
	}
	log_info("spoolrun %s %s %s/incoming/ (drop *.json task files there by writing them "
		 "elsewhere and renaming them in); results in %s/, logs in %s/",
		 SPOOLRUN_VERSION, r->drain ? "draining" : "watching", r->spool.root,
		 r->spool.results_path, r->spool.logs_path);
	r->paused = spool_paused(&r->spool);
	if (r->paused)
		log_info("paused: %s/pause exists; no new task starts until it is removed",
			 r->spool.root);
	dir_each(r->spool.deferred_fd, restore_deferred, r);
	/* Completions a stop left half-done go first: their task files are
	 * not to be run again. */
	struct id_list done = { 0 };
	spool_each_done(&r->spool, complete_one, &done);
	for (size_t i = 0; i < done.n; i++) {
		launch(r, done.ids[i], JOB_COMPLETED);
		free(done.ids[i]);
	}
	free(done.ids);
	dir_each(r->spool.active_fd, recover_one, r);
	if (dir_each(r->spool.incoming_fd, enqueue_scanned, r) < 0) {
		log_err("cannot list %s/incoming", r->spool.root);
		return EXIT_IOERR;
	}
	r->cancels_pending = true;
	r->sched_dirty = true;
	if ((r->running_fd = task_running_open(&r->spool)) < 0)
		log_warn("cannot open %s/.running: status will not show running tasks",
			 r->spool.root);
	task_running_write(r->running_fd, NULL, 0);
	service_counts(&r->service, queue_len(&r->incoming) + queue_len(&r->recovered), 0,
		       queue_len(&r->deferred), r->cfg.slots);
	service_ready(&r->service);
	return EXIT_OK;
}

/* What is left where, counted from the directories themselves (the truth),
 * not from what this run remembers. */
static void log_summary(struct runner *r)
{
	struct counter in = { 0, true }, def = { 0, false }, act = { 0, false };
	dir_each(r->spool.incoming_fd, count_entry, &in);
	dir_each(r->spool.deferred_fd, count_entry, &def);
	dir_each(r->spool.active_fd, count_entry, &act);
	if (act.n)
		log_info("%s; %zu result(s) published, %zu task(s) wait in incoming/, %zu in "
			 "deferred/, %zu left in active/ (run at the next start)",
			 r->stop_signal ? "stopped" : "done", r->ran, in.n, def.n, act.n);
	else
		log_info("%s; %zu result(s) published, %zu task(s) wait in incoming/ and %zu in "
			 "deferred/", r->stop_signal ? "stopped" : "done", r->ran, in.n, def.n);
}

int runner_run(const char *config_path, const char *spool_root, bool drain)
{
	struct runner r;
	memset(&r, 0, sizeof r);
	r.sigfd = r.watch.fd = r.running_fd = -1;
	r.spool.lock_fd = -1;
	r.spool_root = spool_root;
	r.drain = drain;
	r.jitter_seed = (unsigned)time_monotonic_ns() ^ (unsigned)getpid();
	queue_init(&r.incoming);
	queue_init(&r.deferred);
	queue_init(&r.retrying);
	queue_init(&r.recovered);
	holds_init(&r.holds);
	r.history.dir_fd = -1;
	int rc = start(&r, config_path);
	if (rc == EXIT_OK)
		rc = main_loop(&r);
	/* Whatever the thread was given is finished before the jobs holding
	 * it are freed. */
	publisher_free(r.publisher);
	while (r.flights) {
		struct flight *f = r.flights;
		r.flights = f->next;
		job_clear(&f->job);
		free(f);
	}
	if (r.spool.root && rc != EXIT_TEMPFAIL && rc != EXIT_CONFIG)
		log_summary(&r);
	if (r.service.cfg) {
		service_counts(&r.service, 0, 0, queue_len(&r.deferred), r.cfg.slots);
		service_stop(&r.service, r.stop_signal ? signals_name(r.stop_signal) : "done");
	}
	watch_close(&r.watch);
	queue_clear(&r.incoming);
	queue_clear(&r.deferred);
	queue_clear(&r.retrying);
	queue_clear(&r.recovered);
	holds_clear(&r.holds);
	history_close(&r.history);
	lifecycle_lookup_reset();
	free(r.pfds);
	free(r.config_abs);
	arrival_clear(&r.arrivals);
	owner_policy_clear(&r.owners);
	if (r.has_usage_limit)
		regfree(&r.usage_limit);
	free(r.blocks);
	if (r.spool.root)
		spool_close(&r.spool);
	if (r.running_fd >= 0) {
		task_running_write(r.running_fd, NULL, 0);
		close(r.running_fd);
	}
	if (r.sigfd >= 0)
		close(r.sigfd);
	cgroup_teardown();
	config_clear(&r.cfg);
	return rc;
}
