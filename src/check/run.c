/* rawmail check's network part: every destination, its MX hosts and
 * their addresses probed in parallel on one event loop, the source
 * address toward each and its reverse DNS, and the From domain's
 * records (domain.c).  Results are gathered per destination and printed
 * in argument order when everything has answered or timed out. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check/probe.h"
#include "check/run.h"
#include "dns/lookup.h"
#include "dns/mx.h"
#include "dns/reverse.h"
#include "msg/explain.h"
#include "net/tls.h"

struct source {
	struct check_run *run;
	int family;
	unsigned char addr[16];
	enum check_range range;
	char toward[300];              /* the first destination that uses it */
	bool only_v6_dest;             /* a destination reachable only over IPv6 uses it */
	bool asked;
	enum dns_reverse_status st;
	char name[256];
	bool has_public;               /* NAT: a peer's EHLO named the public address */
	int pub_family;
	unsigned char pub[16];
	enum dns_reverse_status pub_st;
	char pub_name[256];
};

struct dest;

struct probe_slot {
	struct dest *d;
	char host[256];
	int family;
	unsigned char addr[16];
	struct source *src;
	bool done;
	struct probe_report rep;
};

struct dest {
	struct check_run *run;
	struct check_state *state;
	const char *arg;
	char domain[256];
	bool literal;
	struct check_results res;
	struct probe_slot probes[CHECK_PROBES_MAX];
	size_t nprobes;
	bool has_v4, has_v6;
};

struct check_state {
	struct check_run run;
	struct dest *dests;
	size_t ndests;
	struct source sources[CHECK_SOURCES_MAX];
	size_t nsources;
};

void check_run_done(struct check_run *run)
{
	if (--run->pending == 0)
		event_base_loopexit(run->base, NULL);
}

static void addr_text(int family, const unsigned char *addr, char *out, size_t outlen)
{
	if (!inet_ntop(family, addr, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
}

static void to_sockaddr(int family, const unsigned char *addr, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, 16);
	}
}

/* ---- sources and their reverse DNS ------------------------------------------ */

static void reverse_cb(void *arg, enum dns_reverse_status st, const char *name)
{
	struct source *s = arg;
	s->st = st;
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
	check_run_done(s->run);
}

static void public_reverse_cb(void *arg, enum dns_reverse_status st, const char *name)
{
	struct source *s = arg;
	s->pub_st = st;
	snprintf(s->pub_name, sizeof(s->pub_name), "%s", name ? name : "");
	check_run_done(s->run);
}

static void reverse_start(struct check_run *run, struct source *s, int family,
                          const unsigned char *addr, dns_reverse_cb cb,
                          enum dns_reverse_status *st)
{
	struct sockaddr_storage ss;
	to_sockaddr(family, addr, &ss);
	run->pending++;
	if (!dns_reverse_lookup(run->dns, (struct sockaddr *)&ss, cb, s)) {
		*st = DNS_REVERSE_TEMPFAIL;
		run->pending--;
	}
}

/* The source toward family/addr, found or added (one reverse lookup per
 * distinct source address). */
static struct source *source_for(struct dest *d, int family, const unsigned char *dest)
{
	struct check_state *cs = d->state;
	unsigned char src[16];
	char err[128];
	if (!check_source_for(family, dest, src, err, sizeof(err))) {
		char ip[INET6_ADDRSTRLEN];
		addr_text(family, dest, ip, sizeof(ip));
		/* no route in one family is normal when the destination has the
		 * other: rawmail send then uses that */
		bool other = family == AF_INET6 ? d->has_v4 : d->has_v6;
		check_results_add(&d->res, other ? CHECK_INFO : CHECK_FAIL, "source", ip,
		                  family == AF_INET6 ? "this host has no IPv6 route: send over IPv4 "
		                                       "(rawmail send -4)"
		                                     : "check the host's network configuration",
		                  "no source address toward %s: %s", ip, err);
		return NULL;
	}
	size_t alen = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < cs->nsources; i++)
		if (cs->sources[i].family == family && !memcmp(cs->sources[i].addr, src, alen))
			return &cs->sources[i];
	if (cs->nsources == CHECK_SOURCES_MAX)
		return NULL;
	struct source *s = &cs->sources[cs->nsources++];
	memset(s, 0, sizeof(*s));
	s->run = &cs->run;
	s->family = family;
	memcpy(s->addr, src, alen);
	s->range = check_range_of(family, src);
	snprintf(s->toward, sizeof(s->toward), "%s", d->arg);
	/* Behind NAT the PTR of the private address says nothing: the
	 * receiver sees the public one (looked up if a peer reveals it). */
	if (s->range != CHECK_RANGE_PRIVATE && s->range != CHECK_RANGE_LINKLOCAL) {
		reverse_start(&cs->run, s, family, src, reverse_cb, &s->st);
		check_spf_source(&cs->run, family, src);
	}
	s->asked = true;
	return s;
}

