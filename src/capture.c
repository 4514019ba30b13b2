#include "capture.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void capture_init(struct capture *c, size_t limit)
{
	memset(c, 0, sizeof *c);
	c->head_max = limit / 2;
	c->tail_max = limit - c->head_max;
}

void capture_clear(struct capture *c)
{
	free(c->head);
	free(c->tail);
	memset(c, 0, sizeof *c);
}

static int grow(char **buf, size_t *cap, size_t need, size_t max)
{
	if (need <= *cap)
		return 0;
	size_t want = *cap ? *cap : 4096;
	while (want < need)
		want *= 2;
	if (want > max)
		want = max;
	char *p = realloc(*buf, want);
	if (!p)
		return -1;
	*buf = p;
	*cap = want;
	return 0;
}

static int append_tail(struct capture *c, const char *data, size_t len)
{
	if (c->tail_max == 0 || len == 0)
		return 0;
	if (len >= c->tail_max) {
		/* Only the last tail_max bytes can survive. */
		if (grow(&c->tail, &c->tail_cap, c->tail_max, c->tail_max) < 0)
			return -1;
		memcpy(c->tail, data + len - c->tail_max, c->tail_max);
		c->tail_start = 0;
		c->tail_len = c->tail_max;
		return 0;
	}
	if (c->tail_len + len <= c->tail_max && c->tail_start == 0) {
		/* Still linear: grow as needed, no wrap yet. */
		if (grow(&c->tail, &c->tail_cap, c->tail_len + len, c->tail_max) < 0)
			return -1;
		memcpy(c->tail + c->tail_len, data, len);
		c->tail_len += len;
		return 0;
	}
	if (grow(&c->tail, &c->tail_cap, c->tail_max, c->tail_max) < 0)
		return -1;
	/* Ring: write at the end position, overwrite the oldest bytes. */
	for (size_t done = 0; done < len;) {
		size_t end = (c->tail_start + c->tail_len) % c->tail_max;
		size_t room = c->tail_max - end;
		size_t n = len - done < room ? len - done : room;
		memcpy(c->tail + end, data + done, n);
		done += n;
		size_t grown = c->tail_len + n;
		if (grown > c->tail_max) {
			c->tail_start = (c->tail_start + grown - c->tail_max) % c->tail_max;
			c->tail_len = c->tail_max;
		} else
			c->tail_len = grown;
	}
	return 0;
}

int capture_append(struct capture *c, const char *data, size_t len)
{
	if (len == 0)
		return 0; /* nothing to copy, and the buffers may not exist yet */
	c->total += len;
	size_t to_head = 0;
	if (c->head_len < c->head_max) {
		to_head = c->head_max - c->head_len;
		if (to_head > len)
			to_head = len;
		if (grow(&c->head, &c->head_cap, c->head_len + to_head, c->head_max) < 0)
			return -1;
		memcpy(c->head + c->head_len, data, to_head);
		c->head_len += to_head;
	}
	return append_tail(c, data + to_head, len - to_head);
}

bool capture_truncated(const struct capture *c)
{
	return c->total > c->head_len + c->tail_len;
}

char *capture_render(const struct capture *c, size_t *len)
{
	char marker[96] = "";
	size_t head_len = c->head_len, tail_skip = 0;
	size_t tail_len = c->tail_len;
	/* Linearise the ring into a scratch buffer first. */
	char *tail = malloc(tail_len + 1);
	if (!tail)
		return NULL;
	if (tail_len) {
		size_t first = c->tail_max - c->tail_start;
		if (first > tail_len)
			first = tail_len;
		memcpy(tail, c->tail + c->tail_start, first);
		memcpy(tail + first, c->tail, tail_len - first);
	}
	if (capture_truncated(c)) {
		head_len = utf8_trim_incomplete_tail(c->head, c->head_len);
		tail_skip = utf8_skip_partial_head(tail, tail_len);
		uint64_t omitted = c->total - head_len - (tail_len - tail_skip);
		snprintf(marker, sizeof marker,
			 "\n[... spoolrun: %" PRIu64 " bytes omitted ...]\n", omitted);
	}
	size_t marker_len = strlen(marker);
	size_t total = head_len + marker_len + tail_len - tail_skip;
	char *out = malloc(total + 1);
	if (!out) {
		free(tail);
		return NULL;
	}
	if (head_len)
		memcpy(out, c->head, head_len);
	memcpy(out + head_len, marker, marker_len);
	if (tail_len - tail_skip)
		memcpy(out + head_len + marker_len, tail + tail_skip, tail_len - tail_skip);
	out[total] = '\0';
	free(tail);
	*len = total;
	return out;
}
