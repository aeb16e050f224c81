/* SPF (RFC 7208): check_host() for one address and domain, on the
 * resolver's c-ares channel, without blocking.  rawmail check asks it for
 * the From domain and for the HELO name (§2.3); a receive-side SPF check
 * can reuse it.  The record is parsed by spf_record.h, macros expanded
 * and prefixes matched by spf_macro.h, DNS asked through rr.h.
 *
 * Decisions (doc/DESIGN.md "SPF"): the §4.6.4 limits are enforced
 * (10 DNS mechanisms, 2 void lookups, 10 MX names: over any is a
 * permerror; PTR names past 10 ignored); %{p} is "unknown" (no PTR lookup
 * made for it, §7.3 allows that); exp= is parsed but no explanation
 * string is fetched. */
#ifndef RAWMAIL_DNS_SPF_H
#define RAWMAIL_DNS_SPF_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/resolver.h"

/* RFC 7208 §2.6 */
enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

struct spf_request {
	int family;              /* AF_INET or AF_INET6 (IPv4-mapped is taken as IPv4) */
	unsigned char ip[16];    /* network order */
	const char *domain;      /* checked: the sender's domain, or the HELO name */
	const char *sender;      /* MAIL FROM address; NULL or "" for a bounce
	                          * (then postmaster@helo, §2.4) */
	const char *helo;        /* the HELO/EHLO name (%{h}); may be NULL */
};

struct spf_outcome {
	enum spf_result result;
	const char *domain;      /* the domain checked */
	const char *record;      /* its SPF record as published ("" if none) */
	const char *matched;     /* the term of record that decided ("-all",
	                          * "include:_spf.example.net"), "" if none did */
	const char *matched_in;  /* the domain whose record held the deciding
	                          * term, deepest first ("_spf.example.net"), "" */
	/* For people, one line: e.g. "-all matched; 192.0.2.1 is not in
	 * ip4:198.51.100.0/24 a mx", "2 SPF records at example.org (RFC 7208
	 * §4.5)", "more than 10 DNS lookups (RFC 7208 §4.6.4)". */
	const char *explanation;
	unsigned lookups;        /* DNS mechanisms and modifiers counted (§4.6.4) */
	unsigned void_lookups;   /* of which came back empty */
};

/* The outcome and its strings are valid during the call only; the check
 * is freed when cb returns (spf_check_cancel from inside cb does nothing). */
typedef void (*spf_cb)(void *arg, const struct spf_outcome *o);

struct spf_check;

/* Starts check_host(req->ip, req->domain, req->sender) (§4).  cb runs
 * exactly once, later, from the event loop the resolver is attached to
 * (never inside this call), unless spf_check_cancel is called first.
 * NULL only when out of memory.  Cancel every check before freeing the
 * resolver. */
struct spf_check *spf_check_start(struct dns_resolver *r, const struct spf_request *req,
                                  spf_cb cb, void *arg);
/* cb will not run; everything is freed now. */
void spf_check_cancel(struct spf_check *c);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" */
const char *spf_result_name(enum spf_result r);

#endif