static void source_report(struct check_state *cs, struct source *s, struct check_results *out)
{
	char ip[INET6_ADDRSTRLEN];
	addr_text(s->family, s->addr, ip, sizeof(ip));
	static const char *const ranges[] = { "public", "private (behind NAT)", "loopback",
		                              "link-local" };
	check_results_add(out, CHECK_INFO, "source", ip, NULL, "%s address, used toward %s",
	                  ranges[s->range], s->toward);
	const unsigned char *addr = s->addr;
	int family = s->family;
	enum dns_reverse_status st = s->st;
	const char *name = s->name;
	if (s->range == CHECK_RANGE_PRIVATE || s->range == CHECK_RANGE_LINKLOCAL) {
		if (!s->has_public) {
			check_results_add(out, CHECK_INFO, "ptr", ip,
			                  "test against a server that names the client's address in its "
			                  "EHLO reply (most do), or look up the public address's PTR "
			                  "and SPF by hand",
			                  "behind NAT: the receiver sees the public address, which no "
			                  "peer revealed: PTR and SPF not applicable here");
			return;
		}
		addr = s->pub;
		family = s->pub_family;
		st = s->pub_st;
		name = s->pub_name;
		addr_text(family, addr, ip, sizeof(ip));
		check_results_add(out, CHECK_INFO, "source", ip, NULL,
		                  "public address, as a peer's EHLO reply named it");
	}
	char rev[80], fix[700], zone[200];
	/* the reverse name, for the fix text: the PTR line's owner */
	zone[0] = '\0';
	check_zone_lines(family, addr, cs->run.from_domain[0] ? cs->run.from_domain : NULL, zone,
	                 sizeof(zone));
	const char *ptr_line = strchr(zone, '\n');
	snprintf(rev, sizeof(rev), "%.*s", ptr_line ? (int)strcspn(ptr_line + 1, " ") : 0,
	         ptr_line ? ptr_line + 1 : "");
	switch (st) {
	case DNS_REVERSE_OK:
		check_results_add(out, CHECK_PASS, "ptr", ip, NULL,
		                  "PTR %s, which resolves back to %s (FCrDNS)", name, ip);
		break;
	case DNS_REVERSE_NONE: {
		/* An IPv6 source without PTR: Gmail refuses it (550 5.7.1
		 * "IPv6 sending guidelines"); rawmail then sends over IPv4
		 * where the destination has it. */
		enum check_status sev = family == AF_INET || s->only_v6_dest ? CHECK_FAIL : CHECK_WARN;
		snprintf(fix, sizeof(fix),
		         "publish a PTR record %s IN PTR HOSTNAME. naming a host whose %s record is "
		         "%s (the reverse zone is usually your provider's: ask them)%s",
		         rev, family == AF_INET ? "A" : "AAAA", ip,
		         family == AF_INET6 ? "; or send over IPv4: rawmail send -4" : "");
		check_results_add(out, sev, "ptr", ip, fix, "no PTR record for %s%s", ip,
		                  family == AF_INET6 && sev == CHECK_WARN
		                      ? " (the destinations also have IPv4, which rawmail then uses)"
		                      : "");
		break;
	}
	case DNS_REVERSE_UNCONFIRMED: {
		/* the name came from DNS: printed escaped */
		char safe[300];
		check_text_safe(safe, sizeof(safe), name[0] ? name : "the PTR's name");
		snprintf(fix, sizeof(fix),
		         "publish %s%s IN %s %s (or change the PTR to a name that has it)", safe,
		         name[0] ? "." : "", family == AF_INET ? "A" : "AAAA", ip);
		check_results_add(out, CHECK_FAIL, "ptr", ip, fix,
		                  "PTR %s, but that name does not resolve back to %s (no FCrDNS)",
		                  safe, ip);
		break;
	}
	default:
		check_results_add(out, CHECK_WARN, "ptr", ip, NULL,
		                  "the PTR lookup failed (timeout or server failure): try again");
	}
}

