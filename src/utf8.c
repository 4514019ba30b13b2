#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed sequence at s (1..4), or 0 if the bytes there do
 * not start one (within avail bytes). Table 3-7 of the Unicode standard. */
static size_t sequence_length(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < need)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return need;
}

char *utf8_repair(const char *in, size_t len, size_t *outlen, bool *repaired)
{
	const unsigned char *s = (const unsigned char *)in;
	*repaired = false;
	/* Worst case every byte becomes three. */
	char *out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = sequence_length(s + i, len - i);
		if (n == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			*repaired = true;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

size_t utf8_trim_incomplete_tail(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	/* Look back at most 3 bytes for the lead byte of the last sequence;
	 * if that sequence needs more bytes than remain, the cut went through
	 * it and it belongs to the omitted part. */
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = s[len - back];
		if ((c & 0xC0) == 0x80)
			continue;
		size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		return want > back ? len - back : len;
	}
	return len;
}

size_t utf8_skip_partial_head(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;
	while (i < 3 && i < len && (s[i] & 0xC0) == 0x80)
		i++;
	return i;
}
