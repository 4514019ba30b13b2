/* watch: inotify on the spool's directories, as hints.
 *
 * Events only say "look at this name in that directory"; the directory
 * listing stays the truth. An overflowed event queue asks for a full rescan
 * of everything watched. */
#ifndef SPOOLRUN_WATCH_H
#define SPOOLRUN_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#define WATCH_MAX 4

struct watch {
	int fd;   /* non-blocking, close-on-exec; poll it for POLLIN */
	int wd[WATCH_MAX];
	int n;
};

struct watch_event {
	int which;        /* index returned by watch_add */
	const char *name;
	uint32_t mask;    /* IN_MOVED_TO, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_MOVED_FROM */
};

int watch_open(struct watch *w);
void watch_close(struct watch *w);

/* Watches dir for mask (IN_* bits; the directory's own removal is always
 * watched). Add a watch before scanning its directory, so nothing that
 * arrives in between is missed. Returns the index events carry, or -1. */
int watch_add(struct watch *w, const char *dir, uint32_t mask);

/* Reads every pending event without blocking, calling on_event for each
 * named one. Sets *overflow when the kernel dropped events. Returns -1 with
 * ENOENT when a watched directory itself was removed or moved away. */
int watch_read(struct watch *w, void (*on_event)(void *ctx, const struct watch_event *ev),
	       void *ctx, bool *overflow);

#endif