/* ---- probes ------------------------------------------------------------------ */

static void probe_report_add(struct dest *d, struct probe_slot *ps)
{
	struct check_run *run = d->run;
	const struct probe_report *r = &ps->rep;
	char ip[INET6_ADDRSTRLEN], subject[320], fix[800];
	addr_text(ps->family, ps->addr, ip, sizeof(ip));
	if (d->literal)
		snprintf(subject, sizeof(subject), "%s%s%s:%u", ps->family == AF_INET6 ? "[" : "",
		         ip, ps->family == AF_INET6 ? "]" : "", run->o->port);
	else
		snprintf(subject, sizeof(subject), "%s[%s]:%u", ps->host, ip, run->o->port);
	unsigned secs = (run->o->timeout_ms + 999) / 1000;
	const char *owner = d->literal ? "check that the server at that address runs and listens "
	                                 "on that port"
	                               : "the domain's mail server is down or misconfigured: "
	                                 "nothing to fix on this host (tell the domain's "
	                                 "postmaster; rawmail's queue retries)";
	switch (r->outcome) {
	case PROBE_REFUSED:
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, owner,
		                  "connection refused: nothing listens there");
		return;
	case PROBE_UNREACHABLE: {
		/* an IPv6 address without an IPv6 route (or the reverse) when
		 * the destination has the other family too: send moves on */
		bool other = ps->family == AF_INET6 ? d->has_v4 : d->has_v6;
		check_results_add(&d->res, other ? CHECK_WARN : CHECK_FAIL, "smtp", subject,
		                  other ? "none needed: rawmail send tries the destination's other "
		                          "addresses"
		                        : owner,
		                  "cannot connect: %s", r->error);
		return;
	}
	case PROBE_TIMEOUT:
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, NULL,
		                  "no answer to the connection within %us", secs);
		return;
	case PROBE_SILENT:
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, owner,
		                  "accepts the connection but never greets within %us", secs);
		return;
	case PROBE_STALLED:
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, owner,
		                  "greets \"%s\" but does not answer EHLO within %us", r->greeting,
		                  secs);
		return;
	case PROBE_CLOSED:
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, owner,
		                  "closed the connection before the session began");
		return;
	case PROBE_BAD_REPLY:
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, owner,
		                  "answers with something that is not SMTP");
		return;
	case PROBE_REJECTED: {
		/* the table of known refusals (msg/explain.c) says why and what
		 * to do, as send's result lines do */
		const struct msg_explanation *e = msg_reply_explain(r->code, r->enhanced, r->reply);
		if (e)
			snprintf(fix, sizeof(fix), "%s; %s", e->cause, e->fix);
		check_results_add(&d->res, CHECK_FAIL, "smtp", subject, e ? fix : owner,
		                  "refuses this host: %d %s", r->code, r->reply);
		return;
	}
	case PROBE_OK:
		break;
	}
	if (!r->starttls) {
		check_results_add(&d->res, CHECK_WARN, "smtp", subject,
		                  "the receiver's choice: rawmail sends there in the clear "
		                  "(rawmail send --tls required refuses to)",
		                  "greets \"%s\", answers EHLO, no STARTTLS offered", r->greeting);
		return;
	}
	if (!r->tls_ok) {
		check_results_add(&d->res, CHECK_WARN, "smtp", subject, owner,
		                  "greets \"%s\", offers STARTTLS, but the TLS handshake failed",
		                  r->greeting);
		return;
	}
	check_results_add(&d->res, CHECK_PASS, "smtp", subject, NULL,
	                  "greets \"%s\", answers EHLO, STARTTLS: %s %s", r->greeting,
	                  r->tls_version, r->tls_cipher);
	if (r->fingerprint[0]) {
		snprintf(fix, sizeof(fix), "to pin this certificate: rawmail send --tls-fingerprint %s",
		         r->fingerprint);
		check_results_add(&d->res, CHECK_INFO, "tls", subject, d->literal ? fix : NULL,
		                  "certificate %s", r->fingerprint);
	}
}

