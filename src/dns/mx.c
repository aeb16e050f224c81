/* RFC 5321 §5.1 target ordering, RFC 7505 null MX, and recipient address
 * literals.  See mx.h for the contract. */
#include "dns/mx.h"

#include "util/ip_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "util/limits.h"

/* The longest texts inet_pton accepts: "255.255.255.255" and
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". */
/* RFC 5321 §4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr */
#define IPV6_TAG "IPv6:"
#define IPV6_TAG_LEN 5

/* RFC 7505 §3: the null MX's exchange is the root, "." in master files;
 * resolvers hand it over as "" (c-ares) or ".". */
static bool host_is_null(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

/* Host names are compared ASCII case-insensitively (RFC 4343), with or
 * without the root's trailing dot. */
static bool host_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static void list_remove(struct dns_mx_list *list, size_t i)
{
	memmove(&list->targets[i], &list->targets[i + 1],
	        (list->n - i - 1) * sizeof list->targets[0]);
	list->n--;
}

/* Inserts after every target of lower or equal preference, so the order
 * is stable before the shuffle.  A full list drops its least preferred
 * target to make room for a more preferred one. */
static void list_insert(struct dns_mx_list *list, const char *host, unsigned preference)
{
	size_t at = list->n;

	while (at > 0 && list->targets[at - 1].preference > preference)
		at--;
	if (list->n == list->cap) {
		list->truncated = true;
		if (at == list->n)
			return;
		list->n--;
	}
	memmove(&list->targets[at + 1], &list->targets[at], (list->n - at) * sizeof list->targets[0]);
	list->targets[at].host = host;
	list->targets[at].preference = preference;
	list->n++;
}

/* RFC 5321 §5.1: "If there are multiple destinations with the same
 * preference and there is no clear reason to favor one ..., the SMTP
 * client MUST randomize them to spread the load".  Fisher-Yates over each
 * run of equal preference. */
static void list_shuffle_equal(struct dns_mx_list *list, dns_mx_random_fn random_fn, void *arg)
{
	size_t start = 0;

	while (start < list->n) {
		size_t end = start + 1;

		while (end < list->n && list->targets[end].preference == list->targets[start].preference)
			end++;
		for (size_t k = end - 1; k > start; k--) {
			uint32_t bound = (uint32_t)(k - start + 1);
			uint32_t r = random_fn(arg, bound) % bound;
			struct dns_mx_target tmp = list->targets[start + r];

			list->targets[start + r] = list->targets[k];
			list->targets[k] = tmp;
		}
		start = end;
	}
}

enum dns_mx_status dns_mx_order(enum dns_mx_answer answer, const char *domain,
                                const struct dns_mx_record *records, size_t nrecords,
                                dns_mx_random_fn random_fn, void *random_arg,
                                struct dns_mx_list *list)
{
	list->n = 0;
	list->null_ignored = false;
	list->truncated = false;

	/* A failed query says nothing about the domain's MX: falling back to
	 * its A/AAAA would deliver to a host that may not be the mail server
	 * (RFC 5321 §5.1 allows the implicit MX only when no MX exists). */
	if (answer == DNS_MX_ANSWER_TEMPFAIL)
		return DNS_MX_TEMPFAIL;
	if (answer == DNS_MX_ANSWER_NXDOMAIN)
		return DNS_MX_NXDOMAIN;
	/* RFC 5321 §5.1: "If an empty list of MXs is returned, the address is
	 * treated as if it was associated with an implicit MX RR, with a
	 * preference of 0, pointing to that host." */
	if (nrecords == 0) {
		if (list->cap == 0)
			return DNS_MX_TEMPFAIL;
		list->targets[0].host = domain;
		list->targets[0].preference = 0;
		list->n = 1;
		return DNS_MX_IMPLICIT;
	}
	/* RFC 7505 §3: a null MX is a single MX RR with preference 0 and the
	 * root as exchange.  A lone "." at another preference names no host
	 * either and nothing else is there to try: the same answer. */
	if (nrecords == 1 && records[0].host != NULL && host_is_null(records[0].host))
		return DNS_MX_NULL;
	for (size_t i = 0; i < nrecords; i++) {
		const char *host = records[i].host;
		unsigned preference = records[i].preference;
		bool seen = false;

		/* RFC 7505 §3: "A domain that advertises a null MX MUST NOT
		 * advertise any other MX RR."  One that does is misconfigured;
		 * the null record names no host and cannot be tried, while the
		 * others name real hosts, so we ignore the null record and
		 * deliver to the rest (and say so through null_ignored). */
		if (host == NULL || host_is_null(host)) {
			list->null_ignored = true;
			continue;
		}
		/* The same host twice (at any preferences): try it once, at
		 * the lowest, since a second attempt would fail the same way. */
		for (size_t j = 0; j < list->n; j++) {
			if (!host_equal(list->targets[j].host, host))
				continue;
			seen = true;
			if (preference < list->targets[j].preference) {
				list_remove(list, j);
				list_insert(list, host, preference);
			}
			break;
		}
		if (!seen)
			list_insert(list, host, preference);
	}
	/* Only null records (several "." MX): no host to deliver to. */
	if (list->n == 0)
		return DNS_MX_NULL;
	list_shuffle_equal(list, random_fn, random_arg);
	return DNS_MX_OK;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5321 §4.1.3 IPv4-address-literal, strict (util/ip_text.h). */
static bool ipv4_from_text(const char *c, size_t n, unsigned char ip[4])
{
	return ip_text_v4(c, n, ip);
}

/* RFC 5321 §4.1.3 IPv6-addr; an IPv4-mapped address is reported as the
 * IPv4 one. */
static bool ipv6_from_text(const char *c, size_t n, struct dns_destination *out)
{
	int v = ip_text_v6(c, n, out->ip);
	if (v == 0)
		return false;
	out->kind = v == 4 ? DNS_DESTINATION_IPV4 : DNS_DESTINATION_IPV6;
	return true;
}

/* The content of "[...]": IPv6 with its tag, else IPv4; any other
 * "tag:content" is a General-address-literal, which we cannot deliver to. */
static enum dns_destination_kind classify_bracketed(const char *c, size_t n,
                                                    struct dns_destination *out)
{
	if (n >= IPV6_TAG_LEN && strncasecmp(c, IPV6_TAG, IPV6_TAG_LEN) == 0) {
		if (!ipv6_from_text(c + IPV6_TAG_LEN, n - IPV6_TAG_LEN, out))
			out->kind = DNS_DESTINATION_INVALID;
		return out->kind;
	}
	if (memchr(c, ':', n) == NULL && ipv4_from_text(c, n, out->ip))
		out->kind = DNS_DESTINATION_IPV4;
	return out->kind;
}

enum dns_destination_kind dns_destination_classify(const char *domain,
                                                   struct dns_destination *out)
{
	size_t len;
	bool numeric = true;

	memset(out, 0, sizeof *out);
	out->kind = DNS_DESTINATION_INVALID;
	if (domain == NULL)
		return out->kind;
	len = strlen(domain);
	/* RFC 5321 §4.5.3.1.2: a domain, literal brackets included, is at
	 * most 255 octets. */
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return out->kind;
	if (domain[0] == '[') {
		if (len < 3 || domain[len - 1] != ']')
			return out->kind;
		return classify_bracketed(domain + 1, len - 2, out);
	}
	if (strpbrk(domain, "[]") != NULL)
		return out->kind;
	/* An unbracketed IP, as naive clients write it: a domain never holds
	 * ':', and RFC 1123 §2.1 keeps host names from being all-numeric, so
	 * such text can only be meant as an address. */
	if (strchr(domain, ':') != NULL) {
		if (ipv6_from_text(domain, len, out))
			out->unbracketed = true;
		return out->kind;
	}
	for (size_t i = 0; i < len; i++)
		if (!is_digit((unsigned char)domain[i]) && domain[i] != '.')
			numeric = false;
	if (numeric) {
		if (ipv4_from_text(domain, len, out->ip)) {
			out->kind = DNS_DESTINATION_IPV4;
			out->unbracketed = true;
		}
		return out->kind;
	}
	out->kind = DNS_DESTINATION_NAME;
	return out->kind;
}
