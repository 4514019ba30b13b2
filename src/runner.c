#define _GNU_SOURCE
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "exitcodes.h"
#include "fsutil.h"
#include "log.h"
#include "owner.h"
#include "queue.h"
#include "result.h"
#include "run.h"
#include "signals.h"
#include "spool.h"
#include "task.h"
#include "timeutil.h"
#include "version.h"
#include "watch.h"

struct runner {
	struct config cfg;
	const char *spool_root; /* command-line override, or NULL */
	struct spool spool;
	struct queue queue;
	struct watch watch;
	struct owner_policy owners;
	int sigfd;
	int stop_signal;        /* SIGTERM or SIGINT once received */
	int stops;              /* how many were received */
	size_t requeued;        /* tasks put back in incoming/ by the stop */
	bool reload;            /* SIGHUP received */
};

/* What a claimed file is known as while it is handled. */
struct claimed {
	const char *name;       /* in active/ */
	char stamp[96];         /* inode, mtime and size: this file, not another of the same name */
	bool recovered;         /* left in active/ by a runner that stopped */
	int attempt;            /* 1 for a first run */
	struct identity user;   /* with run_as_owner: who it runs as */
	bool as_user;
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

/* Called by run_task for signals during a task: stopping kills the task,
 * which is then put back in incoming/ rather than published as failed. */
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

static void reload_config(struct runner *r)
{
	r->reload = false;
	if (!r->cfg.path) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	char err[1024];
	struct config next = { 0 };
	config_defaults(&next);
	if (config_load(&next, r->cfg.path, err, sizeof err) < 0) {
		log_errx("SIGHUP: keeping the running config: %s", err);
		config_clear(&next);
		return;
	}
	struct owner_policy owners;
	if (owner_policy_init(&owners, &next, err, sizeof err) < 0) {
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
	log_set_level(r->cfg.log_level);
	log_info("SIGHUP: reloaded %s", r->cfg.path);
}

static void enqueue(void *ctx, const char *name)
{
	struct runner *r = ctx;
	if (!spool_is_task_name(name))
		return;
	/* The priority decides the order, so read it now; a file that cannot
	 * be read or parsed still queues (priority 0) and is rejected with
	 * its reason when its turn comes. */
	struct stat st;
	char *buf = NULL, why[512];
	size_t len;
	int64_t priority = 0;
	if (spool_read_task(r->spool.incoming_fd, name, r->cfg.max_task_bytes, true, &buf, &len,
			    &st, why, sizeof why) == 0) {
		json_t *doc = json_loadb(buf, len, 0, NULL);
		json_t *p = json_object_get(doc, "priority");
		if (json_is_integer(p))
			priority = json_integer_value(p);
		json_decref(doc);
		free(buf);
	} else if (fstatat(r->spool.incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return; /* gone already: claimed by an earlier event, or removed */
	int64_t mtime = (int64_t)st.st_mtim.tv_sec * NS_PER_SEC + st.st_mtim.tv_nsec;
	if (queue_push(&r->queue, name, priority, mtime) < 0)
		log_warn("cannot queue %s now; it is picked up at the next scan", name);
}

static int scan_dir(int dirfd, void (*fn)(void *, const char *), void *ctx)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)))
		fn(ctx, de->d_name);
	int saved = errno;
	closedir(d);
	errno = saved;
	return saved ? -1 : 0;
}

static void format_stamp(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "%ju:%jd.%09ld:%jd", (uintmax_t)st->st_ino, (intmax_t)st->st_mtim.tv_sec,
		 st->st_mtim.tv_nsec, (intmax_t)st->st_size);
}

/* Waits up to ms for a signal; true when the runner is to stop. */
static bool pause_or_stop(struct runner *r, int ms)
{
	struct pollfd p = { r->sigfd, POLLIN, 0 };
	if (poll(&p, 1, ms) > 0)
		drain_signals(r);
	return r->stop_signal != 0;
}

/* Publishes a result, waiting out a full or failing disk rather than
 * losing it: the task stays in active/ until its result is safe. */
