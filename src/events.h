/* events: a task's stdout read as JSON as it streams ("output": "jsonl" or
 * "json"), for tools such as `claude -p --output-format stream-json`.
 *
 * jsonl: every line is parsed on its own as it completes; a line that is
 * not JSON is kept as a string and counted. Lines have no length limit,
 * but memory does: like the text capture, the events kept are the first
 * and the last ones within the configured budget, with a count of those
 * dropped between them, and a line longer than the budget is kept as a
 * string saying how long it was. Kept events are held as their bytes, not
 * as parsed values (several times larger), and parsed again for the
 * result. The last {"type":"result"} event is kept whatever the budget,
 * for the summary, and so is what Claude Code says of limits and models
 * (rate_limit_event, the init event's model, assistant messages' models),
 * read as each line streams in. json: stdout is one document. */
#ifndef SPOOLRUN_EVENTS_H
#define SPOOLRUN_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apilimit.h"

enum output_mode { OUTPUT_TEXT, OUTPUT_JSONL, OUTPUT_JSON };

struct events {
	enum output_mode mode;
	size_t budget;          /* bytes of events kept, head and tail halves */
	struct kept_event {     /* a line as it came, and whether it parsed */
		char *bytes;
		size_t len;
		bool json;
	} *head, *tail;         /* the first events; the last, a ring from tail_start */
	size_t head_len, head_cap, head_bytes;
	size_t tail_start, tail_len, tail_cap, tail_bytes;
	uint64_t total;         /* events seen (lines, for jsonl) */
	uint64_t omitted;       /* dropped from between head and tail */
	uint64_t non_json;      /* lines that were not JSON */
	json_t *last_result;    /* the last {"type":"result"} event */
	struct api_limit limit; /* the limit Claude Code's events reported (apilimit.h) */
	json_t *rate_limit_info; /* the last rate_limit_event's rate_limit_info */
	json_t *init_model;     /* the model a {"type":"system","subtype":"init"} names */
	json_t *models;         /* distinct models of assistant messages (at most 16) */
	char *line;             /* the line being assembled (or the document, for json) */
	size_t line_len, line_cap;
	uint64_t line_total;    /* bytes of the current line, kept or not */
	bool line_overflow;     /* the current line outgrew the budget */
	char error[256];        /* json: why stdout was not one document */
};

/* Parses "text", "jsonl" or "json"; -1 for anything else. */
int output_mode_parse(const char *s, enum output_mode *out);
const char *output_mode_name(enum output_mode m);

void events_init(struct events *ev, enum output_mode mode, size_t budget);
void events_clear(struct events *ev);

/* Feeds bytes of stdout as they arrive. */
void events_feed(struct events *ev, const char *data, size_t len);

/* At EOF: takes a last line without a newline (jsonl) or parses the
 * document (json). */
void events_finish(struct events *ev);

/* Adds "output", "events", "events_total", "events_omitted",
 * "non_json_lines", "output_error" and "summary" (the result event's
 * fields, with api_error_status, stop_reason, terminal_reason, model,
 * models and rate_limit_info) to result (nothing for
 * text). how_it_ended says why a run without a final result event stopped
 * (e.g. "it timed out"). */
void events_add_to_result(const struct events *ev, json_t *result, const char *how_it_ended);

#endif
