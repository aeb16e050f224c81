/* Over-long lines of a message the sendmail entry takes (raw.h): never a
 * refusal there (cron and PHP throw the error away, and the mail is
 * lost), but an encoding that keeps every octet, or Postfix's break. */
#include "msg/raw.h"

#include <string.h>

#include "msg/mime.h"
#include "util/limits.h"

static bool long_wsp(char c)
{
	return c == ' ' || c == '\t';
}

bool msg_raw_has_long_line(const char *in, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(in + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - in) : len;
		size_t n = end - pos;
		if (nl && n && in[end - 1] == '\r')
			n--;
		if (n > RFC5322_LINE_MAX)
			return true;
		pos = end + 1;
	}
	return false;
}

/* One line (no line break) into out, broken so that no output line is
 * over 998 octets.  at_wsp: a header field, folded before white space
 * that follows other text (RFC 5322 §2.2.3) where the line has some.
 * Else, and where it has none, Postfix's smtp_line_length_limit: after
 * 998 octets a line break and a space are inserted (postconf(5), Postfix
 * 3.7: 'Longer lines are broken by inserting "<CR><LF><SPACE>", to
 * minimize the damage to MIME formatted mail').  Never before min_cut: a
 * field's name and colon stay on its first line (raw.c takes no field
 * whose colon is past the 998th octet). */
static int long_line_append(struct buf *out, const char *p, size_t n, const char *eol,
                            bool at_wsp, size_t min_cut)
{
	size_t extra = 0;     /* 1: this output line starts with an inserted space */
	while (n + extra > RFC5322_LINE_MAX) {
		size_t room = RFC5322_LINE_MAX - extra;
		size_t cut = 0;
		if (at_wsp) {
			size_t first_text = 0;
			while (first_text < room && long_wsp(p[first_text]))
				first_text++;
			for (size_t w = room; w > first_text && w >= min_cut && !cut; w--)
				if (long_wsp(p[w]))
					cut = w;
		}
		min_cut = 0;
		bool folded = cut != 0;
		if (!folded)
			cut = room;
		if (buf_append(out, p, cut) < 0 || buf_append_str(out, eol) < 0 ||
		    (!folded && buf_append(out, " ", 1) < 0))
			return -1;
		extra = folded ? 0 : 1;
		p += cut;
		n -= cut;
	}
	return buf_append(out, p, n);
}

int msg_raw_long_append(struct buf *out, const char *in, size_t len, bool header)
{
	/* The first line of a field: not folded before its colon. */
	const char *colon = header ? memchr(in, ':', len) : NULL;
	size_t min_cut = colon ? (size_t)(colon - in) + 1 : 0;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(in + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - in) : len;
		size_t n = end - pos;
		const char *eol = "";
		if (nl)
			eol = n && in[end - 1] == '\r' ? "\r\n" : "\n";
		if (nl && n && in[end - 1] == '\r')
			n--;
		if (n > RFC5322_LINE_MAX) {
			if (long_line_append(out, in + pos, n, *eol ? eol : "\r\n", header,
			                     pos == 0 ? min_cut : 0) < 0 ||
			    buf_append_str(out, eol) < 0)
				return -1;
		} else if (buf_append(out, in + pos, end - pos + (nl ? 1 : 0)) < 0) {
			return -1;
		}
		pos = end + 1;
	}
	return 0;
}

int msg_raw_qp_append(struct buf *out, const char *in, size_t len, bool crlf)
{
	struct buf enc;
	buf_init(&enc, out->max);
	int rc = msg_mime_qp_encode(&enc, in, len);
	/* The encoder writes CR LF; every other CR it writes as =0D. */
	for (size_t i = 0; rc == 0 && i < enc.len;) {
		const char *cr = memchr(enc.data + i, '\r', enc.len - i);
		size_t n = cr ? (size_t)(cr - enc.data) - i : enc.len - i;
		rc = buf_append(out, enc.data + i, n);
		i += n;
		if (cr && rc == 0) {
			rc = crlf ? buf_append(out, "\r\n", 2) : buf_append(out, "\n", 1);
			i += 2;
		}
	}
	buf_free(&enc);
	return rc;
}

const char *msg_raw_body_charset(const char *in, size_t len)
{
	bool eight = false;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		eight = true;
		/* RFC 3629 §4: the well-formed sequences. */
		size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
		         : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (n == 0 || i + n > len)
			return "unknown-8bit";
		unsigned char c1 = (unsigned char)in[i + 1];
		unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
		if (c1 < lo || c1 > hi)
			return "unknown-8bit";
		for (size_t k = 2; k < n; k++)
			if (((unsigned char)in[i + k] & 0xc0) != 0x80)
				return "unknown-8bit";
		i += n;
	}
	return eight ? "utf-8" : NULL;
}
