/*
 * log.c -- the single sink for log lines: syslog or stderr.
 *
 * Before log_init() runs, lines go to stderr so that early errors (a bad
 * command line, an unreadable config file) are never lost.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static struct {
	const char *ident;
	bool to_stderr;
	enum log_level level;
} log_state = { "syncrelay", true, LOG_LEVEL_INFO };

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *name;
	int code;
} log_facilities[] = {
	{ "daemon", LOG_DAEMON }, { "mail", LOG_MAIL }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static const char *const log_level_names[] = { "error", "warning", "info",
	"debug" };

void
log_init(const char *ident, int facility, bool to_stderr)
{
	log_state.ident = ident;
	log_state.to_stderr = to_stderr;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(enum log_level level)
{
	log_state.level = level;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_state.level;
}

int
log_facility_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (strcasecmp(name, log_facilities[i].name) == 0)
			return log_facilities[i].code;
	return -1;
}

static void log_vemit(enum log_level level, const char *errtext,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
log_vemit(enum log_level level, const char *errtext, const char *fmt,
    va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	int n;

	if (!log_enabled(level))
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if (errtext != NULL && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", errtext);
	if (log_state.to_stderr) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s\n", stamp,
		    ts.tv_nsec / 1000000, log_state.ident, (long)getpid(),
		    log_level_names[level], line);
		pthread_mutex_unlock(&log_lock);
	} else {
		syslog(prio[level], "%s", line);
	}
}

#define LOG_FN(name, level, with_errno)                                  \
	void name(const char *fmt, ...)                                  \
	{                                                                \
		const char *et = (with_errno) ? strerror(errno) : NULL;  \
		va_list ap;                                              \
		va_start(ap, fmt);                                       \
		log_vemit(level, et, fmt, ap);                           \
		va_end(ap);                                              \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_error, LOG_LEVEL_ERR, 0)

void
fatal(const char *fmt, ...)
{
	const char *et = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERR, et, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
