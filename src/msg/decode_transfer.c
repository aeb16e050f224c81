/* Content-Transfer-Encoding decoding (RFC 2045 §6.7, §6.8), lenient. */
#include "msg/decode.h"
#include "util/text.h"

#include <string.h>

/* Output is staged in a small array and appended in blocks: one
 * buf_append per octet would cost a call (and a bounds check) each. */
#define DECODE_STAGE 4096

static int stage_flush(struct buf *out, unsigned char *stage, size_t *n)
{
	int rc = buf_append(out, stage, *n);
	*n = 0;
	return rc;
}

int msg_decode_base64(struct buf *out, const char *in, size_t len)
{
	unsigned char stage[DECODE_STAGE];
	size_t n = 0;
	unsigned long acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=') {
			/* Padding ends the group: the octets it held are out
			 * already; the left-over bits are padding. */
			acc = 0;
			bits = 0;
			continue;
		}
		int v = text_base64_value(c);
		if (v < 0)
			continue;   /* §6.8: "must be ignored" */
		acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			stage[n++] = (unsigned char)(acc >> bits);
			if (n == sizeof(stage) && stage_flush(out, stage, &n) < 0)
				return -1;
		}
	}
	return stage_flush(out, stage, &n);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;   /* §6.7 rule 1: upper case, but be lenient */
	return -1;
}

/* One line's content (no line break), decoded. */
static int qp_line(struct buf *out, unsigned char *stage, size_t *n, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int hi, lo;
		if (c == '=' && i + 2 < len && (hi = hex_value((unsigned char)p[i + 1])) >= 0 &&
		    (lo = hex_value((unsigned char)p[i + 2])) >= 0) {
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		stage[(*n)++] = c;
		if (*n == DECODE_STAGE && stage_flush(out, stage, n) < 0)
			return -1;
	}
	return 0;
}

int msg_decode_qp(struct buf *out, const char *in, size_t len)
{
	unsigned char stage[DECODE_STAGE];
	size_t n = 0;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(in + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - in) : len;
		size_t brk = end;   /* where the line break starts */
		if (nl && brk > i && in[brk - 1] == '\r')
			brk--;
		/* Rule 3: trailing white space was added in transport. */
		size_t content = brk;
		while (content > i && (in[content - 1] == ' ' || in[content - 1] == '\t'))
			content--;
		bool soft = content > i && in[content - 1] == '=';
		if (soft)
			content--;
		if (qp_line(out, stage, &n, in + i, content - i) < 0)
			return -1;
		if (nl && !soft) {
			/* A hard break: kept as it came (CR LF or LF). */
			if (stage_flush(out, stage, &n) < 0 ||
			    buf_append(out, in + brk, end + 1 - brk) < 0)
				return -1;
		}
		i = nl ? end + 1 : len;
	}
	return stage_flush(out, stage, &n);
}
