#define _GNU_SOURCE
#include "publisher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "result.h"

/* At most this many in flight: beyond, submit waits for the disk (a disk
 * slower than the tasks must slow the tasks, not grow memory). */
#define MAX_IN_FLIGHT 64

struct publication {
	struct spool_result_file file;
	char task_name[320];
	enum publication_then then;
	bool cancel_done;
	bool durable;
	json_t *result;       /* kept until durable: a failed one is written again */
	int err;              /* 0, or errno of the step that failed in the thread */
	const char *failed;   /* that step */
	bool dir_sync_failed; /* placed, but fsync(results/) failed */
	struct publication *next_queued, *next_done;   /* the two lists below */
	struct publication *prev_flight, *next_flight; /* the loop's own list */
};

struct publisher {
	struct spool *spool;
	publisher_wait_fn wait_or_stop;
	void *ctx;
	/* The loop's side only: every publication submitted and not reaped. */
	struct publication *flight;
	size_t in_flight;
	/* Shared with the thread, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t wake;
	struct publication *queue, **queue_tail; /* submitted, not taken */
	struct publication *done, **done_tail;   /* completed, not reaped */
	bool stopping;
	bool thread_started;
	pthread_t thread;
	int event_fd;
	/* The claim's sync (its own thread: it must never wait behind a batch
	 * of results), under mu: requests asked, and answered with claim_rc. */
	pthread_t claim_thread;
	bool claim_thread_started;
	pthread_cond_t claim_wake, claim_done;
	unsigned long claims_asked, claims_synced;
	int claim_rc, claim_errno;
	/* Test hook (SPOOLRUN_TEST_STALL_PUBLISH=written|placed:PATH): stall
	 * the thread once at that step, after creating PATH, until PATH is
	 * removed. The thread's own after the start. */
	char stall_step[16];
	char stall_path[4096];
};

/* ------------------------------------------------------- thread's side */

