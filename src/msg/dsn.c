/* Delivery status notifications, RFC 3464 inside RFC 6522's
 * multipart/report.  See dsn.h for what is escaped and why. */
#include "msg/dsn.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/mime.h"
#include "util/limits.h"
#include "util/text.h"

/* RFC 2046 §5.1.1: a boundary is 1..70 characters.  Ours starts with "=_",
 * which quoted-printable cannot produce, and is checked against every
 * part anyway (dsn_boundary_pick). */
#define DSN_BOUNDARY_MAX 70
/* Bound of the scratch buffers one field is escaped in (the inputs are
 * bounded far below it: an address, DSN_DIAGNOSTIC_MAX of reply). */
#define DSN_SCRATCH_MAX (16u * 1024u * 1024u)

/* ---- escaping ------------------------------------------------------- */

/* Appends s[0..len) through util/text.c's escaper: C0 controls (CR, LF,
 * NUL, TAB included), DEL, C1 and invalid UTF-8 become "\xNN" / "\u00NN",
 * valid UTF-8 stays.  The result holds no octet under 0x20. */
static int dsn_escape_utf8(struct buf *out, const char *s, size_t len)
{
	if (len == 0)
		return 0;
	size_t cap = 4 * len + 1;
	char *tmp = malloc(cap);
	if (!tmp)
		return -1;
	text_escape(tmp, cap, s, len, 0);
	int rc = buf_append_str(out, tmp);
	free(tmp);
	return rc;
}

/* Appends "\x{HEX}" (RFC 6533 §3 EmbeddedUnicodeChar), at least two
 * digits. */
static int dsn_append_code_point(struct buf *out, uint32_t cp)
{
	return buf_printf(out, "\\x{%02X}", (unsigned)cp);
}

enum dsn_escape_mode {
	DSN_TEXT,   /* a field's free text: white space runs become one space */
	DSN_XTEXT,  /* RFC 6533 §3 utf-8-addr-xtext: only QCHARs stay */
};

/* Appends s[0..len) as 7-bit field text with no control octet: first
 * dsn_escape_utf8, then every non-ASCII character (now valid UTF-8) as
 * \x{HEX} of its code point.  DSN_XTEXT also escapes what RFC 6533's QCHAR
 * excludes: space, "\", "+" and "=". */
static int dsn_escape_7bit(struct buf *out, const char *s, size_t len, enum dsn_escape_mode mode)
{
	struct buf u;
	buf_init(&u, DSN_SCRATCH_MAX);
	if (dsn_escape_utf8(&u, s, len) < 0) {
		buf_free(&u);
		return -1;
	}
	int rc = 0;
	bool space = false;
	for (size_t i = 0; i < u.len && rc == 0; i++) {
		unsigned char c = (unsigned char)u.data[i];
		if (c < 0x80) {
			if (mode == DSN_XTEXT && (c <= ' ' || c == '\\' || c == '+' || c == '='))
				rc = dsn_append_code_point(out, c);
			else if (mode == DSN_TEXT && c == ' ') {
				if (!space)
					rc = buf_append(out, " ", 1);
			} else
				rc = buf_append(out, &u.data[i], 1);
			space = c == ' ';
			continue;
		}
		/* Valid UTF-8 (text_escape let it through): decode it. */
		size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		uint32_t cp = c & (n == 4 ? 0x07 : n == 3 ? 0x0f : 0x1f);
		for (size_t k = 1; k < n && i + k < u.len; k++)
			cp = cp << 6 | ((unsigned char)u.data[i + k] & 0x3f);
		i += n - 1;
		rc = dsn_append_code_point(out, cp);
		space = false;
	}
	buf_free(&u);
	return rc;
}

/* True when s is printable ASCII (space included): an address that may
 * stand as it is in an "rfc822" address field. */
static bool dsn_printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* ---- fields of the delivery-status part ------------------------------ */

/* Writes "Name: value" ending CR LF.  value holds no CR, LF or other
 * control octet and no runs of spaces (dsn_escape_7bit made it).  It is
 * folded before a space once a line would pass 78 characters (RFC 5322
 * §2.2.3; the reply's lines were joined with spaces, so they are the
 * natural fold points), and a word that would pass 998 octets is cut
 * with CR LF SP (§2.1.1: a hard limit; the inserted space is the price). */
