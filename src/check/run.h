/* The state of one `rawmail check` run (check/ internal), shared by
 * run.c (destinations, sources) and domain.c (the From domain's
 * records). */
#ifndef RAWMAIL_CHECK_RUN_H
#define RAWMAIL_CHECK_RUN_H

#include <openssl/ssl.h>

#include "check/check.h"
#include "dns/lookup.h"
#include "dns/resolver.h"
#include "util/text.h"
#include <string.h>

#define CHECK_SOURCES_MAX 16
#define CHECK_PROBES_MAX 8   /* addresses probed per destination */
/* SPF evaluations: the From domain and the HELO name per source */
#define CHECK_SPF_MAX (2 * CHECK_SOURCES_MAX)

struct check_spf;

struct check_run {
	const struct check_opts *o;
	struct event_base *base;
	struct dns_resolver *dns;
	SSL_CTX *tls;
	int pending;                      /* callbacks still to come */
	char from_domain[256];            /* "" without --from */
	struct check_results domain;      /* the From domain's results */
	/* domain.c: the From domain's SPF record as found (one, none,
	 * several), reported only when no source address was evaluated */
	struct check_results spf_presence;
	/* spf.c: one evaluation per identity and source address */
	struct check_spf *spf[CHECK_SPF_MAX];
	size_t nspf;
	/* helo.c: the EHLO name's addresses (A and AAAA) */
	bool helo_answered;
	enum dns_lookup_status helo_status;
	size_t helo_n;
	int helo_family[16];
	unsigned char helo_addr[16][16];
};

/* Text from DNS or a peer made safe to print (util/text.h). */
static inline void check_text_safe(char *dst, size_t dstlen, const char *src)
{
	text_escape(dst, dstlen, src, strlen(src), 0);
}

/* A callback the run waits for has come: when none is left, the loop
 * ends. */
void check_run_done(struct check_run *run);

/* helo.c: the EHLO name's A and AAAA records are asked at the start;
 * check_helo_report compares them with the source addresses at the end
 * (families[i], addrs[i] for n sources). */
void check_helo_start(struct check_run *run);
void check_helo_report(struct check_run *run, const int *families,
                       const unsigned char (*addrs)[16], size_t n, struct check_results *out);

/* spf.c: SPF evaluated for a source address receivers see: the From
 * domain's (when --from) and the HELO name's (RFC 7208 §2.3, when it is
 * a host name).  check_spf_report adds the From domain's (helo false)
 * or the HELO name's results, in source order, and returns how many;
 * check_spf_free cancels what still runs (before the resolver is
 * freed) and frees all. */
void check_spf_source(struct check_run *run, int family, const unsigned char *addr);
size_t check_spf_report(struct check_run *run, bool helo, struct check_results *out);
void check_spf_free(struct check_run *run);

/* dkim.c: each configured DKIM key's record, SELECTOR._domainkey.DOMAIN
 * (RFC 6376 §3.6.2.2), looked up and compared with the local key; with
 * none configured, a warning that says how to make one. */
void check_dkim_start(struct check_run *run);

/* domain.c: the tests of the From domain's DNS records, one per entry
 * of a table (SPF, DKIM, DMARC), started in parallel. */
void check_domain_start(struct check_run *run);

#endif
