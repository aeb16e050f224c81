/* Writing RFC 5322 header fields from values the user gave (-s, -f, a
 * display name, recipients) or the caller computed (date, host name,
 * random octets).  Each writer appends one whole field ending CR LF.
 *
 * A CR or LF in any user value is refused (MSG_ERR_INJECTION) rather than
 * stripped: it can only be an attempt to add header fields.  Lines are
 * folded at 78 characters where the syntax allows (RFC 5322 §2.1.1,
 * §2.2.3) and never exceed 998. */
#ifndef RAWMAIL_MSG_HEADER_H
#define RAWMAIL_MSG_HEADER_H

#include <stddef.h>
#include <time.h>

#include "msg/error.h"
#include "util/buf.h"

/* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters. */
#define MSG_HEADER_LINE_PREFERRED 78
/* Random octets the caller supplies per message: 12 for the Message-ID,
 * 12 for the MIME boundary. */
#define MSG_RANDOM_LEN 24

/* What makes a message unique and dated, supplied by the caller so that
 * this module reads no clock and no random device (and tests are exact). */
struct msg_stamp {
	time_t date;          /* seconds since the epoch */
	int tz_minutes;       /* local offset east of UTC, -1439..1439 */
	const char *hostname; /* right side of the Message-ID */
	unsigned char random[MSG_RANDOM_LEN];
};

/* 0 when value holds neither CR nor LF; else MSG_ERR_INJECTION naming what
 * (e.g. "subject"). */
int msg_header_check_value(const char *what, const char *value, struct msg_error *err);

/* "Subject: text" (an unstructured field, RFC 5322 §3.6.5): plain ASCII is
 * folded at white space; non-ASCII, control characters, text that looks
 * like an encoded word ("=?") or a word too long to fold become RFC 2047
 * encoded words. */
int msg_header_write_unstructured(struct buf *out, const char *name, const char *value,
                                  struct msg_error *err);

/* "From: Display Name <addr>" (RFC 5322 §3.4), or "From: addr" when name is
 * NULL or empty.  The name is an atom phrase, a quoted string or encoded
 * words (RFC 2047 §5(3)), whichever applies. */
int msg_header_write_mailbox(struct buf *out, const char *name, const char *display_name,
                             const char *addr, struct msg_error *err);

/* "To: a@x, b@y" folded one address per line when long. */
int msg_header_write_address_list(struct buf *out, const char *name,
                                  const char *const *addrs, size_t count,
                                  struct msg_error *err);

/* "Date: Thu, 13 Feb 2025 10:04:05 +0100" (RFC 5322 §3.3). */
int msg_header_write_date(struct buf *out, time_t date, int tz_minutes, struct msg_error *err);

/* "Message-ID: <20250213090405.<24 hex>@host>" (RFC 5322 §3.6.4): the UTC
 * time and 12 random octets make the left side unique (RFC 5322 §3.6.4
 * asks for a unique id; RFC 5322 id-left is dot-atom-text). */
int msg_header_write_message_id(struct buf *out, const struct msg_stamp *stamp,
                                struct msg_error *err);

#endif
