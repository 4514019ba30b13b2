#include "grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

void *grow(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return v;
	size_t n = *cap ? *cap : first ? first : 1;
	while (n < need) {
		if (n > SIZE_MAX / 2) {
			errno = ENOMEM;
			return NULL;
		}
		n *= 2;
	}
	if (elem && n > SIZE_MAX / elem) {
		errno = ENOMEM;
		return NULL;
	}
	void *grown = realloc(v, n * elem);
	if (!grown) {
		errno = ENOMEM;
		return NULL;
	}
	*cap = n;
	return grown;
}
