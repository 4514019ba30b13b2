#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
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

#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "job.h"
#include "log.h"
#include "owner.h"
#include "publisher.h"
#include "queue.h"
#include "run.h"
#include "signals.h"
#include "spool.h"
#include "task.h"
#include "timeutil.h"
#include "version.h"
#include "watch.h"

/* A usage limit shared by the tasks of one limit_key. */
struct key_block {
	char key[TASK_ID_MAX + 1];
	int64_t until_ms;
};

struct runner {
	struct config cfg;
	const char *spool_root;   /* command-line override, or NULL */
	bool drain;               /* exit once nothing runnable is left */
	struct spool spool;
	struct publisher *publisher; /* results made durable off the critical path */
	struct queue incoming;    /* waiting in incoming/, in run order */
	struct queue deferred;    /* waiting in deferred/, by time (mtime_ns) */
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
	size_t requeued;          /* tasks put back by the stop */
	bool reload;              /* SIGHUP received */
	bool paused;              /* ROOT/pause exists */
	bool cancels_pending;     /* cancel/ changed */
	size_t ran, unsuccessful; /* results published, and how many not "succeeded" */
	struct queue retrying;    /* names this run deferred: drain fails if any is still there */
};

static void note_signal(struct runner *r, int sig)
{
	if (sig == SIGTERM || sig == SIGINT) {
		if (!r->stops++)
			log_info("received %s: stopping", signals_name(sig));
		r->stop_signal = sig;
	} else if (sig == SIGHUP)
		r->reload = true;
}

/* A signal while a task runs: stopping kills the task, which is then put
 * back rather than published as failed. */
static bool on_signal(void *ctx, int sig)
{
	struct runner *r = ctx;
	note_signal(r, sig);
	if (sig != SIGTERM && sig != SIGINT)
		return false;
	/* With on_stop = finish the task runs to its end, unless a second
	 * signal insists. */
	if (r->cfg.finish_on_stop && r->stops == 1) {
		log_info("letting the running task finish first (on_stop = finish); "
			 "send %s again to interrupt it", signals_name(sig));
		return false;
	}
	return true;
}

/* Between tasks: handles pending signals; SIGCHLD here can only be a stray
 * descendant inherited after its task ended, reaped so it never lingers. */
static void drain_signals(struct runner *r)
{
	int sig;
	while ((sig = signals_read(r->sigfd)) > 0) {
		if (sig == SIGCHLD)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		else
			note_signal(r, sig);
	}
}

/* Waits up to ms for a signal; true when the runner is to stop. */
static bool wait_or_stop(void *ctx, int ms)
{
	struct runner *r = ctx;
	struct pollfd p = { r->sigfd, POLLIN, 0 };
	if (poll(&p, 1, ms) > 0)
		drain_signals(r);
	return r->stop_signal != 0;
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
	log_info("SIGHUP: reloaded %s", r->cfg.path);
}

static void enqueue(struct runner *r, const char *name)
{
	if (!spool_is_task_name(name))
		return;
	/* The priority decides the order (and the id finds it for a cancel),
	 * so read it now; a file that cannot be read or parsed still queues
	 * and is rejected with its reason when its turn comes. */
	struct stat st;
	char id[TASK_ID_MAX + 1];
	int64_t priority;
	if (spool_peek_task(&r->spool, r->spool.incoming_fd, name, r->cfg.max_task_bytes,
			    &priority, id, sizeof id, &st) < 0)
		return; /* gone already: claimed by an earlier event, or removed */
	int64_t mtime = (int64_t)st.st_mtim.tv_sec * NS_PER_SEC + st.st_mtim.tv_nsec;
	if (queue_push(&r->incoming, name, id, priority, mtime) < 0)
		log_warn("cannot queue %s now; it is picked up at the next scan", name);
}

/* A name created in incoming/ is taken at once unless it is a regular file
 * with one link: that one is still being written, and its close (or a
 * rename) will say when it is whole. Links, FIFOs and directories are
 * rejected as soon as they appear. */
static void enqueue_created(struct runner *r, const char *name)
{
	struct stat st;
	if (fstatat(r->spool.incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !(S_ISREG(st.st_mode) && st.st_nlink == 1))
		enqueue(r, name);
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
		dir_each(r->spool.incoming_fd, enqueue_entry, r);
		r->cancels_pending = true;
		r->paused = spool_paused(&r->spool);
	}
	return true;
}

/* While a task runs: keep the queues current; the job itself checks
 * cancel/ for its own id. */
static bool on_extra(void *ctx)
{
	struct runner *r = ctx;
	read_events(r);
	return false;
}

static struct job_env job_env_of(struct runner *r)
{
	return (struct job_env){
		.cfg = &r->cfg, .spool = &r->spool, .owners = &r->owners,
		.usage_limit = r->has_usage_limit ? &r->usage_limit : NULL,
		.publisher = r->publisher,
		.signal_fd = r->sigfd, .extra_fd = r->watch.fd,
		.on_signal = on_signal, .on_extra = on_extra, .wait_or_stop = wait_or_stop,
		.key_blocked_until = key_blocked_until, .ctx = r, .jitter_seed = &r->jitter_seed,
	};
}

