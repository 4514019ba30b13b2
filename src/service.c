#define _GNU_SOURCE
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clean.h"
#include "hook.h"
#include "log.h"
#include "notify.h"
#include "result.h"
#include "timeutil.h"
#include "version.h"

#define CLEAN_EVERY_MS (3600 * INT64_C(1000))
#define METRICS_EVERY_MS 1000

static int64_t now_ms(void)
{
	return time_monotonic_ns() / NS_PER_MS;
}

static void emit(struct service *sv, const struct event *ev)
{
	eventlog_emit(&sv->events, ev);
}

#define EVENT(...) ((struct event){ __VA_ARGS__ })

static void send_status(struct service *sv, char *ready, size_t readylen);

static void open_events(struct service *sv)
{
	if (eventlog_reopen(&sv->events, sv->cfg->events_path) < 0)
		log_warn("[log] events: cannot open %s; no event log until SIGHUP",
			 sv->cfg->events_path);
}

static void run_clean(struct service *sv)
{
	if (!sv->cfg->keep_results) {
		sv->next_clean_ms = 0;
		return;
	}
	int64_t wall = time_realtime_ms();
	struct clean_filter f = { wall - sv->cfg->keep_results * 1000, NULL, 0 };
	long n = clean_run(sv->spool, &f, false, NULL, NULL);
	if (n < 0)
		log_warn("keep_results: cannot list %s", sv->spool->results_path);
	else if (n > 0)
		log_info("keep_results: removed %ld result(s) finished more than %llds ago", n,
			 (long long)sv->cfg->keep_results);
	sv->next_clean_ms = now_ms() + CLEAN_EVERY_MS;
}

void service_start(struct service *sv, const struct config *cfg, struct spool *spool)
{
	memset(sv, 0, sizeof *sv);
	sv->cfg = cfg;
	sv->spool = spool;
	sv->events.fd = -1;
	metrics_init(&sv->metrics, time_realtime_ms());
	sv->metrics_dirty = true;
	sv->notifying = notify_init();
	open_events(sv);
	emit(sv, &EVENT(.event = "watcher_started", .pid = (int)getpid()));
	run_clean(sv);
}

void service_ready(struct service *sv)
{
	if (!sv)
		return;
	service_tick(sv);
	if (!sv->notifying)
		return;
	/* One datagram: systemd sees the service ready with its counts. */
	char msg[sizeof sv->status_line + 16];
	sv->status_line[0] = '\0';
	send_status(sv, msg, sizeof msg);
	if (notify_send(msg) < 0)
		log_warn("NOTIFY_SOCKET: cannot send READY=1");
}

void service_reload(struct service *sv, const struct config *cfg)
{
	if (!sv)
		return;
	sv->cfg = cfg;
	open_events(sv);
	sv->metrics_dirty = true;
	if (cfg->keep_results && !sv->next_clean_ms)
		run_clean(sv);
	else if (!cfg->keep_results)
		sv->next_clean_ms = 0;
}

void service_counts(struct service *sv, size_t queued, size_t running, size_t deferred,
		    size_t slots)
{
	if (!sv)
		return;
	struct metrics *m = &sv->metrics;
	if (m->queued == queued && m->running == running && m->deferred == deferred &&
	    m->slots == slots)
		return;
	m->queued = queued;
	m->running = running;
	m->deferred = deferred;
	m->slots = slots;
	sv->metrics_dirty = true;
	service_tick(sv);
}

void service_queued(struct service *sv, const char *id, const char *task_file)
{
	if (sv)
		emit(sv, &EVENT(.event = "queued", .id = id, .task_file = task_file));
}

void service_started(struct service *sv, const char *id, const char *task_file, int attempt)
{
	if (sv)
		emit(sv, &EVENT(.event = "started", .id = id, .task_file = task_file,
				.has_attempt = true, .attempt = attempt));
}

void service_deferred(struct service *sv, const char *id, const char *task_file, int attempt,
		      bool retry, int64_t not_before_ms, const char *reason)
{
	if (!sv)
		return;
	emit(sv, &EVENT(.event = retry ? "retry_scheduled" : "deferred", .id = id,
			.task_file = task_file, .has_attempt = true, .attempt = attempt, .reason = reason,
			.not_before_ms = not_before_ms));
	if (retry)
		sv->metrics.retries++;
	else
		sv->metrics.usage_limit_deferrals++;
	sv->metrics_dirty = true;
}

void service_requeued(struct service *sv, const char *id, const char *task_file)
{
	if (sv)
		emit(sv, &EVENT(.event = "requeued", .id = id, .task_file = task_file));
}

void service_recovered(struct service *sv, const char *task_file)
{
	if (sv)
		emit(sv, &EVENT(.event = "recovered", .task_file = task_file));
}

