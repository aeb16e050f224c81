/* SMTP replies: a code, an enhanced status code (RFC 3463) and text, and
 * their formatting onto the wire (multi-line with "250-"). */
#ifndef RAWMAIL_SMTP_REPLY_H
#define RAWMAIL_SMTP_REPLY_H

#include <stddef.h>

#include "util/buf.h"

struct smtp_reply {
	int code;              /* 220..554 */
	const char *enhanced;  /* "5.5.2", or NULL for none (greeting, EHLO, 3xx) */
	char text[256];        /* one line of text, no CR or LF */
};

/* Sets *r; the text is printf-formatted and truncated to fit; CR, LF and
 * other control bytes in it are replaced by '?' so that attacker-supplied
 * text can never split a reply. */
void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Appends "CODE ENH TEXT\r\n" to out ("CODE TEXT\r\n" without enhanced;
 * an empty part is left out with its space: "250\r\n").  Control bytes in
 * text are replaced by '?' here too.  Returns 0, or -1 if out is full or
 * the reply is invalid: a code outside RFC 5321 §4.2's Reply-code, or an
 * enhanced code that is not RFC 3463 syntax with the code's class digit.
 * On -1 out is unchanged. */
int smtp_reply_write(struct buf *out, const struct smtp_reply *r);

/* Appends a multi-line reply: lines[0..n) each become "CODE-TEXT\r\n"
 * except the last, "CODE TEXT\r\n"; enhanced (may be NULL) prefixes each
 * line's text (RFC 2034 §4).  Control bytes in a line become '?', a NULL
 * line is empty, and a line is cut to fit 512 octets with its CRLF (RFC
 * 5321 §4.5.3.1.5).  Returns 0, or -1 (out unchanged) if out is full, n is
 * 0, or code / enhanced are invalid as for smtp_reply_write. */
int smtp_reply_write_lines(struct buf *out, int code, const char *enhanced,
                           const char *const *lines, size_t n);

#endif