static int dsn_write_field(struct buf *out, const char *name, const char *v, size_t len)
{
	if (buf_printf(out, "%s:", name) < 0)
		return -1;
	size_t col = strlen(name) + 1;
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && v[j] == ' ')
			j++;
		size_t k = j;
		while (k < len && v[k] != ' ')
			k++;
		if (i == 0) {
			/* The value's first word follows "Name: ". */
			if (buf_append(out, " ", 1) < 0)
				return -1;
			col++;
			i = j;
		} else if (j > i && k > j && col + (k - i) > MSG_HEADER_LINE_PREFERRED) {
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
			col = 0;
		}
		if (k == j)
			break;   /* trailing spaces: dropped */
		for (size_t p = i; p < k;) {
			size_t room = RFC5322_LINE_MAX - col;
			if (room == 0) {
				if (buf_append(out, "\r\n ", 3) < 0)
					return -1;
				col = 1;
				continue;
			}
			size_t n = k - p < room ? k - p : room;
			if (buf_append(out, v + p, n) < 0)
				return -1;
			col += n;
			p += n;
		}
		i = k;
	}
	return buf_append(out, "\r\n", 2);
}

/* "Name: TYPE; value" with the value escaped as field text. */
static int dsn_write_typed(struct buf *out, const char *name, const char *type, const char *s,
                           size_t len, enum dsn_escape_mode mode)
{
	struct buf v;
	buf_init(&v, DSN_SCRATCH_MAX);
	int rc = buf_printf(&v, "%s; ", type);
	if (rc == 0)
		rc = dsn_escape_7bit(&v, s, len, mode);
	if (rc == 0)
		rc = dsn_write_field(out, name, v.data, v.len);
	buf_free(&v);
	return rc;
}

/* RFC 3464 §2.3.1/§2.3.2: "rfc822; addr" for a printable ASCII address,
 * else RFC 6533 §3's "utf-8; " type in its 7-bit xtext form (what the
 * 7-bit message/delivery-status can carry), which also makes any control
 * octet harmless. */
static int dsn_write_address(struct buf *out, const char *name, const char *addr)
{
	if (dsn_printable_ascii(addr) && *addr != ' ')
		return dsn_write_typed(out, name, "rfc822", addr, strlen(addr), DSN_TEXT);
	return dsn_write_typed(out, name, "utf-8", addr, strlen(addr), DSN_XTEXT);
}

/* "Name: <RFC 5322 date>", through msg_header_write_date's format. */
static int dsn_write_date(struct buf *out, const char *name, time_t t, int tz_minutes,
                          struct msg_error *err)
{
	struct buf d;
	buf_init(&d, 128);
	int rc = msg_header_write_date(&d, t, tz_minutes, err);
	if (rc == 0 && buf_printf(out, "%s: %s", name, d.data + strlen("Date: ")) < 0)
		rc = msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	buf_free(&d);
	return rc;
}

/* ---- status ------------------------------------------------------------ */

/* RFC 3463 §2: class "." subject "." detail; class 2, 4 or 5, subject
 * and detail 1 to 3 digits. */
static bool dsn_status_valid(const char *s, size_t len)
{
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return false;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == len;
}

/* The recipient's Status: the one given if valid; else the enhanced code
 * at the start of the reply ("550-5.1.1 ..." or "550 5.1.1 ...", RFC
 * 2034) when its class agrees with the basic code; else the basic code's
 * class with ".0.0" (RFC 3463 §3.1: X.0.0 "other undefined status");
 * else by the action. */
static void dsn_status(const struct msg_dsn_recipient *r, char st[16])
{
	if (r->status && strlen(r->status) < 16 && dsn_status_valid(r->status, strlen(r->status))) {
		memcpy(st, r->status, strlen(r->status) + 1);
		return;
	}
	const char *d = r->diagnostic;
	size_t len = d ? r->diagnostic_len : 0;
	char cls = r->action == MSG_DSN_FAILED ? '5' : '4';
	if (len >= 3 && (d[0] == '4' || d[0] == '5') && d[1] >= '0' && d[1] <= '9' &&
	    d[2] >= '0' && d[2] <= '9' && (len == 3 || d[3] == ' ' || d[3] == '-')) {
		cls = d[0];
		size_t e = 4;
		while (e < len && e < 4 + 16 && d[e] != ' ' && d[e] != '\r' && d[e] != '\n')
			e++;
		if (e > 4 && e - 4 < 16 && d[4] == cls && dsn_status_valid(d + 4, e - 4)) {
			memcpy(st, d + 4, e - 4);
			st[e - 4] = '\0';
			return;
		}
	}
	st[0] = cls;
	memcpy(st + 1, ".0.0", 5);
}

