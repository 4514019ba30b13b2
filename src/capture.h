/* capture: the inline copy of one output stream, bounded in memory.
 *
 * Keeps the first half and the last half of the configured limit, so a
 * result shows how a task started and how it ended (the last lines of a
 * failure, the final event of a JSON stream) however much it wrote. Memory
 * grows with what was written, up to the limit, and never past it. */
#ifndef SPOOLRUN_CAPTURE_H
#define SPOOLRUN_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct capture {
	size_t head_max, tail_max;
	char *head;
	size_t head_len, head_cap;
	char *tail; /* ring buffer once full, linear before */
	size_t tail_start, tail_len, tail_cap;
	uint64_t total;
};

/* limit: inline bytes kept in all (head + tail). */
void capture_init(struct capture *c, size_t limit);
void capture_clear(struct capture *c);

/* Appends bytes. -1 (ENOMEM) only if a buffer could not grow; what was kept
 * so far stays valid. */
int capture_append(struct capture *c, const char *data, size_t len);

/* True when more was written than the limit keeps. */
bool capture_truncated(const struct capture *c);

/* Renders the kept bytes into a malloc'ed buffer: everything when it fits,
 * otherwise head, a marker line naming the omitted byte count, and tail, cut
 * at UTF-8 character boundaries. The bytes are raw (not yet repaired). */
char *capture_render(const struct capture *c, size_t *len);

#endif