static void start_hook(struct service *sv, const char *id, const char *status,
		       const json_t *code, const char *published_name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", sv->spool->results_path, published_name);
	struct hook_info info = {
		.result_path = path, .id = id, .status = status,
		.has_exit_code = json_is_integer(code), .exit_code = (int)json_integer_value(code),
		.spool = sv->spool->root,
	};
	hook_start(sv->cfg->hook_on_result, sv->cfg->hook_timeout, &info);
}

void service_published(struct service *sv, const char *task_file, const json_t *result,
		       const char *published_name)
{
	if (!sv || !result)
		return;
	const char *id = json_string_value(json_object_get(result, "id"));
	const char *status = result_status(result);
	const json_t *code = json_object_get(result, "exit_code");
	const json_t *err = json_object_get(result, "error");
	const char *ecode = json_string_value(json_object_get(err, "code"));
	json_t *dur = json_object_get(result, "duration_ms");
	int attempt = (int)json_integer_value(json_object_get(result, "attempt"));
	int64_t duration = json_is_integer(dur) ? json_integer_value(dur) : -1;
	if (!strcmp(status, "rejected") || !strcmp(status, "cancelled"))
		emit(sv, &EVENT(.event = status, .id = id, .task_file = task_file, .code = ecode,
				.reason = json_string_value(json_object_get(err, "message"))));
	emit(sv, &EVENT(.event = "published", .id = id, .task_file = task_file,
			.has_attempt = true, .attempt = attempt, .status = status, .has_exit_code = json_is_integer(code),
			.exit_code = (int)json_integer_value(code), .has_duration = duration >= 0, .duration_ms = duration,
			.code = ecode, .result_file = published_name));
	/* A task that never ran has no run time to count. */
	metrics_published(&sv->metrics, status, attempt > 0 ? duration : -1, time_realtime_ms());
	sv->metrics_dirty = true;
	if (id && !strchr(published_name, '@'))
		clean_forget(sv->spool, id);
	if (sv->cfg->hook_on_result && id)
		start_hook(sv, id, status, code, published_name);
	service_tick(sv);
}

/* READY=1 (when msg is given) and STATUS= with the counts; STATUS alone
 * only when it changed. */
static void send_status(struct service *sv, char *ready, size_t readylen)
{
	const struct metrics *m = &sv->metrics;
	char line[sizeof sv->status_line];
	snprintf(line, sizeof line, "STATUS=%llu queued, %llu running, %llu deferred; "
		 "%llu result(s) published",
		 (unsigned long long)m->queued, (unsigned long long)m->running,
		 (unsigned long long)m->deferred,
		 (unsigned long long)(m->published[0] + m->published[1] + m->published[2] +
				      m->published[3] + m->published[4] + m->published[5] +
				      m->published[6] + m->published[7]));
	if (ready) {
		snprintf(ready, readylen, "READY=1\n%s", line);
		snprintf(sv->status_line, sizeof sv->status_line, "%s", line);
		return;
	}
	if (!strcmp(line, sv->status_line))
		return;
	snprintf(sv->status_line, sizeof sv->status_line, "%s", line);
	if (notify_send(line) < 0)
		log_warn("NOTIFY_SOCKET: cannot send STATUS");
}

static void write_metrics(struct service *sv)
{
	sv->metrics_dirty = false;
	sv->metrics_written_ms = now_ms();
	sv->metrics.hooks_failed = hook_failures();
	if (sv->notifying)
		send_status(sv, NULL, 0);
	if (!sv->cfg->metrics_path)
		return;
	if (metrics_write(&sv->metrics, sv->cfg->metrics_path) < 0) {
		if (!sv->metrics_failing)
			log_warn("[metrics] textfile: cannot write %s", sv->cfg->metrics_path);
		sv->metrics_failing = true;
	} else
		sv->metrics_failing = false;
}

void service_tick(struct service *sv)
{
	if (!sv)
		return;
	int64_t now = now_ms();
	if (sv->next_clean_ms && now >= sv->next_clean_ms)
		run_clean(sv);
	if (!sv->metrics_dirty)
		return;
	if (!sv->metrics_written_ms || now - sv->metrics_written_ms >= METRICS_EVERY_MS)
		write_metrics(sv); /* else service_next_ms() tells the loop when */
}

int service_next_ms(const struct service *sv)
{
	if (!sv)
		return -1;
	int64_t now = now_ms(), next = INT64_MAX;
	if (sv->metrics_dirty)
		next = sv->metrics_written_ms + METRICS_EVERY_MS - now;
	if (sv->next_clean_ms && sv->next_clean_ms - now < next)
		next = sv->next_clean_ms - now;
	if (next == INT64_MAX)
		return -1;
	return next <= 0 ? 0 : next >= 3600000 ? 3600000 : (int)next + 1;
}

void service_stop(struct service *sv, const char *why)
{
	if (!sv)
		return;
	hook_wait_all();
	sv->metrics.running = 0;
	write_metrics(sv);
	emit(sv, &EVENT(.event = "watcher_stopped", .pid = (int)getpid(), .reason = why));
	notify_send("STOPPING=1");
	eventlog_close(&sv->events);
}
