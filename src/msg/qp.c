/* Quoted-printable bodies, RFC 2045 §6.7. */
#include "msg/mime.h"

static const char hex_upper[] = "0123456789ABCDEF";

/* Length of the line break starting at in[i]: 2 for CR LF, 1 for LF, 0 for
 * none (a lone CR is data, encoded as =0D). */
static size_t qp_break_len(const char *in, size_t len, size_t i)
{
	if (in[i] == '\n')
		return 1;
	if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
		return 2;
	return 0;
}

int msg_mime_qp_encode(struct buf *out, const char *in, size_t len)
{
	size_t col = 0;
	size_t i = 0;
	while (i < len) {
		size_t brk = qp_break_len(in, len, i);
		if (brk) {
			/* Rule 4: a line break of the text is a CRLF. */
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
			col = 0;
			i += brk;
			continue;
		}
		unsigned char c = (unsigned char)in[i];
		bool at_eol = i + 1 == len || qp_break_len(in, len, i + 1) != 0;
		/* Rule 2: 33..60 and 62..126 stand for themselves.  Rule 3:
		 * space and tab too, except before a line break, where
		 * transports may strip them. */
		bool literal = (c >= 33 && c <= 126 && c != '=') ||
		               ((c == ' ' || c == '\t') && !at_eol);
		size_t width = literal ? 1 : 3;
		/* Rule 5: an encoded line is at most 76 characters, the "=" of
		 * a soft break included; the last character before a hard
		 * break may use the 76th column itself. */
		size_t limit = at_eol ? MSG_MIME_LINE_MAX : MSG_MIME_LINE_MAX - 1;
		if (col + width > limit) {
			if (buf_append(out, "=\r\n", 3) < 0)
				return -1;
			col = 0;
		}
		char enc[3] = { '=', hex_upper[c >> 4], hex_upper[c & 15] };
		if (literal)
			enc[0] = (char)c;
		if (buf_append(out, enc, width) < 0)
			return -1;
		col += width;
		i++;
	}
	if (len && in[len - 1] != '\n')
		return buf_append(out, "\r\n", 2);
	return 0;
}
