/* The From domain's records: one check function per record in a table,
 * so each lands on its own.  SPF is evaluated per source address in
 * spf.c; the SPF slot here looks the record up (RFC 7208 §4.5: more than
 * one is a permerror), reported only when no source address was
 * evaluated.  DKIM key records: dkim.c.  DMARC: RFC 9989's
 * tree walk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check/run.h"
#include "dns/rr.h"

/* ---- SPF ---------------------------------------------------------------- */

static void spf_cb(void *arg, const struct dns_rr_result *res)
{
	struct check_run *run = arg;
	size_t n = res->status == DNS_RR_OK ? res->n : 0;
	const char *d = run->from_domain;
	char fix[512];
	snprintf(fix, sizeof(fix),
	         "publish one SPF record listing the addresses that send for %s, e.g. "
	         "%s. IN TXT \"v=spf1 ip4:ADDRESS -all\" (the source address is in the ptr lines)",
	         d, d);
	if (res->status == DNS_RR_TEMPORARY) {
		check_results_add(&run->spf_presence, CHECK_WARN, "spf", d, NULL,
		                  "the TXT lookup failed (timeout or server failure): try again");
		check_run_done(run);
		return;
	}
	size_t nspf = 0;
	const char *spf = NULL;
	for (size_t i = 0; i < n; i++)
		/* RFC 7208 §4.5: "v=spf1" then a space or the end, any case */
		if (!strncasecmp(res->items[i].text, "v=spf1", 6) &&
		    (res->items[i].text[6] == ' ' || res->items[i].text[6] == '\0')) {
			nspf++;
			spf = res->items[i].text;
		}
	if (nspf == 0)
		check_results_add(&run->spf_presence, CHECK_WARN, "spf", d, fix,
		                  "no SPF record: receivers treat mail from %s as unauthenticated", d);
	else if (nspf > 1)
		check_results_add(&run->spf_presence, CHECK_FAIL, "spf", d,
		                  "keep one v=spf1 record and merge the others into it",
		                  "%zu SPF records: a permerror (RFC 7208 §4.5), receivers ignore all",
		                  nspf);
	else {
		char safe[1024];
		check_text_safe(safe, sizeof(safe), spf);
		/* The slot for dns/spf: evaluate the record for each source
		 * address (ptr lines) and give pass/fail here. */
		check_results_add(&run->spf_presence, CHECK_INFO, "spf", d, NULL,
		                  "record \"%s\" (not evaluated: no destination gave a source "
		                  "address)",
		                  safe);
	}
	check_run_done(run);
}

static void spf_start(struct check_run *run)
{
	run->pending++;
	if (!dns_txt_lookup(run->dns, run->from_domain, spf_cb, run)) {
		check_results_add(&run->spf_presence, CHECK_WARN, "spf", run->from_domain, NULL,
		                  "the TXT lookup could not start");
		check_run_done(run);
	}
}

/* ---- DMARC ---------------------------------------------------------------- */

#define DMARC_NAMES_MAX 8

struct dmarc_walk {
	struct check_run *run;
	size_t n, answered;
	char names[DMARC_NAMES_MAX][272];
	bool tempfail[DMARC_NAMES_MAX];
	int parsed[DMARC_NAMES_MAX];      /* DMARC records found at each name ... */
	int broken[DMARC_NAMES_MAX];      /* ... and how many of them did not parse */
	struct check_dmarc_record rec[DMARC_NAMES_MAX];
	char why[DMARC_NAMES_MAX][160];
	char text[DMARC_NAMES_MAX][512];
};

struct dmarc_query {
	struct dmarc_walk *w;
	size_t i;
};

