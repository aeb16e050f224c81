/* Logs: one line per event, key=value fields, to stderr (the journal under
 * systemd).  Values that come from the network go through log_quote so a
 * client can never forge a line or a field.  Writing never blocks the event
 * loop: when stderr is a pipe that is full, lines wait in a bounded buffer
 * and are dropped (and counted) past it. */
#ifndef RAWMAIL_UTIL_LOG_H
#define RAWMAIL_UTIL_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* proc names the process ("serve", "smtp", "store"); lines below min are
 * skipped.  Safe to call again (after fork, on reload). */
void log_init(const char *proc, enum log_level min);
/* Makes stderr non-blocking if it is a pipe or socket (serve only). */
void log_set_nonblocking(void);
/* fmt gives the fields after "level=... event=": e.g.
 * log_event(LOG_INFO, "accept", "session=%s ip=%s", id, ip). */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Escapes src[0..len) for a log value: printable ASCII without spaces,
 * quotes or backslashes is copied as is; anything else makes it a quoted
 * string escaped by text_escape (util/text.h: \" \\, \xNN for C0, DEL,
 * raw C1 and broken UTF-8, \u00NN for C1 in UTF-8; valid UTF-8 kept).
 * Truncates to fit dst (with "...").  Returns dst. */
const char *log_quote(char *dst, size_t dstlen, const char *src, size_t len);
/* Writes what is still buffered (blocking); called before exit. */
void log_flush(void);
/* Lines are kept, and written together by log_write_pending, instead of
 * one write(2) each (the smtp process logs five lines a message: issue
 * 13).  kick(arg) is called when a line is kept and none was: the caller
 * then arranges for log_write_pending within its loop turn.  A buffer past
 * half full is written at once.  The price: a crash loses the lines of its
 * loop turn.  kick NULL goes back to writing each line. */
void log_defer(void (*kick)(void *arg), void *arg);
void log_write_pending(void);

#endif
