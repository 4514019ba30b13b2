/* The presentation half of status.h: the table and the JSON document. */
#define _GNU_SOURCE
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "exitcodes.h"
#include "timeutil.h"

#define TABLE_COMMAND_MAX 60 /* characters of a command shown in the table */

bool status_use_colour(int fd)
{
	const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
	return isatty(fd) && !(no && *no) && !(term && !strcmp(term, "dumb"));
}

void status_format_duration(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms / 1000;
	if (ms < 0)
		snprintf(buf, len, "-");
	else if (ms < 10000)
		snprintf(buf, len, "%.1f s", (double)ms / 1000);
	else if (s < 120)
		snprintf(buf, len, "%lld s", (long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%lld min", (long long)(s / 60));
	else if (s < 2 * 86400)
		snprintf(buf, len, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lld d", (long long)(s / 86400));
}

/* "2 min ago", "in 5 s". */
static void relative(int64_t when_ms, int64_t now_ms, char *buf, size_t len)
{
	char d[32];
	if (!when_ms) {
		snprintf(buf, len, "-");
		return;
	}
	int64_t gap = llabs(now_ms - when_ms);
	if (gap < 1000) {
		snprintf(buf, len, "just now");
		return;
	}
	if (gap < 10000)
		snprintf(d, sizeof d, "%lld s", (long long)(gap / 1000));
	else
		status_format_duration(gap, d, sizeof d);
	if (now_ms >= when_ms)
		snprintf(buf, len, "%s ago", d);
	else
		snprintf(buf, len, "in %s", d);
}

static const char *state_text(const struct status_row *r)
{
	switch (r->state) {
	case STATUS_RUNNING: return r->cancel_requested ? "cancelling" : "running";
	case STATUS_INTERRUPTED: return "interrupted";
	case STATUS_QUEUED: return r->cancel_requested ? "cancel requested" : "queued";
	case STATUS_DEFERRED: return r->cancel_requested ? "cancel requested" : "deferred";
	case STATUS_FINISHED: return r->status ? r->status : "?";
	}
	return "?";
}

/* ANSI colour of a state: green done well, red done badly, yellow waiting,
 * cyan running. */
static const char *state_colour(const struct status_row *r)
{
	if (r->state == STATUS_RUNNING)
		return "\033[36m";
	if (r->state != STATUS_FINISHED)
		return "\033[33m";
	return r->status && !strcmp(r->status, "succeeded") ? "\033[32m" : "\033[31m";
}

enum { COL_ID, COL_STATE, COL_EXIT, COL_TIME, COL_WHEN, COL_LABEL, COL_COMMAND, N_COLS };

static void row_cells(const struct status_row *r, int64_t now, char cells[N_COLS][160])
{
	char d[48];
	memset(cells, 0, sizeof(char[N_COLS][160]));
	snprintf(cells[COL_ID], 160, "%s", r->id);
	snprintf(cells[COL_STATE], 160, "%s", state_text(r));
	if (r->has_exit_code)
		snprintf(cells[COL_EXIT], 160, "%d", r->exit_code);
	else if (r->signal[0])
		snprintf(cells[COL_EXIT], 160, "%s", r->signal);
	if (r->state == STATUS_RUNNING && r->elapsed_ms >= 0)
		status_format_duration(r->elapsed_ms, cells[COL_TIME], 160);
	else if (r->state == STATUS_FINISHED)
		status_format_duration(r->duration_ms, cells[COL_TIME], 160);
	switch (r->state) {
	case STATUS_RUNNING:
		if (r->in_slurm)
			snprintf(cells[COL_WHEN], 160, "slurm job %s %s",
				 r->slurm_job_id[0] ? r->slurm_job_id : "-", r->slurm_state);
		else
			snprintf(cells[COL_WHEN], 160, r->pid ? "pid %lld" : "", (long long)r->pid);
		break;
	case STATUS_INTERRUPTED:
		snprintf(cells[COL_WHEN], 160, "(watcher not running)");
		break;
	case STATUS_QUEUED:
		relative(r->when_ms, now, d, sizeof d);
		snprintf(cells[COL_WHEN], 160, "queued %s", d);
		break;
	case STATUS_DEFERRED:
		relative(r->when_ms, now, d, sizeof d);
		snprintf(cells[COL_WHEN], 160, "retry %s", d);
		break;
	case STATUS_FINISHED:
		relative(r->when_ms, now, cells[COL_WHEN], 160);
		break;
	}
	snprintf(cells[COL_LABEL], 160, "%s", r->label ? r->label : "");
	const char *cmd = r->command ? r->command : "-";
	if (strlen(cmd) > TABLE_COMMAND_MAX)
		snprintf(cells[COL_COMMAND], 160, "%.*s...", TABLE_COMMAND_MAX - 3, cmd);
	else
		snprintf(cells[COL_COMMAND], 160, "%s", cmd);
}

static void print_header(const struct status_report *st, FILE *out)
{
	fprintf(out, "spool %s: ", st->spool);
	if (st->watcher_running)
		fprintf(out, "watcher running (pid %d)", st->watcher_pid);
	else
		fprintf(out, "no watcher running");
	fprintf(out, "%s\n", st->paused ? ", paused (no new task starts; remove the pause file)" : "");
}

void status_print_table(const struct status_report *st, FILE *out, bool colour)
{
	static const char *const heads[N_COLS] = { "ID", "STATE", "EXIT", "TIME", "WHEN", "LABEL",
						   "COMMAND" };
	char (*cells)[N_COLS][160] = calloc(st->n ? st->n : 1, sizeof *cells);
	int width[N_COLS];
	bool labels = false, interrupted = false;
	int64_t now = time_realtime_ms();
	print_header(st, out);
	if (!cells)
		return;
	for (int k = 0; k < N_COLS; k++)
		width[k] = (int)strlen(heads[k]);
	for (size_t i = 0; i < st->n; i++) {
		row_cells(&st->rows[i], now, cells[i]);
		labels |= st->rows[i].label != NULL;
		interrupted |= st->rows[i].state == STATUS_INTERRUPTED;
		for (int k = 0; k < N_COLS; k++)
			if ((int)strlen(cells[i][k]) > width[k])
				width[k] = (int)strlen(cells[i][k]);
	}
	if (!st->n)
		fprintf(out, "no tasks: nothing queued, running, deferred or finished\n");
	for (size_t i = 0; st->n && i <= st->n; i++) {
		const char *const *row = NULL;
		const char *line[N_COLS];
		for (int k = 0; k < N_COLS; k++)
			line[k] = i ? cells[i - 1][k] : heads[k];
		row = line;
		for (int k = 0; k < N_COLS; k++) {
			if (k == COL_LABEL && !labels)
				continue;
			bool paint = colour && i && k == COL_STATE;
			if (k == N_COLS - 1)
				fprintf(out, "%s\n", row[k]);
			else
				fprintf(out, "%s%-*s%s  ", paint ? state_colour(&st->rows[i - 1]) : "",
					width[k], row[k], paint ? "\033[0m" : "");
		}
	}
	size_t finished = 0;
	for (size_t i = 0; i < st->n; i++)
		finished += st->rows[i].state == STATUS_FINISHED;
	if (st->finished_total > finished)
		fprintf(out, "(%zu of %zu finished shown; --all or -n N for more, --failed for failures)\n",
			finished, st->finished_total);
	if (interrupted)
		fprintf(out, "interrupted: left in active/ by a watcher that stopped; it runs again "
			     "when a watcher starts\n");
	free(cells);
}

static json_t *timestamp_ms(int64_t ms)
{
	char buf[32];
	if (!ms)
		return json_null();
	time_format_rfc3339(ms, buf, sizeof buf);
	return json_string(buf);
}

static json_t *nullable_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *row_json(const struct status_row *r)
{
	json_t *o = json_pack("{s:s, s:o, s:o, s:b}", "id", r->id,
			      "command", nullable_string(r->command), "label", nullable_string(r->label),
			      "cancel_requested", r->cancel_requested);
	switch (r->state) {
	case STATUS_RUNNING:
	case STATUS_INTERRUPTED:
		json_object_set_new(o, "task_file", json_string(r->file));
		json_object_set_new(o, "state", json_string(r->state == STATUS_RUNNING ? "running"
										: "interrupted"));
		json_object_set_new(o, "pid", r->pid ? json_integer(r->pid) : json_null());
		json_object_set_new(o, "elapsed_ms", r->elapsed_ms >= 0 ? json_integer(r->elapsed_ms)
								    : json_null());
		json_object_set_new(o, "stdout_bytes", json_integer(r->stdout_bytes));
		json_object_set_new(o, "stderr_bytes", json_integer(r->stderr_bytes));
		json_object_set_new(o, "started_at", r->pid || r->in_slurm ? timestamp_ms(r->started_ms)
								   : json_null());
		json_object_set_new(o, "attempt", json_integer(r->attempt ? r->attempt : 1));
		json_object_set_new(o, "executor", (r->pid || r->in_slurm) && r->executor[0]
							   ? json_string(r->executor) : json_null());
		json_object_set_new(o, "slurm", !r->in_slurm ? json_null()
			: json_pack("{s:o, s:s}", "job_id", r->slurm_job_id[0]
					? json_string(r->slurm_job_id) : json_null(),
				    "state", r->slurm_state));
		break;
	case STATUS_QUEUED:
		json_object_set_new(o, "task_file", json_string(r->file));
		json_object_set_new(o, "priority", json_integer(r->priority));
		json_object_set_new(o, "queued_at", timestamp_ms(r->when_ms));
		break;
	case STATUS_DEFERRED:
		json_object_set_new(o, "task_file", json_string(r->file));
		json_object_set_new(o, "not_before", timestamp_ms(r->when_ms));
		json_object_set_new(o, "attempts", json_integer(r->attempts));
		break;
	case STATUS_FINISHED:
		json_object_set_new(o, "status", nullable_string(r->status));
		json_object_set_new(o, "finished_at", timestamp_ms(r->when_ms));
		json_object_set_new(o, "result_file", json_string(r->file));
		json_object_set_new(o, "exit_code", r->has_exit_code ? json_integer(r->exit_code)
								     : json_null());
		json_object_set_new(o, "duration_ms", r->duration_ms >= 0 ? json_integer(r->duration_ms)
									   : json_null());
		break;
	}
	return o;
}

int status_print_json(const struct status_report *st, FILE *out)
{
	json_t *lists[4] = { json_array(), json_array(), json_array(), json_array() };
	for (size_t i = 0; i < st->n; i++) {
		const struct status_row *r = &st->rows[i];
		int k = r->state == STATUS_RUNNING || r->state == STATUS_INTERRUPTED ? 0
		      : r->state == STATUS_QUEUED ? 1 : r->state == STATUS_DEFERRED ? 2 : 3;
		json_array_append_new(lists[k], row_json(r));
	}
	json_t *doc = json_pack("{s:s, s:{s:b, s:o}, s:b, s:o, s:o, s:o, s:o, s:I}",
		"spool", st->spool, "watcher", "running", st->watcher_running,
		"pid", st->watcher_pid ? json_integer(st->watcher_pid) : json_null(),
		"paused", st->paused, "running", lists[0], "queued", lists[1], "deferred", lists[2],
		"recent", lists[3], "finished_total", (json_int_t)st->finished_total);
	char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	json_decref(doc);
	if (!text)
		return EXIT_SOFTWARE;
	fprintf(out, "%s\n", text);
	free(text);
	return EXIT_OK;
}
