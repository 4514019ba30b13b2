#define _GNU_SOURCE
#include "arrival.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grow.h"

#define FIRST_DELAY_MS 10
#define MAX_DELAY_MS 500

/* 1: someone has it open for writing; 0: nobody; -1: cannot tell. */
static int open_for_writing(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	int rc = 0;
	if (fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
		rc = errno == EAGAIN ? 1 : -1;
	else
		fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
	return rc;
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

enum arrival_state arrival_check(int dirfd, const char *name, int64_t now_ms, int64_t first_ms,
				 struct stat *last, int64_t *quiet_since_ms)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? ARRIVAL_GONE : ARRIVAL_WHOLE;
	if (!S_ISREG(st.st_mode))
		return ARRIVAL_WHOLE; /* a link, FIFO, directory: rejected at its turn */
	if (st.st_nlink > 1)
		return now_ms - first_ms >= ARRIVAL_LINK_GRACE_MS ? ARRIVAL_WHOLE : ARRIVAL_WAIT;
	int writing = open_for_writing(dirfd, name);
	if (writing >= 0)
		return writing ? ARRIVAL_WAIT : ARRIVAL_WHOLE;
	/* No lease for us: whole once it has stopped changing for a while. */
	if (!same_file_state(&st, last)) {
		*last = st;
		*quiet_since_ms = now_ms;
	}
	return now_ms - *quiet_since_ms >= ARRIVAL_QUIET_MS ? ARRIVAL_WHOLE : ARRIVAL_WAIT;
}

int arrival_note(struct arrivals *a, const char *name, int64_t now_ms)
{
	/* No search for an earlier entry of the name: a second one is only a
	 * second look (the queue takes a name once), and noting stays O(1). */
	struct arrival_entry *v = grow(a->v, &a->cap, a->len + 1, sizeof *v, 8);
	if (!v)
		return -1;
	a->v = v;
	struct arrival_entry *e = &a->v[a->len];
	memset(e, 0, sizeof *e);
	if (!(e->name = strdup(name)))
		return -1;
	e->first_ms = e->quiet_since_ms = now_ms;
	e->next_ms = now_ms; /* the first look is at once */
	e->delay_ms = FIRST_DELAY_MS;
	a->len++;
	return 0;
}

int arrival_timeout_ms(const struct arrivals *a, int64_t now_ms)
{
	if (!a->len)
		return -1;
	int64_t next = a->v[0].next_ms;
	for (size_t i = 1; i < a->len; i++)
		if (a->v[i].next_ms < next)
			next = a->v[i].next_ms;
	return next <= now_ms ? 0 : (int)(next - now_ms);
}

static void forget(struct arrivals *a, size_t i)
{
	free(a->v[i].name);
	a->v[i] = a->v[--a->len];
}

void arrival_poll(struct arrivals *a, int dirfd, int64_t now_ms,
		  void (*take)(void *ctx, const char *name), void *ctx)
{
	for (size_t i = 0; i < a->len;) {
		struct arrival_entry *e = &a->v[i];
		if (e->next_ms > now_ms) {
			i++;
			continue;
		}
		enum arrival_state s = arrival_check(dirfd, e->name, now_ms, e->first_ms, &e->last,
						     &e->quiet_since_ms);
		if (s == ARRIVAL_WAIT) {
			e->next_ms = now_ms + e->delay_ms;
			e->delay_ms = e->delay_ms * 2 > MAX_DELAY_MS ? MAX_DELAY_MS : e->delay_ms * 2;
			i++;
			continue;
		}
		if (s == ARRIVAL_WHOLE)
			take(ctx, e->name);
		forget(a, i); /* the last entry moved into i: look at it next */
	}
}

size_t arrival_count(const struct arrivals *a)
{
	return a->len;
}

void arrival_clear(struct arrivals *a)
{
	while (a->len)
		forget(a, a->len - 1);
	free(a->v);
	memset(a, 0, sizeof *a);
}
