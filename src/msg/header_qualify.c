/* Postfix's append_at_myorigin for header addresses: "root (Cron Daemon)"
 * becomes "root@origin (Cron Daemon)".  A scanner of RFC 5322 §3.4 address
 * lists that keeps positions in the field as written (folding, comments,
 * quoted strings and display names are copied byte for byte; only
 * "@origin" is inserted).  address_list.c reads the same grammar but
 * copies each addr-spec out with its comments dropped, and refuses a list
 * as a whole: its reader has no positions to insert at, so this one is
 * its own, and as strict (what it cannot read is left as written). */
#include "msg/address_list.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define QUALIFY_NONE SIZE_MAX

struct qualify {
	const char *v;
	size_t len;
	size_t i;
	const char *domain;
	struct buf *out;
	size_t copied;       /* v[0..copied) is in out */
	bool changed;
	bool full;           /* out's maximum reached */
	/* The element (one mailbox or addr-spec) being read. */
	size_t word_end;     /* just after its last word outside <>; NONE: none */
	bool at;             /* an "@" outside <> */
	bool last_word, gap, phrase;
	bool angle_done;
	size_t angle_insert; /* where "@domain" goes inside its <>; NONE: nothing */
};

static bool qualify_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool qualify_control(unsigned char c)
{
	return (c < 32 && !qualify_wsp((char)c)) || c == 127;
}

/* RFC 5322 §3.2.2 comment, nested, with quoted-pairs; q->i at "(". */
static bool qualify_comment(struct qualify *q)
{
	size_t depth = 0;
	for (; q->i < q->len; q->i++) {
		unsigned char c = (unsigned char)q->v[q->i];
		if (qualify_control(c))
			return false;
		if (c == '\\')
			q->i++;
		else if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0) {
			q->i++;
			return true;
		}
	}
	return false;
}

/* A quoted string (§3.2.4) or a domain literal (§3.4.1); q->i at its
 * opening character. */
static bool qualify_delimited(struct qualify *q, char close)
{
	for (q->i++; q->i < q->len; q->i++) {
		unsigned char c = (unsigned char)q->v[q->i];
		if (qualify_control(c))
			return false;
		if (c == '\\' && q->i + 1 < q->len)
			q->i++;
		else if (c == (unsigned char)close) {
			q->i++;
			return true;
		}
	}
	return false;
}

/* An atom (any run of non-specials, UTF-8 included: RFC 6532), a quoted
 * string or a domain literal.  A literal is a domain only: after "@". */
static bool qualify_word(struct qualify *q, bool at)
{
	char c = q->v[q->i];
	if (c == '[')
		return at && qualify_delimited(q, ']');
	if (c == '"')
		return qualify_delimited(q, '"');
	size_t start = q->i;
	while (q->i < q->len && !strchr("()<>[]:;@\\,.\" \t\r\n", q->v[q->i]) &&
	       !qualify_control((unsigned char)q->v[q->i]))
		q->i++;
	return q->i > start;
}

/* Appends v[copied..at), then "@domain". */
static bool qualify_insert(struct qualify *q, size_t at)
{
	if (buf_append(q->out, q->v + q->copied, at - q->copied) < 0 ||
	    buf_append(q->out, "@", 1) < 0 || buf_append_str(q->out, q->domain) < 0) {
		q->full = true;
		return false;
	}
	q->copied = at;
	q->changed = true;
	return true;
}

/* The angle address after "<" (§3.4), with an obsolete route (§4.4)
 * skipped: records where a local part without a domain ends. */