static void dest_finish(struct dest *d)
{
	/* Every address timed out at connect: not the receivers (several
	 * hosts, or one that is not down) but this network dropping port
	 * 25, as residential and cloud providers do. */
	size_t timeouts = 0;
	for (size_t i = 0; i < d->nprobes; i++) {
		probe_report_add(d, &d->probes[i]);
		timeouts += d->probes[i].rep.outcome == PROBE_TIMEOUT;
	}
	if (d->nprobes && timeouts == d->nprobes) {
		check_results_add(&d->res, CHECK_FAIL, "port25", d->arg, msg_explain_fix_relay,
		                  "every address timed out: outgoing port %u is probably blocked by "
		                  "this network",
		                  d->run->o->port);
	}
}

static void probe_done(void *arg, const struct probe_report *rep)
{
	struct probe_slot *ps = arg;
	struct dest *d = ps->d;
	ps->rep = *rep;
	ps->done = true;
	/* A peer that names our address in its EHLO reply reveals the
	 * public address of a NAT (Postfix, Exim: "Hello name [ADDR]"). */
	struct source *s = ps->src;
	if (rep->revealed && s && !s->has_public &&
	    (s->range == CHECK_RANGE_PRIVATE || s->range == CHECK_RANGE_LINKLOCAL) &&
	    check_range_of(rep->revealed_family, rep->revealed_addr) == CHECK_RANGE_PUBLIC) {
		s->has_public = true;
		s->pub_family = rep->revealed_family;
		memcpy(s->pub, rep->revealed_addr, 16);
		reverse_start(d->run, s, s->pub_family, s->pub, public_reverse_cb, &s->pub_st);
		check_spf_source(d->run, s->pub_family, s->pub);
	}
	bool all = true;
	for (size_t i = 0; i < d->nprobes; i++)
		all = all && d->probes[i].done;
	if (all)
		dest_finish(d);
	check_run_done(d->run);
}

static void probes_start(struct dest *d, const struct dns_lookup_addr *addrs, size_t n)
{
	struct check_run *run = d->run;
	for (size_t i = 0; i < n; i++) {
		if (addrs[i].family == AF_INET)
			d->has_v4 = true;
		else
			d->has_v6 = true;
	}
	for (size_t i = 0; i < n && d->nprobes < CHECK_PROBES_MAX; i++) {
		struct probe_slot *ps = &d->probes[d->nprobes++];
		ps->d = d;
		/* names from DNS are printed: made safe like any peer text */
		check_text_safe(ps->host, sizeof(ps->host), addrs[i].host);
		ps->family = addrs[i].family;
		memcpy(ps->addr, addrs[i].addr, addrs[i].family == AF_INET ? 4 : 16);
		ps->src = source_for(d, ps->family, ps->addr);
		if (ps->src && ps->family == AF_INET6 && !d->has_v4)
			ps->src->only_v6_dest = true;
	}
	for (size_t i = 0; i < d->nprobes; i++) {
		struct probe_slot *ps = &d->probes[i];
		run->pending++;
		if (!probe_start(run->base, run->tls, ps->family, ps->addr, run->o->port,
		                 run->o->helo, d->literal ? NULL : ps->host, run->o->timeout_ms,
		                 probe_done, ps)) {
			ps->rep.outcome = PROBE_UNREACHABLE;
			snprintf(ps->rep.error, sizeof(ps->rep.error), "could not start (no memory)");
			ps->done = true;
			run->pending--;
		}
	}
}

/* ---- destinations --------------------------------------------------------------- */