static int publish(struct runner *r, const char *id, const json_t *result, char *published,
		   size_t publishedlen)
{
	size_t len;
	char *data = result_dump(result, &len);
	if (!data) {
		log_errx("%s: cannot serialise the result (out of memory)", id);
		return -1;
	}
	for (int delay_ms = 100; spool_publish(&r->spool, id, data, len, published, publishedlen) < 0;) {
		log_err("%s: cannot publish the result in %s; retrying in %d ms", id,
			r->spool.results_path, delay_ms);
		if (pause_or_stop(r, delay_ms)) {
			free(data);
			return -1;
		}
		delay_ms = delay_ms < 15000 ? delay_ms * 2 : 30000;
	}
	free(data);
	return 0;
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

static void reject(struct runner *r, const struct claimed *c, const char *id,
		   const struct task_error *e, json_t *doc)
{
	char kept[320], kept_path[4096], published[200];
	spool_rejected_name(&r->spool, c->name, kept, sizeof kept);
	snprintf(kept_path, sizeof kept_path, "%s/%s", r->spool.rejected_path, kept);
	struct result_context ctx = { .task_file = c->name, .task_file_stamp = c->stamp,
				      .attempt = 1 };
	json_t *result = result_rejected(id, e, doc, &ctx, kept_path);
	if (!result || publish(r, id, result, published, sizeof published) < 0) {
		json_decref(result);
		return; /* stays in active/; handled again at the next start */
	}
	json_decref(result);
	if (spool_keep_rejected(&r->spool, c->name, kept, sizeof kept) < 0)
		log_warn("%s: cannot move it to %s", c->name, r->spool.rejected_path);
	log_warnx("%s: rejected (%s): %s -> %s", c->name, e->code, e->message, published);
}

/* Whether a result for this very file (same stamp) is already published:
 * the runner stopped between publishing it and removing the file from
 * active/, or a reboot undid the claim's rename. Never run a task twice. */
static bool already_published(struct runner *r, const char *id, const char *stamp,
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
		if (spool_read_task(r->spool.results_fd, name, SIZE_MAX / 4, false, &buf, &len, &st,
				    why, sizeof why) < 0)
			return false; /* results of one id are numbered without gaps */
		json_t *doc = json_loadb(buf, len, 0, NULL);
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

static void fsync_log(int fd, const struct run_stream *s, bool durable)
{
	/* A published result must not name a log that a power cut loses. */
	if (fd >= 0 && durable && s->log_bytes > 0 && fdatasync(fd) < 0)
		log_warn("fsync of a log file failed");
}

static void run_claimed(struct runner *r, const struct claimed *c, const struct task *t)
{
	int out_fd = -1, err_fd = -1;
	if (spool_open_logs(&r->spool, t->id, &out_fd, &err_fd) < 0)
		log_warn("%s: cannot open its log files in %s; output is kept inline only", t->id,
			 r->spool.logs_path);
	struct run_options opt = {
		.max_output = r->cfg.max_output, .max_log = r->cfg.max_log,
		.stdout_log = out_fd, .stderr_log = err_fd,
		.signal_fd = r->sigfd, .on_signal = on_signal, .ctx = r,
		.as_user = c->as_user ? &c->user : NULL,
	};
	struct run_outcome o;
	log_debug("%s: starting %s", t->id, t->argv[0]);
	if (run_task(t, &opt, &o) < 0)
		log_err("%s: the runner failed while running it; the task was killed", t->id);
	fsync_log(out_fd, &o.out, r->spool.durable);
	fsync_log(err_fd, &o.err, r->spool.durable);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	if (o.status == RUN_ABORTED) {
		if (spool_requeue(&r->spool, c->name) < 0)
			log_warn("%s: cannot put it back in incoming/; it stays in active/", c->name);
		else {
			r->requeued++;
			log_info("%s: interrupted by the stop; put back in incoming/", t->id);
		}
		run_outcome_clear(&o);
		return;
	}
	char out_path[4096], err_path[4096], published[200];
	snprintf(out_path, sizeof out_path, "%s/%s.stdout", r->spool.logs_path, t->id);
	snprintf(err_path, sizeof err_path, "%s/%s.stderr", r->spool.logs_path, t->id);
	struct result_context ctx = {
		.task_file = c->name, .task_file_stamp = c->stamp, .recovered = c->recovered,
		.stdout_log = out_fd >= 0 ? out_path : NULL,
		.stderr_log = err_fd >= 0 ? err_path : NULL,
		.attempt = c->attempt,
	};
	json_t *result = result_from_run(t, &o, &ctx);
	if (result && publish(r, t->id, result, published, sizeof published) == 0) {
		if (spool_finish(&r->spool, c->name) < 0)
			log_warn("%s: published, but cannot remove it from active/", c->name);
		log_info("%s: %s (exit %d) in %lld ms -> %s", t->id, result_status(result),
			 o.exit_code, (long long)o.duration_ms, published);
	} else if (!result)
		log_errx("%s: cannot build the result (out of memory); it stays in active/", t->id);
	json_decref(result);
	run_outcome_clear(&o);
}

/* Reads and validates active/NAME; false with e filled when it is refused.
 * id gets the task's id, or the one its rejection is filed under. */
static bool load_claimed(struct runner *r, struct claimed *c, struct task *t,
			 struct task_error *e, char id[TASK_ID_MAX + 1])
{
	char *buf = NULL, why[400];
	size_t len = 0;
	struct stat st;
	struct task_defaults d = r->cfg.task;
	bool ok = false;
	if (spool_read_task(r->spool.active_fd, c->name, r->cfg.max_task_bytes, true, &buf, &len,
			    &st, e->message, sizeof e->message) < 0) {
		snprintf(e->code, sizeof e->code, "invalid_file");
		if (fstatat(r->spool.active_fd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			memset(&st, 0, sizeof st);
	} else if (owner_check(&r->owners, st.st_uid, &c->user, &c->as_user, why, sizeof why) < 0) {
		snprintf(e->code, sizeof e->code, "invalid_owner");
		snprintf(e->message, sizeof e->message, "%s: %s", c->name, why);
	} else
		ok = task_parse(buf, len, c->name, &d, t, e) == 0;
	free(buf);
	format_stamp(&st, c->stamp, sizeof c->stamp);
	if (ok)
		memcpy(id, t->id, TASK_ID_MAX + 1);
	else
		rejection_id(t->json, c->name, id);
	return ok;
}

/* Counts the attempt about to start, durably; false when the task was
 * interrupted max_attempts times and is published as such instead. */
static bool start_attempt(struct runner *r, struct claimed *c, const struct task *t)
{
	int interrupted = 0;
	if (c->recovered) {
		interrupted = spool_read_attempt(&r->spool, c->name);
		if (interrupted < 1)
			interrupted = 1; /* a first attempt leaves no record */
	}
	if (interrupted >= (int)r->cfg.max_attempts) {
		char published[200];
		struct result_context ctx = { .task_file = c->name, .task_file_stamp = c->stamp,
					      .recovered = true, .attempt = interrupted };
		json_t *res = result_interrupted(t, interrupted, (int)r->cfg.max_attempts, &ctx);
		if (res && publish(r, t->id, res, published, sizeof published) == 0) {
			spool_finish(&r->spool, c->name);
			log_warnx("%s: interrupted %d times; published as interrupted -> %s", t->id,
				  interrupted, published);
		}
		json_decref(res);
		return false;
	}
	c->attempt = interrupted + 1;
	int rc = c->attempt > 1 ? spool_write_attempt(&r->spool, c->name, c->attempt)
				: spool_sync_active(&r->spool);
	if (rc < 0)
		log_warn("%s: cannot record attempt %d durably", t->id, c->attempt);
	return true;
}

/* Everything that happens to a file once it is in active/. */
static void handle_claimed(struct runner *r, struct claimed *c)
{
	struct task t = { 0 };
	struct task_error e = { 0 };
	char id[TASK_ID_MAX + 1];
	bool ok = load_claimed(r, c, &t, &e, id);
	bool was_rejected = false;
	if (spool_result_exists(&r->spool, id)) {
		if (already_published(r, id, c->stamp, &was_rejected)) {
			char kept[320];
			log_info("%s: result already published; finishing its bookkeeping", c->name);
			if (was_rejected ? spool_keep_rejected(&r->spool, c->name, kept, sizeof kept)
					 : spool_finish(&r->spool, c->name))
				log_warn("%s: cannot clear it from active/", c->name);
			goto out;
		}
		if (ok) {
			ok = false;
			snprintf(e.code, sizeof e.code, "duplicate_id");
			snprintf(e.field, sizeof e.field, "id");
			snprintf(e.message, sizeof e.message,
				 "%s: field \"id\": a result for \"%s\" already exists in %s; "
				 "ids must be unique, so this task was not run",
				 c->name, id, r->spool.results_path);
		}
	}
	if (!ok)
		reject(r, c, id, &e, t.json);
	else if (start_attempt(r, c, &t))
		run_claimed(r, c, &t);
out:
	if (c->as_user)
		identity_clear(&c->user);
	task_clear(&t);
}

static void handle_next(struct runner *r)
{
	struct queue_entry qe;
	if (!queue_pop(&r->queue, &qe))
		return;
	struct claimed c = { .name = qe.name };
	if (spool_claim(&r->spool, qe.name) == 0)
		handle_claimed(r, &c);
	else if (errno != ENOENT)
		log_warn("%s: cannot claim it from incoming/", qe.name);
	free(qe.name);
}

static void recover_one(void *ctx, const char *name)
{
	struct runner *r = ctx;
	if (name[0] == '.' || r->stop_signal)
		return; /* also skips attempt records */
	log_warnx("%s: found in active/, interrupted by an earlier stop; running it again", name);
	struct claimed c = { .name = name, .recovered = true };
	handle_claimed(r, &c);
}

/* Waits for work: an inotify event or a signal. */
static void wait_for_event(struct runner *r)
{
	struct pollfd p[2] = { { r->watch.fd, POLLIN, 0 }, { r->sigfd, POLLIN, 0 } };
	if (poll(p, 2, -1) < 0 && errno != EINTR)
		log_warn("poll");
	if (p[1].revents)
		drain_signals(r);
}

static int watch_loop(struct runner *r)
{
	for (;;) {
		drain_signals(r);
		if (r->stop_signal)
			return EXIT_OK;
		if (r->reload)
			reload_config(r);
		bool overflow = false;
		if (watch_read(&r->watch, enqueue, r, &overflow) < 0) {
			log_err("watching %s/incoming", r->spool.root);
			return EXIT_IOERR;
		}
		if (overflow) {
			log_warnx("inotify queue overflowed; rescanning incoming/");
			scan_dir(r->spool.incoming_fd, enqueue, r);
		}
		if (queue_len(&r->queue))
			handle_next(r);
		else
			wait_for_event(r);
	}
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
	if ((r->sigfd = signals_setup()) < 0 || run_init() < 0) {
		log_err("cannot set up signal handling");
		return EXIT_OSERR;
	}
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
	spool_clean_tmp(&r->spool);
	char incoming[4096];
	snprintf(incoming, sizeof incoming, "%s/incoming", r->spool.root);
	/* Watch before scanning: a file renamed in between is then an event
	 * and a scan entry, and the queue keeps it once. */
	if (watch_open(&r->watch, incoming) < 0) {
		log_err("cannot watch %s", incoming);
		return EXIT_OSERR;
	}
	log_info("spoolrun %s watching %s/ (drop *.json task files there by writing them "
		 "elsewhere and renaming them in); results in %s/, logs in %s/",
		 SPOOLRUN_VERSION, incoming, r->spool.results_path, r->spool.logs_path);
	scan_dir(r->spool.active_fd, recover_one, r);
	if (scan_dir(r->spool.incoming_fd, enqueue, r) < 0) {
		log_err("cannot list %s", incoming);
		return EXIT_IOERR;
	}
	return EXIT_OK;
}

int runner_watch(const char *config_path, const char *spool_root)
{
	struct runner r;
	memset(&r, 0, sizeof r);
	r.sigfd = r.watch.fd = -1;
	r.spool.lock_fd = -1;
	r.spool_root = spool_root;
	queue_init(&r.queue);
	int rc = start(&r, config_path);
	if (rc == EXIT_OK)
		rc = watch_loop(&r);
	if (rc == EXIT_OK)
		log_info("stopped; %zu task(s) wait in incoming/ for the next start",
			 queue_len(&r.queue) + r.requeued);
	watch_close(&r.watch);
	queue_clear(&r.queue);
	owner_policy_clear(&r.owners);
	if (r.spool.root)
		spool_close(&r.spool);
	if (r.sigfd >= 0)
		close(r.sigfd);
	config_clear(&r.cfg);
	return rc;
}
