/* Text in a declared charset to valid UTF-8.  The charsets most mail is
 * written in are converted here; iconv(3) handles the rest when it can
 * (glibc's iconv loads a module per charset from gconv, which a chrooted
 * process cannot), else the text is read as UTF-8. */
#include "msg/decode.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "util/limits.h"

#define CHARSET_STAGE 4096

static const char replacement[] = "\xEF\xBF\xBD";   /* U+FFFD */

/* The length of the valid UTF-8 character at s[0..len), or 0 when it is
 * not one; *bad is then the length of the maximal invalid subpart (at
 * least 1). */
static size_t utf8_char(const unsigned char *s, size_t len, size_t *bad)
{
	unsigned char c = s[0];
	*bad = 1;
	if (c < 0x80)
		return 1;
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;   /* the second octet's range */
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;   /* overlong */
		if (c == 0xED)
			hi = 0x9F;   /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;   /* overlong */
		if (c == 0xF4)
			hi = 0x8F;   /* past U+10FFFF */
	} else
		return 0;
	for (size_t k = 1; k < need; k++) {
		if (k >= len)
			return 0;
		unsigned char d = s[k];
		if (k == 1 ? (d < lo || d > hi) : (d & 0xC0) != 0x80)
			return 0;
		*bad = k + 1;
	}
	return need;
}

int msg_decode_utf8_repair(struct buf *out, const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t run = 0;   /* start of the valid run not yet appended */
	size_t i = 0;
	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t bad;
		size_t n = utf8_char(s + i, len - i, &bad);
		if (n) {
			i += n;
			continue;
		}
		if (buf_append(out, in + run, i - run) < 0 ||
		    buf_append(out, replacement, 3) < 0)
			return -1;
		i += bad;
		run = i;
	}
	return buf_append(out, in + run, len - run);
}

size_t msg_decode_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	/* s[n] starts a character unless it is a continuation octet. */
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* Windows-1252's 0x80..0x9F (the WHATWG Encoding Standard's table); 0 for
 * the five unassigned octets. */
