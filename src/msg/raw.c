/* Raw messages: find the header section, add what is missing, drop Bcc,
 * read recipients for -t.  The input is user-supplied bytes: every step
 * is bounded by its length, and fuzzed (tests/fuzz/fuzz_msg_headers.c). */
#include "msg/raw.h"

#include <string.h>
#include <strings.h>

#include "util/limits.h"

/* One header field: [start, end) spans its first line and continuation
 * lines with their line breaks; the name is [start, start + name_len). */
struct raw_field {
	size_t start;
	size_t end;
	size_t name_len;
	size_t colon;     /* offset of the ":" */
};

struct raw_state {
	const struct msg_raw *opt;
	const char *in;
	size_t len;
	struct buf *out;
	struct msg_recipients *rcpts;
	struct msg_error *err;
	bool has_from, has_date, has_message_id;
	/* The first walk of a message to mend (mend_long_lines): fields
	 * noted, nothing written. */
	bool dry;
	bool has_content_type;
	bool composite;      /* Content-Type multipart/ or message/ */
	bool cte_other;      /* a Content-Transfer-Encoding not 7bit or 8bit */
	bool qp;             /* the body is encoded: MIME fields replaced */
	/* After the walk: where the header section ends, and whether an
	 * empty line must be inserted there. */
	size_t pos;
	bool insert_separator;
};

/* The fields whose addresses get "@origin" (Postfix's cleanup(8) rewrites
 * the sender and recipient fields; Bcc is removed anyway). */
static const char *const raw_address_fields[] = {
	"from", "sender", "reply-to", "to", "cc",
	"resent-from", "resent-sender", "resent-to", "resent-cc",
};

/* RFC 5322 §3.6.8: ftext is printable ASCII but ":". */
static bool raw_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* The length of the line at pos, its line break included. */
static size_t raw_line_len(const char *in, size_t len, size_t pos)
{
	const char *nl = memchr(in + pos, '\n', len - pos);
	return nl ? (size_t)(nl - in) - pos + 1 : len - pos;
}

/* Whether the line at pos starts a field: ftext+ then optional white space
 * (obsolete syntax, §4.5) then ":". */
static bool raw_field_start(const char *in, size_t len, size_t pos, struct raw_field *f)
{
	size_t i = pos;
	while (i < len && raw_ftext((unsigned char)in[i]))
		i++;
	if (i == pos)
		return false;
	f->name_len = i - pos;
	while (i < len && (in[i] == ' ' || in[i] == '\t'))
		i++;
	if (i >= len || in[i] != ':')
		return false;
	/* §2.1.1: a name and its colon must fit on a line (a longer one is
	 * refused as a long line, or mended as body text). */
	if (i - pos >= RFC5322_LINE_MAX)
		return false;
	f->colon = i;
	return true;
}

static bool raw_name_is(const struct raw_state *st, const struct raw_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(st->in + f->start, name, f->name_len) == 0;
}

/* §2.2.3 unfolding: the field body with every CR and LF removed. */
static int raw_read_recipients(struct raw_state *st, const struct raw_field *f)
{
	struct buf value;
	buf_init(&value, f->end - f->colon);
	int rc = 0;
	for (size_t i = f->colon + 1; i < f->end && rc == 0;) {
		size_t n = 0;
		while (i + n < f->end && st->in[i + n] != '\r' && st->in[i + n] != '\n')
			n++;
		rc = buf_append(&value, st->in + i, n);
		i += n + 1;
	}
	if (rc < 0) {
		buf_free(&value);
		return msg_error_set(st->err, MSG_ERR_NOMEM, 0, "out of memory");
	}
	rc = msg_address_list_parse(value.data ? value.data : "", value.len, st->rcpts, st->err);
	buf_free(&value);
	return rc;
}

/* The field's value from its first non-white octet, as a lower-case
 * comparison with prefix: Content-Type and Content-Transfer-Encoding
 * (RFC 2045 §5.1, §6.1; comments there are rare and read as "other"). */
static bool raw_value_starts(const struct raw_state *st, const struct raw_field *f,
                             const char *prefix, bool whole)
{
	size_t i = f->colon + 1;
	while (i < f->end && strchr(" \t\r\n", st->in[i]))
		i++;
	size_t n = strlen(prefix);
	if (f->end - i < n || strncasecmp(st->in + i, prefix, n) != 0)
		return false;
	if (!whole)
		return true;
	for (i += n; i < f->end; i++)
		if (!strchr(" \t\r\n", st->in[i]))
			return false;
	return true;
}

