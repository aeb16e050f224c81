/* MIME encodings (RFC 2045, RFC 2047): the transfer encodings of bodies and
 * the encoded words of headers.  Pure: bytes in, bytes appended to a bounded
 * buffer out.  Every function returns 0, or -1 when the buffer's maximum
 * would be exceeded (or memory ran out); the buffer may then hold part of
 * the output and the caller drops the whole message. */
#ifndef RAWMAIL_MSG_MIME_H
#define RAWMAIL_MSG_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* RFC 2045 §6.7 rule 5 and §6.8: encoded lines are at most 76 characters. */
#define MSG_MIME_LINE_MAX 76
/* RFC 2047 §2: an encoded word is at most 75 characters, and a header line
 * holding one at most 76. */
#define MSG_MIME_WORD_MAX 75

/* Quoted-printable text (RFC 2045 §6.7).  Line breaks in the input (LF or
 * CR LF) become CR LF hard breaks; any other CR, NUL, '=' and octets over
 * 126 are =XX; a space or tab before a line break is =20 / =09 (rule 3);
 * soft breaks "=" CR LF keep every line within 76 characters.  The output
 * always ends with CR LF, also when the input does not end with a line
 * break (a text body ends with a line; RFC 5322 §2.3). */
int msg_mime_qp_encode(struct buf *out, const char *in, size_t len);

/* Base64 (RFC 2045 §6.8) in lines of 76 characters, each ending CR LF. */
int msg_mime_base64_encode(struct buf *out, const void *in, size_t len);

/* Strict base64 (RFC 4648 §4) of in[0..len) decoded and appended to out:
 * the alphabet A-Z a-z 0-9 + /, the last group padded with "=" to four
 * octets, padding only at the end, and the bits padding leaves unused
 * zero (§3.5, one text per value).  CR and LF anywhere are skipped (the
 * base64 command and MIME wrap lines at 76); anything else -- space, the
 * URL-safe "-" and "_", a missing "=" -- is refused (§3.3: a decoder
 * must not ignore what is outside the alphabet).  0; -1 with *bad the
 * offset of the first octet that is wrong (or of the last group's start
 * when it is incomplete); -2 when out's maximum is reached. */
int msg_mime_base64_decode(struct buf *out, const char *in, size_t len, size_t *bad);

enum msg_word_context {
	MSG_WORD_TEXT,    /* RFC 2047 §5(1): unstructured text (Subject) */
	MSG_WORD_PHRASE,  /* RFC 2047 §5(3): a display name; Q is restricted */
};

/* Appends in[0..len) (UTF-8) as RFC 2047 encoded words, "=?UTF-8?Q?...?="
 * or "=?UTF-8?B?...?=" (whichever is shorter for this text), each preceded
 * by the white space that separates it from what comes before: " " when it
 * fits on the current line, else a fold CR LF SP (RFC 5322 §2.2.3).  *col is
 * the column the output starts at and is updated; no line goes past 76
 * characters.  Words are cut only between UTF-8 characters (RFC 2047 §5
 * last paragraph); the white space between adjacent encoded words is
 * dropped by decoders (§6.2), so the text reads back exactly.  An empty
 * input appends nothing. */
int msg_mime_words_encode(struct buf *out, size_t *col, const char *in, size_t len,
                          enum msg_word_context ctx);

/* True when in[0..len) is all printable ASCII, space or tab: it may stand
 * in a header as it is. */
bool msg_mime_is_plain_ascii(const char *in, size_t len);

#endif
