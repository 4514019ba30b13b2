#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "timeutil.h"

static enum log_level threshold = LOG_INFO;

/* -1 not checked yet, 0 plain stderr, 1 stderr is the journal's stream. */
static int to_journal = -1;

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connects
 * stderr to; it only counts when stderr still is that stream (a redirect
 * in between keeps the variable but not the journal). */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* syslog priorities of error, warn, info, debug: sd-daemon(3)'s <N>. */
static const char *const journal_prefix[] = { "<3>", "<4>", "<6>", "<7>" };

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	threshold = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* One fprintf per line so concurrent writers to the same stderr do not
 * interleave within a line. */
static void emit(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	if (level > threshold) {
		errno = saved;
		return;
	}
	char stamp[48], msg[2048];
	if (to_journal < 0)
		to_journal = stderr_is_journal();
	/* The journal stamps each line itself and reads its priority from the
	 * <N> prefix; a terminal or file gets a UTC time instead. */
	if (to_journal)
		snprintf(stamp, sizeof stamp, "%s", journal_prefix[level]);
	else
		time_format_rfc3339(time_realtime_ms(), stamp, sizeof stamp);
	vsnprintf(msg, sizeof msg, fmt, ap);
	const char *sep = to_journal ? "" : " ";
	if (with_errno)
		fprintf(stderr, "%s%sspoolrun[%s]: %s: %s\n", stamp, sep, level_names[level],
			msg, strerror(saved));
	else
		fprintf(stderr, "%s%sspoolrun[%s]: %s\n", stamp, sep, level_names[level], msg);
	errno = saved;
}

#define DEFINE_LOG(fn, level, with_errno)        \
	void fn(const char *fmt, ...)            \
	{                                        \
		va_list ap;                      \
		va_start(ap, fmt);               \
		emit(level, with_errno, fmt, ap); \
		va_end(ap);                      \
	}

DEFINE_LOG(log_err, LOG_ERROR, 1)
DEFINE_LOG(log_errx, LOG_ERROR, 0)
DEFINE_LOG(log_warn, LOG_WARN, 1)
DEFINE_LOG(log_warnx, LOG_WARN, 0)
DEFINE_LOG(log_info, LOG_INFO, 0)
DEFINE_LOG(log_debug, LOG_DEBUG, 0)
