/* Text from a peer made safe for a terminal or a log (issue 8 item 14).
 * A server's reply, a certificate's name or a client's HELO is printed
 * and logged; on many terminals C0 controls, DEL and C1 controls (0x9B
 * is CSI, as ESC [ is; U+009B written in UTF-8 as C2 9B means the same
 * to a UTF-8 terminal) move the cursor, rewrite earlier lines or set the
 * window title.  One escaper, used for everything printed from a peer:
 * result lines and -v transcripts of rawmail send, log values of serve. */
#ifndef RAWMAIL_UTIL_TEXT_H
#define RAWMAIL_UTIL_TEXT_H

#include <stddef.h>

enum text_escape_flags {
	TEXT_KEEP_NEWLINE = 1,   /* '\n' stays a line break (multi-line output) */
	TEXT_ESCAPE_QUOTES = 2,  /* '"' and '\' become \" and \\ (a quoted log value) */
};

/* Copies src[0..len) into dst, escaping what a terminal would act on:
 *   C0 controls (TAB and, without TEXT_KEEP_NEWLINE, LF included) and
 *   DEL -> \xNN;  a raw C1 octet or any octet that is not part of valid
 *   UTF-8 (RFC 3629 §3: no overlong forms, no surrogates, nothing past
 *   U+10FFFF, no truncated sequence) -> \xNN;  U+0080..U+009F in valid
 *   UTF-8 -> \u00NN.
 * Printable ASCII and every other valid UTF-8 character are kept as they
 * are.  dst is always NUL-terminated (dstlen > 0); output stops before a
 * unit (character or escape) that does not fit.  A dstlen of 4 * len + 1
 * always fits.  Returns the octets of src consumed (len when all fit). */
size_t text_escape(char *dst, size_t dstlen, const char *src, size_t len, unsigned flags);

/* The value of one hexadecimal digit (either case), or -1: the one reader
 * the percent and quoted-printable decoders share. */
int text_hex_value(unsigned char c);
/* The value of one base64 alphabet octet (RFC 4648 §4), or -1: SASL,
 * MIME (strict and lenient) and DKIM key records read it alike. */
int text_base64_value(unsigned char c);

#endif
