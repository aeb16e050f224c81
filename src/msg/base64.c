/* Base64 bodies, RFC 2045 §6.8. */
#include "msg/mime.h"

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
