/* RFC 2047 encoded words in received header fields, decoded to UTF-8. */
#include "msg/decode.h"
#include "util/text.h"

#include <string.h>
#include <strings.h>

struct word {
	const char *charset;
	size_t charset_len;
	char encoding;        /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t end;           /* offset just past "?=" */
};

static bool word_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* An encoded word "=?charset?E?text?=" at in[i] (§2).  Neither charset nor
 * text may hold "?" or white space, so each scan stops at the next "?":
 * the scans of all the words tried cover each octet a bounded number of
 * times, and decoding stays linear however many "=?" a header holds. */
static bool word_parse(const char *in, size_t len, size_t i, struct word *w)
{
	if (i + 1 >= len || in[i] != '=' || in[i + 1] != '?')
		return false;
	size_t p = i + 2;
	while (p < len && in[p] != '?' && !word_space((unsigned char)in[p]))
		p++;
	if (p == i + 2 || p + 2 >= len || in[p] != '?' || in[p + 2] != '?')
		return false;
	char e = in[p + 1];
	if (e == 'b')
		e = 'B';
	if (e == 'q')
		e = 'Q';
	if (e != 'B' && e != 'Q')
		return false;
	size_t t = p + 3;
	size_t q = t;
	while (q < len && in[q] != '?' && !word_space((unsigned char)in[q]))
		q++;
	if (q + 1 >= len || in[q] != '?' || in[q + 1] != '=')
		return false;
	w->charset = in + i + 2;
	w->charset_len = p - (i + 2);
	w->encoding = e;
	w->text = in + t;
	w->text_len = q - t;
	w->end = q + 2;
	return true;
}

/* §4.2: "_" is a space, "=XX" an octet; a broken "=" stands for itself. */
static int word_q_decode(struct buf *out, const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		int hi, lo;
		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < len && (hi = text_hex_value((unsigned char)in[i + 1])) >= 0 &&
		         (lo = text_hex_value((unsigned char)in[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

/* The decoded octets of adjacent words in one charset, not yet
 * converted. */
struct pending {
	struct buf raw;
	const char *charset;
	size_t charset_len;
};

static int pending_flush(struct buf *out, struct pending *pd)
{
	if (!pd->charset)
		return 0;
	int rc = msg_decode_charset(out, pd->charset, pd->charset_len,
	                            pd->raw.data ? pd->raw.data : "", pd->raw.len);
	buf_reset(&pd->raw);
	pd->charset = NULL;
	return rc;
}

static bool same_charset(const struct pending *pd, const struct word *w)
{
	if (!pd->charset || pd->charset_len != w->charset_len)
		return false;
	return strncasecmp(pd->charset, w->charset, w->charset_len) == 0;
}

static bool all_space(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!word_space((unsigned char)p[i]))
			return false;
	return true;
}

int msg_decode_words(struct buf *out, const char *in, size_t len)
{
	struct pending pd = { .charset = NULL };
	buf_init(&pd.raw, out->max);
	size_t text_start = 0;   /* the text after the last encoded word */
	bool after_word = false;
	int rc = 0;
	size_t i = 0;
	while (i < len && rc == 0) {
		const char *eq = memchr(in + i, '=', len - i);
		if (!eq)
			break;
		i = (size_t)(eq - in);
		struct word w;
		if (!word_parse(in, len, i, &w)) {
			i++;
			continue;
		}
		/* §6.2: white space between two encoded words is dropped. */
		if (!(after_word && all_space(in + text_start, i - text_start))) {
			rc = pending_flush(out, &pd);
			if (rc == 0)
				rc = msg_decode_utf8_repair(out, in + text_start, i - text_start);
		}
		if (rc == 0 && !same_charset(&pd, &w)) {
			rc = pending_flush(out, &pd);
			pd.charset = w.charset;
			pd.charset_len = w.charset_len;
		}
		if (rc == 0)
			rc = w.encoding == 'B' ? msg_decode_base64(&pd.raw, w.text, w.text_len)
			                       : word_q_decode(&pd.raw, w.text, w.text_len);
		i = w.end;
		text_start = i;
		after_word = true;
	}
	if (rc == 0)
		rc = pending_flush(out, &pd);
	if (rc == 0)
		rc = msg_decode_utf8_repair(out, in + text_start, len - text_start);
	buf_free(&pd.raw);
	return rc;
}