static void push_deferred(struct runner *r, const char *name, const char *id, int64_t when_ms)
{
	if (queue_push(&r->deferred, name, id, 0, when_ms * NS_PER_MS) < 0)
		log_warn("%s: cannot keep it scheduled now; it runs at the next start", name);
}

/* Runs the job for a task now in active/ and acts on how it ended. */
static void run_job(struct runner *r, const char *name, enum job_origin origin)
{
	struct job_env env = job_env_of(r);
	struct job_report rep;
	job_handle(&env, name, origin, &rep);
	switch (rep.end) {
	case JOB_PUBLISHED:
		r->ran++;
		r->unsuccessful += !rep.succeeded;
		break;
	case JOB_DEFERRED:
		push_deferred(r, rep.deferred_name, rep.id, rep.not_before_ms);
		if (rep.limit_key[0])
			block_key(r, rep.limit_key, rep.not_before_ms);
		queue_push(&r->retrying, rep.deferred_name, NULL, 0, 0);
		break;
	case JOB_REQUEUED:
		r->requeued++;
		break;
	case JOB_LEFT:
		break;
	}
}

/* Takes a queued incoming/ task by name and runs its job. */
static void take_incoming(struct runner *r, const char *name)
{
	/* A file of this name whose result is on its way is still in active/. */
	publisher_settle(r->publisher, NULL, name);
	if (spool_claim(&r->spool, name) == 0) {
		publisher_claim_sync_start(r->publisher);
		run_job(r, name, JOB_NEW);
	}
	else if (errno != ENOENT)
		log_warn("%s: cannot claim it from incoming/", name);
}

static void take_deferred(struct runner *r, const char *name)
{
	publisher_settle(r->publisher, NULL, name);
	if (spool_undefer(&r->spool, name) == 0)
		run_job(r, name, JOB_RETRY);
	else if (errno != ENOENT)
		log_warn("%s: cannot take it back from deferred/", name);
}

/* cancel/<id>: the job publishes the cancellation when it sees the
 * request, so a queued or deferred task is taken now; the running one was
 * stopped by its job; an unknown id waits for its task to arrive, unless
 * its result exists already. */
static void cancel_one(void *ctx, const char *id)
{
	struct runner *r = ctx;
	if (id[0] == '.' || r->stop_signal)
		return;
	const char *name;
	char copy[320];
	/* Out of the queue first: the same name may be queued again later, and
	 * must then get its own place, not this one's. */
	if ((name = queue_find_id(&r->deferred, id))) {
		snprintf(copy, sizeof copy, "%s", name);
		queue_remove(&r->deferred, copy);
		log_info("%s: cancel requested while deferred", id);
		take_deferred(r, copy);
	} else if ((name = queue_find_id(&r->incoming, id))) {
		snprintf(copy, sizeof copy, "%s", name);
		queue_remove(&r->incoming, copy);
		log_info("%s: cancel requested while queued", id);
		take_incoming(r, copy);
	} else if (task_id_valid(id, strlen(id)) && spool_result_exists(&r->spool, id)) {
		log_info("%s: cancel requested, but it has finished already", id);
		spool_cancel_done(&r->spool, id);
	}
}

static void process_cancels(struct runner *r)
{
	r->cancels_pending = false;
	dir_each(r->spool.cancel_fd, cancel_one, r);
}

static void recover_one(void *ctx, const char *name)
{
	struct runner *r = ctx;
	if (name[0] == '.' || r->stop_signal)
		return; /* also skips state files */
	log_warnx("%s: found in active/, interrupted by an earlier stop; running it again", name);
	run_job(r, name, JOB_RECOVERED);
}

/* Deferred tasks keep their times across restarts: read them back. */
static void restore_deferred(void *ctx, const char *name)
{
	struct runner *r = ctx;
	if (name[0] == '.')
		return;
	json_t *st = spool_load_state(&r->spool, r->spool.deferred_fd, name);
	int64_t when = json_integer_value(json_object_get(st, "not_before_ms"));
	const char *id = json_string_value(json_object_get(st, "id"));
	const char *key = json_string_value(json_object_get(st, "limit_key"));
	if (key && json_is_true(json_object_get(st, "usage_limit")))
		block_key(r, key, when);
	push_deferred(r, name, id, when);
	json_decref(st);
}

/* The deferred task due now, if any; else the ms until the next (-1: none). */
static const char *due_deferred(struct runner *r, int *wait_ms)
{
	const struct queue_entry *e = queue_peek(&r->deferred);
	*wait_ms = -1;
	if (!e)
		return NULL;
	int64_t left = e->mtime_ns / NS_PER_MS - time_realtime_ms();
	if (left <= 0)
		return e->name;
	*wait_ms = left > 3600000 ? 3600000 : (int)left + 1;
	return NULL;
}