static void dmarc_report(struct dmarc_walk *w)
{
	struct check_run *run = w->run;
	const char *d = run->from_domain;
	char fix[600];
	snprintf(fix, sizeof(fix),
	         "_dmarc.%s. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@%s\" (tighten to "
	         "p=quarantine once SPF and DKIM pass)",
	         d, d);
	/* RFC 9989 §4.10: the first name in walk order with exactly one
	 * DMARC record decides. */
	for (size_t i = 0; i < w->n; i++) {
		if (w->tempfail[i]) {
			check_results_add(&run->domain, CHECK_WARN, "dmarc", d, NULL,
			                  "the lookup of %s failed (timeout or server failure): try "
			                  "again",
			                  w->names[i]);
			return;
		}
		if (w->parsed[i] == 0)
			continue;
		if (w->parsed[i] > 1) {
			check_results_add(&run->domain, CHECK_FAIL, "dmarc", d,
			                  "keep one v=DMARC1 record at that name",
			                  "%d DMARC records at %s: receivers use none of them",
			                  w->parsed[i], w->names[i]);
			return;
		}
		if (w->broken[i]) {
			check_results_add(&run->domain, CHECK_FAIL, "dmarc", d, fix,
			                  "the record at %s is broken: %s (\"%s\")", w->names[i],
			                  w->why[i], w->text[i]);
			return;
		}
		const struct check_dmarc_record *r = &w->rec[i];
		enum check_dmarc_policy pol = i > 0 && r->has_sp ? r->sp : r->p;
		check_results_add(&run->domain, CHECK_PASS, "dmarc", d, NULL,
		                  "%s%s: policy %s%s (\"%s\")", w->names[i],
		                  i > 0 ? " (found walking up the tree, RFC 9989 §4.10)" : "",
		                  check_dmarc_policy_name(pol), r->has_rua ? ", reports requested" : "",
		                  w->text[i]);
		return;
	}
	check_results_add(&run->domain, CHECK_WARN, "dmarc", d, fix,
	                  "no DMARC record at _dmarc.%s or above it (Gmail and Yahoo ask bulk "
	                  "senders for one)",
	                  d);
}

static void dmarc_cb(void *arg, const struct dns_rr_result *res)
{
	struct dmarc_query *q = arg;
	struct dmarc_walk *w = q->w;
	size_t i = q->i;
	free(q);
	w->tempfail[i] = res->status == DNS_RR_TEMPORARY;
	size_t n = res->status == DNS_RR_OK ? res->n : 0;
	for (size_t k = 0; k < n; k++) {
		const char *record = res->items[k].text;
		struct check_dmarc_record rec;
		char why[160];
		int rc = check_dmarc_parse(record, &rec, why, sizeof(why));
		if (rc == 0)
			continue;
		w->parsed[i]++;
		check_text_safe(w->text[i], sizeof(w->text[i]), record);
		if (rc < 0) {
			w->broken[i]++;
			snprintf(w->why[i], sizeof(w->why[i]), "%s", why);
		} else {
			w->rec[i] = rec;
		}
	}
	struct check_run *run = w->run;
	if (++w->answered == w->n) {
		dmarc_report(w);
		free(w);
	}
	check_run_done(run);
}

static void dmarc_start(struct check_run *run)
{
	struct dmarc_walk *w = calloc(1, sizeof(*w));
	if (!w) {
		check_results_add(&run->domain, CHECK_WARN, "dmarc", run->from_domain, NULL,
		                  "out of memory");
		return;
	}
	w->run = run;
	w->n = check_dmarc_walk(run->from_domain, w->names, DMARC_NAMES_MAX);
	if (w->n == 0) {
		free(w);
		return;
	}
	/* All names are asked at once (the answer is the first in walk
	 * order), so a slow server costs one timeout, not eight. */
	size_t started = 0;
	for (size_t i = 0; i < w->n; i++) {
		struct dmarc_query *q = malloc(sizeof(*q));
		if (q) {
			q->w = w;
			q->i = i;
			run->pending++;
			if (dns_txt_lookup(run->dns, w->names[i], dmarc_cb, q)) {
				started++;
				continue;
			}
			run->pending--;
			free(q);
		}
		w->tempfail[i] = true;
		w->answered++;
	}
	if (started == 0) {
		dmarc_report(w);
		free(w);
	}
}

/* ---- the table ------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*start)(struct check_run *run);
} domain_checks[] = {
	{ "spf", spf_start },     /* dns/spf* replaces the presence check */
	{ "dkim", check_dkim_start },   /* dkim.c */
	{ "dmarc", dmarc_start },
};

void check_domain_start(struct check_run *run)
{
	for (size_t i = 0; i < sizeof(domain_checks) / sizeof(domain_checks[0]); i++)
		domain_checks[i].start(run);
}
