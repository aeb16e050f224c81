/* Raw messages (`rawmail send` without -s): the message on stdin is sent
 * as given, checked and completed. */
#ifndef RAWMAIL_MSG_RAW_H
#define RAWMAIL_MSG_RAW_H

#include <stdbool.h>
#include <stddef.h>

#include "msg/address_list.h"
#include "msg/error.h"
#include "msg/header.h"
#include "util/buf.h"

struct msg_raw {
	const char *from;         /* address for a missing From; NULL: add none */
	const char *from_name;    /* its display name, or NULL */
	struct msg_stamp stamp;   /* for a missing Date and Message-ID */
	bool extract_recipients;  /* -t: read To, Cc and Bcc into rcpts */
	/* Postfix's myorigin: an address without a domain in From, Sender,
	 * Reply-To, To, Cc, Resent-From, Resent-Sender, Resent-To or
	 * Resent-Cc gets "@origin" (msg_address_list_qualify; cleanup(8)'s
	 * append_at_myorigin).  NULL: fields kept as written. */
	const char *origin;
	/* The sendmail entry: a line over 998 octets is mended, not refused
	 * (cron and PHP discard the error, and the mail would be lost):
	 * - a header line is folded (msg_raw_long_append);
	 * - a body with such a line that is not MIME, or a single part
	 *   (not multipart/, not message/) with no Content-Transfer-Encoding
	 *   or 7bit or 8bit, is encoded quoted-printable (RFC 2045 §6.7):
	 *   MIME-Version: 1.0 and Content-Transfer-Encoding: quoted-printable
	 *   replace those fields, and with no Content-Type a body with 8-bit
	 *   octets gets "text/plain; charset=utf-8" (or "unknown-8bit",
	 *   RFC 1428, when it is not UTF-8).  Every octet decodes back.
	 * - any other body (multipart, base64, ...) has its long lines broken
	 *   as Postfix's smtp client breaks them (msg_raw_long_append). */
	bool mend_long_lines;
	/* When not NULL, set to what mending did (MSG_RAW_MENDED_*), for
	 * the entry's -v. */
	unsigned *mended;
};
enum {
	MSG_RAW_MENDED_QP = 1,       /* the body re-encoded quoted-printable */
	MSG_RAW_MENDED_BROKEN = 2,   /* body lines broken (CR LF SPACE) */
	MSG_RAW_MENDED_FOLDED = 4,   /* header lines folded */
};

/* raw_long.c, the mending of mend_long_lines. */
bool msg_raw_has_long_line(const char *in, size_t len);
/* Appends in[0..len) with each line over 998 octets (its line break not
 * counted) broken, in its own line ending: header, a field folded before
 * white space that follows other text (RFC 5322 §2.2.3) where there is
 * some; else, and for a body line, Postfix's smtp_line_length_limit: a
 * line break and a space inserted after 998 octets.  0, or -1 when out's
 * maximum is reached. */
int msg_raw_long_append(struct buf *out, const char *in, size_t len, bool header);
/* The body in[0..len) quoted-printable (msg_mime_qp_encode) in the line
 * ending crlf says.  0, or -1 (out's maximum). */
int msg_raw_qp_append(struct buf *out, const char *in, size_t len, bool crlf);
/* NULL for US-ASCII text, "utf-8" when its 8-bit octets are well-formed
 * UTF-8 (RFC 3629), else "unknown-8bit" (RFC 1428). */
const char *msg_raw_body_charset(const char *in, size_t len);

/* RFC 5322 §2.1.1: every line at most 998 octets, its CR LF (or LF) not
 * counted.  MSG_ERR_LINE_TOO_LONG names the first longer line (err->line,
 * 1-based, and in the text).  §2.3: no NUL octet anywhere; MSG_ERR_NUL
 * names the first line holding one. */
int msg_raw_check_lines(const char *in, size_t len, struct msg_error *err);
/* The NUL check alone. */
int msg_raw_check_nul(const char *in, size_t len, struct msg_error *err);

/* Checks the message in[0..len) (msg_raw_check_lines; with
 * mend_long_lines, NUL only) and appends it to out with these changes only:
 * - The header section is the lines from the start up to the first empty
 *   line.  A line that is neither a field ("name:" with RFC 5322 §3.6.8
 *   ftext names) nor a continuation (starting with white space, after a
 *   field) also ends it: it is the first line of the body, and an empty
 *   line is inserted before it, as RFC 5322 §3.5 requires (so "Hello"
 *   alone is a body with generated headers).  With neither, the whole
 *   message is headers and there is no body.
 * - Missing From, Date and Message-ID (names compared case-insensitively)
 *   are added at the end of the header section, in the message's own line
 *   ending (that of its first line; CR LF when it has none).
 * - Every Bcc field is removed, with its continuation lines, also without
 *   -t: a Bcc that reaches the recipients discloses the blind copies
 *   (Postfix's cleanup does the same).
 * - With extract_recipients, the To, Cc and Bcc fields are unfolded
 *   (§2.2.3) and read as address lists (msg_address_list_parse) into
 *   rcpts, which must be initialised by the caller.
 * - With origin, addresses without a domain qualified; with
 *   mend_long_lines, long lines mended (above).  A field whose lines get
 *   longer than 998 octets by the "@origin" added is folded.
 * Everything else, body included, is copied byte for byte. */
int msg_raw_prepare(const struct msg_raw *opt, const char *in, size_t len, struct buf *out,
                    struct msg_recipients *rcpts, struct msg_error *err);

#endif
