/* Base64 bodies, RFC 2045 §6.8. */
#include "msg/mime.h"
#include "util/text.h"

#include <stdint.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int msg_mime_base64_encode(struct buf *out, const void *data, size_t len)
{
	const unsigned char *in = data;
	/* §6.8: "no more than 76 characters" per line: 19 groups of 4. */
	char line[MSG_MIME_LINE_MAX + 2];
	size_t n = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = len - i;
		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		line[n++] = base64_alphabet[(v >> 18) & 63];
		line[n++] = base64_alphabet[(v >> 12) & 63];
		line[n++] = left > 1 ? base64_alphabet[(v >> 6) & 63] : '=';
		line[n++] = left > 2 ? base64_alphabet[v & 63] : '=';
		if (n == MSG_MIME_LINE_MAX || i + 3 >= len) {
			line[n++] = '\r';
			line[n++] = '\n';
			if (buf_append(out, line, n) < 0)
				return -1;
			n = 0;
		}
	}
	return 0;
}


int msg_mime_base64_decode(struct buf *out, const char *in, size_t len, size_t *bad)
{
	uint32_t v = 0;
	size_t n = 0;        /* alphabet octets in the current group */
	size_t pad = 0;      /* '=' seen: only more '=' and line breaks may follow */
	size_t group_at = 0; /* offset of the current group's first octet */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (n == 0)
			group_at = i;
		if (c == '=') {
			/* §3.2: padding completes the last group of 2 or 3. */
			if (n + pad < 2 || n + pad >= 4) {
				*bad = i;
				return -1;
			}
			pad++;
			continue;
		}
		int d = text_base64_value(c);
		if (d < 0 || pad) {
			*bad = i;
			return -1;
		}
		v = v << 6 | (uint32_t)d;
		if (++n < 4)
			continue;
		unsigned char three[3] = { (unsigned char)(v >> 16), (unsigned char)(v >> 8),
		                           (unsigned char)v };
		if (buf_append(out, three, 3) < 0)
			return -2;
		n = 0;
		v = 0;
	}
	if (n == 0 && pad == 0)
		return 0;
	/* A last group must be whole with its padding (2 + "==" or 3 + "="),
	 * and the bits padding leaves unused must be zero (§3.5: a canonical
	 * encoding, so one text decodes to one value). */
	if (n + pad != 4 || n < 2 || (n == 2 && (v & 15)) || (n == 3 && (v & 3))) {
		*bad = group_at;
		return -1;
	}
	unsigned char rest[2];
	if (n == 2)
		rest[0] = (unsigned char)(v >> 4);
	else {
		rest[0] = (unsigned char)(v >> 10);
		rest[1] = (unsigned char)(v >> 2);
	}
	return buf_append(out, rest, n - 1) < 0 ? -2 : 0;
}