static bool raw_is_address_field(const struct raw_state *st, const struct raw_field *f)
{
	for (size_t k = 0; k < sizeof(raw_address_fields) / sizeof(raw_address_fields[0]); k++)
		if (raw_name_is(st, f, raw_address_fields[k]))
			return true;
	return false;
}

/* The field into out: its addresses qualified (origin) and its long lines
 * folded (msg_raw_long_append, a no-op for lines within 998 octets). */
static int raw_copy_field(struct raw_state *st, const struct raw_field *f)
{
	const char *p = st->in + f->start;
	size_t n = f->end - f->start;
	if (st->opt->mended && st->opt->mend_long_lines && msg_raw_has_long_line(p, n))
		*st->opt->mended |= MSG_RAW_MENDED_FOLDED;
	if (!st->opt->origin || !raw_is_address_field(st, f)) {
		int rc = st->opt->mend_long_lines ? msg_raw_long_append(st->out, p, n, true)
		                                  : buf_append(st->out, p, n);
		return rc < 0 ? msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big") : 0;
	}
	struct buf field;
	buf_init(&field, st->out->max);
	size_t name = f->colon + 1 - f->start;
	int rc = buf_append(&field, p, name);
	if (rc == 0 && msg_address_list_qualify(p + name, n - name, st->opt->origin, &field) < 0)
		rc = -1;
	if (rc == 0)
		rc = msg_raw_long_append(st->out, field.data, field.len, true);
	buf_free(&field);
	return rc < 0 ? msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big") : 0;
}

/* Notes what the field is, reads its recipients, and copies it unless it
 * is a Bcc (or, for a body to encode, a MIME field replaced). */
static int raw_take_field(struct raw_state *st, const struct raw_field *f)
{
	bool bcc = raw_name_is(st, f, "bcc");
	bool mime = raw_name_is(st, f, "mime-version");
	bool cte = raw_name_is(st, f, "content-transfer-encoding");
	if (st->dry) {
		if (raw_name_is(st, f, "content-type")) {
			st->has_content_type = true;
			st->composite = st->composite || raw_value_starts(st, f, "multipart/", false) ||
			                raw_value_starts(st, f, "message/", false);
		}
		if (cte && !raw_value_starts(st, f, "7bit", true) &&
		    !raw_value_starts(st, f, "8bit", true))
			st->cte_other = true;
		return 0;
	}
	if (raw_name_is(st, f, "from"))
		st->has_from = true;
	else if (raw_name_is(st, f, "date"))
		st->has_date = true;
	else if (raw_name_is(st, f, "message-id"))
		st->has_message_id = true;
	if (st->opt->extract_recipients &&
	    (bcc || raw_name_is(st, f, "to") || raw_name_is(st, f, "cc")) &&
	    raw_read_recipients(st, f) < 0)
		return -1;
	if (bcc || (st->qp && (mime || cte)))
		return 0;
	return raw_copy_field(st, f);
}

/* The missing fields, written with CR LF by the header writers, then
 * converted to the message's own line ending (their values hold no CR:
 * the writers refuse line breaks). */
static int raw_add_missing(struct raw_state *st, bool crlf, const char *charset)
{
	struct buf add;
	buf_init(&add, st->out->max);
	const struct msg_raw *o = st->opt;
	int rc = 0;
	if (!st->has_from && o->from)
		rc = msg_header_write_mailbox(&add, "From", o->from_name, o->from, st->err);
	if (rc == 0 && !st->has_date)
		rc = msg_header_write_date(&add, o->stamp.date, o->stamp.tz_minutes, st->err);
	if (rc == 0 && !st->has_message_id)
		rc = msg_header_write_message_id(&add, &o->stamp, st->err);
	/* RFC 2045 §4, §6.1: the encoding is declared, in a MIME message. */
	if (rc == 0 && st->qp &&
	    (buf_append_str(&add, "MIME-Version: 1.0\r\n"
	                          "Content-Transfer-Encoding: quoted-printable\r\n") < 0 ||
	     (charset && !st->has_content_type &&
	      buf_printf(&add, "Content-Type: text/plain; charset=%s\r\n", charset) < 0)))
		rc = msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big");
	for (size_t i = 0; rc == 0 && i < add.len; i++) {
		if (!crlf && add.data[i] == '\r')
			continue;
		if (buf_append(st->out, add.data + i, 1) < 0)
			rc = msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big");
	}
	buf_free(&add);
	return rc;
}

