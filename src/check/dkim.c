/* The DKIM key records (RFC 6376 §3.6.2.2: SELECTOR._domainkey.DOMAIN)
 * for the keys send signs with: present, parses (msg/dkim's strict
 * parser), the same k= and p= as the local key, not revoked, not in
 * testing.  Every fix is the record to publish in the zone-file syntax
 * `rawmail dkim keygen` prints (dkim_record_zone_line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/run.h"
#include "dns/rr.h"
#include "msg/dkim.h"
#include "util/buf.h"

/* The longest record text checked or shown: an 8192-bit key's p= and
 * the tags around it. */
#define CHECK_DKIM_TEXT_MAX (DKIM_RECORD_P_MAX + 256)

struct dkim_item {
	struct check_run *run;
	char domain[DKIM_NAME_MAX + 1];
	char selector[DKIM_NAME_MAX + 1];
	char name[2 * DKIM_NAME_MAX + 16];
	bool has_key;
	enum dkim_alg alg;
	const char *type;                 /* "rsa" or "ed25519" */
	char p[DKIM_RECORD_P_MAX + 1];    /* the local key's p= */
	char keyfile[300];                /* made safe for printing */
};

/* The record to publish for the local key, in keygen's syntax. */
static void item_publish_fix(const struct dkim_item *it, const char *lead, char *fix,
                             size_t fixlen)
{
	if (!it->has_key) {
		snprintf(fix, fixlen,
		         "%spublish the record `rawmail dkim keygen --domain %s --selector %s` "
		         "printed for the key that signs (or give it: --dkim-key FILE)",
		         lead, it->domain, it->selector);
		return;
	}
	struct buf text, line;
	buf_init(&text, CHECK_DKIM_TEXT_MAX);
	buf_init(&line, 2 * CHECK_DKIM_TEXT_MAX);
	if (buf_printf(&text, "v=DKIM1; k=%s; p=%s", it->type, it->p) == 0 &&
	    dkim_record_zone_line(it->domain, it->selector, text.data, &line) == 0)
		snprintf(fix, fixlen, "%spublish: %s", lead, line.data);
	else
		snprintf(fix, fixlen, "%spublish k=%s; p=%s at %s", lead, it->type, it->p, it->name);
	buf_free(&text);
	buf_free(&line);
}

static void item_report(struct dkim_item *it, const struct dns_rr_result *res)
{
	struct check_results *out = &it->run->domain;
	char fix[2 * CHECK_DKIM_TEXT_MAX + 600];
	const char *n = it->name;
	if (res->status == DNS_RR_TEMPORARY) {
		check_results_add(out, CHECK_WARN, "dkim", n, NULL,
		                  "the TXT lookup failed (timeout or server failure): try again");
		return;
	}
	if (res->status != DNS_RR_OK) {
		item_publish_fix(it, "", fix, sizeof(fix));
		check_results_add(out, CHECK_FAIL, "dkim", n, fix,
		                  "no key record: verifiers cannot check the signature of "
		                  "selector %s, so DMARC sees no DKIM pass",
		                  it->selector);
		return;
	}
	if (res->n > 1) {
		item_publish_fix(it, "keep one record: ", fix, sizeof(fix));
		check_results_add(out, CHECK_FAIL, "dkim", n, fix,
		                  "%zu TXT records: verifiers may take either (RFC 6376 §3.6.2.2)",
		                  res->n);
		return;
	}
	const struct dns_rr_item *rec = &res->items[0];
	char safe[CHECK_DKIM_TEXT_MAX * 4 + 1], err[300], why[1200];
	check_text_safe(safe, sizeof(safe), rec->text);
	struct dkim_record r;
	if (dkim_record_parse(rec->text, rec->len, &r, err, sizeof(err)) < 0) {
		check_text_safe(why, sizeof(why), err);
		item_publish_fix(it, "", fix, sizeof(fix));
		check_results_add(out, CHECK_FAIL, "dkim", n, fix,
		                  "the record does not parse: %s (\"%s\")", why, safe);
		return;
	}
	if (r.revoked) {
		item_publish_fix(it, "", fix, sizeof(fix));
		check_results_add(out, CHECK_FAIL, "dkim", n, fix,
		                  "the key is revoked (empty p=, RFC 6376 §3.6.1): every signature "
		                  "with selector %s fails",
		                  it->selector);
		return;
	}
	const char *rtype = r.k == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
	if (it->has_key && r.k != it->alg) {
		item_publish_fix(it, "", fix, sizeof(fix));
		check_results_add(out, CHECK_FAIL, "dkim", n, fix,
		                  "the record is k=%s but the local key %s is %s", rtype, it->keyfile,
		                  it->type);
		return;
	}
	if (it->has_key && strcmp(r.p, it->p)) {
		char lead[DKIM_RECORD_P_MAX + 80];
		snprintf(lead, sizeof(lead), "the local key's p= is %s; ", it->p);
		item_publish_fix(it, lead, fix, sizeof(fix));
		check_results_add(out, CHECK_FAIL, "dkim", n, fix,
		                  "the record's p= is not the public half of the local key %s: "
		                  "signatures fail to verify",
		                  it->keyfile);
		return;
	}
	if (r.testing) {
		check_results_add(out, CHECK_WARN, "dkim", n,
		                  "remove t=y from the record once signatures verify",
		                  "%s t=y: testing mode, verifiers may treat signed mail as "
		                  "unsigned (RFC 6376 §3.6.1)",
		                  it->has_key ? "matches the local key, but" : "parses, but");
		return;
	}
	if (it->has_key)
		check_results_add(out, CHECK_PASS, "dkim", n, NULL,
		                  "k=%s, p= matches the local key %s", rtype, it->keyfile);
	else
		check_results_add(out, CHECK_PASS, "dkim", n, NULL,
		                  "k=%s record present and parses (no local key to compare: "
		                  "--dkim-key FILE)",
		                  rtype);
}