static bool qualify_angle(struct qualify *q)
{
	size_t word_end = QUALIFY_NONE;
	bool at = false, last_word = false, gap = false, any = false;
	q->i++;
	while (q->i < q->len) {
		char c = q->v[q->i];
		if (qualify_control((unsigned char)c))
			return false;
		if (c == '>') {
			q->i++;
			q->angle_done = true;
			q->angle_insert = any && !at ? word_end : QUALIFY_NONE;
			return !any || word_end != QUALIFY_NONE || at;
		}
		if (qualify_wsp(c)) {
			gap = true;
			q->i++;
		} else if (c == '(') {
			if (!qualify_comment(q))
				return false;
			gap = true;
		} else if (c == '@' && !any) {
			/* "@a,@b:" route: up to its ":" (no domain literal in
			 * an obsolete route holds one). */
			while (q->i < q->len && q->v[q->i] != ':' && q->v[q->i] != '>' &&
			       q->v[q->i] != '<' && !qualify_control((unsigned char)q->v[q->i]))
				q->i++;
			if (q->i >= q->len || q->v[q->i] != ':')
				return false;
			q->i++;
			gap = false;
		} else if (c == '.' || c == '@') {
			if (c == '.' && !at)
				word_end = q->i + 1;
			at = at || c == '@';
			any = true;
			last_word = false;
			q->i++;
		} else if (strchr("<:;,)]\\", c)) {
			return false;
		} else if (last_word && gap) {
			return false;     /* white space inside an addr-spec */
		} else {
			if (!qualify_word(q, at))
				return false;
			any = true;
			last_word = true;
			gap = false;
			if (!at)
				word_end = q->i;
		}
	}
	return false;
}

/* The end of an element: "@domain" where its addr-spec has none. */
static bool qualify_finish(struct qualify *q)
{
	bool ok = true;
	if (q->angle_done) {
		if (q->angle_insert != QUALIFY_NONE)
			ok = qualify_insert(q, q->angle_insert);
	} else if (q->phrase) {
		ok = false;           /* a name with no address: not ours to guess */
	} else if (q->word_end != QUALIFY_NONE && !q->at) {
		ok = qualify_insert(q, q->word_end);
	}
	q->word_end = QUALIFY_NONE;
	q->angle_insert = QUALIFY_NONE;
	q->at = q->last_word = q->gap = q->phrase = q->angle_done = false;
	return ok;
}

static bool qualify_list(struct qualify *q)
{
	bool in_group = false;
	while (q->i < q->len) {
		char c = q->v[q->i];
		if (qualify_control((unsigned char)c))
			return false;
		if (qualify_wsp(c)) {
			q->gap = true;
			q->i++;
		} else if (c == '(') {
			if (!qualify_comment(q))
				return false;
			q->gap = true;
		} else if (c == ',' || c == ';') {
			if (c == ';' && !in_group)
				return false;
			if (!qualify_finish(q))
				return false;
			in_group = in_group && c != ';';
			q->i++;
		} else if (q->angle_done) {
			return false;     /* text after an <address> */
		} else if (c == ':') {
			/* §3.4 group: what came before is its display name. */
			if (in_group)
				return false;
			in_group = true;
			q->word_end = QUALIFY_NONE;
			q->at = q->last_word = q->gap = q->phrase = false;
			q->i++;
		} else if (c == '<') {
			if (!qualify_angle(q))
				return false;
		} else if (c == '.' || c == '@') {
			/* A dot belongs to the local part as written ("a." stays
			 * "a.@origin", never "a@origin."). */
			if (c == '.' && !q->at)
				q->word_end = q->i + 1;
			q->at = q->at || c == '@';
			q->last_word = false;
			q->i++;
		} else if (strchr(">)]\\", c)) {
			return false;
		} else {
			if (q->last_word && q->gap)
				q->phrase = true;
			if (!qualify_word(q, q->at))
				return false;
			if (!q->at)
				q->word_end = q->i;
			q->last_word = true;
			q->gap = false;
		}
	}
	/* A group left open at the end is read as closed (as address_list.c
	 * does). */
	return qualify_finish(q);
}

int msg_address_list_qualify(const char *value, size_t len, const char *domain,
                             struct buf *out)
{
	size_t start = out->len;
	if (domain && *domain) {
		struct qualify q = { .v = value, .len = len, .domain = domain, .out = out,
		                     .word_end = QUALIFY_NONE, .angle_insert = QUALIFY_NONE };
		bool read = qualify_list(&q);
		if (q.full)
			goto full;
		if (read) {
			if (buf_append(out, value + q.copied, len - q.copied) < 0)
				goto full;
			return q.changed ? MSG_QUALIFY_CHANGED : MSG_QUALIFY_SAME;
		}
		/* Not read whole: what was written goes, the field stays as is. */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		if (buf_append(out, value, len) < 0)
			goto full;
		return MSG_QUALIFY_UNREADABLE;
	}
	if (buf_append(out, value, len) < 0)
		goto full;
	return MSG_QUALIFY_SAME;
full:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return -1;
}
