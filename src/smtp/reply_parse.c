/* The client side's SMTP reply parser: a byte-level state machine that can
 * stop after any octet and resume with the next read (see reply_parse.h).
 *
 * RFC 5321 §4.2: a reply is one or more lines "DDD-text" ending with one
 * "DDD text" or "DDD"; §4.2.1 requires the same code on every line of a
 * multi-line reply, so a line with another code is MALFORMED rather than
 * the start of something we would have to guess about.  §4.2 also gives
 * the code's syntax: first digit 2-5, the others 0-9.
 *
 * Every decision is made on the octet that shows it (a wrong digit, a bad
 * 4th octet, one octet too many), never later, so the same input gives the
 * same result at the same offset however the reads split it.  The only
 * octet held is a CR: it is a line ending only if an LF follows, otherwise
 * it is content (a bare CR ends nothing, as in DATA).  A bare LF is taken
 * as a line ending: a tolerant reader of what peers send (§4.1.1.4 is
 * about what we send).
 *
 * Text is stored as it arrives, its control octets (and DEL) already
 * replaced by '?', so the caller can log it without further escaping.
 * A NUL has no business in a reply and is MALFORMED wherever it is. */
#include "smtp/reply_parse.h"

#include <string.h>

enum {
	REPLY_CODE,       /* expecting code digit number linelen (0..2) */
	REPLY_SEP,        /* after "DDD": ' ', '-' or the line end */
	REPLY_SEP_CR,     /* "DDD" CR: only an LF may follow */
	REPLY_TEXT,       /* in the text of a line */
	REPLY_TEXT_CR,    /* a CR in the text, held: LF ends the line */
	REPLY_MALFORMED,  /* sticky errors: the connection is unusable */
	REPLY_TOO_LONG,
};

/* What one octet did. */
enum step { STEP_MORE, STEP_DONE, STEP_MALFORMED, STEP_TOO_LONG };

static void reply_reset(struct smtp_reply_parser *p)
{
	/* text[] is left alone: the last reply's out->text points into it
	 * until the next call. */
	p->state = REPLY_CODE;
	p->code = 0;
	p->linelen = 0;
	p->nlines = 0;
	p->textlen = 0;
	p->last_line = false;
}

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	reply_reset(p);
	p->text[0] = '\0';
}

static enum step reply_fail(struct smtp_reply_parser *p, enum step why)
{
	p->state = why == STEP_TOO_LONG ? REPLY_TOO_LONG : REPLY_MALFORMED;
	return why;
}

static enum step reply_digit(struct smtp_reply_parser *p, unsigned char ch)
{
	if (ch < '0' || ch > '9')
		return reply_fail(p, STEP_MALFORMED);
	int d = ch - '0';
	if (p->nlines == 0) {
		/* RFC 5321 §4.2: the first digit is 2 to 5, all a client
		 * acts on (§4.2.1).  The ABNF limits the second to 0-5; any
		 * digit is accepted there, as a tolerant reader. */
		if (p->linelen == 0 && (d < 2 || d > 5))
			return reply_fail(p, STEP_MALFORMED);
		p->code = p->code * 10 + d;
	} else {
		/* RFC 5321 §4.2.1: each line carries the same code. */
		static const int div[3] = { 100, 10, 1 };
		if (p->code / div[p->linelen] % 10 != d)
			return reply_fail(p, STEP_MALFORMED);
	}
	if (++p->linelen == 3)
		p->state = REPLY_SEP;
	return STEP_MORE;
}

/* One octet of text, sanitised; counted against the line and the total. */
static enum step reply_text_add(struct smtp_reply_parser *p, unsigned char ch)
{
	if (p->linelen >= SMTP_REPLY_PARSE_LINE_MAX || p->textlen >= SMTP_REPLY_PARSE_TOTAL_MAX)
		return reply_fail(p, STEP_TOO_LONG);
	if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
		ch = '?';
	p->text[p->textlen++] = (char)ch;
	p->linelen++;
	return STEP_MORE;
}

static enum step reply_line_end(struct smtp_reply_parser *p)
{
	p->nlines++;
	p->linelen = 0;
	p->state = REPLY_CODE;
	if (p->last_line) {
		p->text[p->textlen] = '\0';
		return STEP_DONE;
	}
	/* Another line follows: its text is joined with '\n'. */
	if (p->textlen >= SMTP_REPLY_PARSE_TOTAL_MAX)
		return reply_fail(p, STEP_TOO_LONG);
	p->text[p->textlen++] = '\n';
	return STEP_MORE;
}

