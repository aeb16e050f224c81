/* Raw messages: find the header section, add what is missing, drop Bcc,
 * read recipients for -t.  The input is user-supplied bytes: every step
 * is bounded by its length, and fuzzed (tests/fuzz/fuzz_msg_headers.c). */
#include "msg/raw.h"

#include <string.h>
#include <strings.h>

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

/* Notes what the field is, reads its recipients, and copies it unless it
 * is a Bcc. */
static int raw_take_field(struct raw_state *st, const struct raw_field *f)
{
	bool bcc = raw_name_is(st, f, "bcc");
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
	if (bcc)
		return 0;
	if (buf_append(st->out, st->in + f->start, f->end - f->start) < 0)
		return msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big");
	return 0;
}

/* The missing fields, written with CR LF by the header writers, then
 * converted to the message's own line ending (their values hold no CR:
 * the writers refuse line breaks). */
static int raw_add_missing(struct raw_state *st, bool crlf)
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
	for (size_t i = 0; rc == 0 && i < add.len; i++) {
		if (!crlf && add.data[i] == '\r')
			continue;
		if (buf_append(st->out, add.data + i, 1) < 0)
			rc = msg_error_set(st->err, MSG_ERR_TOO_BIG, 0, "message too big");
	}
	buf_free(&add);
	return rc;
}

int msg_raw_prepare(const struct msg_raw *opt, const char *in, size_t len, struct buf *out,
                    struct msg_recipients *rcpts, struct msg_error *err)
{
	if (msg_raw_check_lines(in, len, err) < 0)
		return -1;
	struct raw_state st = { .opt = opt, .in = in, .len = len, .out = out,
	                        .rcpts = rcpts, .err = err };
	size_t out_start = out->len;
	size_t first = len ? raw_line_len(in, len, 0) : 0;
	bool crlf = len == 0 || in[first - 1] != '\n' || (first >= 2 && in[first - 2] == '\r');

	struct raw_field f;
	bool open = false;         /* f is a field still taking continuations */
	bool insert_separator = false;
	size_t pos = 0;
	while (pos < len) {
		size_t n = raw_line_len(in, len, pos);
		bool empty = in[pos] == '\n' || (n == 2 && in[pos] == '\r' && in[pos + 1] == '\n');
		bool continuation = in[pos] == ' ' || in[pos] == '\t';
		if (open && continuation) {
			f.end = pos + n;
			pos += n;
			continue;
		}
		if (open && raw_take_field(&st, &f) < 0)
			return -1;
		open = false;
		if (empty)
			break;
		if (continuation || !raw_field_start(in, len, pos, &f)) {
			insert_separator = true;   /* a body line: headers end */
			break;
		}
		f.start = pos;
		f.end = pos + n;
		open = true;
		pos += n;
	}
	if (open && raw_take_field(&st, &f) < 0)
		return -1;
	/* A last field without a line break gets one before the additions. */
	if (out->len > out_start && out->data[out->len - 1] != '\n' &&
	    buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	if (raw_add_missing(&st, crlf) < 0)
		return -1;
	if (insert_separator && buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	if (buf_append(out, in + pos, len - pos) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	return 0;
}
