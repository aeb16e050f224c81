/* Decoding what a received message carries (the reverse of mime.h):
 * transfer encodings (RFC 2045 §6.7, §6.8), charsets to UTF-8, RFC 2047
 * encoded words.  Pure, and lenient: a received message is read for what
 * can be made of it, never refused, so broken input decodes to something
 * (an undecodable octet becomes U+FFFD) and every output is valid UTF-8
 * where the function says so.  Linear in the input.
 *
 * Every function appends to a struct buf and returns 0, or -1 when the
 * buffer's maximum would be passed (or memory ran out). */
#ifndef RAWMAIL_MSG_DECODE_H
#define RAWMAIL_MSG_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Base64 (RFC 2045 §6.8): octets outside the alphabet are ignored (line
 * breaks, the junk of a broken encoder); "=" ends a group, and decoding
 * goes on after it (concatenated encodings); a last group of one sextet
 * is dropped.  Not UTF-8: any octets. */
int msg_decode_base64(struct buf *out, const char *in, size_t len);

/* Quoted-printable (RFC 2045 §6.7): "=XX" (either case) is an octet, "="
 * at the end of a line (after optional white space) a soft break, any
 * other "=" itself; white space at the end of a line is dropped (rule 3);
 * line breaks (LF or CR LF) are kept as they are.  Not UTF-8. */
int msg_decode_qp(struct buf *out, const char *in, size_t len);

/* Appends in[0..len) as valid UTF-8 (RFC 3629 §3: no overlong forms, no
 * surrogates, nothing past U+10FFFF): each maximal invalid subsequence
 * becomes U+FFFD (Unicode §3.9's "best practice"). */
int msg_decode_utf8_repair(struct buf *out, const char *in, size_t len);

/* The length of the longest prefix of the valid UTF-8 s[0..len) that is
 * at most max octets and ends at a character boundary. */
size_t msg_decode_utf8_cut(const char *s, size_t len, size_t max);

/* Appends in[0..len), text in the charset named charset[0..charset_len)
 * (case-insensitive; an RFC 2231 §5 "*language" suffix is ignored), as
 * valid UTF-8.  UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15 and
 * Windows-1252 are converted here, without iconv (a chrooted process may
 * not load iconv's modules); US-ASCII and an empty name are read as UTF-8
 * (8-bit text is mostly UTF-8 whatever its label says).  Other charsets go
 * through iconv(3); when iconv does not know the name (or cannot load its
 * module) the text is read as UTF-8.  An octet that cannot be converted
 * becomes U+FFFD. */
int msg_decode_charset(struct buf *out, const char *charset, size_t charset_len,
                       const char *in, size_t len);

/* Appends an unfolded header field value with its RFC 2047 encoded words
 * ("=?charset?B?...?=", "=?charset?Q?...?=") decoded to UTF-8: white
 * space between two encoded words is dropped (§6.2), and the octets of
 * adjacent words in the same charset are joined before conversion (a
 * character split across two words by a broken encoder still reads).
 * Text that is not an encoded word is read as UTF-8 (RFC 6532), repaired.
 * Encoded words are found also inside words (lenient, as most readers). */
int msg_decode_words(struct buf *out, const char *in, size_t len);

#endif