/* ---- the reply ---------------------------------------------------------- */

/* Calls fn for each non-empty line of the reply (CR LF, LF or a lone CR
 * ends a line), at most DSN_DIAGNOSTIC_MAX octets of it; *cut says
 * whether some was left out. */
typedef int (*dsn_line_fn)(void *arg, const char *line, size_t len);

static int dsn_reply_lines(const struct msg_dsn_recipient *r, dsn_line_fn fn, void *arg,
                           bool *cut)
{
	size_t len = r->diagnostic ? r->diagnostic_len : 0;
	*cut = len > DSN_DIAGNOSTIC_MAX;
	if (*cut)
		len = DSN_DIAGNOSTIC_MAX;
	const char *d = r->diagnostic;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && d[i] != '\r' && d[i] != '\n')
			continue;
		if (i > start && fn(arg, d + start, i - start) < 0)
			return -1;
		start = i + 1;
	}
	return 0;
}

/* RFC 3464 §2.3.6, diagnostic type "smtp": the reply as the peer sent
 * it, a multi-line one with its lines joined by a space (each keeps its
 * "550-" prefix), folded by dsn_write_field. */
static int dsn_join_line(void *arg, const char *line, size_t len)
{
	struct buf *v = arg;
	if (v->len && v->data[v->len - 1] != ' ' && buf_append(v, " ", 1) < 0)
		return -1;
	return dsn_escape_7bit(v, line, len, DSN_TEXT);
}

static int dsn_write_diagnostic(struct buf *out, const struct msg_dsn_recipient *r)
{
	struct buf v;
	buf_init(&v, DSN_SCRATCH_MAX);
	bool cut = false;
	int rc = 0;
	if (r->diagnostic && r->diagnostic_len) {
		rc = buf_append_str(&v, "smtp; ");
		if (rc == 0)
			rc = dsn_reply_lines(r, dsn_join_line, &v, &cut);
		if (rc == 0 && cut)
			rc = buf_append_str(&v, " ...");
	} else if (r->reason && *r->reason) {
		/* Not a reply: our own words (a connection that failed). */
		rc = buf_append_str(&v, "X-Rawmail; ");
		if (rc == 0)
			rc = dsn_escape_7bit(&v, r->reason, strlen(r->reason), DSN_TEXT);
	}
	if (rc == 0 && v.len)
		rc = dsn_write_field(out, "Diagnostic-Code", v.data, v.len);
	buf_free(&v);
	return rc;
}

/* ---- the parts ---------------------------------------------------------- */

/* Part 2, message/delivery-status (RFC 3464 §2.2, §2.3). */
static int dsn_part_status(struct buf *p, const struct msg_dsn *d, struct msg_error *err)
{
	int tz = d->stamp.tz_minutes;
	if (buf_append_str(p, "Content-Description: Delivery report\r\n"
	                      "Content-Type: message/delivery-status\r\n\r\n") < 0 ||
	    dsn_write_typed(p, "Reporting-MTA", "dns", d->reporting_mta, strlen(d->reporting_mta),
	                    DSN_TEXT) < 0)
		goto too_big;
	if (d->arrival && dsn_write_date(p, "Arrival-Date", d->arrival, tz, err) < 0)
		return -1;
	for (size_t i = 0; i < d->rcpt_count; i++) {
		const struct msg_dsn_recipient *r = &d->rcpts[i];
		char st[16];
		dsn_status(r, st);
		if (buf_append(p, "\r\n", 2) < 0 ||
		    (r->original_recipient && *r->original_recipient &&
		     dsn_write_address(p, "Original-Recipient", r->original_recipient) < 0) ||
		    dsn_write_address(p, "Final-Recipient", r->final_recipient) < 0 ||
		    buf_printf(p, "Action: %s\r\nStatus: %s\r\n",
		               r->action == MSG_DSN_FAILED ? "failed" : "delayed", st) < 0 ||
		    (r->remote_mta && *r->remote_mta &&
		     dsn_write_typed(p, "Remote-MTA", "dns", r->remote_mta, strlen(r->remote_mta),
		                     DSN_TEXT) < 0) ||
		    dsn_write_diagnostic(p, r) < 0)
			goto too_big;
		if (r->last_attempt && dsn_write_date(p, "Last-Attempt-Date", r->last_attempt, tz,
		                                      err) < 0)
			return -1;
		if (r->action == MSG_DSN_DELAYED && r->will_retry_until &&
		    dsn_write_date(p, "Will-Retry-Until", r->will_retry_until, tz, err) < 0)
			return -1;
	}
	return 0;
too_big:
	return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
}

