/* Delivery status notifications (RFC 3464): the bounce or delay warning a
 * queue sends to a message's envelope sender, as a multipart/report
 * (RFC 6522) of three parts: text for people, message/delivery-status
 * for programs, and the original message's header section.
 *
 * Pure: the caller supplies the clock readings, the host name and the
 * random octets (struct msg_stamp), so the output is exact in tests.
 *
 * The whole DSN is 7-bit ASCII with CR LF line ends and no line over 998
 * octets (RFC 5322 §2.1.1), whatever it is given, except the To field
 * when the sender's address itself is UTF-8 (such a DSN needs SMTPUTF8
 * for its envelope anyway, RFC 6531).  So it can be relayed anywhere
 * without 8BITMIME, and the RFC 6533 message/global-* types are not
 * needed:
 * - a non-ASCII address is written with RFC 6533 §3's "utf-8" address
 *   type in its 7-bit xtext form (\x{F6} for U+00F6);
 * - the peer's reply keeps printable ASCII; other characters become
 *   \x{HEX} (valid UTF-8 by code point, anything else as U+FFFD), so no
 *   CR, LF, NUL or control octet from a peer reaches the output raw;
 * - the text part is quoted-printable UTF-8 when it holds non-ASCII;
 * - the original header section is quoted-printable when it holds 8-bit
 *   or control octets (RFC 6522 §4 allows it for text/rfc822-headers).
 * The original header section is cut at DSN_HEADERS_MAX and each reply at
 * DSN_DIAGNOSTIC_MAX (util/limits.h), so the DSN stays small whatever it
 * reports on. */
#ifndef RAWMAIL_MSG_DSN_H
#define RAWMAIL_MSG_DSN_H

#include <stddef.h>
#include <time.h>

#include "msg/error.h"
#include "msg/header.h"
#include "util/buf.h"
#include "util/limits.h"

/* RFC 3464 §2.3.3: this builder reports only what a queue reports. */
enum msg_dsn_action {
	MSG_DSN_FAILED,   /* permanent: the message is returned */
	MSG_DSN_DELAYED,  /* still queued: a warning */
};

struct msg_dsn_recipient {
	const char *final_recipient;    /* the address delivered to (required) */
	const char *original_recipient; /* as first given (ORCPT), NULL if unknown */
	enum msg_dsn_action action;
	/* "x.y.z" (RFC 3463), or NULL: taken from the reply's enhanced code,
	 * else derived from its basic code (5xx -> 5.0.0, 4xx -> 4.0.0), else
	 * 5.0.0 for failed and 4.0.0 for delayed. */
	const char *status;
	const char *remote_mta;         /* the peer's host name, NULL if none */
	/* The peer's whole reply, lines separated by CR LF, LF or CR; may be
	 * NULL/0 (a local reason without a reply: say it in reason). */
	const char *diagnostic;
	size_t diagnostic_len;
	const char *reason;             /* our own words when no reply (e.g.
	                                   "connection refused"), or NULL */
	time_t last_attempt;            /* 0: none */
	time_t will_retry_until;        /* delayed only; 0: omitted */
};

struct msg_dsn {
	const char *reporting_mta;      /* our host name (From, Reporting-MTA) */
	const char *sender;             /* the original envelope sender (To) */
	time_t arrival;                 /* when the message was queued; 0: omitted */
	const char *original;           /* the original message, any line ends */
	size_t original_len;
	const struct msg_dsn_recipient *rcpts;
	size_t rcpt_count;
	/* Date, zone, random octets (Message-ID and boundary); its hostname is
	 * ignored: the Message-ID uses reporting_mta. */
	struct msg_stamp stamp;
};

/* Appends the whole DSN message to out (whose maximum bounds it:
 * MSG_ERR_TOO_BIG past it).  The Subject says "Undelivered Mail Returned
 * to Sender" when any recipient failed, else "Delayed Mail (still being
 * retried)".
 *
 * Refused (MSG_ERR_USAGE): no recipients, an empty (null) sender (RFC
 * 5321 §4.5.5: never a notification to <>), a sender with a control
 * character or that is not UTF-8 (it could not be delivered, and would
 * break the To field; MSG_ERR_INJECTION for CR or LF), a reporting host
 * name that is not a host name or an address literal, a recipient
 * without its address. */
int msg_dsn_build(const struct msg_dsn *d, struct buf *out, struct msg_error *err);

#endif