/* The header section, field by field: st->pos ends at its empty line
 * (or the first body line, st->insert_separator), or at the end. */
static int raw_walk_header(struct raw_state *st)
{
	const char *in = st->in;
	size_t len = st->len;
	struct raw_field f;
	bool open = false;         /* f is a field still taking continuations */
	size_t pos = 0;
	st->insert_separator = false;
	while (pos < len) {
		size_t n = raw_line_len(in, len, pos);
		bool empty = in[pos] == '\n' || (n == 2 && in[pos] == '\r' && in[pos + 1] == '\n');
		bool continuation = in[pos] == ' ' || in[pos] == '\t';
		if (open && continuation) {
			f.end = pos + n;
			pos += n;
			continue;
		}
		if (open && raw_take_field(st, &f) < 0)
			return -1;
		open = false;
		if (empty)
			break;
		if (continuation || !raw_field_start(in, len, pos, &f)) {
			st->insert_separator = true;   /* a body line: headers end */
			break;
		}
		f.start = pos;
		f.end = pos + n;
		open = true;
		pos += n;
	}
	if (open && raw_take_field(st, &f) < 0)
		return -1;
	st->pos = pos;
	return 0;
}

/* The body from pos: as it is, with its long lines broken, or encoded. */
static int raw_write_body(struct raw_state *st, bool crlf, bool mend)
{
	size_t pos = st->pos;
	int rc = 0;
	if (st->qp) {
		/* The empty line ending the header section stays as it is. */
		size_t sep = st->insert_separator ? 0 : raw_line_len(st->in, st->len, pos);
		rc = buf_append(st->out, st->in + pos, sep);
		if (rc == 0)
			rc = msg_raw_qp_append(st->out, st->in + pos + sep, st->len - pos - sep, crlf);
	} else if (mend) {
		rc = msg_raw_long_append(st->out, st->in + pos, st->len - pos, false);
	} else {
		rc = buf_append(st->out, st->in + pos, st->len - pos);
	}
	return rc < 0 ? msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big") : 0;
}

int msg_raw_prepare(const struct msg_raw *opt, const char *in, size_t len, struct buf *out,
                    struct msg_recipients *rcpts, struct msg_error *err)
{
	if ((opt->mend_long_lines ? msg_raw_check_nul(in, len, err)
	                          : msg_raw_check_lines(in, len, err)) < 0)
		return -1;
	struct raw_state st = { .opt = opt, .in = in, .len = len, .out = out,
	                        .rcpts = rcpts, .err = err };
	size_t out_start = out->len;
	size_t first = len ? raw_line_len(in, len, 0) : 0;
	bool crlf = len == 0 || in[first - 1] != '\n' || (first >= 2 && in[first - 2] == '\r');

	/* A body to mend: a first walk reads its MIME fields. */
	bool mend = opt->mend_long_lines && msg_raw_has_long_line(in, len);
	const char *charset = NULL;
	if (mend) {
		st.dry = true;
		if (raw_walk_header(&st) < 0)
			return -1;
		st.dry = false;
		const char *body = in + st.pos;
		size_t body_len = len - st.pos;
		st.qp = !st.composite && !st.cte_other && msg_raw_has_long_line(body, body_len);
		if (st.qp)
			charset = msg_raw_body_charset(body, body_len);
		if (opt->mended && msg_raw_has_long_line(body, body_len))
			*opt->mended |= st.qp ? MSG_RAW_MENDED_QP : MSG_RAW_MENDED_BROKEN;
	}
	if (raw_walk_header(&st) < 0)
		return -1;
	/* A last field without a line break gets one before the additions. */
	if (out->len > out_start && out->data[out->len - 1] != '\n' &&
	    buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	if (raw_add_missing(&st, crlf, charset) < 0)
		return -1;
	if (st.insert_separator && buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	return raw_write_body(&st, crlf, mend);
}