/* Part 1, for people: per recipient what happened and the peer's reply,
 * as UTF-8 text with LF line ends (encoded by dsn_part_text_encode). */
static int dsn_text_line(void *arg, const char *line, size_t len)
{
	struct buf *t = arg;
	if (buf_append_str(t, "        ") < 0 || dsn_escape_utf8(t, line, len) < 0)
		return -1;
	return buf_append(t, "\n", 1);
}

static int dsn_text_date(struct buf *t, const char *what, time_t when, int tz,
                         struct msg_error *err)
{
	struct buf d;
	buf_init(&d, 128);
	int rc = msg_header_write_date(&d, when, tz, err);
	if (rc == 0) {
		d.len -= 2;   /* the CR LF */
		rc = buf_printf(t, "    %s: %.*s\n", what, (int)(d.len - 6), d.data + 6);
		if (rc < 0)
			msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	}
	buf_free(&d);
	return rc;
}

static int dsn_text_recipient(struct buf *t, const struct msg_dsn *d,
                              const struct msg_dsn_recipient *r, struct msg_error *err)
{
	char st[16];
	dsn_status(r, st);
	int tz = d->stamp.tz_minutes;
	bool cut = false;
	if (buf_append_str(t, "<") < 0 ||
	    dsn_escape_utf8(t, r->final_recipient, strlen(r->final_recipient)) < 0 ||
	    buf_printf(t, ">: %s (status %s)\n",
	               r->action == MSG_DSN_FAILED ? "delivery failed, no further attempts"
	                                           : "not delivered yet, still trying", st) < 0)
		goto too_big;
	if (r->original_recipient && *r->original_recipient &&
	    strcmp(r->original_recipient, r->final_recipient) != 0 &&
	    (buf_append_str(t, "    (originally addressed to <") < 0 ||
	     dsn_escape_utf8(t, r->original_recipient, strlen(r->original_recipient)) < 0 ||
	     buf_append_str(t, ">)\n") < 0))
		goto too_big;
	if (r->last_attempt && dsn_text_date(t, "Last attempt", r->last_attempt, tz, err) < 0)
		return -1;
	if (r->action == MSG_DSN_DELAYED && r->will_retry_until &&
	    dsn_text_date(t, "Retried until", r->will_retry_until, tz, err) < 0)
		return -1;
	if (r->diagnostic && r->diagnostic_len) {
		if (buf_append_str(t, "    ") < 0 ||
		    (r->remote_mta && *r->remote_mta &&
		     (buf_append_str(t, "The server ") < 0 ||
		      dsn_escape_utf8(t, r->remote_mta, strlen(r->remote_mta)) < 0 ||
		      buf_append_str(t, " answered:\n") < 0)) ||
		    ((!r->remote_mta || !*r->remote_mta) &&
		     buf_append_str(t, "The server answered:\n") < 0) ||
		    dsn_reply_lines(r, dsn_text_line, t, &cut) < 0 ||
		    (cut && buf_append_str(t, "        ...\n") < 0))
			goto too_big;
	} else if (r->reason && *r->reason) {
		if (buf_append_str(t, "    Reason: ") < 0 ||
		    dsn_escape_utf8(t, r->reason, strlen(r->reason)) < 0 ||
		    buf_append_str(t, "\n") < 0)
			goto too_big;
	}
	if (buf_append_str(t, "\n") < 0)
		goto too_big;
	return 0;
too_big:
	return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
}

static bool dsn_any(const struct msg_dsn *d, enum msg_dsn_action action)
{
	for (size_t i = 0; i < d->rcpt_count; i++)
		if (d->rcpts[i].action == action)
			return true;
	return false;
}

