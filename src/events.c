#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int output_mode_parse(const char *s, enum output_mode *out)
{
	static const char *const names[] = { "text", "jsonl", "json" };
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i]))
			return *out = (enum output_mode)i, 0;
	return -1;
}

const char *output_mode_name(enum output_mode m)
{
	return m == OUTPUT_JSONL ? "jsonl" : m == OUTPUT_JSON ? "json" : "text";
}

void events_init(struct events *ev, enum output_mode mode, size_t budget)
{
	memset(ev, 0, sizeof *ev);
	ev->mode = mode;
	ev->budget = budget;
}

void events_clear(struct events *ev)
{
	for (size_t i = 0; i < ev->head_len; i++)
		free(ev->head[i].bytes);
	for (size_t i = 0; i < ev->tail_len; i++)
		free(ev->tail[(ev->tail_start + i) % ev->tail_cap].bytes);
	free(ev->head);
	free(ev->tail);
	json_decref(ev->last_result);
	json_decref(ev->rate_limit_info);
	json_decref(ev->init_model);
	json_decref(ev->models);
	free(ev->line);
	memset(ev, 0, sizeof *ev);
}

static void drop_oldest(struct events *ev)
{
	struct kept_event *k = &ev->tail[ev->tail_start];
	free(k->bytes);
	ev->tail_bytes -= k->len;
	ev->tail_start = (ev->tail_start + 1) % ev->tail_cap;
	ev->tail_len--;
	ev->omitted++;
}

