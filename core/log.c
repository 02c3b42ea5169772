/*
 * log.c - one line per event, to stderr, syslog or a file.
 *
 * A line is formatted completely into a stack buffer and handed to the
 * kernel with a single write(2) (or syslog(3)), so threads (SMTP workers)
 * may log without a lock and lines never interleave. The file descriptor is
 * swapped atomically on reopen, which is what SIGHUP does after logrotate.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"

#define LOG_LINE_MAX 2048 /* longer lines are cut, never split */

static void log_vemit(enum log_level, bool, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static atomic_int log_fd = 2;
static atomic_int log_level = LOG_LVL_INFO;
static atomic_uint log_trace_bits;
static bool log_syslog;
static char *log_path;

static const char *const log_level_names[] = {
    [LOG_LVL_ERROR] = "error",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_DEBUG] = "debug",
};

static const struct {
	const char *name;
	unsigned bit;
} log_trace_names[] = {
    {"store", TRACE_STORE},
    {"dispatch", TRACE_DISPATCH},
    {"http", TRACE_HTTP},
    {"smtp", TRACE_SMTP},
    {"adapter", TRACE_ADAPTER},
};

int
log_open(const char *target, enum log_level level, const char *ident)
{
	int fd;

	log_set_level(level);
	log_close();
	if (target == NULL || strcmp(target, "stderr") == 0)
		return 0;
	if (strcmp(target, "syslog") == 0) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog = true;
		return 0;
	}
	fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	log_path = strdup(target);
	atomic_store(&log_fd, fd);
	return 0;
}

void
log_reopen(void)
{
	int fd, old;

	if (log_path == NULL)
		return;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		log_warn("log_reopen path=%s", log_path);
		return;
	}
	old = atomic_exchange(&log_fd, fd);
	if (old > 2)
		close(old);
}

void
log_close(void)
{
	int old;

	if (log_syslog) {
		closelog();
		log_syslog = false;
	}
	old = atomic_exchange(&log_fd, 2);
	if (old > 2)
		close(old);
	free(log_path);
	log_path = NULL;
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

int
log_level_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++)
		if (strcmp(name, log_level_names[i]) == 0)
			return (int)i;
	return -1;
}

int
log_trace_parse(const char *list, unsigned *bits, char *err, size_t errlen)
{
	char word[32];
	const char *p = list, *end;
	size_t i, n;

	*bits = 0;
	while (*p != '\0') {
		end = strchr(p, ',');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n >= sizeof(word))
			n = sizeof(word) - 1;
		memcpy(word, p, n);
		word[n] = '\0';
		if (strcmp(word, "all") == 0)
			*bits = ~0u;
		else {
			for (i = 0; i <
			     sizeof(log_trace_names) / sizeof(*log_trace_names);
			     i++)
				if (strcmp(word, log_trace_names[i].name) == 0)
					break;
			if (i ==
			    sizeof(log_trace_names) /
				sizeof(*log_trace_names)) {
				snprintf(err, errlen,
				    "unknown trace subsystem '%s' (known: "
				    "store, dispatch, http, smtp, adapter, all)",
				    word);
				return -1;
			}
			*bits |= log_trace_names[i].bit;
		}
		p = end ? end + 1 : p + strlen(p);
	}
	return 0;
}

void
log_set_trace(unsigned bits)
{
	atomic_store(&log_trace_bits, bits);
}

bool
log_has_trace(unsigned bit)
{
	return (atomic_load(&log_trace_bits) & bit) != 0;
}

/*
 * Formats one line and writes it with one call. 'with_errno' appends the
 * text of the errno saved on entry. A line longer than LOG_LINE_MAX is cut
 * and ends in "...".
 */
static void
log_vemit(enum log_level level, bool with_errno, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	int saved = errno, n = 0, m;
	size_t len;

	if (!log_syslog) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s ",
		    ts.tv_nsec / 1000000, log_level_names[level]);
	}
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		m = 0;
	len = (size_t)n + (size_t)m;
	if (with_errno && len < sizeof(line))
		len += (size_t)snprintf(line + len, sizeof(line) - len, ": %s",
		    strerror(saved));
	if (len >= sizeof(line) - 1) {
		len = sizeof(line) - 2;
		memcpy(line + len - 3, "...", 3);
	}
	if (log_syslog) {
		line[len] = '\0';
		syslog(prio[level], "%s", line);
	} else {
		line[len++] = '\n';
		(void)!write(atomic_load(&log_fd), line, len);
	}
	errno = saved;
}

#define LOG_DEFINE(fn, lvl, with_errno)                   \
	void fn(const char *fmt, ...)                     \
	{                                                 \
		va_list ap;                               \
		if ((int)(lvl) > atomic_load(&log_level)) \
			return;                           \
		va_start(ap, fmt);                        \
		log_vemit((lvl), (with_errno), fmt, ap);  \
		va_end(ap);                               \
	}

LOG_DEFINE(log_error, LOG_LVL_ERROR, false)
LOG_DEFINE(log_warn, LOG_LVL_WARN, true)
LOG_DEFINE(log_warnx, LOG_LVL_WARN, false)
LOG_DEFINE(log_info, LOG_LVL_INFO, false)
LOG_DEFINE(log_debug, LOG_LVL_DEBUG, false)

void
log_trace(unsigned bit, const char *fmt, ...)
{
	va_list ap;

	if (!log_has_trace(bit))
		return;
	va_start(ap, fmt);
	log_vemit(LOG_LVL_DEBUG, false, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, true, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, false, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *
log_mask_phone(const char *phone, char *buf, size_t len)
{
	size_t n = strlen(phone), i, keep_head, keep_tail = 4;

	/* Keep "+" and the country digit(s) we can guess cheaply, and the
	 * last four digits; everything in between becomes '*'. */
	keep_head = (phone[0] == '+') ? 2 : 0;
	if (n <= keep_head + keep_tail) {
		snprintf(buf, len, "%.*s***", (int)(n > 2 ? 2 : n), phone);
		return buf;
	}
	if (len == 0)
		return buf;
	for (i = 0; i < n && i < len - 1; i++)
		buf[i] = (i < keep_head || i >= n - keep_tail) ? phone[i] : '*';
	buf[i] = '\0';
	return buf;
}

const char *
log_mask_email(const char *addr, char *buf, size_t len)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || at == addr)
		snprintf(buf, len, "***");
	else
		snprintf(buf, len, "%c***%s", addr[0], at);
	return buf;
}

const char *
log_mask_addr(const char *addr, char *buf, size_t len)
{
	if (strchr(addr, '@') != NULL)
		return log_mask_email(addr, buf, len);
	return log_mask_phone(addr, buf, len);
}
