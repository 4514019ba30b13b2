/* watch: inotify on incoming/, as hints.
 *
 * Events only say "look at this name"; the directory listing stays the
 * truth. An overflowed event queue asks for a full rescan. */
#ifndef SPOOLRUN_WATCH_H
#define SPOOLRUN_WATCH_H

#include <stdbool.h>

struct watch {
	int fd;   /* non-blocking, close-on-exec; poll it for POLLIN */
	int wd;
};

/* Watches dir for files renamed in (IN_MOVED_TO) or written and closed
 * there (IN_CLOSE_WRITE). Add the watch before scanning the directory, so
 * nothing that arrives in between is missed. */
int watch_open(struct watch *w, const char *dir);
void watch_close(struct watch *w);

/* Reads every pending event without blocking, calling on_name for each
 * name. Sets *overflow when the kernel dropped events. Returns -1 with
 * ENOENT when the directory itself was removed or moved away. */
int watch_read(struct watch *w, void (*on_name)(void *ctx, const char *name), void *ctx,
	       bool *overflow);

#endif
