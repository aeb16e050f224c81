/* SPF for each source address (RFC 7208 through dns/spf.h): the From
 * domain's record evaluated for the address receivers see, and the HELO
 * name's (§2.3: a bounce has an empty MAIL FROM, so receivers check the
 * HELO identity alone).  dns/spf has no deadline of its own: each check
 * gets a timer and is cancelled when it fires, and everything still
 * running is cancelled before the resolver is freed. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check/run.h"
#include "dns/spf.h"
#include "util/hostname.h"

struct check_spf {
	struct check_run *run;
	struct spf_check *c;   /* NULL once answered or cancelled */
	struct event *timer;
	bool helo;             /* the HELO identity, else the From domain */
	int family;
	unsigned char addr[16];
	char domain[256];
	struct check_results res;
};

static void spf_fix_text(const struct check_spf *s, const struct spf_outcome *o,
                         const char *ip, char *fix, size_t fixlen)
{
	char term[INET6_ADDRSTRLEN + 5];
	snprintf(term, sizeof(term), "%s:%s", s->family == AF_INET ? "ip4" : "ip6", ip);
	const char *d = s->domain;
	if (!o->record[0] || o->result == SPF_RESULT_NONE) {
		snprintf(fix, fixlen, "publish: %s. IN TXT \"v=spf1 %s -all\"", d, term);
		return;
	}
	if (o->result == SPF_RESULT_PERMERROR) {
		snprintf(fix, fixlen,
		         "repair the record (%s), e.g. replace it with: %s. IN TXT \"v=spf1 %s -all\"",
		         o->explanation, d, term);
		return;
	}
	char rec[1100], safe[1200];
	check_spf_record_add(o->record, term, rec, sizeof(rec));
	check_text_safe(safe, sizeof(safe), rec);
	snprintf(fix, fixlen, "add %s to the record before its all term: %s. IN TXT \"%s\"", term,
	         d, safe);
}

static void spf_outcome_cb(void *arg, const struct spf_outcome *o)
{
	struct check_spf *s = arg;
	s->c = NULL;
	if (s->timer)
		evtimer_del(s->timer);
	char ip[INET6_ADDRSTRLEN], why[1400], fix[2600];
	inet_ntop(s->family, s->addr, ip, sizeof(ip));
	check_text_safe(why, sizeof(why), o->explanation);
	spf_fix_text(s, o, ip, fix, sizeof(fix));
	const char *test = s->helo ? "helo-spf" : "spf";
	const char *name = spf_result_name(o->result);
	switch (o->result) {
	case SPF_RESULT_PASS: {
		char matched[600];
		check_text_safe(matched, sizeof(matched), o->matched);
		check_results_add(&s->res, CHECK_PASS, test, s->domain, NULL,
		                  "%s for %s (%s matched; %u DNS lookups)", name, ip, matched,
		                  o->lookups);
		break;
	}
	case SPF_RESULT_FAIL:
	case SPF_RESULT_PERMERROR:
		check_results_add(&s->res, CHECK_FAIL, test, s->domain, fix,
		                  "%s for %s: %s (receivers refuse or junk the mail)", name, ip, why);
		break;
	case SPF_RESULT_SOFTFAIL:
	case SPF_RESULT_NEUTRAL:
		check_results_add(&s->res, CHECK_WARN, test, s->domain, fix,
		                  "%s for %s: %s (the address is not authorised)", name, ip, why);
		break;
	case SPF_RESULT_NONE:
		check_results_add(&s->res, CHECK_WARN, test, s->domain, fix,
		                  "none for %s: %s (receivers treat the mail as unauthenticated)", ip,
		                  why);
		break;
	case SPF_RESULT_TEMPERROR:
		check_results_add(&s->res, CHECK_WARN, test, s->domain, NULL,
		                  "temperror for %s: %s: try again", ip, why);
		break;
	}
	check_run_done(s->run);
}

static void spf_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct check_spf *s = arg;
	if (!s->c)
		return;
	spf_check_cancel(s->c);
	s->c = NULL;
	char ip[INET6_ADDRSTRLEN];
	inet_ntop(s->family, s->addr, ip, sizeof(ip));
	check_results_add(&s->res, CHECK_WARN, s->helo ? "helo-spf" : "spf", s->domain, NULL,
	                  "not evaluated for %s within %us (slow DNS): try again", ip,
	                  (s->run->o->timeout_ms + 999) / 1000);
	check_run_done(s->run);
}

static void spf_one_start(struct check_run *run, bool helo, const char *domain, int family,
                          const unsigned char *addr)
{
	if (run->nspf == CHECK_SPF_MAX)
		return;
	struct check_spf *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	run->spf[run->nspf++] = s;
	s->run = run;
	s->helo = helo;
	s->family = family;
	memcpy(s->addr, addr, family == AF_INET ? 4 : 16);
	check_text_safe(s->domain, sizeof(s->domain), domain);
	char sender[300];
	snprintf(sender, sizeof(sender), "%s", run->o->from ? run->o->from : "");
	struct spf_request req = {
		.family = family,
		.domain = domain,
		/* §2.3: the HELO identity is checked as a bounce's would be */
		.sender = helo ? NULL : sender,
		.helo = run->o->helo,
	};
	memcpy(req.ip, addr, 16);
	run->pending++;
	s->c = spf_check_start(run->dns, &req, spf_outcome_cb, s);
	if (!s->c) {
		check_results_add(&s->res, CHECK_WARN, helo ? "helo-spf" : "spf", s->domain, NULL,
		                  "not evaluated: out of memory");
		check_run_done(run);
		return;
	}
	/* The whole evaluation (its lookups follow one another: includes,
	 * then their a and mx terms) gets one --timeout, like every other
	 * network test: against a working server it takes milliseconds,
	 * and a stalled one must not hold the run past its bound. */
	s->timer = evtimer_new(run->base, spf_timer_cb, s);
	if (s->timer) {
		struct timeval tv = { .tv_sec = run->o->timeout_ms / 1000,
			              .tv_usec = (run->o->timeout_ms % 1000) * 1000 };
		evtimer_add(s->timer, &tv);
	}
}

void check_spf_source(struct check_run *run, int family, const unsigned char *addr)
{
	unsigned char a[16] = { 0 };
	memcpy(a, addr, family == AF_INET ? 4 : 16);
	if (run->from_domain[0])
		spf_one_start(run, false, run->from_domain, family, a);
	const char *helo = run->o->helo;
	if (helo && strchr(helo, '.') && hostname_syntax_ok(helo))
		spf_one_start(run, true, helo, family, a);
}

size_t check_spf_report(struct check_run *run, bool helo, struct check_results *out)
{
	size_t n = 0;
	for (size_t i = 0; i < run->nspf; i++) {
		struct check_spf *s = run->spf[i];
		if (s->helo != helo)
			continue;
		for (size_t k = 0; k < s->res.n; k++) {
			const struct check_result *it = &s->res.items[k];
			check_results_add(out, it->status, it->test, it->subject, it->fix, "%s",
			                  it->found);
			n++;
		}
	}
	return n;
}

void check_spf_free(struct check_run *run)
{
	for (size_t i = 0; i < run->nspf; i++) {
		struct check_spf *s = run->spf[i];
		if (s->c)
			spf_check_cancel(s->c);
		if (s->timer)
			event_free(s->timer);
		check_results_free(&s->res);
		free(s);
	}
	run->nspf = 0;
}
