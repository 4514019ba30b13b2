#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signals.h"
#include "timeutil.h"

/* regexec over bytes that may hold NULs (REG_STARTEND, as glibc allows). */
static bool search(const regex_t *re, const char *text, size_t len, regmatch_t *m, size_t nm)
{
	regmatch_t local[2];
	if (!m) {
		m = local;
		nm = 1;
	}
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)len;
	return regexec(re, text, nm, m, REG_STARTEND) == 0;
}

bool retry_never_succeeds(const struct run_outcome *o)
{
	static const int permanent[] = { ENOENT, EACCES, ENOEXEC, ENOTDIR, ELOOP, ENAMETOOLONG,
					 EISDIR, EPERM };
	if (o->status != RUN_SPAWN_ERROR || !o->spawn_error.stage ||
	    strcmp(o->spawn_error.stage, "exec"))
		return false;
	for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++)
		if (o->spawn_error.err == permanent[i])
			return true;
	return false;
}

int64_t retry_backoff_ms(const struct retry_policy *p, unsigned n, double jitter)
{
	return time_backoff_ms(p->backoff, p->backoff_max, n, jitter);
}

/* The Unix time a usage-limit message names, or 0 (also for digits that
 * are no time at all: a user's pattern may capture any number). */
static int64_t usage_limit_epoch(const regex_t *re, const char *text, size_t len)
{
	regmatch_t m[2];
	if (!search(re, text, len, m, 2) || m[1].rm_so < 0)
		return 0;
	char digits[24];
	size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
	if (n == 0 || n >= sizeof digits)
		return 0;
	memcpy(digits, text + m[1].rm_so, n);
	digits[n] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(digits, &end, 10);
	if (errno || *end || v < 1 || v > API_LIMIT_EPOCH_MAX)
		return 0;
	return v;
}

/* The limit this failed run hit, if any (see retry_decide for the order). */
static void find_limit(const struct run_outcome *o, const char *out, size_t outlen,
		       const char *err, size_t errlen, const regex_t *usage_limit,
		       int64_t now_ms, struct api_limit *l)
{
	*l = o->events.limit;
	if (l->kind == LIMIT_USAGE)
		return;
	if (usage_limit) {
		int64_t epoch = usage_limit_epoch(usage_limit, err, errlen);
		if (!epoch)
			epoch = usage_limit_epoch(usage_limit, out, outlen);
		if (epoch && epoch > now_ms / 1000) {
			*l = (struct api_limit){ .kind = LIMIT_USAGE, .resets_at = epoch,
						 .api_status = l->api_status,
						 .source = "usage_limit_pattern" };
			return;
		}
	}
	struct api_limit text = { .api_status = l->api_status };
	if (api_limit_from_text(err, errlen, now_ms / 1000, &text) ||
	    api_limit_from_text(out, outlen, now_ms / 1000, &text))
		*l = text;
}

/* Whether retry_on covers this outcome; reason says how. */
static bool covered(const struct task *t, const struct run_outcome *o, const char *out,
		    size_t outlen, const char *err, size_t errlen, char *reason, size_t rlen)
{
	const struct retry_policy *p = &t->retry;
	bool failed = o->status == RUN_EXITED && o->exit_code != 0;
	if (!p->has_retry_on) {
		snprintf(reason, rlen, "did not succeed (retry_on not set: every failure is retried)");
		return true;
	}
	for (size_t i = 0; failed && i < p->n_exit_codes; i++)
		if (p->exit_codes[i] == o->exit_code) {
			snprintf(reason, rlen, "exit code %d is in retry_on.exit_codes", o->exit_code);
			return true;
		}
	if (p->on_timeout && o->status == RUN_TIMEOUT) {
		snprintf(reason, rlen, "timed out and retry_on.timeout is set");
		return true;
	}
	if (p->on_signal && o->status == RUN_SIGNALED) {
		snprintf(reason, rlen, "killed by %s and retry_on.signal is set",
			 signals_name(o->term_signal));
		return true;
	}
	for (size_t i = 0; i < p->n_patterns; i++)
		if (search(&p->patterns[i], out, outlen, NULL, 0) ||
		    search(&p->patterns[i], err, errlen, NULL, 0)) {
			snprintf(reason, rlen, "output matched retry_on.output_patterns \"%s\"",
				 p->pattern_src[i]);
			return true;
		}
	return false;
}

void retry_decide(const struct task *t, const struct run_outcome *o, const char *out,
		  size_t outlen, const char *err, size_t errlen, unsigned retries_used,
		  const struct retry_limits *lim, int64_t now_ms, double jitter,
		  struct retry_decision *d)
{
	memset(d, 0, sizeof *d);
	if (o->status == RUN_EXITED && o->exit_code == 0)
		return;
	if (o->status == RUN_ABORTED || retry_never_succeeds(o))
		return;
	if (lim && lim->policy && (t->retry.retries > 0 || t->limit_key)) {
		find_limit(o, out, outlen, err, errlen, lim->usage_limit, now_ms, &d->limit);
		if (api_limit_decide(lim->policy, &d->limit, lim->deferrals, now_ms, jitter,
				     &d->not_before_ms, d->reason, sizeof d->reason)) {
			d->action = RETRY_USAGE_LIMIT;
			return;
		}
		d->limit = (struct api_limit){ .kind = LIMIT_NONE };
	}
	if (retries_used >= t->retry.retries)
		return;
	if (!covered(t, o, out, outlen, err, errlen, d->reason, sizeof d->reason))
		return;
	d->action = RETRY_BACKOFF;
	d->not_before_ms = now_ms + retry_backoff_ms(&t->retry, retries_used, jitter);
}
