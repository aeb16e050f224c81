/* RFC 2047 encoded words for non-ASCII header text (Subject, display
 * names), always with charset UTF-8. */
#include "msg/mime.h"

#include <string.h>

static const char word_hex[] = "0123456789ABCDEF";
static const char word_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* "=?UTF-8?Q?" and "?=": what every encoded word spends besides its text. */
#define WORD_OVERHEAD 12
/* The smallest word worth starting on a line: one character of up to four
 * octets, Q-encoded as 12 characters. */
#define WORD_MIN (WORD_OVERHEAD + 12)

bool msg_mime_is_plain_ascii(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if ((c < 32 && c != '\t') || c > 126)
			return false;
	}
	return true;
}

/* RFC 2047 §4.2 and §5: which octets a Q word may carry as themselves.  In
 * a phrase (§5(3)) only letters, digits and "!*+-/"; in text (§5(1)) any
 * printable ASCII but "=", "?" and "_".  Space is "_" in both (rule (2)). */
static bool word_q_literal(unsigned char c, enum msg_word_context ctx)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	if (ctx == MSG_WORD_PHRASE)
		return c != 0 && strchr("!*+-/", c) != NULL;
	return c > 32 && c < 127 && c != '=' && c != '?' && c != '_';
}

static size_t word_q_width(unsigned char c, enum msg_word_context ctx)
{
	return c == ' ' || word_q_literal(c, ctx) ? 1 : 3;
}

/* Octets of the UTF-8 character at in[0]: the lead octet and the
 * continuation octets after it, at most four in all, so that malformed
 * input still makes progress and never forms an unbounded "character". */
static size_t word_char_len(const char *in, size_t len)
{
	size_t n = 1;
	while (n < len && n < 4 && ((unsigned char)in[n] & 0xC0) == 0x80)
		n++;
	return n;
}

static int word_append_q(struct buf *out, const char *in, size_t len,
                         enum msg_word_context ctx)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char enc[3] = { '=', word_hex[c >> 4], word_hex[c & 15] };
		size_t width = word_q_width(c, ctx);
		if (c == ' ')
			enc[0] = '_';
		else if (width == 1)
			enc[0] = (char)c;
		if (buf_append(out, enc, width) < 0)
			return -1;
	}
	return 0;
}

static int word_append_b(struct buf *out, const char *data, size_t len)
{
	const unsigned char *in = (const unsigned char *)data;
	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		unsigned v = (unsigned)in[i] << 16;
		if (left > 1)
			v |= (unsigned)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		char enc[4] = {
			word_b64[(v >> 18) & 63], word_b64[(v >> 12) & 63],
			left > 1 ? word_b64[(v >> 6) & 63] : '=',
			left > 2 ? word_b64[v & 63] : '=',
		};
		if (buf_append(out, enc, 4) < 0)
			return -1;
	}
	return 0;
}

int msg_mime_words_encode(struct buf *out, size_t *col, const char *in, size_t len,
                          enum msg_word_context ctx)
{
	/* One choice for the whole text: Q when it is no longer than B
	 * (mostly-ASCII text stays readable), else B (RFC 2047 §4). */
	size_t q_len = 0;
	for (size_t i = 0; i < len; i++)
		q_len += word_q_width((unsigned char)in[i], ctx);
	bool use_q = q_len <= (len + 2) / 3 * 4;

	size_t i = 0;
	while (i < len) {
		/* The separating white space: a space, or a fold when a
		 * useful word no longer fits (lines ≤ 76, RFC 2047 §2). */
		if (*col + 1 + WORD_MIN > MSG_MIME_LINE_MAX) {
			if (buf_append(out, "\r\n ", 3) < 0)
				return -1;
			*col = 1;
		} else {
			if (buf_append(out, " ", 1) < 0)
				return -1;
			*col += 1;
		}
		size_t room = MSG_MIME_LINE_MAX - *col;
		if (room > MSG_MIME_WORD_MAX)
			room = MSG_MIME_WORD_MAX;
		room -= WORD_OVERHEAD;
		/* Whole characters only; B counts octets in groups of three. */
		size_t take = 0;
		size_t width = 0;
		size_t b_octets = room / 4 * 3;
		while (i + take < len) {
			size_t n = word_char_len(in + i + take, len - i - take);
			size_t w = 0;
			if (use_q) {
				for (size_t k = 0; k < n; k++)
					w += word_q_width((unsigned char)in[i + take + k], ctx);
				if (width + w > room)
					break;
			} else if (take + n > b_octets) {
				break;
			}
			take += n;
			width += w;
		}
		if (buf_append_str(out, use_q ? "=?UTF-8?Q?" : "=?UTF-8?B?") < 0)
			return -1;
		int rc = use_q ? word_append_q(out, in + i, take, ctx)
		               : word_append_b(out, in + i, take);
		if (rc < 0 || buf_append(out, "?=", 2) < 0)
			return -1;
		*col += WORD_OVERHEAD + (use_q ? width : (take + 2) / 3 * 4);
		i += take;
	}
	return 0;
}