/* Grows a ring (or, with start 0 and no wrap, a plain array) to hold one more. */
static bool make_room(struct kept_event **a, size_t *start, size_t len, size_t *cap)
{
	if (len < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 64;
	struct kept_event *t = malloc(ncap * sizeof *t);
	if (!t)
		return false;
	for (size_t i = 0; i < len; i++)
		t[i] = (*a)[(*start + i) % *cap];
	free(*a);
	*a = t;
	*cap = ncap;
	*start = 0;
	return true;
}

/* Keeps a line in the head while the head's half of the budget lasts,
 * then in the tail, dropping the oldest tail lines to stay within the
 * other half. Takes ownership of bytes. */
static void keep(struct events *ev, char *bytes, size_t len, bool json)
{
	size_t half = ev->budget - ev->budget / 2, zero = 0;
	/* The one document of "json" may use the whole budget. */
	size_t head_limit = ev->mode == OUTPUT_JSON ? ev->budget : ev->budget / 2;
	ev->total++;
	if (ev->tail_len == 0 && !ev->omitted && ev->head_bytes + len <= head_limit &&
	    make_room(&ev->head, &zero, ev->head_len, &ev->head_cap)) {
		ev->head[ev->head_len++] = (struct kept_event){ bytes, len, json };
		ev->head_bytes += len;
		return;
	}
	if (len > half || !make_room(&ev->tail, &ev->tail_start, ev->tail_len, &ev->tail_cap)) {
		free(bytes);
		ev->omitted++;
		return;
	}
	ev->tail[(ev->tail_start + ev->tail_len++) % ev->tail_cap] =
		(struct kept_event){ bytes, len, json };
	ev->tail_bytes += len;
	while (ev->tail_bytes > half)
		drop_oldest(ev);
}

static char *copy_bytes(const char *p, size_t n)
{
	char *c = malloc(n + 1);
	if (c) {
		memcpy(c, p, n);
		c[n] = '\0';
	}
	return c;
}

static void replace(json_t **slot, json_t *v)
{
	json_decref(*slot);
	*slot = json_incref(v);
}

/* A model name worth reporting: a short string, not the CLI's "<synthetic>"
 * (messages it makes up itself, such as a limit's notice). */
static bool model_name(const json_t *m)
{
	const char *s = json_string_value(m);
	return s && *s && json_string_length(m) <= 128 && strcmp(s, "<synthetic>") != 0;
}

static void note_model(struct events *ev, json_t *m)
{
	if (!model_name(m))
		return;
	if (!ev->models)
		ev->models = json_array();
	size_t i;
	json_t *seen;
	json_array_foreach(ev->models, i, seen)
		if (json_equal(seen, m))
			return;
	if (json_array_size(ev->models) < 16)
		json_array_append(ev->models, m);
}

/* What Claude Code's events say beyond the result: limits and models. */
static void note_event(struct events *ev, json_t *v, const char *type)
{
	api_limit_from_event(v, &ev->limit);
	if (!strcmp(type, "result"))
		replace(&ev->last_result, v);
	else if (!strcmp(type, "rate_limit_event") &&
		 json_is_object(json_object_get(v, "rate_limit_info")))
		replace(&ev->rate_limit_info, json_object_get(v, "rate_limit_info"));
	else if (!strcmp(type, "system") && model_name(json_object_get(v, "model")))
		replace(&ev->init_model, json_object_get(v, "model"));
	else if (!strcmp(type, "assistant"))
		note_model(ev, json_object_get(json_object_get(v, "message"), "model"));
}

/* Parses a line now (to count it and read what it says of the run) and
 * keeps its bytes. */
static void take_line(struct events *ev, const char *p, size_t n)
{
	json_t *v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	const char *type = json_string_value(json_object_get(v, "type"));
	if (type)
		note_event(ev, v, type);
	ev->non_json += !v;
	json_decref(v);
	char *bytes = copy_bytes(p, n);
	if (bytes)
		keep(ev, bytes, n, v != NULL);
	else
		ev->total++, ev->omitted++;
}

static void end_line(struct events *ev)
{
	char *p = ev->line;
	size_t n = ev->line_len;
	if (n && p[n - 1] == '\r')
		n--;
	bool blank = true;
	for (size_t i = 0; i < n && blank; i++)
		blank = p[i] == ' ' || p[i] == '\t';
	if (ev->line_overflow) {
		char note[96];
		int len = snprintf(note, sizeof note,
				   "[spoolrun: a line of %llu bytes, over the output budget, omitted]",
				   (unsigned long long)ev->line_total);
		ev->non_json++;
		char *bytes = copy_bytes(note, (size_t)len);
		if (bytes)
			keep(ev, bytes, (size_t)len, false);
	} else if (!blank)
		take_line(ev, p, n);
	ev->line_len = 0;
	ev->line_total = 0;
	ev->line_overflow = false;
}

static void append_line(struct events *ev, const char *data, size_t n)
{
	if (n == 0)
		return; /* nothing to copy, and the buffer may not exist yet */
	ev->line_total += n;
	if (ev->line_overflow)
		return;
	/* A line must fit in the tail's half of the budget; the one document
	 * of "json" may use all of it. */
	size_t limit = ev->mode == OUTPUT_JSON ? ev->budget : ev->budget - ev->budget / 2;
	if (ev->line_len + n > limit) {
		/* Over budget: stop keeping it, only count it. */
		ev->line_overflow = true;
		ev->line_len = 0;
		return;
	}
	if (ev->line_len + n > ev->line_cap) {
		size_t cap = ev->line_cap ? ev->line_cap : 4096;
		while (cap < ev->line_len + n)
			cap *= 2;
		char *grown = realloc(ev->line, cap);
		if (!grown) {
			ev->line_overflow = true;
			return;
		}
		ev->line = grown;
		ev->line_cap = cap;
	}
	memcpy(ev->line + ev->line_len, data, n);
	ev->line_len += n;
}

void events_feed(struct events *ev, const char *data, size_t len)
{
	if (ev->mode == OUTPUT_TEXT)
		return;
	if (ev->mode == OUTPUT_JSON) {
		append_line(ev, data, len);
		return;
	}
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		append_line(ev, data, n);
		if (!nl)
			return;
		end_line(ev);
		data += n + 1;
		len -= n + 1;
	}
}

/* A kept line as it goes into the result: parsed, or as a string. */
static json_t *event_value(const struct kept_event *k)
{
	if (k->json)
		return json_loadb(k->bytes, k->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	bool repaired;
	size_t len;
	char *text = utf8_repair(k->bytes, k->len, &len, &repaired);
	json_t *v = text ? json_stringn(text, len) : json_string("");
	free(text);
	return v;
}

static const char *const summary_fields[] = {
	"result", "is_error", "subtype", "num_turns", "duration_ms", "total_cost_usd", "usage",
	"session_id",
};

/* Fields added for Claude Code 2.1, kept only with the type they are
 * documented with (a child's odd value becomes null, the schema holds). */
static void add_typed_fields(const json_t *result, json_t *s)
{
	json_t *status = json_object_get(result, "api_error_status");
	json_object_set_new(s, "api_error_status", json_is_integer(status) ? json_incref(status)
									  : json_null());
	static const char *const strings[] = { "stop_reason", "terminal_reason" };
	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(result, strings[i]);
		json_object_set_new(s, strings[i], json_is_string(v) ? json_incref(v) : json_null());
	}
}

