#define _GNU_SOURCE
#include "publisher.h"

#include <errno.h>
#include <fcntl.h>
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

struct publisher {
	struct spool *spool;
	unsigned in_flight;          /* the loop's count */
	pthread_mutex_t mu;          /* guards everything below */
	pthread_cond_t wake;         /* to the publishing thread */
	struct publication *queue, **queue_tail; /* submitted, not taken */
	struct publication *done, **done_tail;   /* completed, not reaped */
	bool stopping;
	bool thread_started;
	pthread_t thread;
	int event_fd;
	/* The claim's fsync, in a thread of its own: it must never wait
	 * behind a batch of results. Tickets asked and synced. */
	pthread_t claim_thread;
	bool claim_thread_started;
	pthread_cond_t claim_wake, claim_done;
	unsigned long claims_asked, claims_synced;
	int claim_rc, claim_errno;
	/* Test hook, SPOOLRUN_TEST_STALL_PUBLISH=STEP:PATH with STEP written,
	 * recorded or published (the publishing thread) or claim (the claim's
	 * thread): the thread stops once at that step (before the fsync that
	 * would follow it), creates PATH and waits until PATH is removed, so a
	 * test can look at, or kill the watcher in, the window between
	 * "result written" and "durable", or between a claim and its fsync. */
	char stall_step[16];
	char stall_path[4096];
};

/* ------------------------------------------------------- the threads */

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
	p->stall_step[0] = '\0';
}

/* Step 1: every record synced, then one fsync of tmp/ for all. False when
 * none was recorded. */
static bool record_batch(struct publisher *p, struct publication *batch)
{
	struct spool *s = p->spool;
	bool any = false;
	stall_if_asked(p, "written");
	for (struct publication *q = batch; q; q = q->next) {
		q->reached = PUBSTEP_RECORD;
		if (spool_record_place(s, &q->rec, true) < 0)
			q->err = errno;
		else
			any = true;
	}
	if (!any)
		return false;
	stall_if_asked(p, "recorded");
	if (spool_sync_records(s) == 0) {
		for (struct publication *q = batch; q; q = q->next)
			if (!q->err)
				q->reached = PUBSTEP_LET_GO;
		return true;
	}
	/* Records that may not survive a crash are not kept: the loop
	 * writes them again, and the task files stay. */
	int err = errno;
	for (struct publication *q = batch; q; q = q->next)
		if (!q->err) {
			q->err = err;
			spool_drop_done(s, q->rec.rec);
		}
	return false;
}

/* Steps 2 and 3: each task file let go, each record renamed in; one fsync
 * of results/. */
static void publish_batch(struct publisher *p, struct publication *batch)
{
	struct spool *s = p->spool;
	bool any = false;
	for (struct publication *q = batch; q; q = q->next) {
		if (q->reached != PUBSTEP_LET_GO)
			continue;
		int rc = q->rejected ? spool_keep_rejected(s, q->task_name, q->kept, sizeof q->kept)
				     : spool_finish(s, q->task_name);
		if (rc < 0 && errno != ENOENT) {
			q->err = errno;
			continue;
		}
		q->reached = PUBSTEP_RENAME;
		if (spool_place_done(s, q->rec.rec, q->id, q->first, q->published,
				     sizeof q->published) < 0) {
			q->err = errno;
			continue;
		}
		q->reached = PUBSTEP_DONE;
		any = true;
	}
	if (!any)
		return;
	stall_if_asked(p, "published");
	/* Published either way (the rename cannot be taken back): said, as
	 * a synchronous publication says it. */
	if (spool_sync_results(s) < 0)
		log_warn("published results, but fsync of %s failed", s->results_path);
	for (struct publication *q = batch; q; q = q->next)
		if (q->reached == PUBSTEP_DONE && q->cancel_spent)
			spool_cancel_done(s, q->id);
}

