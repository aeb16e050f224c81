/* Where mail for a recipient domain goes: the RFC 5321 §5.1 rules that
 * turn an MX answer into the ordered list of hosts to try, and the
 * classification of a recipient's domain part (a name that needs DNS, or
 * an address literal that skips it).
 *
 * Pure: no queries, no clock, no allocation; randomness comes from the
 * caller, so tests are deterministic.  resolver.c asks the questions;
 * this file holds the rules about the answers. */
#ifndef RAWMAIL_DNS_MX_H
#define RAWMAIL_DNS_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How the MX query ended.  Only the resolver can tell these apart, and
 * the rules below depend on it: the implicit MX is used only after a
 * NOERROR answer without MX records, never after a failure. */
enum dns_mx_answer {
	DNS_MX_ANSWER_NOERROR,   /* the name exists; records (possibly none) follow */
	DNS_MX_ANSWER_NXDOMAIN,  /* the name does not exist: permanent */
	DNS_MX_ANSWER_TEMPFAIL,  /* SERVFAIL, REFUSED, timeout, no server: temporary */
};

struct dns_mx_record {
	unsigned preference;  /* RFC 1035 §3.3.9: 16 bits, lower is preferred */
	const char *host;     /* exchange, as the resolver gives it ("." or "" for null) */
};

struct dns_mx_target {
	const char *host;     /* points into the records, or is the domain itself */
	unsigned preference;
};

enum dns_mx_status {
	DNS_MX_OK,        /* targets[] holds the MX hosts, in the order to try */
	DNS_MX_IMPLICIT,  /* targets[0] is the domain itself (RFC 5321 §5.1 implicit MX) */
	DNS_MX_NULL,      /* RFC 7505 null MX: the domain accepts no mail; permanent,
	                     reported as 556 5.1.10 (RFC 7505 §4.3) */
	DNS_MX_NXDOMAIN,  /* permanent */
	DNS_MX_TEMPFAIL,  /* temporary: never a fallback to the domain's A/AAAA */
};

struct dns_mx_list {
	struct dns_mx_target *targets;  /* caller's array ... */
	size_t cap;                     /* ... of cap entries (at least 1) */
	size_t n;                       /* out: targets filled */
	/* out: a null MX record came with other MX records and was skipped
	 * (see dns_mx_order); -v says so. */
	bool null_ignored;
	/* out: more distinct hosts than cap; the least preferred were dropped */
	bool truncated;
};

/* The most MX records dns_mx_order is given (its work grows with the
 * square of their number).  No real domain comes near; a hostile answer
 * (up to ~4000 records over TCP) is sampled down to this at random by the
 * caller (lookup.c), so no record is favoured by its place. */
#define DNS_MX_RECORDS_MAX 512

/* Returns a number in [0, bound), uniformly (bound >= 1). */
typedef uint32_t (*dns_mx_random_fn)(void *arg, uint32_t bound);

/* Applies RFC 5321 §5.1 and RFC 7505 to an MX answer for domain:
 * - NOERROR with records: hosts by preference, lowest first, in random
 *   order among equal preferences (random_fn(arg, k) picks among k); a host
 *   listed twice is tried once, at its lowest preference (host names
 *   compare ASCII case-insensitively, a trailing dot ignored);
 * - more hosts than list->cap: the most preferred are kept; where the cut
 *   falls inside one preference, the hosts kept there are chosen at random
 *   among all of that preference (RFC 5321 §5.1 randomises before any
 *   cut), and list->truncated is set;
 * - NOERROR with no record: the implicit MX, the domain itself at
 *   preference 0;
 * - a single record whose host is "." or "" (a null MX): DNS_MX_NULL;
 * - NXDOMAIN and TEMPFAIL: returned as they are, with no target.
 * list->targets[] entries point into records[] or at domain, so those
 * must outlive the list. */
enum dns_mx_status dns_mx_order(enum dns_mx_answer answer, const char *domain,
                                const struct dns_mx_record *records, size_t nrecords,
                                dns_mx_random_fn random_fn, void *random_arg,
                                struct dns_mx_list *list);

/* A recipient's domain part, sorted. */
enum dns_destination_kind {
	DNS_DESTINATION_NAME,     /* a domain name: ask DNS for its MX */
	DNS_DESTINATION_IPV4,     /* an address literal: deliver to ip[0..4), skip DNS */
	DNS_DESTINATION_IPV6,     /* an address literal: deliver to ip[0..16), skip DNS */
	DNS_DESTINATION_INVALID,  /* neither: a usage error */
};

struct dns_destination {
	enum dns_destination_kind kind;
	/* The address was written without brackets ("user@192.0.2.1"):
	 * accepted as its literal, and the sender prints a notice. */
	bool unbracketed;
	unsigned char ip[16];  /* network order, as inet_pton gives it */
};

/* Sorts domain (the part after '@'):
 * - "[192.0.2.1]": IPv4 (RFC 5321 §4.1.3), a dotted quad without leading
 *   zeros ("[01.2.3.4]" is refused: inet_aton would read it as octal);
 * - "[IPv6:2001:db8::1]": IPv6, the tag case-insensitive; an IPv4-mapped
 *   "[IPv6:::ffff:192.0.2.1]" is IPv4 (one address, one spelling);
 * - "[tag:...]", any other General-address-literal: INVALID (no other tag
 *   is registered, so there is nothing to deliver to);
 * - "192.0.2.1", "2001:db8::1": the same literals, unbracketed = true;
 * - text of digits and dots that is not a dotted quad ("1.2.3"), or with
 *   ':' and not an IPv6 address: INVALID (RFC 1123 §2.1: a host name is
 *   never all-numeric; a domain never holds ':');
 * - anything else non-empty: NAME (its syntax is the address parser's job).
 * Returns out->kind. */
enum dns_destination_kind dns_destination_classify(const char *domain,
                                                   struct dns_destination *out);

/* A domain name as DNS and the SMTP envelope carry it (RFC 5890: A-labels,
 * "xn--..."), written into out, lower case.  ASCII names are only folded
 * to lower case; a name with UTF-8 (U-labels, "bücher.example") is
 * converted by IDNA2008 with UTS #46 non-transitional mapping (libidn2,
 * as browsers and Postfix's smtputf8 do), so "Bücher.Example" and
 * "bücher.example" are one domain.  false, with the reason in err, when
 * it is not a valid internationalised name or does not fit in outlen. */
bool dns_domain_to_ascii(const char *domain, char *out, size_t outlen, char *err,
                         size_t errlen);

#endif
