#include "watch.h"

#include <errno.h>
#include <stdalign.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "fsutil.h"

int watch_open(struct watch *w)
{
	w->n = 0;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return w->fd < 0 ? -1 : 0;
}

void watch_close(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

int watch_add(struct watch *w, const char *dir, uint32_t mask)
{
	if (w->n == WATCH_MAX) {
		errno = ENOSPC;
		return -1;
	}
	int wd = inotify_add_watch(w->fd, dir, mask | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
	if (wd < 0)
		return -1;
	w->wd[w->n] = wd;
	return w->n++;
}

static int index_of(const struct watch *w, int wd)
{
	for (int i = 0; i < w->n; i++)
		if (w->wd[i] == wd)
			return i;
	return -1;
}

int watch_read(struct watch *w, void (*on_event)(void *ctx, const struct watch_event *ev),
	       void *ctx, bool *overflow)
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
			int which = index_of(w, ev->wd);
			if (ev->len && which >= 0)
				on_event(ctx, &(struct watch_event){ which, ev->name, ev->mask });
		}
	}
}