static enum step reply_step(struct smtp_reply_parser *p, unsigned char ch)
{
	if (ch == '\0')
		return reply_fail(p, STEP_MALFORMED);
	switch (p->state) {
	case REPLY_CODE:
		return reply_digit(p, ch);
	case REPLY_SEP:
		if (ch == ' ' || ch == '-') {
			p->last_line = ch == ' ';
			/* A line that announces one more when the reply
			 * already has its last allowed line: fail now
			 * rather than at the next line. */
			if (!p->last_line && p->nlines + 1 >= SMTP_REPLY_PARSE_LINES_MAX)
				return reply_fail(p, STEP_TOO_LONG);
			p->linelen++;
			p->state = REPLY_TEXT;
			return STEP_MORE;
		}
		if (ch == '\r') {
			p->state = REPLY_SEP_CR;
			return STEP_MORE;
		}
		if (ch == '\n') {
			/* "DDD" alone: a last line with no text. */
			p->last_line = true;
			return reply_line_end(p);
		}
		return reply_fail(p, STEP_MALFORMED);
	case REPLY_SEP_CR:
		if (ch != '\n')
			return reply_fail(p, STEP_MALFORMED);
		p->last_line = true;
		return reply_line_end(p);
	case REPLY_TEXT_CR:
		if (ch == '\n')
			return reply_line_end(p);
		/* The held CR was bare: content, written as '?'. */
		if (reply_text_add(p, '\r') != STEP_MORE)
			return STEP_TOO_LONG;
		p->state = REPLY_TEXT;
		break;
	case REPLY_TEXT:
		break;
	case REPLY_TOO_LONG:
		return STEP_TOO_LONG;
	default:
		return STEP_MALFORMED;
	}
	/* REPLY_TEXT */
	if (ch == '\r') {
		p->state = REPLY_TEXT_CR;
		return STEP_MORE;
	}
	if (ch == '\n')
		return reply_line_end(p);
	return reply_text_add(p, ch);
}

/* RFC 3463 §2 / RFC 2034 §4: class "." subject "." detail, class 2, 4 or 5
 * and the same as the reply's first digit (so "250 5.1.1 x" has none),
 * subject and detail 1 to 3 digits, then a space or the end of the line. */
static void reply_enhanced(const char *text, int code, char *enh, size_t size)
{
	enh[0] = '\0';
	int cls = code / 100;
	if ((cls != 2 && cls != 4 && cls != 5) || text[0] != '0' + cls || text[1] != '.')
		return;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (text[i] >= '0' && text[i] <= '9' && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return;
		if (part == 0) {
			if (text[i] != '.')
				return;
			i++;
		}
	}
	if (text[i] != ' ' && text[i] != '\n' && text[i] != '\0')
		return;
	if (i >= size)
		return;
	memcpy(enh, text, i);
	enh[i] = '\0';
}

enum smtp_reply_parse_status smtp_reply_parser_feed(struct smtp_reply_parser *p,
                                                    const char *data, size_t len,
                                                    size_t *consumed,
                                                    struct smtp_server_reply *out)
{
	if (p->state == REPLY_MALFORMED || p->state == REPLY_TOO_LONG) {
		*consumed = 0;
		return p->state == REPLY_TOO_LONG ? SMTP_REPLY_TOO_LONG : SMTP_REPLY_MALFORMED;
	}
	for (size_t i = 0; i < len; i++) {
		enum step s = reply_step(p, (unsigned char)data[i]);
		if (s == STEP_MORE)
			continue;
		*consumed = i + 1;
		if (s == STEP_MALFORMED)
			return SMTP_REPLY_MALFORMED;
		if (s == STEP_TOO_LONG)
			return SMTP_REPLY_TOO_LONG;
		out->code = p->code;
		out->nlines = p->nlines;
		out->text = p->text;
		reply_enhanced(p->text, p->code, out->enhanced, sizeof(out->enhanced));
		/* Pipelining: the next octet starts the next reply. */
		reply_reset(p);
		return SMTP_REPLY_DONE;
	}
	*consumed = len;
	return SMTP_REPLY_NEED_MORE;
}
