/* Where mail for one recipient domain goes, asked of DNS: the MX query,
 * the RFC 5321 §5.1 / RFC 7505 rules of mx.h applied to its answer, then
 * the A and AAAA records of each host, giving the (host, address) list in
 * the order `rawmail send` tries them (and `--dry-run` prints).
 *
 * Address literals never come here: the caller sorts a recipient's domain
 * with dns_destination_classify (mx.h) first. */
#ifndef RAWMAIL_DNS_LOOKUP_H
#define RAWMAIL_DNS_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/mx.h"
#include "dns/resolver.h"

/* At most this many MX hosts are looked up (the least preferred are
 * dropped), and this many addresses kept per host and family: a bound on
 * what one hostile zone can make us try. */
#define DNS_LOOKUP_HOSTS_MAX 16
#define DNS_LOOKUP_ADDRS_MAX 8

/* Which address families to ask for and in which order (-4 / -6, and
 * the default chosen by the caller).  Within a host the order below
 * applies; hosts always keep their MX order, since the preference is the
 * domain owner's choice and the family only ours. */
enum dns_family_pref {
	DNS_FAMILY_ANY,       /* both, alternating per host, IPv6 first (RFC 8305 §4) */
	DNS_FAMILY_V4_ONLY,   /* -4: A only */
	DNS_FAMILY_V6_ONLY,   /* -6: AAAA only */
	DNS_FAMILY_V4_FIRST,  /* both; each host's IPv4 addresses before its IPv6 */
	DNS_FAMILY_V6_FIRST,  /* both; each host's IPv6 addresses before its IPv4 */
};

enum dns_lookup_status {
	DNS_LOOKUP_OK,         /* addrs[0..n) in the order to try (n >= 1) */
	DNS_LOOKUP_NULLMX,     /* RFC 7505 null MX: permanent, reported as 556 5.1.10 */
	DNS_LOOKUP_PERMANENT,  /* NXDOMAIN, or no host has an address (of the family asked) */
	DNS_LOOKUP_TEMPORARY,  /* SERVFAIL, REFUSED, timeout, ...: try again later */
};

struct dns_lookup_addr {
	const char *host;      /* the MX host (or the domain, for the implicit MX) */
	unsigned preference;
	int family;            /* AF_INET or AF_INET6 */
	unsigned char addr[16];/* network order; 4 bytes for AF_INET */
};

struct dns_lookup_result {
	enum dns_lookup_status status;
	const char *text;      /* for people: why it failed, or a note ("" if none) */
	const struct dns_lookup_addr *addrs;
	size_t n;
	bool implicit_mx;      /* no MX: the domain's own addresses (RFC 5321 §5.1) */
	bool null_ignored;     /* a null MX among other MX records was skipped */
	bool truncated;        /* more than DNS_LOOKUP_HOSTS_MAX hosts */
	size_t hosts_skipped;  /* hosts without any address (permanently) */
	size_t hosts_tempfail; /* hosts whose address lookup failed temporarily */
};

/* res and everything it points to is valid during the call only. */
typedef void (*dns_lookup_cb)(void *arg, const struct dns_lookup_result *res);

struct dns_lookup;

/* Starts the lookup of domain (a name, not a literal).  random_fn picks
 * among MX hosts of equal preference (RFC 5321 §5.1); NULL uses
 * getrandom(2).  cb runs exactly once later, from the event loop (never
 * from inside this call), unless dns_lookup_cancel is called first.
 * NULL if the lookup could not start (out of memory, a domain that is not
 * a DNS name: empty, over 253 octets, an empty or over-63-octet label, or
 * c-ares failing at once): the caller reports a temporary failure, or a
 * usage error for a bad name. */
struct dns_lookup *dns_destination_lookup(struct dns_resolver *r, const char *domain,
                                          enum dns_family_pref pref, dns_mx_random_fn random_fn,
                                          void *random_arg, dns_lookup_cb cb, void *arg);
/* The A and AAAA records of one host, no MX (a relay or a route's host,
 * client/relay.h): a result as above with every address under host.
 * cb runs once, later from the loop, or inside this call when every
 * answer was known at once (/etc/hosts): then NULL is returned with
 * *answered true.  NULL with *answered false: not started (as
 * dns_destination_lookup). */
struct dns_lookup *dns_host_lookup(struct dns_resolver *r, const char *host,
                                   enum dns_family_pref pref, dns_lookup_cb cb, void *arg,
                                   bool *answered);
/* The caller no longer wants the answer; cb will not run.  Queries in
 * flight end on their own (c-ares cannot cancel one query). */
void dns_lookup_cancel(struct dns_lookup *q);

/* A name the resolver may be asked (RFC 1035 §2.3.4): at most 253 octets
 * in text (a final dot aside), labels of 1 to 63. */
bool dns_name_ok(const char *s);

const char *dns_lookup_status_name(enum dns_lookup_status st);

#endif
