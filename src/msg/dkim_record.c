/* DKIM key records (RFC 6376 §3.6.1), the TXT text at
 * SELECTOR._domainkey.DOMAIN, parsed strictly as a tag-list (§3.2) so
 * that rawmail check can say exactly what is wrong with a published one.
 * Pure: no OpenSSL (the fuzz harness links this file alone). */
#include <stdio.h>
#include <string.h>

#include "msg/dkim.h"
#include "util/text.h"

/* More tags than any real record has; a longer list is refused. */
#define DKIM_RECORD_TAGS_MAX 32

struct tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* FWS as it arrives in joined TXT strings: SP, HT, and line ends. */
static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* §3.2: VALCHAR = %x21-3A / %x3C-7E (printable, not ';'). */
static bool is_valchar(char c)
{
	unsigned char u = (unsigned char)c;
	return u >= 0x21 && u <= 0x7e && u != ';';
}

static bool tag_is(const struct tag *t, const char *name)
{
	return t->name_len == strlen(name) && memcmp(t->name, name, t->name_len) == 0;
}

static bool value_is(const char *v, size_t n, const char *what)
{
	return n == strlen(what) && memcmp(v, what, n) == 0;
}

/* Whether the colon-separated list v[0..n) (white space around items
 * allowed) holds one of a or b (b may be NULL). */
static bool list_has(const char *v, size_t n, const char *a, const char *b)
{
	size_t i = 0;
	while (i <= n) {
		size_t end = i;
		while (end < n && v[end] != ':')
			end++;
		size_t s = i, e = end;
		while (s < e && is_ws(v[s]))
			s++;
		while (e > s && is_ws(v[e - 1]))
			e--;
		if (value_is(v + s, e - s, a) || (b && value_is(v + s, e - s, b)))
			return true;
		i = end + 1;
	}
	return false;
}

/* p=: base64 with white space allowed inside (§3.6.1 "base64string"),
 * copied into r->p without it.  Returns the decoded length, or -1. */
static long p_take(const char *v, size_t n, struct dkim_record *r, char *err, size_t errlen)
{
	size_t len = 0, pad = 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (is_ws(c))
			continue;
		if (len >= DKIM_RECORD_P_MAX) {
			snprintf(err, errlen, "p= is longer than %d characters", DKIM_RECORD_P_MAX);
			return -1;
		}
		if (c == '=') {
			pad++;
		} else if (text_base64_value((unsigned char)c) < 0 || pad > 0) {
			snprintf(err, errlen, "p= is not base64 ('%c' at %zu)", c, len);
			return -1;
		}
		r->p[len++] = c;
	}
	r->p[len] = '\0';
	if (len % 4 != 0 || pad > 2) {
		snprintf(err, errlen, "p= is not base64 (length %zu, %zu '=')", len, pad);
		return -1;
	}
	/* The last character's unused bits must be zero (RFC 4648 §3.5):
	 * otherwise two texts would give one key. */
	if (pad > 0) {
		int last = text_base64_value((unsigned char)r->p[len - pad - 1]);
		if ((pad == 1 && (last & 3)) || (pad == 2 && (last & 15))) {
			snprintf(err, errlen, "p= is not canonical base64 (non-zero pad bits)");
			return -1;
		}
	}
	return (long)(len / 4 * 3 - pad);
}

/* §3.2: the tag-list split into tags.  -1 with err on a syntax error. */
static int tags_split(const char *txt, size_t len, struct tag *tags, size_t *ntags, char *err,
                      size_t errlen)
{
	size_t i = 0, n = 0;
	for (;;) {
		while (i < len && is_ws(txt[i]))
			i++;
		if (i == len) {
			if (n == 0) {
				snprintf(err, errlen, "the record is empty");
				return -1;
			}
			break;  /* after a trailing ';' */
		}
		size_t start = i;
		if (!is_alpha(txt[i])) {
			snprintf(err, errlen, "a tag name must start with a letter (offset %zu)", i);
			return -1;
		}
		while (i < len && (is_alpha(txt[i]) || is_digit(txt[i]) || txt[i] == '_'))
			i++;
		struct tag t = { .name = txt + start, .name_len = i - start };
		while (i < len && is_ws(txt[i]))
			i++;
		if (i == len || txt[i] != '=') {
			snprintf(err, errlen, "'=' expected after tag '%.*s'", (int)t.name_len, t.name);
			return -1;
		}
		i++;
		while (i < len && is_ws(txt[i]))
			i++;
		t.value = txt + i;
		while (i < len && txt[i] != ';') {
			if (!is_valchar(txt[i]) && !is_ws(txt[i])) {
				snprintf(err, errlen, "tag '%.*s' has an invalid character (octet %u)",
				         (int)t.name_len, t.name, (unsigned char)txt[i]);
				return -1;
			}
			i++;
		}
		t.value_len = (size_t)(txt + i - t.value);
		while (t.value_len > 0 && is_ws(t.value[t.value_len - 1]))
			t.value_len--;
		for (size_t j = 0; j < n; j++) {
			if (tags[j].name_len == t.name_len && memcmp(tags[j].name, t.name, t.name_len) == 0) {
				/* §3.2: a duplicate makes the whole list invalid. */
				snprintf(err, errlen, "tag '%.*s' appears twice", (int)t.name_len, t.name);
				return -1;
			}
		}
		if (n == DKIM_RECORD_TAGS_MAX) {
			snprintf(err, errlen, "more than %d tags", DKIM_RECORD_TAGS_MAX);
			return -1;
		}
		tags[n++] = t;
		if (i == len)
			break;
		i++;  /* ';' */
	}
	*ntags = n;
	return 0;
}

