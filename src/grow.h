/* grow: room in a dynamic array; the one way this program's arrays grow
 * (git's ALLOC_GROW does the same). */
#ifndef SPOOLRUN_GROW_H
#define SPOOLRUN_GROW_H

#include <stddef.h>

/* v (holding *cap elements of size elem) with room for at least need:
 * v itself when it has room, else v reallocated to a capacity doubled from
 * first until it fits, *cap updated. NULL with errno ENOMEM, v and *cap
 * untouched, when memory or size_t runs out. */
void *grow(void *v, size_t *cap, size_t need, size_t elem, size_t first);

#endif
