/* DATA and BDAT content decoding: a byte-level state machine that can stop
 * after any octet and resume with the next read (see content.h).
 *
 * Line endings.  A CR is written as LF the moment it arrives and the state
 * remembers it; an LF right after it completes a CR LF and writes nothing,
 * anything else makes the CR bare (counted then).  So a CR LF split across
 * reads or BDAT chunks needs no held-back octet, and a lone CR at the end
 * of the last BDAT chunk is only counted by smtp_content_finish.
 *
 * The end of DATA (RFC 5321 §4.1.1.4) is CR LF "." CR LF, where the first
 * CR LF may be the start of the DATA stream itself (an empty message is
 * ".\r\n").  Dot-unstuffing (RFC 5321 §4.5.2) applies to the "." that
 * starts such a line: it is held until the next octet shows whether it is
 * the end; if not, it is removed.  The RFC removes the first "." only when
 * "there are other characters on the line", and since only CR LF ends a
 * line, a bare CR or LF after the "." is such a character: the "." goes.
 * A "." after a bare CR or LF starts no SMTP line and is plain content.
 *
 * What the smuggling sequences decode to (each ends nothing; shown with the
 * LF that the CR LF or bare ending before them decodes to, and the counts
 * under SMTP_BARE_REJECT):
 *   "\n.\n"        -> "\n.\n"    bare LF, "." kept as content, bare LF: 2
 *   "\n.\r\n"      -> "\n.\n"    bare LF, "." kept, CR LF: 1
 *   "\r.\r" X      -> "\n.\n" X  bare CR, "." kept, bare CR (X != LF): 2
 *   "\r\n.\r\r\n"  -> "\n\n\n"   CR LF, "." removed, bare CR, CR LF: 1
 *   "\r\n.\n"      -> "\n\n"     CR LF, "." removed, bare LF: 1
 *   "\r\n.\r" X    -> "\n\n" X   CR LF, "." removed, bare CR, X (X != LF): 1
 * After "\r\n.\r\r\n" a line starts after a real CR LF again, so a "."
 * CR LF right after it does end the DATA; the input then ends in the
 * genuine "\r\n.\r\n".
 *
 * Output never outruns input.  Every octet decodes to at most one octet,
 * except the octet X after a held "." CR: the CR turns out to be bare
 * (one LF) and X is written too.  The "." and the CR wrote nothing, so over
 * the stream output still trails input, but they may have come in the
 * previous call.  Decoded octets therefore go through a small queue (pend)
 * and are written only while the call has written fewer octets than it
 * consumed.  The queue holds at most 1 octet between calls: it grows only
 * at that X, and the "." and CR before it each left room to empty it. */
#include "smtp/content.h"

#include <string.h>

enum {
	CONTENT_LINE_START, /* after a real CR LF, or at the start of DATA */
	CONTENT_TEXT,       /* in a line, or after a bare CR or LF */
	CONTENT_CR,         /* a CR arrived and was written as LF */
	CONTENT_DOT,        /* "." at CONTENT_LINE_START, held */
	CONTENT_DOT_CR,     /* "." CR at CONTENT_LINE_START, held: LF ends DATA */
	CONTENT_DONE,       /* DATA ended: consume nothing more */
};

static void content_init(struct smtp_content *c, bool dot_mode, enum smtp_bare_policy policy)
{
	memset(c, 0, sizeof(*c));
	c->dot_mode = dot_mode;
	c->policy = policy;
	/* RFC 5321 §4.1.1.4: the DATA stream starts as if after a CR LF, so
	 * ".\r\n" right after the 354 is an empty message. */
	c->state = dot_mode ? CONTENT_LINE_START : CONTENT_TEXT;
}

void smtp_content_init_data(struct smtp_content *c, enum smtp_bare_policy policy)
{
	content_init(c, true, policy);
}

void smtp_content_init_bdat(struct smtp_content *c, enum smtp_bare_policy policy)
{
	content_init(c, false, policy);
}

static void content_bare(struct smtp_content *c)
{
	if (c->policy == SMTP_BARE_REJECT)
		c->bare_count++;
}

/* Decodes one octet, queueing what it decodes to in c->pend. */
static void content_step(struct smtp_content *c, unsigned char ch)
{
	switch (c->state) {
	case CONTENT_LINE_START:
		if (ch == '.') {
			c->state = CONTENT_DOT;
			return;
		}
		break;
	case CONTENT_CR:
		if (ch == '\n') {
			/* The CR's LF is already written: this completes a
			 * real CR LF, where a stuffed "." may follow. */
			c->state = c->dot_mode ? CONTENT_LINE_START : CONTENT_TEXT;
			return;
		}
		content_bare(c);
		break;
	case CONTENT_DOT:
		if (ch == '\r') {
			c->state = CONTENT_DOT_CR;
			return;
		}
		/* RFC 5321 §4.5.2: other characters follow, so the "." was
		 * stuffed; drop it and decode ch as content. */
		break;
	case CONTENT_DOT_CR:
		if (ch == '\n') {
			/* RFC 5321 §4.1.1.4: CR LF "." CR LF ends the DATA. */
			c->state = CONTENT_DONE;
			c->done = true;
			return;
		}
		/* Not the end: the "." was stuffed and the CR is bare. */
		content_bare(c);
		c->pend[c->npend++] = '\n';
		break;
	default:
		break;
	}
	if (ch == '\r') {
		c->pend[c->npend++] = '\n';
		c->state = CONTENT_CR;
		return;
	}
	if (ch == '\n') {
		content_bare(c);
		c->pend[c->npend++] = '\n';
		c->state = CONTENT_TEXT;
		return;
	}
	if (ch == '\0')
		c->nul_seen = true;
	c->pend[c->npend++] = (char)ch;
	c->state = CONTENT_TEXT;
}

/* Takes the oldest pending octet, to be written now. */
static char content_pop(struct smtp_content *c)
{
	char ch = c->pend[0];
	c->pend[0] = c->pend[1];
	c->npend--;
	if (ch == '\n')
		c->lines++;
	return ch;
}

size_t smtp_content_decode(struct smtp_content *c, const char *in, size_t inlen,
                           char *out, size_t *outlen)
{
	size_t i = 0;
	size_t o = 0;
	/* Invariant: o <= i, so out may be in, and out needs only inlen. */
	while (i < inlen && c->state != CONTENT_DONE) {
		if (c->state == CONTENT_TEXT && c->npend == 0) {
			/* The common case: a run of plain octets in a line
			 * is copied as it is. */
			size_t start = i;
			while (i < inlen && in[i] != '\r' && in[i] != '\n')
				i++;
			size_t n = i - start;
			if (n) {
				if (!c->nul_seen && memchr(in + start, '\0', n))
					c->nul_seen = true;
				memmove(out + o, in + start, n);
				o += n;
			}
			if (i == inlen)
				break;
		}
		content_step(c, (unsigned char)in[i++]);
		while (c->npend && o < i)
			out[o++] = content_pop(c);
	}
	c->stored_size += o;
	*outlen = o;
	return i;
}

size_t smtp_content_finish(struct smtp_content *c, char *out)
{
	size_t n = 0;
	if (c->state == CONTENT_CR) {
		/* The message ends after a CR: it was bare. */
		content_bare(c);
		c->state = CONTENT_TEXT;
	}
	while (c->npend)
		out[n++] = content_pop(c);
	c->stored_size += n;
	return n;
}
