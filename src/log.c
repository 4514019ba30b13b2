#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "timeutil.h"

static enum log_level threshold = LOG_INFO;

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
	char stamp[40], msg[2048];
	time_format_rfc3339(time_realtime_ms(), stamp, sizeof stamp);
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno)
		fprintf(stderr, "%s spoolrun[%s]: %s: %s\n", stamp, level_names[level],
			msg, strerror(saved));
	else
		fprintf(stderr, "%s spoolrun[%s]: %s\n", stamp, level_names[level], msg);
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
