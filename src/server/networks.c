/* Trusted networks: parsing CIDR text strictly and matching clients
 * (networks.h says what is accepted and why). */
#include "server/networks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ip_text.h"
#include "util/limits.h"
#include "util/text.h"

/* The value, escaped and cut, for an error message: a value from the
 * command line or a config file may hold control octets. */
static void value_escape(char *dst, size_t dstlen, const char *text)
{
	size_t len = strlen(text);
	/* dstlen > 3: room kept for "..." */
	size_t used = text_escape(dst, dstlen - 3, text, len, TEXT_ESCAPE_QUOTES);
	if (used < len)
		memcpy(dst + strlen(dst), "...", 4);
}

static bool refuse(char *err, size_t errlen, const char *text, const char *why)
{
	char v[128];
	value_escape(v, sizeof(v), text);
	snprintf(err, errlen, "trusted network \"%s\": %s", v, why);
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Digits and dots with a number written with a leading zero ("010.0.0.0"):
 * ip_text_v4 refuses it; the message says why. */
static bool leading_zero(const char *a, size_t len)
{
	bool found = false;
	for (size_t i = 0; i < len; i++) {
		if (a[i] != '.' && (a[i] < '0' || a[i] > '9'))
			return false;
		if (a[i] == '0' && (i == 0 || a[i - 1] == '.') && i + 1 < len && a[i + 1] != '.')
			found = true;
	}
	return found;
}

/* A decimal prefix length: 1..3 digits, no leading zero. */
static bool prefix_parse(const char *p, size_t len, unsigned *out)
{
	if (len == 0 || len > 3 || (len > 1 && p[0] == '0'))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* Clears the bits past prefix; true when any was set. */
static bool host_bits_clear(unsigned char *a, size_t octets, unsigned prefix)
{
	bool set = false;
	for (size_t i = 0; i < octets; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
		unsigned char mask = (unsigned char)(keep ? 0xffu << (8 - keep) : 0);
		if (a[i] & ~mask)
			set = true;
		a[i] &= mask;
	}
	return set;
}

static bool prefix_match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
	size_t whole = prefix / 8;
	if (memcmp(a, net, whole) != 0)
		return false;
	unsigned rest = prefix % 8;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (a[whole] & mask) == net[whole];
}

void networks_format(const struct networks_entry *e, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	if (!inet_ntop(e->family, e->addr, addr, sizeof(addr)))
		addr[0] = '\0';
	snprintf(buf, len, "%s/%u", addr, e->prefix);
}

bool networks_add(struct networks *n, const char *text, char *err, size_t errlen)
{
	/* SP/HTAB around the value are ignored (a list split by a caller). */
	const char *p = text;
	size_t len = strlen(text);
	while (len && is_space(*p)) {
		p++;
		len--;
	}
	while (len && is_space(p[len - 1]))
		len--;
	if (len == 0)
		return refuse(err, errlen, text, "empty; expected an address or address/prefix, "
		                                 "e.g. 192.168.1.0/24 or 2001:db8::/32");

	/* address [/prefix], the address optionally in brackets */
	const char *slash = memchr(p, '/', len);
	size_t alen = slash ? (size_t)(slash - p) : len;
	const char *a = p;
	if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
		a++;
		alen -= 2;
	}
	struct networks_entry e = { 0 };
	unsigned char a6[16];
	if (ip_text_v4(a, alen, e.addr)) {
		e.family = AF_INET;
	} else if (memchr(a, ':', alen) && ip_text_v6(a, alen, a6)) {
		/* ip_text_v6 gives an IPv4-mapped address as its 4 octets:
		 * inet_pton again for all 16, the prefix decides below. */
		char buf[IP_TEXT_V6_MAX + 1];
		memcpy(buf, a, alen);
		buf[alen] = '\0';
		if (inet_pton(AF_INET6, buf, e.addr) != 1)
			return refuse(err, errlen, text, "not an IP address");
		e.family = AF_INET6;
	} else if (leading_zero(a, alen)) {
		return refuse(err, errlen, text,
		              "not an IP address: a number with a leading zero is octal to some "
		              "programs (010 is 8), so it is refused");
	} else {
		return refuse(err, errlen, text,
		              "not an IP address or network; expected e.g. 192.168.1.0/24, "
		              "2001:db8::/32 or a single address");
	}

	unsigned max = e.family == AF_INET ? 32 : 128;
	unsigned prefix = max;
	if (slash && !prefix_parse(slash + 1, (size_t)(p + len - slash - 1), &prefix)) {
		char why[96];
		snprintf(why, sizeof(why), "the prefix after \"/\" must be a number from 1 to %u", max);
		return refuse(err, errlen, text, why);
	}
	if (prefix > max) {
		char why[96];
		snprintf(why, sizeof(why), "prefix /%u is longer than an %s address (%u bits)", prefix,
		         e.family == AF_INET ? "IPv4" : "IPv6", max);
		return refuse(err, errlen, text, why);
	}
	if (prefix == 0)
		return refuse(err, errlen, text,
		              "a /0 network is every address: that would relay for the whole "
		              "Internet; name the networks you mean");
	e.prefix = (unsigned char)prefix;
	if (host_bits_clear(e.addr, max / 8, prefix)) {
		char meant[NETWORKS_TEXT_MAX], why[64 + NETWORKS_TEXT_MAX];
		networks_format(&e, meant, sizeof(meant));
		snprintf(why, sizeof(why), "has host bits set; did you mean %s?", meant);
		return refuse(err, errlen, text, why);
	}
	/* RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is how an IPv4 client looks on an
	 * IPv6 socket; such a network (prefix >= 96) is the IPv4 one. */
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (e.family == AF_INET6 && prefix >= 96 && memcmp(e.addr, mapped, 12) == 0) {
		memmove(e.addr, e.addr + 12, 4);
		memset(e.addr + 4, 0, 12);
		e.family = AF_INET;
		e.prefix = (unsigned char)(prefix - 96);
		if (e.prefix == 0)
			return refuse(err, errlen, text,
			              "a /0 network is every IPv4 address: that would relay for the "
			              "whole Internet; name the networks you mean");
	}

	for (size_t i = 0; i < n->count; i++)
		if (n->entries[i].family == e.family && n->entries[i].prefix == e.prefix &&
		    memcmp(n->entries[i].addr, e.addr, 16) == 0)
			return true;
	if (n->count >= NETWORKS_MAX) {
		char why[96];
		snprintf(why, sizeof(why), "more than %d trusted networks", NETWORKS_MAX);
		return refuse(err, errlen, text, why);
	}
	struct networks_entry *grown = realloc(n->entries, (n->count + 1) * sizeof(*grown));
	if (!grown)
		return refuse(err, errlen, text, "out of memory");
	n->entries = grown;
	n->entries[n->count++] = e;
	return true;
}

bool networks_match(const struct networks *n, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family;
	if (sa->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(a, a6->s6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(a, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n->count; i++) {
		const struct networks_entry *e = &n->entries[i];
		if (e->family == family && prefix_match(a, e->addr, e->prefix))
			return true;
	}
	return false;
}

void networks_free(struct networks *n)
{
	free(n->entries);
	n->entries = NULL;
	n->count = 0;
}