int dkim_record_parse(const char *txt, size_t len, struct dkim_record *r, char *err,
                      size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->k = DKIM_ALG_RSA_SHA256;
	struct tag tags[DKIM_RECORD_TAGS_MAX];
	size_t n = 0;
	if (tags_split(txt, len, tags, &n, err, errlen) < 0)
		return -1;
	const struct tag *p = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct tag *t = &tags[i];
		if (tag_is(t, "v")) {
			/* §3.6.1: if present, first, and exactly DKIM1. */
			if (i != 0 || !value_is(t->value, t->value_len, "DKIM1")) {
				snprintf(err, errlen, i != 0 ? "v= must be the first tag"
				                             : "v= is not DKIM1");
				return -1;
			}
		} else if (tag_is(t, "k")) {
			if (value_is(t->value, t->value_len, "rsa")) {
				r->k = DKIM_ALG_RSA_SHA256;
			} else if (value_is(t->value, t->value_len, "ed25519")) {
				r->k = DKIM_ALG_ED25519_SHA256;
			} else {
				snprintf(err, errlen, "k=%.*s is not a key type rawmail knows (rsa, ed25519)",
				         (int)(t->value_len > 40 ? 40 : t->value_len), t->value);
				return -1;
			}
		} else if (tag_is(t, "h")) {
			if (!list_has(t->value, t->value_len, "sha256", NULL)) {
				snprintf(err, errlen, "h= does not allow sha256");
				return -1;
			}
		} else if (tag_is(t, "s")) {
			if (!list_has(t->value, t->value_len, "*", "email")) {
				snprintf(err, errlen, "s= does not allow email");
				return -1;
			}
		} else if (tag_is(t, "t")) {
			r->testing = list_has(t->value, t->value_len, "y", NULL);
			r->strict = list_has(t->value, t->value_len, "s", NULL);
		} else if (tag_is(t, "p")) {
			p = t;
		}
	}
	if (!p) {
		snprintf(err, errlen, "no p= tag (the public key)");
		return -1;
	}
	long raw = p_take(p->value, p->value_len, r, err, errlen);
	if (raw < 0)
		return -1;
	r->revoked = raw == 0;
	/* RFC 8463 §4.2: an Ed25519 p= is the 32-octet key itself. */
	if (!r->revoked && r->k == DKIM_ALG_ED25519_SHA256 && raw != 32) {
		snprintf(err, errlen, "p= of an ed25519 key must be 32 octets, not %ld", raw);
		return -1;
	}
	/* An RSA key of 1024 bits is a DER SubjectPublicKeyInfo of ~160
	 * octets; less cannot be a usable key (RFC 8301 §3.2). */
	if (!r->revoked && r->k == DKIM_ALG_RSA_SHA256 && raw < 128) {
		snprintf(err, errlen, "p= is too short for an RSA key (%ld octets)", raw);
		return -1;
	}
	return 0;
}

/* RFC 1035 §3.3.14: a TXT record holds strings of at most 255 octets. */
#define DKIM_TXT_STRING_MAX 255

int dkim_record_zone_line(const char *domain, const char *selector, const char *text,
                          struct buf *out)
{
	if (buf_printf(out, "%s._domainkey.%s. IN TXT (", selector, domain) < 0)
		return -1;
	size_t len = strlen(text);
	for (size_t i = 0; i < len; i += DKIM_TXT_STRING_MAX) {
		size_t n = len - i > DKIM_TXT_STRING_MAX ? DKIM_TXT_STRING_MAX : len - i;
		if (buf_printf(out, " \"%.*s\"", (int)n, text + i) < 0)
			return -1;
	}
	return buf_append_str(out, " )");
}
