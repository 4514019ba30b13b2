/* retry: what follows a run that did not succeed.
 *
 * Modelled on a mail queue's deferred queue: a run that failed in a way
 * the task says is transient is tried again after a back-off (doubling from
 * retry_backoff up to retry_backoff_max, with jitter), and a tool that
 * reports a usage limit with the time it lifts is deferred until then
 * without spending a retry, and so is one that hit an API rate limit (429)
 * or found the API overloaded (529), for a back-off of its own (apilimit.h
 * reads Claude Code's events and messages and holds that policy). The
 * decision is pure: the caller supplies the
 * clock and the randomness, so it is tested without waiting. */
#ifndef SPOOLRUN_RETRY_H
#define SPOOLRUN_RETRY_H

#include <regex.h>
#include <stdint.h>

#include "apilimit.h"
#include "run.h"
#include "task.h"

enum retry_action {
	RETRY_NONE,        /* publish the result: success, or no retry left */
	RETRY_BACKOFF,     /* spend a retry; run again at not_before_ms */
	RETRY_USAGE_LIMIT, /* a limit (usage, 429, 529) lifts at not_before_ms; no retry
			      spent; the task's limit_key waits with it */
};

struct retry_decision {
	enum retry_action action;
	int64_t not_before_ms;   /* wall clock, ms since the epoch */
	char reason[384];        /* why it is retried, for the attempts record */
	struct api_limit limit;  /* RETRY_USAGE_LIMIT: which limit */
};

/* What retry_decide needs besides the task and its run. */
struct retry_limits {
	const regex_t *usage_limit;           /* [retry] usage_limit_pattern, or NULL */
	const struct api_limit_policy *policy; /* [retry] rate_limit_* keys */
	unsigned deferrals;                   /* limit deferrals of this task so far */
};

/* Decides for run o of task t, whose inline output is out and err.
 * retries_used: retries spent so far. Limits apply to tasks that have
 * retries or a limit_key; they are looked for in this order: Claude Code's
 * events (o->events: a rejected rate_limit_event, a 429/529 result), the
 * usage_limit_pattern (group 1 = Unix time; a time already past is no
 * limit), the CLI's "hit your … limit · resets <when>" text in stderr and
 * stdout. jitter in [0, 1): the delay is (1 + jitter) / 2 of the full
 * back-off. */
void retry_decide(const struct task *t, const struct run_outcome *o, const char *out,
		  size_t outlen, const char *err, size_t errlen, unsigned retries_used,
		  const struct retry_limits *lim, int64_t now_ms, double jitter,
		  struct retry_decision *d);

/* The back-off before retry number n (0 for the first retry), in ms. */
int64_t retry_backoff_ms(const struct retry_policy *p, unsigned n, double jitter);

/* True when the program could not be executed for a reason that will not
 * go away by itself (not found, not executable, not a program): such a
 * task is never retried, whatever retry_on says, since it can never
 * succeed. A failed fork or a full table of processes is retried. */
bool retry_never_succeeds(const struct run_outcome *o);

#endif
