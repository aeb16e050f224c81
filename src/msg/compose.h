/* Composing a message for `rawmail send -s SUBJECT` (RFC 5322, MIME): the
 * headers from the command line, the text from stdin, files attached. */
#ifndef RAWMAIL_MSG_COMPOSE_H
#define RAWMAIL_MSG_COMPOSE_H

#include <stddef.h>

#include "msg/error.h"
#include "msg/header.h"
#include "util/buf.h"

/* One attached file, already read (msg_attach_read_file), or bytes given
 * with their name (an MQTT request's attachment). */
struct msg_attachment {
	const char *name;   /* the path given; its last component names it */
	const void *data;
	size_t len;
	const char *type;   /* "type/subtype", checked by the caller
	                       (msg_attach_type_ok); NULL: from the name */
};

struct msg_compose {
	const char *from;                 /* addr-spec, e.g. "me@host" */
	const char *from_name;            /* display name (UTF-8) or NULL */
	const char *const *to;            /* the recipients, addr-specs */
	size_t to_count;
	const char *subject;              /* UTF-8 */
	const char *body;                 /* the text from stdin, UTF-8 */
	size_t body_len;
	const char *html;                 /* an HTML alternative (UTF-8), or NULL */
	size_t html_len;
	const struct msg_attachment *attachments;
	size_t attachment_count;
	struct msg_stamp stamp;           /* date, host name, random octets */
};

/* Appends the whole message, with CR LF line endings, to out (whose
 * maximum bounds it: MSG_ERR_TOO_BIG past it).
 *
 * Headers: From, To, Subject, Date, Message-ID, MIME-Version: 1.0, then
 * either a text/plain; charset=UTF-8 body or, with attachments, a
 * multipart/mixed one (RFC 2046 §5.1.3) whose first part is the text.
 * With html, the text is a multipart/alternative (§5.1.4) of the
 * text/plain and then the text/html part (the last is the preferred),
 * itself the first part of the multipart/mixed when there are
 * attachments.  The HTML is encoded as the text is.
 * The text is 7bit when it is ASCII without NUL or lone CR and every line
 * is at most 998 octets (RFC 2045 §2.7), else quoted-printable (§6.7):
 * no line of the result is ever longer than 998 octets (RFC 5322
 * §2.1.1).  The text always ends with a line break.
 *
 * Refused: CR or LF in the subject, the display name or an address
 * (MSG_ERR_INJECTION), control octets in an address and host names that
 * cannot form a Message-ID (MSG_ERR_USAGE). */
int msg_compose_build(const struct msg_compose *c, struct buf *out, struct msg_error *err);

#endif