static bool dsn_any_failed(const struct msg_dsn *d)
{
	return dsn_any(d, MSG_DSN_FAILED);
}

static bool dsn_any_delayed(const struct msg_dsn *d)
{
	return dsn_any(d, MSG_DSN_DELAYED);
}

/* The text is 7bit when it is ASCII and no line passes 998 octets (RFC
 * 2045 §2.7); else quoted-printable UTF-8 (§6.7). */
static int dsn_part_text_encode(struct buf *p, const struct buf *t)
{
	bool seven = true;
	size_t line = 0;
	for (size_t i = 0; i < t->len && seven; i++) {
		unsigned char c = (unsigned char)t->data[i];
		if (c == '\n')
			line = 0;
		else if (c > 0x7e || c < 0x20 || ++line > RFC5322_LINE_MAX)
			seven = false;
	}
	if (buf_printf(p, "Content-Description: Notification\r\n"
	               "Content-Type: text/plain; charset=%s\r\n"
	               "Content-Transfer-Encoding: %s\r\n\r\n",
	               seven ? "us-ascii" : "UTF-8", seven ? "7bit" : "quoted-printable") < 0)
		return -1;
	if (!seven)
		return msg_mime_qp_encode(p, t->data, t->len);
	for (size_t i = 0; i < t->len; i++) {
		if (t->data[i] == '\n' ? buf_append(p, "\r\n", 2) < 0 : buf_append(p, &t->data[i], 1) < 0)
			return -1;
	}
	return 0;
}

static int dsn_part_text(struct buf *p, const struct msg_dsn *d, struct msg_error *err)
{
	struct buf t;
	buf_init(&t, p->max);
	bool failed = dsn_any_failed(d);
	int rc = buf_append_str(&t, "This is the mail system at host ");
	if (rc == 0)
		rc = dsn_escape_utf8(&t, d->reporting_mta, strlen(d->reporting_mta));
	if (rc == 0)
		rc = buf_append_str(&t, ".\n\n");
	if (rc == 0 && failed)
		rc = buf_append_str(&t, "Your message could not be delivered to one or more\n"
		                        "recipients; the mail system has given up on them.\n");
	if (rc == 0 && dsn_any_delayed(d))
		rc = buf_append_str(&t, "Delivery to recipients marked \"still trying\" is being\n"
		                        "retried; you do not need to send the message again.\n");
	if (rc == 0)
		rc = buf_append_str(&t, "The header section of your message is attached.\n\n");
	if (rc < 0) {
		buf_free(&t);
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	}
	for (size_t i = 0; i < d->rcpt_count && rc == 0; i++)
		rc = dsn_text_recipient(&t, d, &d->rcpts[i], err);
	if (rc == 0 && dsn_part_text_encode(p, &t) < 0)
		rc = msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	buf_free(&t);
	return rc;
}

/* Appends one line of the original header section (no line break) with
 * CR LF, folded so that no line passes 998 octets (RFC 5322 §2.1.1):
 * before a space or tab where there is one (unfolding then gives the line
 * back exactly, §2.2.3), else cut with CR LF SP. */
static int dsn_header_line(struct buf *h, const char *p, size_t len)
{
	size_t prefix = 0;
	for (;;) {
		if (prefix + len <= RFC5322_LINE_MAX)
			return buf_append(h, " ", prefix) < 0 || buf_append(h, p, len) < 0 ||
			       buf_append(h, "\r\n", 2) < 0 ? -1 : 0;
		size_t room = RFC5322_LINE_MAX - prefix;
		size_t w = room;   /* p[room] exists: len > room */
		while (w > 0 && p[w] != ' ' && p[w] != '\t')
			w--;
		size_t cut = w > 0 ? w : room;
		if (buf_append(h, " ", prefix) < 0 || buf_append(h, p, cut) < 0 ||
		    buf_append(h, "\r\n", 2) < 0)
			return -1;
		prefix = w > 0 ? 0 : 1;
		p += cut;
		len -= cut;
	}
}

/* The original header section: its lines up to the first empty one, each
 * ending CR LF (a lone CR or LF is a line break too), folded to 998
 * octets, at most DSN_HEADERS_MAX octets cut before the field (or,
 * for one huge field, the line) that would pass it. */
