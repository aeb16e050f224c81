/* RFC 5321 §5.1 target ordering, RFC 7505 null MX, and recipient address
 * literals.  See mx.h for the contract. */
#include "dns/mx.h"

#include "util/ip_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "util/hostname.h"
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

/* Inserts after every target of lower or equal preference, so the order
 * is stable before the shuffle.  The caller never inserts more than cap. */
static void list_insert(struct dns_mx_list *list, const char *host, unsigned preference)
{
	size_t at = list->n;

	while (at > 0 && list->targets[at - 1].preference > preference)
		at--;
	memmove(&list->targets[at + 1], &list->targets[at], (list->n - at) * sizeof list->targets[0]);
	list->targets[at].host = host;
	list->targets[at].preference = preference;
	list->n++;
}

/* records[i] stands for its host when it has the lowest preference the
 * host is listed with (the first such record): a host listed twice is
 * tried once, at its lowest preference, since a second attempt would
 * fail the same way.  false for a null record and the host's other
 * records. */
static bool record_host(const struct dns_mx_record *records, size_t nrecords, size_t i,
                        unsigned *preference)
{
	const char *host = records[i].host;
	unsigned p = records[i].preference;
	if (host == NULL || host_is_null(host))
		return false;
	for (size_t j = 0; j < nrecords; j++) {
		if (j == i || !records[j].host || !host_equal(records[j].host, host))
			continue;
		if (records[j].preference < p || (records[j].preference == p && j < i))
			return false;
	}
	*preference = p;
	return true;
}

/* With more hosts than room, the cut falls inside one preference: the
 * hosts more preferred than *cut all fit, *keep of the *among hosts at
 * *cut do.  false when every host fits.  Walks the preferences upwards,
 * at most cap + 1 of them: O(cap * nrecords^2) host comparisons, which
 * DNS_MX_RECORDS_MAX keeps small. */
static bool list_cut_find(const struct dns_mx_record *records, size_t nrecords, size_t cap,
                          unsigned *cut, size_t *keep, size_t *among)
{
	size_t fitted = 0;
	bool first = true;
	unsigned prev = 0;
	for (;;) {
		unsigned p, next = 0;
		size_t count = 0;
		for (size_t i = 0; i < nrecords; i++) {
			if (!record_host(records, nrecords, i, &p) || (!first && p <= prev))
				continue;
			if (count == 0 || p < next) {
				next = p;
				count = 1;
			} else if (p == next) {
				count++;
			}
		}
		if (count == 0)
			return false;             /* every host fits */
		if (fitted + count > cap) {
			*cut = next;
			*keep = cap - fitted;
			*among = count;
			return true;
		}
		fitted += count;
		prev = next;
		first = false;
	}
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
	for (size_t i = 0; i < nrecords; i++)
		if (records[i].host == NULL || host_is_null(records[i].host))
			list->null_ignored = true;
	/* RFC 5321 §5.1 randomises among equal preferences, and that must
	 * come before the cut to cap: cut first, and the hosts listed after
	 * the first cap of one preference would never be tried.  The hosts
	 * kept at the cut's preference are a uniform random subset (Knuth's
	 * selection sampling, TAOCP 3.4.2 Algorithm S), shuffled below with
	 * the rest, so every ordering of every subset is equally likely. */
	unsigned cut = 0;
	size_t keep = 0, among = 0, seen = 0;
	bool cutting = list_cut_find(records, nrecords, list->cap, &cut, &keep, &among);
	list->truncated = cutting;
	for (size_t i = 0; i < nrecords; i++) {
		unsigned preference;
		if (!record_host(records, nrecords, i, &preference))
			continue;
		if (cutting && preference > cut)
			continue;
		if (cutting && preference == cut) {
			uint32_t left = (uint32_t)(among - seen++);
			if (keep == 0 || random_fn(random_arg, left) % left >= keep)
				continue;
			keep--;
		}
		list_insert(list, records[i].host, preference);
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

bool dns_domain_to_ascii(const char *domain, char *out, size_t outlen, char *err,
                         size_t errlen)
{
	bool ascii = true;
	for (const char *p = domain; *p; p++)
		ascii &= (unsigned char)*p < 0x80;
	if (ascii) {
		size_t n = strlen(domain);
		if (n >= outlen) {
			snprintf(err, errlen, "domain too long");
			return false;
		}
		for (size_t i = 0; i <= n; i++)
			out[i] = (char)((domain[i] >= 'A' && domain[i] <= 'Z') ? domain[i] + 32 : domain[i]);
		return true;
	}
	/* IDN2_NFC_INPUT: the same name typed with combining marks maps to
	 * the same A-label (RFC 5891 §5.2 asks for NFC). */
	char *a = NULL;
	int rc = idn2_to_ascii_8z(domain, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		snprintf(err, errlen, "not a valid internationalised domain name (%s)",
		         idn2_strerror(rc));
		return false;
	}
	/* libidn2 converts label by label: an empty or overlong label of the
	 * result is still ours to refuse (RFC 1035 §2.3.4). */
	size_t n = strlen(a);
	bool ok = n < outlen && n <= SMTP_DOMAIN_MAX && hostname_syntax_ok(a);
	if (ok)
		memcpy(out, a, n + 1);
	else if (n >= outlen || n > SMTP_DOMAIN_MAX)
		snprintf(err, errlen, "domain too long in its ASCII form (%zu octets)", n);
	else
		snprintf(err, errlen, "not a valid domain name in its ASCII form (%s)", a);
	idn2_free(a);
	return ok;
}