static const uint16_t cp1252_high[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

enum charset_kind { CHARSET_UTF8, CHARSET_LATIN1, CHARSET_LATIN9, CHARSET_CP1252, CHARSET_OTHER };

/* ISO-8859-15 differs from ISO-8859-1 in eight places. */
static unsigned latin9_code(unsigned char c)
{
	switch (c) {
	case 0xA4: return 0x20AC;
	case 0xA6: return 0x0160;
	case 0xA8: return 0x0161;
	case 0xB4: return 0x017D;
	case 0xB8: return 0x017E;
	case 0xBC: return 0x0152;
	case 0xBD: return 0x0153;
	case 0xBE: return 0x0178;
	default: return c;
	}
}

static size_t utf8_put(unsigned char *p, unsigned cp)
{
	if (cp < 0x80) {
		p[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (unsigned char)(0xC0 | cp >> 6);
		p[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	p[0] = (unsigned char)(0xE0 | cp >> 12);
	p[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	p[2] = (unsigned char)(0x80 | (cp & 0x3F));
	return 3;
}

/* The single-octet charsets: every octet is one character. */
static int charset_single(struct buf *out, enum charset_kind kind, const char *in, size_t len)
{
	unsigned char stage[CHARSET_STAGE];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		unsigned cp = c;
		if (kind == CHARSET_LATIN9)
			cp = latin9_code(c);
		else if (kind == CHARSET_CP1252 && c >= 0x80 && c <= 0x9F)
			cp = cp1252_high[c - 0x80] ? cp1252_high[c - 0x80] : 0xFFFD;
		n += utf8_put(stage + n, cp);
		if (n > sizeof(stage) - 3) {
			if (buf_append(out, stage, n) < 0)
				return -1;
			n = 0;
		}
	}
	return buf_append(out, stage, n);
}

static bool name_is(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/* The names (IANA's and their aliases, lower case) of the charsets
 * converted here. */
static enum charset_kind charset_kind_of(const char *name)
{
	static const char *const utf8[] = { "", "utf-8", "utf8", "us-ascii", "ascii",
	                                    "ansi_x3.4-1968", "us", "iso646-us", NULL };
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1", "iso_8859-1",
	                                      "latin1", "latin-1", "l1", "cp819",
	                                      "iso_8859-1:1987", "ibm819", NULL };
	static const char *const latin9[] = { "iso-8859-15", "iso8859-15", "iso_8859-15",
	                                      "latin-9", "latin9", NULL };
	static const char *const cp1252[] = { "windows-1252", "cp1252", "x-cp1252",
	                                      "windows1252", NULL };
	if (name_is(name, utf8))
		return CHARSET_UTF8;
	if (name_is(name, latin1))
		return CHARSET_LATIN1;
	if (name_is(name, latin9))
		return CHARSET_LATIN9;
	if (name_is(name, cp1252))
		return CHARSET_CP1252;
	return CHARSET_OTHER;
}

/* iconv's UTF-8 output, checked again (a module's bug must not make
 * invalid JSON).  1 when converted, 0 when iconv does not know the name. */
static int charset_iconv(struct buf *out, const char *name, const char *in, size_t len)
{
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return 0;
	struct buf tmp;
	buf_init(&tmp, out->max);
	char stage[CHARSET_STAGE];
	char *ip = (char *)(uintptr_t)in;
	size_t il = len;
	int rc = 1;
	for (;;) {
		char *op = stage;
		size_t ol = sizeof(stage);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		int err = errno;
		if (buf_append(&tmp, stage, (size_t)(op - stage)) < 0) {
			rc = -1;
			break;
		}
		if (r != (size_t)-1)
			break;   /* all of the input converted */
		if (err == E2BIG)
			continue;
		if (buf_append(&tmp, replacement, 3) < 0) {
			rc = -1;
			break;
		}
		if (err == EILSEQ && il > 0) {
			ip++;   /* skip the octet that cannot be converted */
			il--;
			continue;
		}
		break;   /* EINVAL: an incomplete sequence at the end */
	}
	if (rc == 1) {
		/* A stateful charset's return to its initial state. */
		char *op = stage;
		size_t ol = sizeof(stage);
		if (iconv(cd, NULL, NULL, &op, &ol) != (size_t)-1 &&
		    buf_append(&tmp, stage, (size_t)(op - stage)) < 0)
			rc = -1;
	}
	iconv_close(cd);
	if (rc == 1 && msg_decode_utf8_repair(out, tmp.data ? tmp.data : "", tmp.len) < 0)
		rc = -1;
	buf_free(&tmp);
	return rc;
}

int msg_decode_charset(struct buf *out, const char *charset, size_t charset_len,
                       const char *in, size_t len)
{
	/* RFC 2231 §5: "charset*language". */
	const char *star = memchr(charset, '*', charset_len);
	if (star)
		charset_len = (size_t)(star - charset);
	while (charset_len && (*charset == ' ' || *charset == '\t')) {
		charset++;
		charset_len--;
	}
	while (charset_len && (charset[charset_len - 1] == ' ' || charset[charset_len - 1] == '\t'))
		charset_len--;
	/* A name iconv may see: short, and only the characters of RFC 2978
	 * names (no "/", which iconv reads as a suffix such as //TRANSLIT). */
	char name[MIME_CHARSET_NAME_MAX + 1];
	bool usable = charset_len <= MIME_CHARSET_NAME_MAX;
	for (size_t i = 0; usable && i < charset_len; i++) {
		unsigned char c = (unsigned char)charset[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c != 0 && strchr("-_.:+", c))))
			usable = false;
		name[i] = (char)c;
	}
	if (!usable)
		return msg_decode_utf8_repair(out, in, len);
	name[charset_len] = '\0';
	enum charset_kind kind = charset_kind_of(name);
	if (kind == CHARSET_UTF8)
		return msg_decode_utf8_repair(out, in, len);
	if (kind != CHARSET_OTHER)
		return charset_single(out, kind, in, len);
	int rc = charset_iconv(out, name, in, len);
	if (rc < 0)
		return -1;
	return rc ? 0 : msg_decode_utf8_repair(out, in, len);
}
