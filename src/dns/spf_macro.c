/* RFC 7208 §7 macro expansion and prefix matching: no DNS, no state. */
#include "dns/spf_macro.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct out {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->len + n >= o->cap) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* The value of one macro letter before transformers. */
static void letter_value(char letter, const struct spf_macro_ctx *c, char *v, size_t vlen)
{
	const char *at = c->sender ? strrchr(c->sender, '@') : NULL;
	v[0] = '\0';
	switch (letter) {
	case 's':
		snprintf(v, vlen, "%s", c->sender ? c->sender : "");
		break;
	case 'l':
		/* §4.3: an empty local-part is "postmaster" */
		if (at && at > c->sender)
			snprintf(v, vlen, "%.*s", (int)(at - c->sender), c->sender);
		else
			snprintf(v, vlen, "postmaster");
		break;
	case 'o':
		snprintf(v, vlen, "%s", at ? at + 1 : (c->sender ? c->sender : ""));
		break;
	case 'd':
		snprintf(v, vlen, "%s", c->domain ? c->domain : "");
		break;
	case 'i':
		if (c->family == AF_INET) {
			snprintf(v, vlen, "%u.%u.%u.%u", c->ip[0], c->ip[1], c->ip[2], c->ip[3]);
		} else if (vlen >= 64) {
			/* §7.3: IPv6 as 32 dot-separated nibbles */
			static const char hex[] = "0123456789abcdef";
			size_t o = 0;
			for (int i = 0; i < 16; i++) {
				v[o++] = hex[c->ip[i] >> 4];
				v[o++] = '.';
				v[o++] = hex[c->ip[i] & 15];
				v[o++] = '.';
			}
			v[o - 1] = '\0';
		}
		break;
	case 'c':
		inet_ntop(c->family, c->ip, v, (socklen_t)vlen);
		break;
	case 'p':
		snprintf(v, vlen, "%s", c->validated ? c->validated : "unknown");
		break;
	case 'v':
		snprintf(v, vlen, "%s", c->family == AF_INET ? "in-addr" : "ip6");
		break;
	case 'h':
		snprintf(v, vlen, "%s", c->helo ? c->helo : "");
		break;
	case 'r':
		snprintf(v, vlen, "%s", c->receiver ? c->receiver : "unknown");
		break;
	case 't':
		snprintf(v, vlen, "%lld", c->now);
		break;
	}
}

/* §7.3: split on the delimiters, reverse if asked, keep the rightmost
 * count parts, join with ".". */
static void transform(const char *v, unsigned count, bool reverse, const char *delims,
                      bool escape, struct out *o)
{
	const char *part[512];
	size_t plen[512], n = 0;
	const char *start = v;
	for (const char *p = v;; p++) {
		if (*p == '\0' || strchr(delims, *p)) {
			if (n < 512) {
				part[n] = start;
				plen[n] = (size_t)(p - start);
				n++;
			}
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	if (reverse)
		for (size_t i = 0; i < n / 2; i++) {
			const char *t = part[i];
			size_t tl = plen[i];
			part[i] = part[n - 1 - i];
			plen[i] = plen[n - 1 - i];
			part[n - 1 - i] = t;
			plen[n - 1 - i] = tl;
		}
	size_t first = count > 0 && count < n ? n - count : 0;
	for (size_t i = first; i < n; i++) {
		if (i > first)
			out_put(o, ".", 1);
		for (size_t k = 0; k < plen[i]; k++) {
			unsigned char ch = (unsigned char)part[i][k];
			/* §7.3: upper-case letters URL-escape (RFC 3986 unreserved kept) */
			bool keep = !escape || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			            (ch >= '0' && ch <= '9') || strchr("-._~", ch);
			if (keep) {
				out_put(o, (const char *)&part[i][k], 1);
			} else {
				char pct[4];
				snprintf(pct, sizeof(pct), "%%%02X", ch);
				out_put(o, pct, 3);
			}
		}
	}
}

bool spf_macro_expand(const char *ms, const struct spf_macro_ctx *ctx, bool domain_spec,
                      char *out, size_t outlen, char *err, size_t errlen)
{
	struct out o = { .p = out, .cap = outlen };
	if (outlen == 0)
		return false;
	out[0] = '\0';
	for (const char *p = ms; *p; p++) {
		if (*p != '%') {
			out_put(&o, p, 1);
			continue;
		}
		p++;
		if (*p == '%') {
			out_put(&o, "%", 1);
			continue;
		}
		if (*p == '_') {
			out_put(&o, " ", 1);
			continue;
		}
		if (*p == '-') {
			out_put(&o, "%20", 3);
			continue;
		}
		if (*p != '{' || !p[1]) {
			snprintf(err, errlen, "bad macro in '%s'", ms);
			return false;
		}
		char letter = p[1];
		bool escape = letter >= 'A' && letter <= 'Z';
		p += 2;
		unsigned count = 0;
		while (*p >= '0' && *p <= '9')
			count = count * 10 + (unsigned)(*p++ - '0');
		bool reverse = *p == 'r' || *p == 'R';
		if (reverse)
			p++;
		char delims[8];
		size_t nd = 0;
		while (*p && *p != '}' && nd + 1 < sizeof(delims))
			delims[nd++] = *p++;
		delims[nd] = '\0';
		if (*p != '}') {
			snprintf(err, errlen, "bad macro in '%s'", ms);
			return false;
		}
		char value[600];
		letter_value((char)(letter | 0x20), ctx, value, sizeof(value));
		transform(value, count, reverse, nd ? delims : ".", escape, &o);
	}
	if (o.overflow) {
		snprintf(err, errlen, "expansion of '%s' too long", ms);
		return false;
	}
	if (domain_spec) {
		if (o.len > 0 && out[o.len - 1] == '.')
			out[--o.len] = '\0';
		/* §7.3: drop labels from the left until it fits 253 octets */
		char *s = out;
		while (strlen(s) > 253) {
			char *dot = strchr(s, '.');
			if (!dot)
				break;
			s = dot + 1;
		}
		if (s != out)
			memmove(out, s, strlen(s) + 1);
		if (strlen(out) > 253 || out[0] == '\0') {
			snprintf(err, errlen, "'%s' expands to no usable domain", ms);
			return false;
		}
	}
	return true;
}

bool spf_cidr_match(int family, const unsigned char *ip, int net_family,
                    const unsigned char *net, unsigned prefix)
{
	if (family != net_family)
		return false;
	unsigned bits = family == AF_INET ? 32 : 128;
	if (prefix > bits)
		return false;
	unsigned whole = prefix / 8, rest = prefix % 8;
	if (memcmp(ip, net, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (ip[whole] & mask) == (net[whole] & mask);
}

void spf_ip_normalise(int *family, unsigned char ip[16])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (*family == AF_INET6 && !memcmp(ip, mapped, 12)) {
		memmove(ip, ip + 12, 4);
		memset(ip + 4, 0, 12);
		*family = AF_INET;
	}
}
