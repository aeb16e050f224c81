/* RFC 5322 §3.4 address lists, read leniently where the meaning is clear
 * (obsolete syntax of §4.4) and refused where a guess could send mail to
 * the wrong place. */
#include "msg/address_list.h"

#include <stdbool.h>
#include <string.h>

#include "util/limits.h"

/* The mailbox being read: the addr-spec octets so far, whether an angle
 * address closed it, and what the last token was (to tell a phrase with
 * no address, "John Doe,", from an obsolete spaced addr-spec,
 * "john . doe @ x"). */
struct list_element {
	char text[SMTP_PATH_MAX + 1];
	size_t len;
	bool angle_done;      /* <...> seen: only CFWS may follow */
	bool last_word;       /* the last token was an atom or quoted string */
	bool gap;             /* white space or a comment since that token */
	bool phrase;          /* two words apart: a display name so far */
};

struct list_reader {
	const char *v;
	size_t len;
	size_t i;
	struct msg_error *err;
};

static int list_fail(struct list_reader *rd, const char *what)
{
	return msg_error_set(rd->err, MSG_ERR_ADDRESS, 0, "To/Cc/Bcc: %s at octet %zu", what,
	                     rd->i + 1);
}

static int list_append(struct list_reader *rd, struct list_element *el, const char *p, size_t n)
{
	if (n > SMTP_PATH_MAX - el->len)
		return list_fail(rd, "address longer than 256 octets");
	memcpy(el->text + el->len, p, n);
	el->len += n;
	el->text[el->len] = '\0';
	return 0;
}

/* §3.2.2 comment, nested, with quoted-pairs; rd->i is at "(". */
static int list_skip_comment(struct list_reader *rd)
{
	size_t depth = 0;
	for (; rd->i < rd->len; rd->i++) {
		char c = rd->v[rd->i];
		if (c == '\\') {
			rd->i++;
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && --depth == 0) {
			rd->i++;
			return 0;
		}
	}
	return list_fail(rd, "unterminated comment");
}

/* A quoted string (§3.2.4) or a domain literal (§3.4.1), copied as
 * written, quoted-pairs included; rd->i is at the opening character. */
static int list_copy_delimited(struct list_reader *rd, struct list_element *el, char close)
{
	size_t start = rd->i++;
	for (; rd->i < rd->len; rd->i++) {
		char c = rd->v[rd->i];
		if (c == '\\' && rd->i + 1 < rd->len) {
			rd->i++;
		} else if (c == close) {
			rd->i++;
			return list_append(rd, el, rd->v + start, rd->i - start);
		}
	}
	return list_fail(rd, close == '"' ? "unterminated quoted string"
	                                  : "unterminated domain literal");
}

static bool list_control(unsigned char c)
{
	return (c < 32 && c != '\t' && c != '\r' && c != '\n') || c == 127;
}

static bool list_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A word-like token: an atom (any run of non-special octets, UTF-8
 * included for RFC 6532), a quoted string or a domain literal.  Two words
 * separated by white space are a phrase, not an address. */
static int list_word(struct list_reader *rd, struct list_element *el)
{
	if (el->last_word && el->gap)
		el->phrase = true;
	char c = rd->v[rd->i];
	int rc;
	if (c == '"' || c == '[') {
		rc = list_copy_delimited(rd, el, c == '"' ? '"' : ']');
	} else {
		size_t start = rd->i;
		while (rd->i < rd->len && !strchr("()<>[]:;@\\,.\" \t\r\n", rd->v[rd->i]) &&
		       !list_control((unsigned char)rd->v[rd->i]))
			rd->i++;
		rc = list_append(rd, el, rd->v + start, rd->i - start);
	}
	el->last_word = true;
	el->gap = false;
	return rc;
}

/* The angle address after "<" (§3.4), an obsolete route dropped (§4.4):
 * the element's text so far was its display name. */
