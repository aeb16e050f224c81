/* Parameters of Content-Type and Content-Disposition values: RFC 2045
 * §5.1 (token or quoted string) and RFC 2231 (charset, percent-encoding,
 * continuations). */
#include "msg/mime_read.h"

#include <string.h>
#include <strings.h>

#include "msg/decode.h"
#include "util/limits.h"
#include "util/text.h"

/* One value as written: a token, or a quoted string (quoted true: its
 * quoted-pairs still to undo). */
struct span {
	const char *p;
	size_t len;
	bool quoted;
	bool extended;   /* RFC 2231 "*": percent-encoded, maybe a charset */
	bool set;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends a span's octets, quoted-pairs undone (RFC 5322 §3.2.1). */
static int span_append(struct buf *out, const struct span *s)
{
	if (!s->quoted)
		return buf_append(out, s->p, s->len);
	size_t run = 0;
	for (size_t i = 0; i < s->len; i++) {
		if (s->p[i] != '\\' || i + 1 >= s->len)
			continue;
		if (buf_append(out, s->p + run, i - run) < 0)
			return -1;
		run = i + 1;   /* the escaped octet starts the next run */
		i++;
	}
	return buf_append(out, s->p + run, s->len - run);
}

/* RFC 2231 §4: "%XX" is an octet; a broken "%" stands for itself. */
static int percent_decode(struct buf *out, const char *p, size_t len)
{
	size_t run = 0;
	for (size_t i = 0; i + 2 < len; i++) {
		int hi, lo;
		if (p[i] != '%' || (hi = text_hex_value((unsigned char)p[i + 1])) < 0 ||
		    (lo = text_hex_value((unsigned char)p[i + 2])) < 0)
			continue;
		char c = (char)(hi << 4 | lo);
		if (buf_append(out, p + run, i - run) < 0 || buf_append(out, &c, 1) < 0)
			return -1;
		i += 2;
		run = i + 1;
	}
	return buf_append(out, p + run, len - run);
}

/* Whether attr[0..len) names the parameter: 0 no, 1 "name", 2 "name*",
 * 3 "name*N" or "name*N*" (*section set). */
static int attr_match(const char *attr, size_t len, const char *name, unsigned *section,
                      bool *extended)
{
	size_t nl = strlen(name);
	if (len < nl || strncasecmp(attr, name, nl) != 0)
		return 0;
	*extended = false;
	if (len == nl)
		return 1;
	if (attr[nl] != '*')
		return 0;
	if (len == nl + 1) {
		*extended = true;
		return 2;
	}
	size_t i = nl + 1;
	unsigned n = 0;
	size_t digits = 0;
	while (i < len && attr[i] >= '0' && attr[i] <= '9' && digits < 4) {
		n = n * 10 + (unsigned)(attr[i] - '0');
		i++;
		digits++;
	}
	/* §3: no leading zeros ("name*01" is not section 1). */
	if (digits == 0 || (digits > 1 && attr[nl + 1] == '0'))
		return 0;
	if (i < len && attr[i] == '*') {
		*extended = true;
		i++;
	}
	if (i != len)
		return 0;
	*section = n;
	return 3;
}

struct found {
	struct span plain;
	struct span ext;
	struct span sect[MIME_PARAM_SECTIONS_MAX];
};

/* One pass over the parameters ";attr=value" after the first token. */
static void param_scan(const char *v, size_t len, const char *name, struct found *f)
{
	size_t i = 0;
	/* Skip the type (or disposition) itself: up to the first ';', which
	 * cannot be inside a quoted string there. */
	const char *semi = memchr(v, ';', len);
	if (!semi)
		return;
	i = (size_t)(semi - v);
	while (i < len) {
		while (i < len && (is_space(v[i]) || v[i] == ';'))
			i++;
		size_t a = i;
		while (i < len && v[i] != '=' && v[i] != ';' && !is_space(v[i]))
			i++;
		size_t attr_len = i - a;
		while (i < len && is_space(v[i]))
			i++;
		if (i >= len || v[i] != '=') {
			/* Junk: skip to the next ';'. */
			while (i < len && v[i] != ';')
				i++;
			continue;
		}
		i++;
		while (i < len && is_space(v[i]))
			i++;
		struct span s = { .p = v + i, .len = 0, .quoted = false, .set = true };
		if (i < len && v[i] == '"') {
			size_t q = ++i;
			while (i < len && v[i] != '"') {
				if (v[i] == '\\' && i + 1 < len)
					i++;
				i++;
			}
			s.p = v + q;
			s.len = i - q;
			s.quoted = true;
			if (i < len)
				i++;   /* the closing quote */
		} else {
			size_t t = i;
			while (i < len && v[i] != ';' && !is_space(v[i]))
				i++;
			s.len = i - t;
		}
		unsigned section = 0;
		bool extended = false;
		switch (attr_match(v + a, attr_len, name, &section, &extended)) {
		case 1:
			if (!f->plain.set)
				f->plain = s;
			break;
		case 2:
			if (!f->ext.set) {
				f->ext = s;
				f->ext.extended = true;
			}
			break;
		case 3:
			if (section < MIME_PARAM_SECTIONS_MAX && !f->sect[section].set) {
				f->sect[section] = s;
				f->sect[section].extended = extended;
			}
			break;
		default:
			break;
		}
	}
}

/* An extended first value: "charset'language'octets" (§4); a value
 * without the two quotes is taken as octets in no charset. */
static void ext_split(const char *p, size_t len, const char **cs, size_t *cs_len,
                      size_t *skip)
{
	*cs = p;
	*cs_len = 0;
	*skip = 0;
	const char *q1 = memchr(p, '\'', len);
	if (!q1)
		return;
	const char *q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - p));
	if (!q2)
		return;
	*cs_len = (size_t)(q1 - p);
	*skip = (size_t)(q2 + 1 - p);
}