static void lookup_cb(void *arg, const struct dns_lookup_result *res)
{
	struct dest *d = arg;
	char text[512];
	check_text_safe(text, sizeof(text), res->text ? res->text : "");
	switch (res->status) {
	case DNS_LOOKUP_NULLMX:
		check_results_add(&d->res, CHECK_FAIL, "mx", d->domain,
		                  "none on this side: the domain says it receives no mail "
		                  "(check the address)",
		                  "null MX (RFC 7505): %s accepts no mail", d->domain);
		break;
	case DNS_LOOKUP_PERMANENT:
		check_results_add(&d->res, CHECK_FAIL, "mx", d->domain, "check the address's domain",
		                  "no mail server: %s", text);
		break;
	case DNS_LOOKUP_TEMPORARY:
		check_results_add(&d->res, CHECK_FAIL, "mx", d->domain,
		                  "check the DNS server (--dns) or try again",
		                  "the lookup failed for now: %s", text);
		break;
	case DNS_LOOKUP_OK: {
		char hosts[600] = "";
		size_t used = 0;
		for (size_t i = 0; i < res->n && used < sizeof(hosts) - 1; i++) {
			if (i && !strcmp(res->addrs[i].host, res->addrs[i - 1].host))
				continue;
			int w = snprintf(hosts + used, sizeof(hosts) - used, "%s%s (%u)",
			                 used ? ", " : "", res->addrs[i].host, res->addrs[i].preference);
			if (w < 0)
				break;
			used += (size_t)w;
			if (used >= sizeof(hosts))
				used = sizeof(hosts) - 1;
		}
		char safe[sizeof(hosts) * 4 + 1];
		check_text_safe(safe, sizeof(safe), hosts);
		if (res->implicit_mx)
			check_results_add(&d->res, CHECK_PASS, "mx", d->domain, NULL,
			                  "no MX record: mail goes to the domain's own address "
			                  "(implicit MX, RFC 5321 §5.1)");
		else
			check_results_add(&d->res, CHECK_PASS, "mx", d->domain, NULL, "%s", safe);
		probes_start(d, res->addrs, res->n);
		break;
	}
	}
	check_run_done(d->run);
}

static void dest_start(struct dest *d)
{
	struct check_run *run = d->run;
	const char *at = strrchr(d->arg, '@');
	const char *domain = at ? at + 1 : d->arg;
	struct dns_destination dd;
	switch (dns_destination_classify(domain, &dd)) {
	case DNS_DESTINATION_IPV4:
	case DNS_DESTINATION_IPV6: {
		d->literal = true;
		struct dns_lookup_addr a = { 0 };
		a.family = dd.kind == DNS_DESTINATION_IPV4 ? AF_INET : AF_INET6;
		memcpy(a.addr, dd.ip, a.family == AF_INET ? 4 : 16);
		addr_text(a.family, a.addr, d->domain, sizeof(d->domain));
		a.host = d->domain;
		probes_start(d, &a, 1);
		return;
	}
	case DNS_DESTINATION_INVALID:
		check_results_add(&d->res, CHECK_FAIL, "mx", d->arg, NULL,
		                  "not a domain, address or IP address");
		return;
	case DNS_DESTINATION_NAME:
		break;
	}
	char err[160];
	if (!dns_domain_to_ascii(domain, d->domain, sizeof(d->domain), err, sizeof(err))) {
		check_results_add(&d->res, CHECK_FAIL, "mx", d->arg, NULL, "%s", err);
		return;
	}
	run->pending++;
	if (!dns_destination_lookup(run->dns, d->domain, run->o->family, NULL, NULL, lookup_cb, d)) {
		run->pending--;
		check_results_add(&d->res, CHECK_FAIL, "mx", d->domain, NULL,
		                  "not a valid domain name, or the lookup could not start");
	}
}

/* ---- the lab network's zone lines ------------------------------------------------- */

static void zones_report(struct check_state *cs, struct check_results *out)
{
	/* Only when every destination is an IP literal: a lab network
	 * without DNS.  Its hosts (this one and the destinations) get names
	 * that resolve both ways once these lines are served. */
	if (cs->ndests == 0)
		return;
	for (size_t i = 0; i < cs->ndests; i++)
		if (!cs->dests[i].literal)
			return;
	char *lines = calloc(1, 8192);
	if (!lines)
		return;
	const char *domain = cs->run.from_domain[0] ? cs->run.from_domain : NULL;
	for (size_t i = 0; i < cs->nsources; i++)
		check_zone_lines(cs->sources[i].family, cs->sources[i].addr, domain, lines, 8192);
	for (size_t i = 0; i < cs->ndests; i++)
		for (size_t k = 0; k < cs->dests[i].nprobes; k++) {
			const struct probe_slot *ps = &cs->dests[i].probes[k];
			char one[400] = "";
			check_zone_lines(ps->family, ps->addr, domain, one, sizeof(one));
			if (!strstr(lines, one))
				check_zone_lines(ps->family, ps->addr, domain, lines, 8192);
		}
	size_t len = strlen(lines);
	if (len && lines[len - 1] == '\n')
		lines[len - 1] = '\0';
	check_results_add(out, CHECK_INFO, "zone", domain ? domain : "lab", lines,
	                  "IP literals only (a lab network without DNS?): these A and PTR lines "
	                  "give its hosts names that resolve both ways");
	free(lines);
}

