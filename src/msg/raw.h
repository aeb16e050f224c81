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
};

/* RFC 5322 §2.1.1: every line at most 998 octets, its CR LF (or LF) not
 * counted.  MSG_ERR_LINE_TOO_LONG names the first longer line (err->line,
 * 1-based, and in the text).  §2.3: no NUL octet anywhere; MSG_ERR_NUL
 * names the first line holding one. */
int msg_raw_check_lines(const char *in, size_t len, struct msg_error *err);

/* Checks the message in[0..len) (msg_raw_check_lines) and appends it to out
 * with these changes only:
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
 * Everything else, body included, is copied byte for byte. */
int msg_raw_prepare(const struct msg_raw *opt, const char *in, size_t len, struct buf *out,
                    struct msg_recipients *rcpts, struct msg_error *err);

#endif