/* The extended value or the joined sections, converted (mode TEXT). */
static int param_join(struct buf *out, const struct found *f, enum msg_mime_param_mode mode)
{
	struct buf raw;
	buf_init(&raw, out->max);
	const char *cs = NULL;
	size_t cs_len = 0;
	bool any_encoded = false;
	int rc = 0;
	if (f->ext.set) {
		struct buf tmp;
		buf_init(&tmp, out->max);
		size_t skip = 0;
		rc = span_append(&tmp, &f->ext);
		if (rc == 0) {
			ext_split(tmp.data ? tmp.data : "", tmp.len, &cs, &cs_len, &skip);
			rc = percent_decode(&raw, (tmp.data ? tmp.data : "") + skip, tmp.len - skip);
		}
		/* cs points into tmp: convert before freeing it. */
		if (rc == 0)
			rc = mode == MSG_MIME_PARAM_RAW ? buf_append(out, raw.data ? raw.data : "", raw.len)
			                                : msg_decode_charset(out, cs, cs_len,
			                                                     raw.data ? raw.data : "", raw.len);
		buf_free(&tmp);
		buf_free(&raw);
		return rc;
	}
	struct buf first;
	buf_init(&first, out->max);
	for (size_t k = 0; k < MIME_PARAM_SECTIONS_MAX && f->sect[k].set && rc == 0; k++) {
		struct buf tmp;
		buf_init(&tmp, out->max);
		rc = span_append(&tmp, &f->sect[k]);
		const char *p = tmp.data ? tmp.data : "";
		size_t plen = tmp.len;
		if (rc == 0 && f->sect[k].extended) {
			any_encoded = true;
			if (k == 0) {
				size_t skip = 0;
				/* Keep the charset name: it points into tmp. */
				rc = buf_append(&first, p, plen);
				ext_split(first.data ? first.data : "", first.len, &cs, &cs_len, &skip);
				p += skip;
				plen -= skip;
			}
			if (rc == 0)
				rc = percent_decode(&raw, p, plen);
		} else if (rc == 0) {
			rc = buf_append(&raw, p, plen);
		}
		buf_free(&tmp);
	}
	if (rc == 0) {
		const char *r = raw.data ? raw.data : "";
		if (mode == MSG_MIME_PARAM_RAW)
			rc = buf_append(out, r, raw.len);
		else if (any_encoded)
			rc = msg_decode_charset(out, cs ? cs : "", cs_len, r, raw.len);
		else
			rc = msg_decode_words(out, r, raw.len);
	}
	buf_free(&first);
	buf_free(&raw);
	return rc;
}

int msg_mime_param(struct buf *out, const char *value, size_t len, const char *name,
                   enum msg_mime_param_mode mode)
{
	struct found f;
	memset(&f, 0, sizeof(f));
	param_scan(value, len, name, &f);
	if (f.ext.set || f.sect[0].set)
		return param_join(out, &f, mode) < 0 ? -1 : 1;
	if (!f.plain.set)
		return 0;
	if (mode == MSG_MIME_PARAM_RAW)
		return span_append(out, &f.plain) < 0 ? -1 : 1;
	struct buf tmp;
	buf_init(&tmp, out->max);
	int rc = span_append(&tmp, &f.plain);
	/* Not RFC 2231, but what many mailers write: encoded words in a
	 * quoted file name (RFC 2047 §5 forbids them there). */
	if (rc == 0)
		rc = msg_decode_words(out, tmp.data ? tmp.data : "", tmp.len);
	buf_free(&tmp);
	return rc < 0 ? -1 : 1;
}
