/* log: leveled messages to stderr, one line each, with a UTC timestamp.
 *
 * log_warn() and log_err() append ": strerror(errno)"; the x-variants do not
 * (OpenSMTPD's convention). All of them preserve errno, so a caller can log
 * and then still return or inspect the error.
 *
 * When stderr is the journal (JOURNAL_STREAM names stderr's device and
 * inode, as systemd sets it), each line starts with its syslog priority,
 * "<3>" error, "<4>" warn, "<6>" info, "<7>" debug, instead of a time. */
#ifndef SPOOLRUN_LOG_H
#define SPOOLRUN_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* The threshold is the only state of this module; messages above it are
 * dropped. Default: LOG_INFO. */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *name, enum log_level *out);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
