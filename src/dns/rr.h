/* One DNS question, one kind of answer: the TXT strings of a name, its A
 * or AAAA addresses, its MX hosts or the PTR names of an address, on the
 * resolver's c-ares channel.  For the SPF evaluator (spf.h) and any
 * check that needs a record as DNS gives it, with the three outcomes a
 * caller must tell apart: the name does not exist (NXDOMAIN), it exists
 * without records of that type (no data), or nothing is known yet
 * (SERVFAIL, REFUSED, timeout: try again later). */
#ifndef RAWMAIL_DNS_RR_H
#define RAWMAIL_DNS_RR_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/resolver.h"

enum dns_rr_type {
	DNS_RR_TXT,
	DNS_RR_A,
	DNS_RR_AAAA,
	DNS_RR_MX,    /* items are host names, most preferred first */
	DNS_RR_PTR,   /* name is an address ("192.0.2.1" or "2001:db8::1") */
};

enum dns_rr_status {
	DNS_RR_OK,         /* n >= 1 items */
	DNS_RR_NXDOMAIN,   /* the name does not exist */
	DNS_RR_NODATA,     /* the name exists, no record of the type */
	DNS_RR_TEMPORARY,  /* no answer worth keeping: retry later */
};

struct dns_rr_item {
	/* TXT: the record's character-strings concatenated (RFC 7208 §3.3),
	 * NUL-terminated (a NUL inside is kept; len says where it ends);
	 * MX/PTR: the name, no trailing dot; A/AAAA: the address as text. */
	const char *text;
	size_t len;
	int family;             /* A/AAAA: AF_INET or AF_INET6; else 0 */
	unsigned char addr[16]; /* A/AAAA: network order */
};

struct dns_rr_result {
	enum dns_rr_status status;
	const struct dns_rr_item *items;
	size_t n;
	bool truncated;         /* more records than DNS_RR_ITEMS_MAX (limits.h) */
	const char *text;       /* for people: why not OK ("" if OK) */
};

/* res and what it points to are valid during the call only. */
typedef void (*dns_rr_cb)(void *arg, const struct dns_rr_result *res);

struct dns_rr_query;

/* Asks the records of type for name.  cb runs exactly once, later, from
 * the event loop, unless dns_rr_cancel is called first.  NULL if the
 * query could not start (a name that is not a DNS name, no memory,
 * c-ares refusing at once): the caller treats that as temporary, or as
 * a bad name. */
struct dns_rr_query *dns_rr_lookup(struct dns_resolver *r, const char *name,
                                   enum dns_rr_type type, dns_rr_cb cb, void *arg);
/* The TXT strings of name (dns_rr_lookup with DNS_RR_TXT). */
struct dns_rr_query *dns_txt_lookup(struct dns_resolver *r, const char *name, dns_rr_cb cb,
                                    void *arg);
/* cb will not run; the query in flight ends on its own. */
void dns_rr_cancel(struct dns_rr_query *q);

const char *dns_rr_status_name(enum dns_rr_status st);

#endif
