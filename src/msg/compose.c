/* Composing a message from the command line (rawmail send -s). */
#include "msg/compose.h"

#include <stdbool.h>
#include <string.h>

#include "msg/attach.h"
#include "msg/mime.h"
#include "util/limits.h"

/* RFC 2046 §5.1.1: a boundary is at most 70 characters.  Ours starts with
 * "=_", which neither quoted-printable (where "=" is followed by two hex
 * digits or a line break) nor base64 can produce. */
#define COMPOSE_BOUNDARY_MAX 70

/* RFC 2045 §2.7: 7bit data is ASCII without NUL, CR and LF only as line
 * breaks, lines of at most 998 octets.  LF alone counts as a line break
 * here: it becomes CR LF on output. */
static bool compose_body_is_7bit(const char *body, size_t len)
{
	size_t line = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)body[i];
		if (c == '\n') {
			line = 0;
			continue;
		}
		if (c == '\r' && i + 1 < len && body[i + 1] == '\n')
			continue;
		if (c == 0 || c == '\r' || c > 127 || ++line > RFC5322_LINE_MAX)
			return false;
	}
	return true;
}

/* The 7bit body with every line ending CR LF, the last one included. */
static int compose_write_7bit(struct buf *out, const char *body, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (body[i] != '\n')
			continue;
		size_t end = i > start && body[i - 1] == '\r' ? i - 1 : i;
		if (buf_append(out, body + start, end - start) < 0 || buf_append(out, "\r\n", 2) < 0)
			return -1;
		start = i + 1;
	}
	if (start < len &&
	    (buf_append(out, body + start, len - start) < 0 || buf_append(out, "\r\n", 2) < 0))
		return -1;
	return 0;
}

/* A text part's Content-Type (text/SUBTYPE), Content-Transfer-Encoding,
 * blank line and body.  A boundary of an enclosing multipart found in the
 * text forces quoted-printable, where it cannot appear (see
 * COMPOSE_BOUNDARY_MAX). */
static int compose_write_text(struct buf *out, const char *subtype, const char *body,
                              size_t len, const char *const *boundaries, size_t nboundaries)
{
	bool seven = compose_body_is_7bit(body, len);
	for (size_t i = 0; seven && i < nboundaries; i++)
		if (memmem(body, len, boundaries[i], strlen(boundaries[i])))
			seven = false;
	if (buf_printf(out, "Content-Type: text/%s; charset=UTF-8\r\n"
	               "Content-Transfer-Encoding: %s\r\n\r\n", subtype,
	               seven ? "7bit" : "quoted-printable") < 0)
		return -1;
	if (seven)
		return compose_write_7bit(out, body, len);
	return msg_mime_qp_encode(out, body, len);
}

/* "=_rawmail_" (mixed) or "=_rawmail_alt_" (alternative) and 12 random
 * octets in hex.  Neither is a prefix of the other's delimiter line
 * (RFC 2046 §5.1.2: an inner boundary must not be confused with an outer
 * one): after "=_rawmail_" comes a hex digit in one, "alt_" in the other. */
static void compose_boundary(const struct msg_compose *c, const char *prefix,
                             char boundary[COMPOSE_BOUNDARY_MAX + 1])
{
	size_t n = strlen(prefix);
	memcpy(boundary, prefix, n);
	for (size_t i = 12; i < MSG_RANDOM_LEN; i++) {
		boundary[n++] = "0123456789abcdef"[c->stamp.random[i] >> 4];
		boundary[n++] = "0123456789abcdef"[c->stamp.random[i] & 15];
	}
	boundary[n] = '\0';
}

/* The text alone, or with html the multipart/alternative of both (RFC
 * 2046 §5.1.4: the plainest first, the preferred last), inside the
 * multipart/mixed of outer (or NULL) when there are attachments. */
static int compose_write_body(struct buf *out, const struct msg_compose *c, const char *outer)
{
	const char *bounds[2] = { outer, NULL };
	size_t nb = outer ? 1 : 0;
	if (!c->html)
		return compose_write_text(out, "plain", c->body, c->body_len, bounds, nb);
	char alt[COMPOSE_BOUNDARY_MAX + 1];
	compose_boundary(c, "=_rawmail_alt_", alt);
	bounds[nb++] = alt;
	if (buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
	               "--%s\r\n", alt, alt) < 0 ||
	    compose_write_text(out, "plain", c->body, c->body_len, bounds, nb) < 0 ||
	    buf_printf(out, "\r\n--%s\r\n", alt) < 0 ||
	    compose_write_text(out, "html", c->html, c->html_len, bounds, nb) < 0)
		return -1;
	return buf_printf(out, "\r\n--%s--\r\n", alt);
}

static int compose_write_multipart(struct buf *out, const struct msg_compose *c)
{
	char boundary[COMPOSE_BOUNDARY_MAX + 1];
	compose_boundary(c, "=_rawmail_", boundary);
	/* The boundary holds "=", a tspecial: it must be quoted (§5.1.1). */
	if (buf_printf(out, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
	               "This is a MIME message.\r\n\r\n--%s\r\n", boundary, boundary) < 0)
		return -1;
	if (compose_write_body(out, c, boundary) < 0)
		return -1;
	for (size_t i = 0; i < c->attachment_count; i++) {
		const struct msg_attachment *a = &c->attachments[i];
		/* §5.1.1: the CRLF before "--boundary" belongs to the
		 * delimiter; the text's own last line break comes before. */
		if (buf_printf(out, "\r\n--%s\r\n", boundary) < 0 ||
		    msg_attach_write_headers_typed(out, a->name, a->type) < 0 ||
		    msg_mime_base64_encode(out, a->data, a->len) < 0)
			return -1;
	}
	return buf_printf(out, "\r\n--%s--\r\n", boundary);
}

int msg_compose_build(const struct msg_compose *c, struct buf *out, struct msg_error *err)
{
	if (msg_header_check_value("subject", c->subject, err) < 0 ||
	    msg_header_write_mailbox(out, "From", c->from_name, c->from, err) < 0 ||
	    msg_header_write_address_list(out, "To", c->to, c->to_count, err) < 0 ||
	    msg_header_write_unstructured(out, "Subject", c->subject ? c->subject : "", err) < 0 ||
	    msg_header_write_date(out, c->stamp.date, c->stamp.tz_minutes, err) < 0 ||
	    msg_header_write_message_id(out, &c->stamp, err) < 0)
		return -1;
	if (buf_append_str(out, "MIME-Version: 1.0\r\n") < 0)
		goto too_big;
	int rc = c->attachment_count ? compose_write_multipart(out, c)
	                             : compose_write_body(out, c, NULL);
	if (rc < 0)
		goto too_big;
	return 0;
too_big:
	return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
}
