/*
 * log.h -- logging to syslog, or to stderr in the foreground.
 *
 * Every line carries its context as key=value fields written by the
 * caller ("store=s17 replica=r1 lsn=4711 ...").  log_warn() appends the
 * current errno's text; fatal()/fatalx() log and exit(1).  This is the
 * only place in syncrelay that calls syslog(3).
 */
#ifndef SR_LOG_H
#define SR_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/*
 * Starts logging as ident.  to_stderr: write lines to stderr instead of
 * syslog; facility: a syslog facility code (LOG_DAEMON, LOG_LOCAL6, ...).
 */
void log_init(const char *ident, int facility, bool to_stderr);
/* Sets the most verbose level that is emitted (default INFO). */
void log_set_level(enum log_level level);
/* Returns the syslog facility code for a name ("local6"), or -1. */
int log_facility_from_name(const char *name);
/* Returns true when lines at level would be emitted. */
bool log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning with ": <strerror(errno)>" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning without errno. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error without errno. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs with errno text and exits 1. */
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* Logs and exits 1. */
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
