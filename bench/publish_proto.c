/* publish_proto SPOOLDIR N MECHANISM CLAIM_SYNC(0|1)
 * A prototype, outside the runner, to choose how durable publication leaves
 * the critical path (bench/README.md, "Choosing the publication mechanism").
 *
 * It mimics the runner's life of a task: N task files wait in
 * SPOOLDIR/incoming/; for each, one after another: claim it by rename into
 * active/ [and make the claim durable: fsync(active/) before the task
 * starts], read it, posix_spawn /bin/true with stdout/stderr on pipes, poll
 * to EOF, waitpid, write a small JSON result into tmp/, publish it into
 * results/ and then let the task file go (unlink from active/).
 * A result is only ever renamed into results/ after its file is fsynced, and
 * the task file goes only after results/ is fsynced: the promise is the same
 * in every durable mechanism, only who waits for the disk differs.
 *
 * MECHANISM:
 *   none    no fsync at all (the ceiling)
 *   serial  fsync(result), rename, fsync(results/) inline, before the next task
 *   thread  one publishing thread: the loop writes the result, hands the fd
 *           over and starts the next task; the thread fsyncs, renames,
 *           fsyncs results/, and posts a completion on an eventfd
 *   batch   the same thread, but it takes every result queued at once:
 *           fsync each, rename each, one fsync(results/) for the batch
 *   uring   io_uring (liburing): linked FSYNC -> RENAMEAT -> FSYNC(results/)
 *           submitted by the loop, completions through an eventfd
 * CLAIM_SYNC 1: the claim is made durable before the task starts; inline
 * for none/serial, else submitted at once (its own thread / an SQE) and
 * awaited just before the spawn, so the read of the task file overlaps it.
 * CLAIM_SYNC 2: the same, but the next task is claimed before the previous
 * result is written and handed over (see main).
 *
 * Prints "<tasks> <seconds> <claim_wait_us_total>" (CLOCK_MONOTONIC, from
 * the first claim until the last task file is gone). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum mech { M_NONE, M_SERIAL, M_THREAD, M_BATCH, M_URING };

#define MAXQ 4096

struct item {
	int fd;           /* the written, unsynced result */
	char name[64];    /* task file name; result tmp and final names derive from it */
	int err;
};

static struct {
	int inc, act, res, tmp, devnull, evfd;
	enum mech mech;
	int claim_sync;
	/* publishing thread */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item *queue[MAXQ];
	int qhead, qtail;
	struct item *done[MAXQ];
	int dhead, dtail;
	/* claim-sync thread */
	pthread_cond_t claim_cv;
	int claim_req, claim_done;
	int stop;
	long pending;
	struct io_uring ring;
} g;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void signal_done(void)
{
	uint64_t one = 1;
	if (write(g.evfd, &one, sizeof one) < 0)
		die("eventfd write");
}

static void publish_one(struct item *it, int sync_dir)
{
	char tmp[80], dst[80];
	snprintf(tmp, sizeof tmp, "%s.tmp", it->name);
	snprintf(dst, sizeof dst, "%s", it->name);
	if (g.mech != M_NONE && fsync(it->fd) < 0)
		die("fsync");
	close(it->fd);
	if (renameat2(g.tmp, tmp, g.res, dst, RENAME_NOREPLACE) < 0)
		die("rename");
	if (sync_dir && fsync(g.res) < 0)
		die("fsync dir");
}

static void *publisher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	for (;;) {
		while (g.qhead == g.qtail && !g.stop)
			pthread_cond_wait(&g.cv, &g.mu);
		if (g.qhead == g.qtail && g.stop)
			break;
		struct item *batch[MAXQ];
		int n = 0;
		do
			batch[n++] = g.queue[g.qhead++ % MAXQ];
		while (g.mech == M_BATCH && g.qhead != g.qtail);
		pthread_mutex_unlock(&g.mu);
		for (int i = 0; i < n; i++)
			publish_one(batch[i], g.mech != M_BATCH);
		if (g.mech == M_BATCH && fsync(g.res) < 0)
			die("fsync dir");
		pthread_mutex_lock(&g.mu);
		for (int i = 0; i < n; i++)
			g.done[g.dtail++ % MAXQ] = batch[i];
		signal_done();
	}
	pthread_mutex_unlock(&g.mu);
	return NULL;
}

static void *claim_syncer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	for (;;) {
		while (g.claim_req == g.claim_done && !g.stop)
			pthread_cond_wait(&g.claim_cv, &g.mu);
		if (g.stop)
			break;
		int want = g.claim_req;
		pthread_mutex_unlock(&g.mu);
		if (fsync(g.act) < 0)
			die("fsync active");
		pthread_mutex_lock(&g.mu);
		g.claim_done = want;
		signal_done();
	}
	pthread_mutex_unlock(&g.mu);
	return NULL;
}