/* The models used: the final result's modelUsage keys (the CLI's own
 * accounting, subagents included), else the assistant messages' models. */
static json_t *models_used(const struct events *ev)
{
	json_t *usage = json_object_get(ev->last_result, "modelUsage");
	if (json_is_object(usage) && json_object_size(usage)) {
		json_t *names = json_array();
		const char *k;
		json_t *v;
		json_object_foreach(usage, k, v)
			if (json_array_size(names) < 16)
				json_array_append_new(names, json_string(k));
		return names;
	}
	return ev->models ? json_copy(ev->models) : json_array();
}

/* Added to every summary, complete or not. */
static void add_claude_fields(const struct events *ev, json_t *s)
{
	json_object_set_new(s, "model", ev->init_model ? json_incref(ev->init_model) : json_null());
	json_object_set_new(s, "models", models_used(ev));
	json_object_set_new(s, "rate_limit_info",
			    ev->rate_limit_info ? json_deep_copy(ev->rate_limit_info) : json_null());
}

static json_t *summary(const struct events *ev, const char *how_it_ended)
{
	json_t *s = json_object();
	if (!ev->last_result || !json_is_object(ev->last_result)) {
		json_object_set_new(s, "complete", json_false());
		json_object_set_new(s, "reason", json_sprintf(
			"no final {\"type\":\"result\"} event: %s", how_it_ended));
		add_claude_fields(ev, s);
		return s;
	}
	json_object_set_new(s, "complete", json_true());
	for (size_t i = 0; i < sizeof summary_fields / sizeof *summary_fields; i++) {
		json_t *v = json_object_get(ev->last_result, summary_fields[i]);
		json_object_set(s, summary_fields[i], v ? v : json_null());
	}
	add_typed_fields(ev->last_result, s);
	add_claude_fields(ev, s);
	return s;
}

/* The whole of stdout as one JSON document ("output": "json"). */
static void finish_document(struct events *ev)
{
	if (ev->line_overflow) {
		snprintf(ev->error, sizeof ev->error,
			 "stdout is %llu bytes, more than max_output; not parsed",
			 (unsigned long long)ev->line_total);
		return;
	}
	json_error_t je;
	json_t *doc = json_loadb(ev->line ? ev->line : "", ev->line_len,
				 JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!doc) {
		snprintf(ev->error, sizeof ev->error,
			 "stdout is not one JSON document: line %d, column %d: %s", je.line,
			 je.column, je.text);
		return;
	}
	json_decref(doc);
	take_line(ev, ev->line ? ev->line : "", ev->line_len);
}

void events_finish(struct events *ev)
{
	if (ev->mode == OUTPUT_JSON)
		finish_document(ev);
	else if (ev->mode == OUTPUT_JSONL && (ev->line_len || ev->line_overflow))
		end_line(ev); /* a last line without a newline */
}

void events_add_to_result(const struct events *ev, json_t *result, const char *how_it_ended)
{
	if (ev->mode == OUTPUT_TEXT)
		return;
	json_t *all = json_array();
	for (size_t i = 0; i < ev->head_len; i++)
		json_array_append_new(all, event_value(&ev->head[i]));
	for (size_t i = 0; i < ev->tail_len; i++)
		json_array_append_new(all, event_value(&ev->tail[(ev->tail_start + i) % ev->tail_cap]));
	json_object_set_new(result, "output", json_string(output_mode_name(ev->mode)));
	json_object_set_new(result, "events", all);
	json_object_set_new(result, "events_total", json_integer((json_int_t)ev->total));
	json_object_set_new(result, "events_omitted", json_integer((json_int_t)ev->omitted));
	json_object_set_new(result, "non_json_lines", json_integer((json_int_t)ev->non_json));
	json_object_set_new(result, "output_error", ev->error[0] ? json_string(ev->error) : json_null());
	json_object_set_new(result, "summary", summary(ev, how_it_ended));
}
