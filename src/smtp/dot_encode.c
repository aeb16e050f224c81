/* The client side of DATA: any line endings in, CRLF and dot-stuffing out
 * (see dot_encode.h).  A byte-level state machine, resumable at any octet.
 *
 * Line endings.  LF, CR LF and a bare CR each end one line (the message
 * may come from a file with any convention; RFC 5321 §2.3.8 allows only
 * CR LF on the wire, and a bare CR or LF is what SMTP smuggling is made
 * of).  A CR is written as CR LF the moment it arrives and the state
 * remembers it, so an LF right after it, in this call or the next, is
 * swallowed: nothing is held back between calls.
 *
 * Dot-stuffing (RFC 5321 §4.5.2): a line that starts with "." gets one
 * more, so no line of the output but the final "." CR LF is a lone "."
 * and the receiver's unstuffing gives back the line.  "Starts" means after
 * any of the three line endings, since each became a CR LF on the wire. */
#include "smtp/dot_encode.h"

#include <string.h>

enum {
	DOT_LINE_START,  /* at the start, or after an LF that ended a line */
	DOT_CR,          /* after a CR (written as CR LF): an LF is swallowed */
	DOT_TEXT,        /* inside a line */
};

void smtp_dot_encoder_init(struct smtp_dot_encoder *e)
{
	memset(e, 0, sizeof(*e));
	e->state = DOT_LINE_START;
}

static void dot_line_grow(struct smtp_dot_encoder *e, size_t n)
{
	e->line_len += n;
	if (e->line_len > e->longest_line)
		e->longest_line = e->line_len;
}

size_t smtp_dot_encode(struct smtp_dot_encoder *e, const char *in, size_t len, char *out)
{
	size_t i = 0;
	size_t o = 0;
	/* Invariant: o <= 2 * i (one octet gives at most ".." or CR LF). */
	while (i < len) {
		if (e->state == DOT_TEXT) {
			/* The common case: the rest of a line is copied. */
			size_t start = i;
			while (i < len && in[i] != '\r' && in[i] != '\n')
				i++;
			size_t n = i - start;
			if (n) {
				memcpy(out + o, in + start, n);
				o += n;
				dot_line_grow(e, n);
			}
			if (i == len)
				break;
		}
		char ch = in[i++];
		if (ch == '\n' && e->state == DOT_CR) {
			/* The second half of a CR LF: already written. */
			e->state = DOT_LINE_START;
			continue;
		}
		if (ch == '\r' || ch == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			e->lines++;
			e->line_len = 0;
			e->state = ch == '\r' ? DOT_CR : DOT_LINE_START;
			continue;
		}
		if (ch == '.' && e->state != DOT_TEXT)
			out[o++] = '.';  /* RFC 5321 §4.5.2: doubled */
		out[o++] = ch;
		dot_line_grow(e, 1);
		e->state = DOT_TEXT;
	}
	return o;
}

size_t smtp_dot_encode_finish(struct smtp_dot_encoder *e, char *out)
{
	size_t o = 0;
	if (e->state == DOT_TEXT) {
		/* RFC 5321 §4.1.1.4: the terminator is CR LF "." CR LF, its
		 * first CR LF ending the last line; a message whose last line
		 * had none gets one (an empty message needs none). */
		out[o++] = '\r';
		out[o++] = '\n';
		e->lines++;
	}
	memcpy(out + o, ".\r\n", 3);
	o += 3;
	e->line_len = 0;
	e->state = DOT_LINE_START;
	return o;
}