static void let_go(struct item *it)
{
	if (unlinkat(g.act, it->name, 0) < 0)
		die("unlink active");
	free(it);
	g.pending--;
}

/* user_data: pointer | op (low 2 bits; items are 8-aligned). 3 = claim sync. */
static int uring_claim_done;

static void reap_uring(void)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&g.ring, &cqe) == 0) {
		uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&g.ring, cqe);
		if ((ud & 3) == 3) {
			if (res < 0)
				die("uring claim fsync");
			uring_claim_done++;
			continue;
		}
		struct item *it = (struct item *)(ud & ~(uintptr_t)3);
		if (res < 0) {
			errno = -res;
			die("uring op");
		}
		if ((ud & 3) == 2) { /* the last of the chain: results/ synced */
			close(it->fd);
			let_go(it);
		}
	}
}

/* Handles whatever completed; with wait, blocks until something did. */
static void completions(void)
{
	uint64_t v;
	if (read(g.evfd, &v, sizeof v) < 0 && errno != EAGAIN)
		die("eventfd read");
	if (g.mech == M_URING) {
		reap_uring();
		return;
	}
	pthread_mutex_lock(&g.mu);
	while (g.dhead != g.dtail) {
		struct item *it = g.done[g.dhead++ % MAXQ];
		pthread_mutex_unlock(&g.mu);
		let_go(it);
		pthread_mutex_lock(&g.mu);
	}
	pthread_mutex_unlock(&g.mu);
}

static void wait_event(void)
{
	struct pollfd p = { g.evfd, POLLIN, 0 };
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			die("poll");
	completions();
}