static int dsn_headers_copy(struct buf *h, const char *in, size_t len)
{
	size_t pos = 0;
	size_t field_start = 0;
	while (pos < len) {
		size_t end = pos;
		while (end < len && in[end] != '\r' && in[end] != '\n')
			end++;
		if (end == pos)
			break;   /* the empty line that ends the header section */
		size_t before = h->len;
		bool continuation = in[pos] == ' ' || in[pos] == '\t';
		if (!continuation)
			field_start = before;
		if (dsn_header_line(h, in + pos, end - pos) < 0)
			return -1;
		if (h->len > DSN_HEADERS_MAX) {
			h->len = field_start > 0 ? field_start : before;
			h->data[h->len] = '\0';
			break;
		}
		/* One line break: CR LF, a lone CR or a lone LF. */
		pos = end;
		if (pos < len && in[pos] == '\r')
			pos++;
		if (pos < len && in[pos] == '\n' && (pos == end || in[pos - 1] == '\r'))
			pos++;
	}
	return 0;
}

/* Part 3, text/rfc822-headers (RFC 6522 §4): 7bit when the headers are
 * printable ASCII, else quoted-printable, which §4 allows for "broken"
 * headers (8-bit, NUL, controls) so the part stays 7-bit. */
static int dsn_part_headers(struct buf *p, const struct msg_dsn *d)
{
	struct buf h;
	buf_init(&h, DSN_HEADERS_MAX + 2 * RFC5322_LINE_MAX);
	if (dsn_headers_copy(&h, d->original ? d->original : "", d->original ? d->original_len : 0) < 0) {
		buf_free(&h);
		return -1;
	}
	bool seven = true;
	for (size_t i = 0; i < h.len && seven; i++) {
		unsigned char c = (unsigned char)h.data[i];
		seven = (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\r' || c == '\n';
	}
	int rc = buf_printf(p, "Content-Description: Undelivered Message Headers\r\n"
	                    "Content-Type: text/rfc822-headers%s\r\n"
	                    "Content-Transfer-Encoding: %s\r\n\r\n",
	                    seven ? "" : "; charset=UTF-8", seven ? "7bit" : "quoted-printable");
	if (rc == 0 && h.len)
		rc = seven ? buf_append(p, h.data, h.len) : msg_mime_qp_encode(p, h.data, h.len);
	buf_free(&h);
	return rc;
}

/* ---- the message ---------------------------------------------------------- */

/* "=_rawmail_dsn_" and 24 hex digits of the stamp's random octets (the 12
 * the Message-ID does not use); should a part contain it (content chosen
 * to collide, or a fixed random in tests), "_N" is appended with N counting
 * up until no part does (RFC 2046 §5.1.1: the boundary must not appear in
 * the encapsulated material). */
static void dsn_boundary_pick(char b[DSN_BOUNDARY_MAX + 1], const struct msg_dsn *d,
                              const struct buf *parts, size_t nparts)
{
	size_t n = 0;
	memcpy(b, "=_rawmail_dsn_", 14);
	n = 14;
	for (size_t i = 12; i < MSG_RANDOM_LEN; i++) {
		b[n++] = "0123456789abcdef"[d->stamp.random[i] >> 4];
		b[n++] = "0123456789abcdef"[d->stamp.random[i] & 15];
	}
	b[n] = '\0';
	for (unsigned long try = 0;; try++) {
		if (try > 0) {
			char num[24];
			size_t k = 0;
			for (unsigned long x = try; x; x /= 10)
				num[k++] = (char)('0' + x % 10);
			b[n] = '_';
			for (size_t i = 0; i < k; i++)
				b[n + 1 + i] = num[k - 1 - i];
			b[n + 1 + k] = '\0';
		}
		size_t blen = strlen(b);
		bool found = false;
		for (size_t i = 0; i < nparts && !found; i++)
			found = parts[i].len && memmem(parts[i].data, parts[i].len, b, blen) != NULL;
		if (!found)
			return;
	}
}

/* A host name (letters, digits, "-", ".", "_") or an address literal of
 * printable dtext: what may follow "MAILER-DAEMON@" and "@" in the
 * Message-ID. */
static bool dsn_host_valid(const char *h)
{
	size_t len = h ? strlen(h) : 0;
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	if (h[0] == '[') {
		if (len < 3 || h[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++)
			if (h[i] < 33 || h[i] > 126 || h[i] == '[' || h[i] == ']' || h[i] == '\\')
				return false;
		return true;
	}
	if (h[0] == '.' || h[len - 1] == '.' || strstr(h, ".."))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

static int dsn_check(const struct msg_dsn *d, struct msg_error *err)
{
	if (!dsn_host_valid(d->reporting_mta))
		return msg_error_set(err, MSG_ERR_USAGE, 0, "reporting host name is not a host "
		                     "name or an address literal");
	if (!d->sender || !*d->sender)
		return msg_error_set(err, MSG_ERR_USAGE, 0, "no delivery status notification to "
		                     "the null sender (RFC 5321 section 4.5.5)");
	/* It is written raw in To (RFC 6532 allows UTF-8 there): text_escape
	 * changes nothing only in valid UTF-8 without control characters. */
	size_t slen = strlen(d->sender);
	char esc[4 * SMTP_PATH_MAX + 1];
	if (slen <= SMTP_PATH_MAX &&
	    (text_escape(esc, sizeof(esc), d->sender, slen, 0) != slen || strcmp(esc, d->sender) != 0))
		return msg_error_set(err, strpbrk(d->sender, "\r\n") ? MSG_ERR_INJECTION : MSG_ERR_USAGE,
		                     0, "the sender holds a control character or is not UTF-8");
	if (d->rcpt_count == 0 || !d->rcpts)
		return msg_error_set(err, MSG_ERR_USAGE, 0, "a notification needs a recipient");
	for (size_t i = 0; i < d->rcpt_count; i++)
		if (!d->rcpts[i].final_recipient || !*d->rcpts[i].final_recipient)
			return msg_error_set(err, MSG_ERR_USAGE, 0, "recipient %zu has no address", i + 1);
	return 0;
}

int msg_dsn_build(const struct msg_dsn *d, struct buf *out, struct msg_error *err)
{
	if (dsn_check(d, err) < 0)
		return -1;
	struct msg_stamp stamp = d->stamp;
	stamp.hostname = d->reporting_mta;
	const char *sender = d->sender;
	size_t start = out->len;
	struct buf parts[3];
	for (size_t i = 0; i < 3; i++)
		buf_init(&parts[i], out->max);
	int rc = -1;
	if (buf_printf(out, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n",
	               d->reporting_mta) < 0)
		goto too_big;
	if (msg_header_write_address_list(out, "To", &sender, 1, err) < 0 ||
	    msg_header_write_unstructured(out, "Subject",
	                                  dsn_any_failed(d) ? "Undelivered Mail Returned to Sender"
	                                                    : "Delayed Mail (still being retried)",
	                                  err) < 0 ||
	    msg_header_write_date(out, stamp.date, stamp.tz_minutes, err) < 0 ||
	    msg_header_write_message_id(out, &stamp, err) < 0)
		goto fail;
	if (dsn_part_text(&parts[0], d, err) < 0 || dsn_part_status(&parts[1], d, err) < 0)
		goto fail;
	if (dsn_part_headers(&parts[2], d) < 0)
		goto too_big;
	char b[DSN_BOUNDARY_MAX + 1];
	dsn_boundary_pick(b, d, parts, 3);
	/* RFC 3834 §5: Auto-Submitted: auto-replied, so that vacation
	 * programs do not answer it.  RFC 6522 §3: report-type is required;
	 * the boundary holds "=", a tspecial, so it is quoted (RFC 2046
	 * §5.1.1). */
	if (buf_printf(out, "Auto-Submitted: auto-replied\r\n"
	               "MIME-Version: 1.0\r\n"
	               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	               "\tboundary=\"%s\"\r\n"
	               "\r\n"
	               "This is a MIME-encapsulated message.\r\n", b) < 0)
		goto too_big;
	for (size_t i = 0; i < 3; i++)
		if (buf_printf(out, "\r\n--%s\r\n", b) < 0 ||
		    buf_append(out, parts[i].data ? parts[i].data : "", parts[i].len) < 0)
			goto too_big;
	if (buf_printf(out, "\r\n--%s--\r\n", b) < 0)
		goto too_big;
	rc = 0;
	goto done;
too_big:
	msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
fail:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
done:
	for (size_t i = 0; i < 3; i++)
		buf_free(&parts[i]);
	return rc;
}