static int list_angle(struct list_reader *rd, struct list_element *el)
{
	el->len = 0;
	el->text[0] = '\0';
	el->last_word = false;
	el->gap = false;
	el->phrase = false;
	rd->i++;
	while (rd->i < rd->len) {
		char c = rd->v[rd->i];
		if (c == '>') {
			rd->i++;
			el->angle_done = true;
			return 0;
		}
		if (list_control((unsigned char)c))
			return list_fail(rd, "control character");
		if (list_wsp(c)) {
			el->gap = true;
			rd->i++;
		} else if (c == '(') {
			if (list_skip_comment(rd) < 0)
				return -1;
			el->gap = true;
		} else if (c == ':' && el->len && el->text[0] == '@') {
			el->len = 0;          /* end of "@a,@b:" */
			el->text[0] = '\0';
			el->last_word = false;
			rd->i++;
		} else if (c == ',' && el->len && el->text[0] == '@') {
			if (list_append(rd, el, ",", 1) < 0)
				return -1;
			el->last_word = false;
			rd->i++;
		} else if (c == '.' || c == '@') {
			if (list_append(rd, el, &c, 1) < 0)
				return -1;
			el->last_word = false;
			rd->i++;
		} else if (strchr("<:;,)]\\", c)) {
			return list_fail(rd, "unexpected character in <address>");
		} else if (el->last_word && el->gap) {
			return list_fail(rd, "white space inside an <address>");
		} else if (list_word(rd, el) < 0) {
			return -1;
		}
	}
	return list_fail(rd, "unterminated <address>");
}

static int list_finish(struct list_reader *rd, struct list_element *el, struct msg_recipients *r)
{
	int rc = 0;
	if (el->phrase && !el->angle_done)
		return list_fail(rd, "a name without an <address>");
	/* An empty element (",,", "group:;") or "<>" names nobody. */
	if (el->len)
		rc = msg_recipients_add(r, el->text, el->len, rd->err);
	memset(el, 0, sizeof(*el));
	return rc;
}

int msg_address_list_parse(const char *value, size_t len, struct msg_recipients *r,
                           struct msg_error *err)
{
	struct list_reader rd = { .v = value, .len = len, .i = 0, .err = err };
	struct list_element el;
	memset(&el, 0, sizeof(el));
	bool in_group = false;
	while (rd.i < len) {
		char c = value[rd.i];
		if (list_control((unsigned char)c))
			return list_fail(&rd, "control character");
		if (list_wsp(c)) {
			el.gap = true;
			rd.i++;
			continue;
		}
		if (c == '(') {
			if (list_skip_comment(&rd) < 0)
				return -1;
			el.gap = true;
			continue;
		}
		if (c == ',' || c == ';') {
			if (c == ';' && !in_group)
				return list_fail(&rd, "\";\" outside a group");
			if (list_finish(&rd, &el, r) < 0)
				return -1;
			if (c == ';')
				in_group = false;
			rd.i++;
			continue;
		}
		if (el.angle_done)
			return list_fail(&rd, "text after an <address>");
		if (c == ':') {
			/* §3.4 group: what came before is the group's name. */
			if (in_group)
				return list_fail(&rd, "a group inside a group");
			in_group = true;
			memset(&el, 0, sizeof(el));
			rd.i++;
			continue;
		}
		if (c == '<') {
			if (list_angle(&rd, &el) < 0)
				return -1;
			continue;
		}
		if (c == '.' || c == '@') {
			if (list_append(&rd, &el, &c, 1) < 0)
				return -1;
			el.last_word = false;
			rd.i++;
			continue;
		}
		if (c == '>' || c == ')' || c == ']' || c == '\\')
			return list_fail(&rd, "unexpected character");
		if (list_word(&rd, &el) < 0)
			return -1;
	}
	/* A group left open at the end ("team: a@x") is read as closed:
	 * the intent is plain and nothing is lost. */
	return list_finish(&rd, &el, r);
}
