#include "util/text.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s[0..len) and its code point,
 * or 0 if it is not one (RFC 3629 §4's syntax, which rules out overlong
 * forms, surrogates and code points past U+10FFFF by the ranges of the
 * second octet). */
static size_t utf8_sequence(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;   /* allowed range of the second octet */
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;            /* below: overlong */
		else if (c == 0xed)
			hi = 0x9f;            /* above: surrogates U+D800..U+DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;            /* below: overlong */
		else if (c == 0xf4)
			hi = 0x8f;            /* above: past U+10FFFF */
	} else {
		return 0;                     /* ASCII, a continuation, C0, C1, F5..FF */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		unsigned char t = s[i];
		if (t < (i == 1 ? lo : 0x80) || t > (i == 1 ? hi : 0xbf))
			return 0;
		*cp = (*cp << 6) | (t & 0x3f);
	}
	return n;
}

size_t text_escape(char *dst, size_t dstlen, const char *src, size_t len, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;
	if (dstlen == 0)
		return 0;
	while (i < len) {
		char unit[8];
		size_t k = 0, used = 1;
		unsigned char c = s[i];
		uint32_t cp = 0;
		if (c == '\n' && (flags & TEXT_KEEP_NEWLINE)) {
			unit[k++] = '\n';
		} else if ((c == '"' || c == '\\') && (flags & TEXT_ESCAPE_QUOTES)) {
			unit[k++] = '\\';
			unit[k++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			unit[k++] = (char)c;
		} else if (c >= 0x80 && (used = utf8_sequence(s + i, len - i, &cp)) > 0) {
			if (cp <= 0x9f) {
				/* A C1 control written in UTF-8: as dangerous as the raw octet. */
				memcpy(unit, "\\u00", 4);
				k = 4;
				unit[k++] = hex[cp >> 4];
				unit[k++] = hex[cp & 15];
			} else {
				memcpy(unit, s + i, used);
				k = used;
			}
		} else {
			/* C0, DEL, a raw C1 octet, or an octet of broken UTF-8 (the
			 * next octet starts afresh). */
			used = 1;
			unit[k++] = '\\';
			unit[k++] = 'x';
			unit[k++] = hex[c >> 4];
			unit[k++] = hex[c & 15];
		}
		if (o + k + 1 > dstlen)
			break;
		memcpy(dst + o, unit, k);
		o += k;
		i += used;
	}
	dst[o] = '\0';
	return i;
}

int text_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int text_base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}