/* ---- the run ------------------------------------------------------------------------ */

static void results_move(struct check_results *from, struct check_results *to)
{
	for (size_t i = 0; i < from->n; i++) {
		struct check_result *it = &from->items[i];
		check_results_add(to, it->status, it->test, it->subject, it->fix, "%s", it->found);
	}
	to->oom = to->oom || from->oom;
	check_results_free(from);
}

bool check_run(const struct check_opts *o, struct check_results *out, char *why, size_t whylen)
{
	struct check_state *cs = calloc(1, sizeof(*cs));
	if (!cs) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	struct check_run *run = &cs->run;
	run->o = o;
	bool ok = false;
	char err[256];
	run->base = event_base_new();
	if (!run->base) {
		snprintf(why, whylen, "no event loop");
		goto out;
	}
	/* c-ares tries a query twice, the second time with twice the wait:
	 * half the --timeout per try keeps one query within 1.5 timeouts */
	run->dns = dns_resolver_new(o->dns, o->timeout_ms / 2, err, sizeof(err));
	if (!run->dns || !dns_resolver_attach(run->dns, run->base)) {
		snprintf(why, whylen, "resolver: %s", run->dns ? "cannot attach" : err);
		goto out;
	}
	/* No verification: check reports what the peer shows (its version
	 * and fingerprint), whatever certificate it is. */
	run->tls = tls_client_ctx_new(false, NULL, err, sizeof(err));
	const char *at = o->from ? strrchr(o->from, '@') : NULL;
	if (at && !dns_domain_to_ascii(at + 1, run->from_domain, sizeof(run->from_domain), err,
	                               sizeof(err))) {
		snprintf(why, whylen, "--from: %s", err);
		goto out;
	}
	cs->ndests = o->ntargets;
	cs->dests = calloc(o->ntargets ? o->ntargets : 1, sizeof(*cs->dests));
	if (!cs->dests) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	/* Held until everything has started, so an early answer cannot
	 * end the loop. */
	run->pending = 1;
	for (size_t i = 0; i < o->ntargets; i++) {
		cs->dests[i].run = run;
		cs->dests[i].state = cs;
		cs->dests[i].arg = o->targets[i];
		dest_start(&cs->dests[i]);
	}
	check_helo_start(run);
	if (run->from_domain[0])
		check_domain_start(run);
	else if (o->ndkim)
		check_dkim_start(run);  /* keys whose --dkim-domain is given */
	if (--run->pending > 0)
		event_base_dispatch(run->base);
	for (size_t i = 0; i < cs->ndests; i++)
		results_move(&cs->dests[i].res, out);
	for (size_t i = 0; i < cs->nsources; i++)
		source_report(cs, &cs->sources[i], out);
	{
		/* the addresses receivers see: the public one behind NAT when
		 * a peer named it */
		int families[CHECK_SOURCES_MAX];
		unsigned char addrs[CHECK_SOURCES_MAX][16];
		size_t n = 0;
		for (size_t i = 0; i < cs->nsources; i++) {
			const struct source *src = &cs->sources[i];
			families[n] = src->has_public ? src->pub_family : src->family;
			memcpy(addrs[n], src->has_public ? src->pub : src->addr, 16);
			n++;
		}
		check_helo_report(run, families, (const unsigned char(*)[16])addrs, n, out);
	}
	check_spf_report(run, true, out);
	if (!run->from_domain[0])
		check_results_add(out, CHECK_INFO, "domain", "-", "give the sender: --from ADDR",
		                  "SPF, DKIM and DMARC not checked: no --from address");
	/* no source address evaluated (no destination, or only behind NAT):
	 * what the record lookup found */
	if (check_spf_report(run, false, out) == 0)
		results_move(&run->spf_presence, out);
	results_move(&run->domain, out);
	zones_report(cs, out);
	ok = true;
out:
	for (size_t i = 0; i < cs->ndests; i++)
		check_results_free(&cs->dests[i].res);
	check_results_free(&run->domain);
	check_results_free(&run->spf_presence);
	free(cs->dests);
	check_spf_free(run);
	if (run->dns)
		dns_resolver_free(run->dns);
	if (run->tls)
		SSL_CTX_free(run->tls);
	if (run->base)
		event_base_free(run->base);
	free(cs);
	return ok;
}
