/* retry: what follows a run that did not succeed.
 *
 * Modelled on a mail queue's deferred queue: a run that failed in a way
 * the task says is transient is tried again after a back-off (doubling from
 * retry_backoff up to retry_backoff_max, with jitter), and a tool that
 * reports a usage limit with the time it lifts is deferred until then
 * without spending a retry. The decision is pure: the caller supplies the
 * clock and the randomness, so it is tested without waiting. */
#ifndef SPOOLRUN_RETRY_H
#define SPOOLRUN_RETRY_H

#include <regex.h>
#include <stdint.h>

#include "run.h"
#include "task.h"

enum retry_action {
	RETRY_NONE,        /* publish the result: success, or no retry left */
	RETRY_BACKOFF,     /* spend a retry; run again at not_before_ms */
	RETRY_USAGE_LIMIT, /* a usage limit lifts at not_before_ms; no retry spent */
};

struct retry_decision {
	enum retry_action action;
	int64_t not_before_ms;   /* wall clock, ms since the epoch */
	char reason[256];        /* why it is retried, for the attempts record */
};

/* Decides for run o of task t, whose inline output is out and err.
 * retries_used: retries spent so far. usage_limit: the compiled
 * [retry] usage_limit_pattern (group 1 = Unix time), or NULL; it applies to
 * tasks that have retries or a limit_key. jitter in [0, 1): the delay is
 * (1 + jitter) / 2 of the full back-off. */
void retry_decide(const struct task *t, const struct run_outcome *o, const char *out,
		  size_t outlen, const char *err, size_t errlen, unsigned retries_used,
		  const regex_t *usage_limit, int64_t now_ms, double jitter,
		  struct retry_decision *d);

/* The longest a usage limit may defer a task: a reset time further ahead
 * (a typo, garbage, an overflow attempt such as 10000000000) is not
 * believed, and the run counts as an ordinary failure. */
#define RETRY_USAGE_LIMIT_MAX_WAIT_S (INT64_C(31) * 24 * 3600)

/* The reset time (Unix seconds) that group 1 of re finds in text, when it
 * is a decimal number after now and at most RETRY_USAGE_LIMIT_MAX_WAIT_S
 * ahead; else 0. Pure and bounded: whatever the task printed, the result
 * times 10^9 fits an int64_t. runner and status both rely on it. */
int64_t retry_usage_limit_epoch(const regex_t *re, const char *text, size_t len, int64_t now_ms);

/* The back-off before retry number n (0 for the first retry), in ms. */
int64_t retry_backoff_ms(const struct retry_policy *p, unsigned n, double jitter);

#endif