static void item_cb(void *arg, const struct dns_rr_result *res)
{
	struct dkim_item *it = arg;
	struct check_run *run = it->run;
	item_report(it, res);
	free(it);
	check_run_done(run);
}

/* The local key's k= and p=; false (a fail reported) when it cannot be
 * used. */
static bool item_key_load(struct dkim_item *it, const char *path)
{
	struct check_results *out = &it->run->domain;
	char err[512] = "", safe[1100];
	struct dkim_key *key = NULL;
	int rc = dkim_key_load(path, &key, err, sizeof(err));
	check_text_safe(safe, sizeof(safe), err);
	if (rc < 0) {
		char fix[600];
		snprintf(fix, sizeof(fix), "make one: rawmail dkim keygen --domain %s --selector %s",
		         it->domain, it->selector);
		check_results_add(out, CHECK_FAIL, "dkim", it->name, fix, "%s", safe);
		return false;
	}
	if (rc == 1)
		check_results_add(out, CHECK_WARN, "dkim", it->name, NULL, "%s", safe);
	struct buf pub;
	buf_init(&pub, DKIM_RECORD_P_MAX);
	bool ok = dkim_key_public_b64(key, &pub) == 0;
	if (ok) {
		it->has_key = true;
		it->alg = dkim_key_alg(key);
		it->type = dkim_key_type_name(key);
		snprintf(it->p, sizeof(it->p), "%s", pub.data);
	} else {
		check_results_add(out, CHECK_FAIL, "dkim", it->name, NULL,
		                  "cannot encode the public key of %s", it->keyfile);
	}
	buf_free(&pub);
	dkim_key_free(key);
	return ok;
}

static void item_start(struct check_run *run, const struct check_dkim_key *g)
{
	const char *domain = g->domain ? g->domain : run->from_domain;
	if (!domain[0])
		return;
	struct dkim_item *it = calloc(1, sizeof(*it));
	if (!it) {
		check_results_add(&run->domain, CHECK_WARN, "dkim", domain, NULL, "out of memory");
		return;
	}
	it->run = run;
	snprintf(it->domain, sizeof(it->domain), "%s", domain);
	snprintf(it->selector, sizeof(it->selector), "%s", g->selector);
	snprintf(it->name, sizeof(it->name), "%s._domainkey.%s", it->selector, it->domain);
	if (g->key) {
		check_text_safe(it->keyfile, sizeof(it->keyfile), g->key);
		if (!item_key_load(it, g->key)) {
			free(it);
			return;
		}
	}
	run->pending++;
	if (!dns_txt_lookup(run->dns, it->name, item_cb, it)) {
		check_results_add(&run->domain, CHECK_WARN, "dkim", it->name, NULL,
		                  "the TXT lookup could not start (not a DNS name?)");
		free(it);
		check_run_done(run);
	}
}

void check_dkim_start(struct check_run *run)
{
	const struct check_opts *o = run->o;
	if (o->ndkim == 0) {
		char fix[700];
		snprintf(fix, sizeof(fix),
		         "rawmail dkim keygen --domain %s --selector SELECTOR (publish the record it "
		         "prints), then sign with rawmail send --dkim-key FILE --dkim-selector "
		         "SELECTOR --dkim-domain %s or [dkim] in the settings file",
		         run->from_domain, run->from_domain);
		check_results_add(&run->domain, CHECK_WARN, "dkim", run->from_domain, fix,
		                  "no DKIM key configured: mail from this host is unsigned (give "
		                  "--dkim-selector to check a published record)");
		return;
	}
	for (size_t i = 0; i < o->ndkim; i++)
		item_start(run, &o->dkim[i]);
}
