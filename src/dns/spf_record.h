/* An SPF record (RFC 7208) parsed, strictly, into the terms the
 * evaluator (spf.h) walks.  Pure: no DNS, no allocation.  Macro-strings
 * (§7.1) are checked here and kept as text; spf_macro.h expands them. */
#ifndef RAWMAIL_DNS_SPF_RECORD_H
#define RAWMAIL_DNS_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "util/limits.h"

enum spf_mechanism {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

/* RFC 7208 §4.6.2: what a matching mechanism's qualifier gives. */
enum spf_qualifier {
	SPF_QUAL_PASS = '+',
	SPF_QUAL_FAIL = '-',
	SPF_QUAL_SOFTFAIL = '~',
	SPF_QUAL_NEUTRAL = '?',
};

struct spf_term {
	enum spf_mechanism mech;
	enum spf_qualifier qualifier;
	const char *domain;      /* domain-spec as a macro-string, NULL if absent */
	unsigned cidr4, cidr6;   /* dual-cidr-length (32 and 128 when absent) */
	unsigned char addr[16];  /* ip4 (4 bytes) / ip6 network */
	const char *text;        /* the term as written, for explanations */
};

struct spf_record {
	struct spf_term terms[SPF_TERMS_MAX];
	size_t n;
	const char *redirect;    /* redirect= domain-spec (§6.1), NULL if none */
	const char *exp;         /* exp= domain-spec (§6.2), NULL if none */
	bool has_all;            /* an "all" anywhere: redirect is ignored (§6.1) */
	char store[2 * DNS_TXT_RECORD_MAX + 2];  /* the strings above point here */
};

/* RFC 7208 §4.5: a TXT string is an SPF record if it begins with
 * "v=spf1" (any case) followed by a space or its end. */
bool spf_record_is_spf(const char *text, size_t len);

/* Parses text (len octets: a TXT record may hold a NUL, which fails).
 * false with the reason in err (e.g. "unknown mechanism 'ip5:1.2.3.4'")
 * on any syntax error: a permerror (§4.6). */
bool spf_record_parse(const char *text, size_t len, struct spf_record *rec, char *err,
                      size_t errlen);

/* Checks a macro-string (§7.1) of len octets.  domain_spec: it must end
 * as a domain-spec does ("." toplabel, or a macro); exp_letters: c, r, t
 * are allowed (only in exp= explanations, §7.2). */
bool spf_macro_string_ok(const char *s, size_t len, bool domain_spec, bool exp_letters,
                         char *err, size_t errlen);

#endif