static void post_done(struct publisher *p, struct publication *batch)
{
	pthread_mutex_lock(&p->mu);
	*p->done_tail = batch;
	while (*p->done_tail)
		p->done_tail = &(*p->done_tail)->next;
	pthread_mutex_unlock(&p->mu);
	uint64_t one = 1;
	while (write(p->event_fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

static void *publishing_thread(void *arg)
{
	struct publisher *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queue && !p->stopping)
			pthread_cond_wait(&p->wake, &p->mu);
		if (!p->queue)
			break;
		/* Everything queued at once: one fsync per directory for all. */
		struct publication *batch = p->queue;
		p->queue = NULL;
		p->queue_tail = &p->queue;
		pthread_mutex_unlock(&p->mu);
		if (record_batch(p, batch))
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
		stall_if_asked(p, "claim");
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

/* ---------------------------------------------------------- the loop */

struct publisher *publisher_new(struct spool *s)
{
	struct publisher *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->spool = s;
	p->queue_tail = &p->queue;
	p->done_tail = &p->done;
	p->event_fd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->claim_wake, NULL);
	pthread_cond_init(&p->claim_done, NULL);
	const char *hook = getenv("SPOOLRUN_TEST_STALL_PUBLISH");
	const char *colon = hook ? strchr(hook, ':') : NULL;
	if (colon && (size_t)(colon - hook) < sizeof p->stall_step) {
		snprintf(p->stall_step, sizeof p->stall_step, "%.*s", (int)(colon - hook), hook);
		snprintf(p->stall_path, sizeof p->stall_path, "%s", colon + 1);
	}
	return p;
}

int publisher_fd(const struct publisher *p)
{
	return p->event_fd;
}

unsigned publisher_in_flight(const struct publisher *p)
{
	return p->in_flight;
}

/* The threads inherit the loop's signal mask (everything it handles is
 * blocked for its signalfd), so signals still go to the loop. */
static int start_publishing_thread(struct publisher *p)
{
	if (p->thread_started)
		return 0;
	if (p->event_fd < 0 && (p->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	int rc = pthread_create(&p->thread, NULL, publishing_thread, p);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	p->thread_started = true;
	return 0;
}

int publisher_submit(struct publisher *p, struct publication *q)
{
	if (start_publishing_thread(p) < 0)
		return -1;
	q->reached = PUBSTEP_RECORD;
	q->err = 0;
	q->published[0] = '\0';
	q->next = NULL;
	pthread_mutex_lock(&p->mu);
	*p->queue_tail = q;
	p->queue_tail = &q->next;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->mu);
	p->in_flight++;
	return 0;
}

void publisher_ack(struct publisher *p)
{
	uint64_t n;
	if (p->event_fd >= 0)
		while (read(p->event_fd, &n, sizeof n) < 0 && errno == EINTR)
			;
}

struct publication *publisher_reap(struct publisher *p)
{
	if (!p->thread_started)
		return NULL;
	pthread_mutex_lock(&p->mu);
	struct publication *q = p->done;
	if (q) {
		p->done = q->next;
		if (!p->done)
			p->done_tail = &p->done;
		q->next = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	if (q)
		p->in_flight--;
	return q;
}

unsigned long publisher_claim_sync_start(struct publisher *p)
{
	if (!p->spool->durable)
		return 0;
	if (!p->claim_thread_started) {
		if (pthread_create(&p->claim_thread, NULL, claim_thread, p) != 0)
			return 0; /* the wait then syncs itself */
		p->claim_thread_started = true;
	}
	pthread_mutex_lock(&p->mu);
	unsigned long ticket = ++p->claims_asked;
	pthread_cond_signal(&p->claim_wake);
	pthread_mutex_unlock(&p->mu);
	return ticket;
}

int publisher_claim_sync_wait(struct publisher *p, unsigned long ticket)
{
	if (!ticket)
		return p->spool->durable ? fsync_dirfd(p->spool->active_fd) : 0;
	pthread_mutex_lock(&p->mu);
	while (p->claims_synced < ticket)
		pthread_cond_wait(&p->claim_done, &p->mu);
	int rc = p->claim_rc, err = p->claim_errno;
	pthread_mutex_unlock(&p->mu);
	errno = err;
	return rc;
}

void publisher_free(struct publisher *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true; /* the threads finish what they were given first */
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
