/* arrival: when a file that appeared in incoming/ is whole.
 *
 * A rename (IN_MOVED_TO) or the close of a writer (IN_CLOSE_WRITE) says so
 * by itself. Other ways a regular file appears give no such event:
 *   - O_TMPFILE + linkat: the file is linked in whole, and its writer's
 *     close is reported under no name in incoming/;
 *   - ln elsewhere/x incoming/x, then rm elsewhere/x: two links for a
 *     moment, then one, and no event in incoming/ when the count drops;
 *   - `spoolrun submit`'s fallback where RENAME_NOREPLACE is unsupported
 *     (NFS): link into incoming/, then unlink the temporary name.
 * So a name created in incoming/ (IN_CREATE) that is a regular file is
 * kept here and looked at again on a short back-off (10 ms doubling to
 * 500 ms) until it is whole: one link, and nobody has it open for writing.
 * Whether anyone writes it is asked of the kernel with a read lease
 * (F_SETLEASE fails with EAGAIN while a writer has it open); where the
 * runner may not take a lease (another user's file, without CAP_LEASE),
 * a file unchanged (size, mtime, ctime) for ARRIVAL_QUIET_MS counts as
 * whole. A file that keeps two or more links for ARRIVAL_LINK_GRACE_MS is
 * let through, to be rejected for its links as before.
 *
 * Pure bookkeeping plus fstatat/open/fcntl; the caller owns the loop:
 * arrival_note() on IN_CREATE, arrival_timeout_ms() for its poll,
 * arrival_poll() after each wake-up. */
#ifndef SPOOLRUN_ARRIVAL_H
#define SPOOLRUN_ARRIVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define ARRIVAL_QUIET_MS 2000
#define ARRIVAL_LINK_GRACE_MS 5000

enum arrival_state {
	ARRIVAL_WHOLE,   /* take it now (also: not a regular file: rejected at its turn) */
	ARRIVAL_WAIT,    /* look again later */
	ARRIVAL_GONE,    /* no longer there (claimed, removed, renamed away) */
};

struct arrival_entry {
	char *name;
	int64_t first_ms, next_ms; /* monotonic */
	int delay_ms;
	struct stat last;          /* for the quiet-period fallback */
	int64_t quiet_since_ms;
};

struct arrivals {
	struct arrival_entry *v;
	size_t len, cap;
};

/* The decision for dirfd/name now. first_ms: when it was first seen;
 * *quiet_since_ms / *last track how long it has been unchanged. Exposed
 * for the unit tests. */
enum arrival_state arrival_check(int dirfd, const char *name, int64_t now_ms, int64_t first_ms,
				 struct stat *last, int64_t *quiet_since_ms);

/* Remembers name (created in incoming/ just now). -1 with ENOMEM. */
int arrival_note(struct arrivals *a, const char *name, int64_t now_ms);

/* ms until the next look (for poll), -1 when nothing is kept. */
int arrival_timeout_ms(const struct arrivals *a, int64_t now_ms);

/* Looks at every entry that is due: a whole one goes to take(ctx, name)
 * and is forgotten, a gone one is forgotten. */
void arrival_poll(struct arrivals *a, int dirfd, int64_t now_ms,
		  void (*take)(void *ctx, const char *name), void *ctx);

size_t arrival_count(const struct arrivals *a);
void arrival_clear(struct arrivals *a);

#endif