static void stall_if_asked(struct publisher *p, const char *step)
{
	if (strcmp(p->stall_step, step) != 0)
		return;
	int fd = open(p->stall_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	struct stat st;
	struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
	while (stat(p->stall_path, &st) == 0)
		nanosleep(&ten_ms, NULL);
	p->stall_step[0] = '\0'; /* once */
}

static void post_done(struct publisher *p, struct publication *batch)
{
	pthread_mutex_lock(&p->mu);
	for (struct publication *q = batch; q; q = q->next_queued) {
		q->next_done = NULL;
		*p->done_tail = q;
		p->done_tail = &q->next_done;
	}
	pthread_mutex_unlock(&p->mu);
	uint64_t one = 1;
	while (write(p->event_fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

/* The task file goes only now that its result is durable. */
static void let_go(struct spool *s, struct publication *q)
{
	char kept[320];
	if (q->then == PUB_REJECTED) {
		if (spool_keep_rejected(s, q->task_name, kept, sizeof kept) < 0)
			log_warn("%s: cannot move it to %s", q->task_name, s->rejected_path);
	} else if (spool_finish(s, q->task_name) < 0)
		log_warn("%s: published, but cannot remove it from active/", q->task_name);
	if (q->cancel_done)
		spool_cancel_done(s, q->file.id);
}

/* Makes a batch durable: every file synced and renamed in, then one
 * fsync of results/ for all of them, then their task files let go. */
static void publish_batch(struct publisher *p, struct publication *batch)
{
	bool placed = false;
	stall_if_asked(p, "written");
	for (struct publication *q = batch; q; q = q->next_queued) {
		if (spool_result_place(p->spool, &q->file, true) < 0) {
			q->err = errno;
			q->failed = "fsync or rename";
		} else
			placed = true;
	}
	if (!placed)
		return;
	stall_if_asked(p, "placed");
	bool dir_failed = spool_sync_results(p->spool) < 0;
	int dir_err = errno;
	for (struct publication *q = batch; q; q = q->next_queued) {
		if (q->err)
			continue;
		if (dir_failed) {
			/* Published either way (a retry would now fail): said loudly. */
			q->dir_sync_failed = true;
			q->err = dir_err;
		}
		let_go(p->spool, q);
	}
}

static void *publisher_thread(void *arg)
{
	struct publisher *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queue && !p->stopping)
			pthread_cond_wait(&p->wake, &p->mu);
		if (!p->queue)
			break;
		/* Everything queued at once: one directory fsync for all. */
		struct publication *batch = p->queue;
		p->queue = NULL;
		p->queue_tail = &p->queue;
		pthread_mutex_unlock(&p->mu);
		publish_batch(p, batch);
		post_done(p, batch);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void *claim_thread(void *arg)
{
	struct publisher *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->claims_synced == p->claims_asked && !p->stopping)
			pthread_cond_wait(&p->claim_wake, &p->mu);
		if (p->claims_synced == p->claims_asked)
			break;
		unsigned long asked = p->claims_asked;
		pthread_mutex_unlock(&p->mu);
		/* One fsync covers every claim renamed in before it started. */
		int rc = fsync_dirfd(p->spool->active_fd);
		int err = errno;
		pthread_mutex_lock(&p->mu);
		p->claim_rc = rc;
		p->claim_errno = err;
		p->claims_synced = asked;
		pthread_cond_broadcast(&p->claim_done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* --------------------------------------------------------- loop's side */

static void parse_stall_hook(struct publisher *p)
{
	const char *hook = getenv("SPOOLRUN_TEST_STALL_PUBLISH");
	const char *colon = hook ? strchr(hook, ':') : NULL;
	if (!colon || (size_t)(colon - hook) >= sizeof p->stall_step)
		return;
	snprintf(p->stall_step, sizeof p->stall_step, "%.*s", (int)(colon - hook), hook);
	snprintf(p->stall_path, sizeof p->stall_path, "%s", colon + 1);
}

struct publisher *publisher_new(struct spool *s, publisher_wait_fn wait_or_stop, void *ctx)
{
	struct publisher *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->spool = s;
	p->wait_or_stop = wait_or_stop;
	p->ctx = ctx;
	p->queue_tail = &p->queue;
	p->done_tail = &p->done;
	p->event_fd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->claim_wake, NULL);
	pthread_cond_init(&p->claim_done, NULL);
	parse_stall_hook(p);
	return p;
}

static int start_thread(struct publisher *p)
{
	if (p->thread_started)
		return 0;
	if (p->event_fd < 0 && (p->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	/* The thread must not take the runner's signals: they are blocked
	 * here (signalfd) and a new thread inherits the mask. */
	int rc = pthread_create(&p->thread, NULL, publisher_thread, p);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	p->thread_started = true;
	return 0;
}

int publisher_fd(const struct publisher *p)
{
	return p->event_fd;
}

size_t publisher_in_flight(const struct publisher *p)
{
	return p->in_flight;
}

static void flight_add(struct publisher *p, struct publication *q)
{
	q->prev_flight = NULL;
	q->next_flight = p->flight;
	if (p->flight)
		p->flight->prev_flight = q;
	p->flight = q;
	p->in_flight++;
}

static void flight_remove(struct publisher *p, struct publication *q)
{
	if (q->prev_flight)
		q->prev_flight->next_flight = q->next_flight;
	else
		p->flight = q->next_flight;
	if (q->next_flight)
		q->next_flight->prev_flight = q->prev_flight;
	p->in_flight--;
}

/* Writes q's result into tmp/, retrying a refusing disk with back-off;
 * -1 when the runner stops meanwhile. */
static int write_retrying(struct publisher *p, struct publication *q)
{
	int delay_ms = 100;
	while (spool_result_write(p->spool, q->file.id, q->result, &q->file) < 0) {
		log_err("%s: cannot publish the result in %s; retrying in %d ms", q->file.id,
			p->spool->results_path, delay_ms);
		if (p->wait_or_stop(p->ctx, delay_ms))
			return -1;
		delay_ms = delay_ms < 15000 ? delay_ms * 2 : 30000;
	}
	return 0;
}

/* All of a publication in this thread: fsync = no, and the retry of one
 * the thread could not make durable. -1 when the runner stopped. */
static int publish_here(struct publisher *p, struct publication *q)
{
	int delay_ms = 100;
	for (;;) {
		if (write_retrying(p, q) < 0)
			return -1;
		if (spool_result_place(p->spool, &q->file, q->durable) == 0)
			break;
		log_err("%s: cannot publish the result in %s; retrying in %d ms", q->file.id,
			p->spool->results_path, delay_ms);
		if (p->wait_or_stop(p->ctx, delay_ms))
			return -1;
		delay_ms = delay_ms < 15000 ? delay_ms * 2 : 30000;
	}
	if (q->durable && spool_sync_results(p->spool) < 0)
		log_warn("published %s, but fsync of %s failed", q->file.published,
			 p->spool->results_path);
	let_go(p->spool, q);
	q->err = 0;
	return 0;
}

static void release(struct publisher *p, struct publication *q)
{
	flight_remove(p, q);
	json_decref(q->result);
	free(q);
}

/* A completion: logged, retried here if the thread failed, freed. */
static void complete(struct publisher *p, struct publication *q)
{
	if (q->err && !q->dir_sync_failed) {
		errno = q->err;
		log_err("%s: cannot make the result durable (%s); publishing it again", q->file.id,
			q->failed);
		if (publish_here(p, q) < 0) {
			log_warnx("%s: stopping with its result unpublished; it stays in active/",
				  q->file.id);
			release(p, q);
			return;
		}
	} else if (q->dir_sync_failed) {
		errno = q->err;
		log_warn("published %s, but fsync of %s failed", q->file.published,
			 p->spool->results_path);
	}
	if (q->then == PUB_REJECTED)
		log_debug("%s: rejection published as %s", q->file.id, q->file.published);
	else
		log_info("%s: %s -> %s", q->file.id, result_status(q->result), q->file.published);
	release(p, q);
}

void publisher_reap(struct publisher *p)
{
	if (!p->thread_started)
		return;
	uint64_t n;
	while (read(p->event_fd, &n, sizeof n) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&p->mu);
	struct publication *done = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->mu);
	while (done) {
		struct publication *next = done->next_done;
		complete(p, done);
		done = next;
	}
}

/* Blocks until a completion is ready, then reaps. */
static void wait_and_reap(struct publisher *p)
{
	struct pollfd pfd = { p->event_fd, POLLIN, 0 };
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	publisher_reap(p);
}

static bool matches(const struct publication *q, const char *id, const char *task_name)
{
	return (id && !strcmp(q->file.id, id)) || (task_name && !strcmp(q->task_name, task_name));
}

void publisher_settle(struct publisher *p, const char *id, const char *task_name)
{
	for (;;) {
		publisher_reap(p);
		const struct publication *q = p->flight;
		while (q && !matches(q, id, task_name))
			q = q->next_flight;
		if (!q)
			return;
		wait_and_reap(p);
	}
}

void publisher_flush(struct publisher *p)
{
	publisher_reap(p);
	while (p->in_flight)
		wait_and_reap(p);
}

static void hand_over(struct publisher *p, struct publication *q)
{
	pthread_mutex_lock(&p->mu);
	q->next_queued = NULL;
	*p->queue_tail = q;
	p->queue_tail = &q->next_queued;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->mu);
}

int publisher_submit(struct publisher *p, const char *id, const char *task_name,
		     enum publication_then then, bool cancel_done, json_t *result)
{
	struct publication *q = calloc(1, sizeof *q);
	if (!q) {
		json_decref(result);
		return -1;
	}
	q->file.fd = -1;
	snprintf(q->file.id, sizeof q->file.id, "%s", id);
	snprintf(q->task_name, sizeof q->task_name, "%s", task_name);
	q->then = then;
	q->cancel_done = cancel_done;
	q->result = result;
	q->durable = p->spool->durable;
	flight_add(p, q);
	if (!q->durable || start_thread(p) < 0) {
		/* Not durable (or no thread to be had): everything here, now. */
		int rc = publish_here(p, q);
		if (rc == 0)
			complete(p, q);
		else
			release(p, q);
		return rc;
	}
	while (p->in_flight > MAX_IN_FLIGHT)
		wait_and_reap(p);
	if (write_retrying(p, q) < 0) {
		release(p, q);
		return -1;
	}
	hand_over(p, q);
	return 0;
}

void publisher_claim_sync_start(struct publisher *p)
{
	if (!p->spool->durable)
		return;
	if (!p->claim_thread_started) {
		int rc = pthread_create(&p->claim_thread, NULL, claim_thread, p);
		if (rc != 0)
			return; /* publisher_claim_sync_wait then syncs itself */
		p->claim_thread_started = true;
	}
	pthread_mutex_lock(&p->mu);
	p->claims_asked++;
	pthread_cond_signal(&p->claim_wake);
	pthread_mutex_unlock(&p->mu);
}

int publisher_claim_sync_wait(struct publisher *p)
{
	if (!p->spool->durable)
		return 0;
	pthread_mutex_lock(&p->mu);
	bool asked = p->claim_thread_started && p->claims_asked > 0;
	while (asked && p->claims_synced != p->claims_asked)
		pthread_cond_wait(&p->claim_done, &p->mu);
	int rc = p->claim_rc, err = p->claim_errno;
	/* Answered: the next wait without a start syncs itself. */
	p->claims_asked = p->claims_synced = 0;
	pthread_mutex_unlock(&p->mu);
	if (!asked)
		return fsync_dirfd(p->spool->active_fd);
	errno = err;
	return rc;
}

void publisher_free(struct publisher *p)
{
	if (!p)
		return;
	if (p->thread_started)
		publisher_flush(p);
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_cond_signal(&p->claim_wake);
	pthread_mutex_unlock(&p->mu);
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	if (p->claim_thread_started)
		pthread_join(p->claim_thread, NULL);
	if (p->event_fd >= 0)
		close(p->event_fd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->claim_wake);
	pthread_cond_destroy(&p->claim_done);
	free(p);
}