/* Sleeps until an event, a signal, or wait_ms. */
static void wait_for_event(struct runner *r, int wait_ms)
{
	struct pollfd p[3] = { { r->watch.fd, POLLIN, 0 }, { r->sigfd, POLLIN, 0 },
			       { publisher_fd(r->publisher), POLLIN, 0 } };
	if (poll(p, 3, wait_ms) < 0 && errno != EINTR)
		log_warn("poll");
	if (p[1].revents)
		drain_signals(r);
	if (p[2].revents)
		publisher_reap(r->publisher);
}

/* Starts the next task: a deferred one whose time has come first (it has
 * waited longest), then the head of incoming/. False when none is runnable. */
static bool start_next(struct runner *r, int *wait_ms)
{
	const char *due = due_deferred(r, wait_ms);
	struct queue_entry e;
	if (due && queue_pop(&r->deferred, &e)) {
		take_deferred(r, e.name);
		free(e.name);
		free(e.id);
		return true;
	}
	if (queue_pop(&r->incoming, &e)) {
		take_incoming(r, e.name);
		free(e.name);
		free(e.id);
		return true;
	}
	return false;
}

/* Drain: whether a task it ran is still waiting in deferred/ for a retry. */
static bool left_waiting(struct runner *r)
{
	struct queue_entry e;
	bool waiting = false;
	while (queue_pop(&r->retrying, &e)) {
		struct stat st;
		waiting |= fstatat(r->spool.deferred_fd, e.name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		free(e.name);
		free(e.id);
	}
	return waiting;
}

static int main_loop(struct runner *r)
{
	for (;;) {
		drain_signals(r);
		if (r->stop_signal)
			return EXIT_OK;
		if (r->reload)
			reload_config(r);
		if (!read_events(r))
			return EXIT_IOERR;
		publisher_reap(r->publisher);
		if (r->cancels_pending)
			process_cancels(r);
		int wait_ms = -1;
		if (r->paused) {
			if (r->drain) {
				log_warnx("%s/pause exists: drain runs nothing", r->spool.root);
				return EXIT_TEMPFAIL;
			}
			wait_for_event(r, -1);
		} else if (!start_next(r, &wait_ms)) {
			if (r->drain) {
				publisher_flush(r->publisher);
				return r->unsuccessful || left_waiting(r) ? EXIT_FAILURE_ANY : EXIT_OK;
			}
			wait_for_event(r, wait_ms);
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
	const char *root = r->spool_root ? r->spool_root : r->cfg.spool_root;
	if (spool_open(&r->spool, &r->cfg, root, err, sizeof err) < 0) {
		log_errx("%s", err);
		return EXIT_IOERR;
	}
	if (!(r->publisher = publisher_new(&r->spool, wait_or_stop, r))) {
		log_err("cannot set up publication");
		return EXIT_OSERR;
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
	spool_clean_tmp(&r->spool);
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
	dir_each(r->spool.active_fd, recover_one, r);
	if (dir_each(r->spool.incoming_fd, enqueue_entry, r) < 0) {
		log_err("cannot list %s/incoming", r->spool.root);
		return EXIT_IOERR;
	}
	r->cancels_pending = true;
	return EXIT_OK;
}

int runner_run(const char *config_path, const char *spool_root, bool drain)
{
	struct runner r;
	memset(&r, 0, sizeof r);
	r.sigfd = r.watch.fd = -1;
	r.spool.lock_fd = -1;
	r.spool_root = spool_root;
	r.drain = drain;
	r.jitter_seed = (unsigned)time_monotonic_ns() ^ (unsigned)getpid();
	queue_init(&r.incoming);
	queue_init(&r.deferred);
	queue_init(&r.retrying);
	int rc = start(&r, config_path);
	if (rc == EXIT_OK)
		rc = main_loop(&r);
	/* Results on their way are made durable (and their task files let go)
	 * before the summary; a disk that refuses them is not waited for. */
	publisher_free(r.publisher);
	if (r.spool.root && rc != EXIT_TEMPFAIL && rc != EXIT_CONFIG)
		log_info("%s; %zu result(s) published, %zu task(s) wait in incoming/ and %zu in "
			 "deferred/", r.stop_signal ? "stopped" : "done", r.ran,
			 queue_len(&r.incoming) + r.requeued, queue_len(&r.deferred));
	watch_close(&r.watch);
	queue_clear(&r.incoming);
	queue_clear(&r.deferred);
	queue_clear(&r.retrying);
	owner_policy_clear(&r.owners);
	if (r.has_usage_limit)
		regfree(&r.usage_limit);
	free(r.blocks);
	if (r.spool.root)
		spool_close(&r.spool);
	if (r.sigfd >= 0)
		close(r.sigfd);
	config_clear(&r.cfg);
	return rc;
}
