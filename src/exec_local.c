/* The local executor: run.h behind the executor seam. */
#include "executor.h"

static void *local_start(const struct task *t, const struct run_options *opt)
{
	return run_start(t, opt);
}

static int local_pollfds(void *h, struct pollfd *fds, int max)
{
	return run_pollfds(h, fds, max);
}

static void local_on_ready(void *h, const struct pollfd *fds, int n)
{
	run_on_ready(h, fds, n);
}

static int64_t local_advance(void *h, int64_t now)
{
	return run_advance(h, now);
}

static void local_abort(void *h)
{
	run_abort(h);
}

static void local_finish(void *h, struct run_outcome *o)
{
	run_finish(h, o);
}

static pid_t local_pid(const void *h)
{
	return run_pid(h);
}

static void local_bytes(const void *h, uint64_t *out, uint64_t *err)
{
	run_bytes(h, out, err);
}

const struct executor executor_local = {
	.name = "local", .start = local_start, .pollfds = local_pollfds,
	.on_ready = local_on_ready, .on_child = run_reap_all, .advance = local_advance,
	.abort = local_abort, .finish = local_finish, .pid = local_pid, .bytes = local_bytes,
};