static void submit(struct item *it)
{
	g.pending++;
	if (g.mech == M_URING) {
		static char tmp[MAXQ][80], dst[MAXQ][80];
		static unsigned slot;
		unsigned k = slot++ % MAXQ;
		snprintf(tmp[k], 80, "%s.tmp", it->name);
		snprintf(dst[k], 80, "%s", it->name);
		struct io_uring_sqe *a = io_uring_get_sqe(&g.ring), *b = io_uring_get_sqe(&g.ring),
				    *c = io_uring_get_sqe(&g.ring);
		if (!a || !b || !c)
			die("sqe");
		io_uring_prep_fsync(a, it->fd, 0);
		io_uring_sqe_set_data(a, (void *)((uintptr_t)it | 0));
		a->flags |= IOSQE_IO_LINK;
		io_uring_prep_renameat(b, g.tmp, tmp[k], g.res, dst[k], RENAME_NOREPLACE);
		io_uring_sqe_set_data(b, (void *)((uintptr_t)it | 1));
		b->flags |= IOSQE_IO_LINK;
		io_uring_prep_fsync(c, g.res, 0);
		io_uring_sqe_set_data(c, (void *)((uintptr_t)it | 2));
		if (io_uring_submit(&g.ring) < 0)
			die("io_uring_submit");
		return;
	}
	pthread_mutex_lock(&g.mu);
	while (g.qtail - g.qhead >= MAXQ) {
		pthread_mutex_unlock(&g.mu);
		wait_event();
		pthread_mutex_lock(&g.mu);
	}
	g.queue[g.qtail++ % MAXQ] = it;
	pthread_cond_signal(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

static int claim_target;

static void claim_submit(void)
{
	if (g.mech == M_URING) {
		struct io_uring_sqe *s = io_uring_get_sqe(&g.ring);
		io_uring_prep_fsync(s, g.act, 0);
		io_uring_sqe_set_data(s, (void *)(uintptr_t)3);
		if (io_uring_submit(&g.ring) < 0)
			die("io_uring_submit");
		claim_target = uring_claim_done + 1;
		return;
	}
	pthread_mutex_lock(&g.mu);
	claim_target = ++g.claim_req;
	pthread_cond_signal(&g.claim_cv);
	pthread_mutex_unlock(&g.mu);
}

static int claim_is_done(void)
{
	if (g.mech == M_URING)
		return uring_claim_done >= claim_target;
	pthread_mutex_lock(&g.mu);
	int done = g.claim_done >= claim_target;
	pthread_mutex_unlock(&g.mu);
	return done;
}

static void run_task(void)
{
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		die("pipe2");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, g.devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	char *argv[] = { "/bin/true", NULL };
	pid_t pid;
	if ((errno = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ)))
		die("posix_spawn");
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	struct pollfd p[3] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 }, { g.evfd, POLLIN, 0 } };
	int open_fds = 2;
	char buf[4096];
	while (open_fds) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (p[2].revents)
			completions();
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (read(p[i].fd, buf, sizeof buf) > 0)
				continue;
			close(p[i].fd);
			p[i].fd = -1;
			open_fds--;
		}
	}
	while (waitpid(pid, NULL, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
}

/* Claims name into active/ and starts making the claim durable. */
static void claim(const char *name)
{
	if (renameat2(g.inc, name, g.act, name, RENAME_NOREPLACE) < 0)
		die("claim");
	if (!g.claim_sync || g.mech == M_NONE)
		return;
	if (g.mech == M_SERIAL) {
		if (fsync(g.act) < 0)
			die("fsync active");
	} else
		claim_submit();
}

static void run_claimed(const char *name, double *claim_wait)
{
	char buf[4096];
	int f = openat(g.act, name, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		die("open task");
	while (read(f, buf, sizeof buf) > 0)
		;
	close(f);
	if (g.claim_sync && g.mech >= M_THREAD) {
		double t = now();
		while (!claim_is_done())
			wait_event();
		*claim_wait += now() - t;
	}
	run_task();
}

static void publish(const char *name)
{
	char buf[4096];
	struct item *it = calloc(1, sizeof *it);
	snprintf(it->name, sizeof it->name, "%s", name);
	char tmp[80];
	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	it->fd = openat(g.tmp, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int len = snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"status\":\"succeeded\","
					    "\"exit_code\":0}\n", name);
	if (it->fd < 0 || write(it->fd, buf, (size_t)len) != len)
		die("write result");
	if (g.mech <= M_SERIAL) {
		g.pending++;
		publish_one(it, g.mech == M_SERIAL);
		let_go(it);
	} else
		submit(it);
}

static int open_sub(const char *root, const char *sub)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", root, sub);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(p);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: publish_proto SPOOLDIR N none|serial|thread|batch|uring "
				"CLAIM_SYNC\n");
		return 2;
	}
	const char *m = argv[3];
	g.mech = !strcmp(m, "none") ? M_NONE : !strcmp(m, "serial") ? M_SERIAL
	       : !strcmp(m, "thread") ? M_THREAD : !strcmp(m, "batch") ? M_BATCH : M_URING;
	g.claim_sync = atoi(argv[4]);
	long n = atol(argv[2]);
	g.inc = open_sub(argv[1], "incoming");
	g.act = open_sub(argv[1], "active");
	g.res = open_sub(argv[1], "results");
	g.tmp = open_sub(argv[1], "tmp");
	g.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	g.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	pthread_cond_init(&g.claim_cv, NULL);
	pthread_t pub, cs;
	if (g.mech == M_THREAD || g.mech == M_BATCH) {
		pthread_create(&pub, NULL, publisher, NULL);
		pthread_create(&cs, NULL, claim_syncer, NULL);
	}
	if (g.mech == M_URING) {
		if ((errno = -io_uring_queue_init(256, &g.ring, 0)))
			die("io_uring_queue_init (io_uring disabled?)");
		if (io_uring_register_eventfd(&g.ring, g.evfd) < 0)
			die("io_uring_register_eventfd");
	}
	char **names = malloc((size_t)n * sizeof *names);
	DIR *d = fdopendir(dup(g.inc));
	struct dirent *de;
	long count = 0;
	while ((de = readdir(d)) && count < n)
		if (de->d_name[0] != '.')
			names[count++] = strdup(de->d_name);
	closedir(d);
	double claim_wait = 0, t0 = now();
	/* CLAIM_SYNC 2: the next task is claimed as soon as the previous one
	 * ends, before its result is written, so that the claim's rename and
	 * the result's creation share one journal commit. */
	if (count)
		claim(names[0]);
	for (long i = 0; i < count; i++) {
		run_claimed(names[i], &claim_wait);
		if (g.claim_sync == 2 && i + 1 < count)
			claim(names[i + 1]);
		publish(names[i]);
		if (g.claim_sync != 2 && i + 1 < count)
			claim(names[i + 1]);
	}
	while (g.pending)
		wait_event();
	double secs = now() - t0;
	if (g.mech == M_THREAD || g.mech == M_BATCH) {
		pthread_mutex_lock(&g.mu);
		g.stop = 1;
		pthread_cond_broadcast(&g.cv);
		pthread_cond_broadcast(&g.claim_cv);
		pthread_mutex_unlock(&g.mu);
		pthread_join(pub, NULL);
		pthread_join(cs, NULL);
	}
	printf("%ld %.6f %.0f\n", count, secs, claim_wait * 1e6);
	return 0;
}
