/* utf8: make arbitrary bytes safe to put in a JSON string.
 *
 * Tasks write whatever they like; a result must still be valid JSON, and
 * jansson refuses strings that are not valid UTF-8. */
#ifndef SPOOLRUN_UTF8_H
#define SPOOLRUN_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Returns a malloc'ed copy of in[0..len) in which every byte that is not part
 * of a well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) is replaced by U+FFFD. *outlen gets the length;
 * *repaired says whether anything was replaced. NULL on allocation failure. */
char *utf8_repair(const char *in, size_t len, size_t *outlen, bool *repaired);

/* Length of buf without a trailing sequence that was cut short, so text cut
 * at an arbitrary byte does not end in a spurious replacement character. */
size_t utf8_trim_incomplete_tail(const char *buf, size_t len);

/* Number of leading continuation bytes (at most 3) to skip so that text cut
 * at an arbitrary byte starts at a character boundary. */
size_t utf8_skip_partial_head(const char *buf, size_t len);

#endif
