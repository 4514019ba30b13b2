#include "watch.h"

#include <errno.h>
#include <stdalign.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "fsutil.h"

int watch_open(struct watch *w, const char *dir)
{
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		return -1;
	w->wd = inotify_add_watch(w->fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF |
						      IN_MOVE_SELF | IN_ONLYDIR);
	if (w->wd < 0) {
		int saved = errno;
		close(w->fd);
		w->fd = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

void watch_close(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

int watch_read(struct watch *w, void (*on_name)(void *ctx, const char *name), void *ctx,
	       bool *overflow)
{
	alignas(struct inotify_event) char buf[64 * 1024];
	for (;;) {
		ssize_t n = xread(w->fd, buf, sizeof buf);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				*overflow = true;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
				errno = ENOENT;
				return -1;
			}
			if (ev->len && (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)))
				on_name(ctx, ev->name);
		}
	}
}
