/* rawmail check: the tests that decide whether mail from this machine
 * will be accepted, each ending in pass / warn / fail, what was found and
 * the exact fix (issue 11).  The network part (run.c) drives one libevent
 * loop and the c-ares resolver of dns/; everything that decides or
 * formats (results, JSON, DMARC records, zone lines, address ranges) is
 * pure and unit-tested.
 *
 * Layering: check/ uses dns/, net/, smtp/, msg/ and util/, never server/
 * or store/ (doc/DESIGN.md, Makefile DEPS_check). */
#ifndef RAWMAIL_CHECK_CHECK_H
#define RAWMAIL_CHECK_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "dns/lookup.h"

/* ---- results (result.c, json.c) ---------------------------------------- */

enum check_status {
	CHECK_PASS,
	CHECK_WARN,
	CHECK_FAIL,
	CHECK_INFO,  /* a note: not applicable, or not evaluated by this build */
};

struct check_result {
	enum check_status status;
	char *test;     /* "mx", "smtp", "ptr", ... */
	char *subject;  /* what was tested: a domain, host, address */
	char *found;    /* what was found, one line */
	char *fix;      /* the exact fix, "" when none; may hold '\n' */
};

struct check_results {
	struct check_result *items;
	size_t n, cap;
	bool oom;  /* an add failed: the report says so */
};

const char *check_status_name(enum check_status st);
/* Adds a result: found is a printf format, fix a plain string (NULL:
 * none).  Text from a peer must already be made safe with text_escape.
 * false when out of memory (results->oom is set). */
bool check_results_add(struct check_results *r, enum check_status st, const char *test,
                       const char *subject, const char *fix, const char *found_fmt, ...)
	__attribute__((format(printf, 6, 7)));
void check_results_free(struct check_results *r);
size_t check_results_count(const struct check_results *r, enum check_status st);
/* One line per result: "STATUS TEST SUBJECT: FOUND" and, when there is
 * a fix, "  fix: FIX" (each further line of a fix indented the same). */
void check_results_print(const struct check_results *r, FILE *out);
/* The same as a JSON document: {"results":[{"status":..,"test":..,
 * "subject":..,"found":..,"fix":..}...],"pass":N,"warn":N,"fail":N,
 * "info":N,"elapsed_ms":N}. */
void check_results_print_json(const struct check_results *r, unsigned long elapsed_ms,
                              FILE *out);
/* A JSON string (RFC 8259 §7) with its quotes: '"', '\\' and every
 * control character escaped; other octets are copied (callers pass UTF-8
 * made safe by text_escape). */
void check_json_string(FILE *out, const char *s);

/* ---- DMARC (dmarc.c) ------------------------------------------------------ */

enum check_dmarc_policy { CHECK_DMARC_NONE, CHECK_DMARC_QUARANTINE, CHECK_DMARC_REJECT };

struct check_dmarc_record {
	enum check_dmarc_policy p;
	bool has_sp;
	enum check_dmarc_policy sp;  /* subdomain policy, when has_sp */
	bool has_rua;
};

/* RFC 9989 §4.7: a record starts with "v=DMARC1" and holds tag=value
 * pairs separated by ';'.  Returns 1 when text is a DMARC record and it
 * parses (out filled), 0 when it is not a DMARC record at all (another
 * TXT at the same name: ignored), -1 when it starts with v=DMARC1 but is
 * broken (why says what: a missing or unknown p=). */
int check_dmarc_parse(const char *text, struct check_dmarc_record *out, char *why,
                      size_t whylen);
const char *check_dmarc_policy_name(enum check_dmarc_policy p);
/* RFC 9989 §4.10 (the DNS tree walk): the names to query for domain, in
 * order: _dmarc.DOMAIN, then with labels removed from the left, at most
 * 8 queries (a name of more than 8 labels jumps from itself to its 7
 * shortest ancestors).  Writes up to max names into names[] (each of
 * namelen octets); returns how many. */
size_t check_dmarc_walk(const char *domain, char names[][272], size_t max);

/* ---- SPF fixes (spf_fix.c) ------------------------------------------------ */

/* The SPF record to publish so that term ("ip4:203.0.113.7") passes:
 * record with term inserted before its all term (RFC 7208 §5.1: nothing
 * after it is reached) or its redirect= (§6.1), else at its end. */
void check_spf_record_add(const char *record, const char *term, char *out, size_t outlen);

/* ---- lab zones (zone.c) ---------------------------------------------------- */

/* The name a lab host gets: "host-192-168-1-100.DOMAIN." (IPv6: the
 * address's text with ':' as '-', "host-2001-db8--1.DOMAIN."); domain
 * "lab" when NULL or empty.  false when it does not fit. */
bool check_zone_name(int family, const unsigned char *addr, const char *domain, char *out,
                     size_t outlen);
/* The two zone-file lines (NSD, BIND; dnsmasq reads them with
 * --host-record or as a hosts file, doc/rawmail.1) for one host:
 *   "NAME IN A 192.168.1.100" (AAAA for IPv6) and
 *   "100.1.168.192.in-addr.arpa. IN PTR NAME" (ip6.arpa nibbles).
 * Appends them with '\n' after each to out (NUL-terminated); false when
 * they do not fit. */
bool check_zone_lines(int family, const unsigned char *addr, const char *domain, char *out,
                      size_t outlen);

/* ---- addresses (source.c) -------------------------------------------------- */

enum check_range {
	CHECK_RANGE_PUBLIC,
	CHECK_RANGE_PRIVATE,   /* RFC 1918, RFC 4193, RFC 6598 CGN: behind NAT */
	CHECK_RANGE_LOOPBACK,  /* checked as it is (tests) */
	CHECK_RANGE_LINKLOCAL,
};
enum check_range check_range_of(int family, const unsigned char *addr);
/* The address rawmail's connection toward dest would come from: a UDP
 * socket connected to it (no packet is sent) and getsockname (the
 * kernel's route choice).  false with errno's text in err (no route:
 * ENETUNREACH). */
bool check_source_for(int family, const unsigned char *dest, unsigned char *src, char *err,
                      size_t errlen);
/* "[203.0.113.7]" in an EHLO reply's first line (Postfix and Exim write
 * "Hello name [ADDR]"): the address the peer saw us come from.  true
 * with *family and addr filled. */
bool check_ehlo_revealed(const char *text, int *family, unsigned char addr[16]);

/* ---- the command (run.c) ----------------------------------------------------- */

/* One DKIM key to check (--dkim-key/--dkim-selector/--dkim-domain or
 * [dkim], parsed as send parses them): key NULL checks the selector's
 * record alone; domain NULL is --from's. */
struct check_dkim_key {
	const char *key;
	const char *selector;
	const char *domain;
};

struct check_opts {
	const char *from;          /* --from ADDR, NULL: no domain tests */
	const char *dns;           /* --dns ADDR[:PORT], NULL: the system's */
	unsigned port;             /* --port, 25 by default */
	enum dns_family_pref family;
	unsigned timeout_ms;       /* per network test (--timeout) */
	const char *helo;          /* the EHLO name: this host's name */
	const char *const *targets;/* RECIPIENT|DOMAIN|IP arguments */
	size_t ntargets;
	const struct check_dkim_key *dkim;  /* the DKIM keys to check */
	size_t ndkim;
};

/* Runs every test; results in r.  false (with why) only when the tests
 * could not run at all (no event loop, a bad --dns). */
bool check_run(const struct check_opts *o, struct check_results *r, char *why, size_t whylen);

#endif
