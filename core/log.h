/*
 * log.h - leveled, one-line-per-event logging (OpenSMTPD's API).
 *
 * Contract:
 *  - Each call produces exactly one line, formatted into a local buffer and
 *    written with one write(2) or syslog(3) call, so it is thread-safe.
 *  - Lines read "TIME LEVEL event key=value ...": the format string should
 *    start with an event name followed by key=value fields.
 *  - Never pass message bodies or secrets; mask numbers and addresses with
 *    log_mask_phone() / log_mask_email() / log_mask_addr().
 *  - log_warn() appends ": strerror(errno)"; log_warnx() does not.
 *  - fatal()/fatalx() log and exit(1); use them only before the loop runs
 *    or for broken invariants.
 */
#ifndef OD_LOG_H
#define OD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Trace bits, switched on per subsystem with -T store,dispatch,... */
#define TRACE_STORE    0x01u
#define TRACE_DISPATCH 0x02u
#define TRACE_HTTP     0x04u
#define TRACE_SMTP     0x08u
#define TRACE_ADAPTER  0x10u

/*
 * Sends log lines to 'target': "stderr", "syslog", or a file path (opened
 * for append, created 0640). Returns 0, or -1 with errno set when the file
 * cannot be opened (logging then stays on stderr).
 */
int log_open(const char *target, enum log_level level, const char *ident);
/* Reopens the log file (after rotation; SIGHUP). No-op for stderr/syslog. */
void log_reopen(void);
/* Closes the log file, if any, and returns to stderr. */
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; -1 if unknown. */
int log_level_parse(const char *name);
/*
 * Parses a comma-separated trace list ("store,http", "all") into *bits.
 * Returns 0, or -1 with the unknown word in err.
 */
int log_trace_parse(const char *list, unsigned *bits, char *err, size_t errlen);
void log_set_trace(unsigned bits);
bool log_has_trace(unsigned bit);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_trace(unsigned bit, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

/*
 * Masks a phone number for logs: "+15551234567" -> "+1******4567".
 * Writes into buf (size len) and returns buf.
 */
const char *log_mask_phone(const char *phone, char *buf, size_t len);
/* Masks an email address: "jane@example.org" -> "j***@example.org". */
const char *log_mask_email(const char *addr, char *buf, size_t len);
/* Masks either kind: an address with '@' as email, otherwise as phone. */
const char *log_mask_addr(const char *addr, char *buf, size_t len);

#endif
