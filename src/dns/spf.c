/* RFC 7208 check_host() as a state machine over DNS answers (spf.h).
 *
 * A stack of frames: the domain asked first, then one per include being
 * evaluated (§5.2); a redirect (§6.1) replaces its frame's domain.  Each
 * frame walks its record's terms; a term that needs DNS starts one query
 * and the walk resumes from its answer. */
#include "dns/spf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "dns/lookup.h"
#include "dns/rr.h"
#include "dns/spf_macro.h"
#include "dns/spf_record.h"
#include "util/limits.h"

struct frame {
	char domain[256];
	struct spf_record *rec;   /* NULL until fetched */
	size_t term;              /* the term being evaluated */
	bool redirected;          /* reached by redirect=: none is a permerror (§6.1) */
};

/* What the query in flight is for. */
enum waiting {
	WAIT_NONE,
	WAIT_TXT,
	WAIT_ADDR,          /* a: the target's A or AAAA */
	WAIT_MX,            /* mx: the MX names */
	WAIT_MX_ADDR,       /* mx: names[next-1]'s addresses */
	WAIT_PTR,           /* ptr: the address's names */
	WAIT_PTR_ADDR,      /* ptr: names[next-1]'s addresses */
	WAIT_EXISTS,
};

struct spf_check {
	struct dns_resolver *r;
	spf_cb cb;
	void *arg;
	struct event *later;      /* finishing from the loop */
	bool calling;             /* inside cb: a cancel there only stops the call's end */
	struct dns_rr_query *q;
	enum waiting waiting;
	int family;
	unsigned char ip[16];
	char ip_text[INET6_ADDRSTRLEN];
	char sender[600];
	char helo[256];
	char domain[256];         /* the domain asked first (a redirect replaces frames[0]'s) */
	struct frame frames[SPF_DEPTH_MAX];
	size_t depth;
	unsigned lookups, voids;
	/* The mx / ptr mechanism's names and where it is in them. */
	char names[SPF_MX_NAMES_MAX][256];
	size_t nnames, next;
	char target[256];         /* the current mechanism's expanded domain */
	/* The outcome, kept until cb runs. */
	enum spf_result result;
	char record[DNS_TXT_RECORD_MAX + 1];
	char matched[300], matched_in[256];
	char explanation[1200];
};

static void frame_done(struct spf_check *c, enum spf_result res);
static void walk(struct spf_check *c);

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spf_check *c = arg;
	struct spf_outcome o = {
		.result = c->result,
		.domain = c->domain,
		.record = c->record,
		.matched = c->matched,
		.matched_in = c->matched_in,
		.explanation = c->explanation,
		.lookups = c->lookups,
		.void_lookups = c->voids,
	};
	c->calling = true;
	if (c->cb)
		c->cb(c->arg, &o);
	c->calling = false;
	spf_check_cancel(c);
}

/* The result is known: cb runs from the loop (so never inside start). */
static void finish(struct spf_check *c, enum spf_result res)
{
	c->result = res;
	c->waiting = WAIT_NONE;
	c->q = NULL;
	struct timeval now = { 0, 0 };
	evtimer_add(c->later, &now);
}

__attribute__((format(printf, 3, 4)))
static void finish_error(struct spf_check *c, enum spf_result res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->explanation, sizeof(c->explanation), fmt, ap);
	va_end(ap);
	finish(c, res);
}

static struct frame *top(struct spf_check *c)
{
	return &c->frames[c->depth - 1];
}

static void macro_ctx(struct spf_check *c, struct spf_macro_ctx *m)
{
	memset(m, 0, sizeof(*m));
	m->sender = c->sender;
	m->domain = top(c)->domain;
	m->helo = c->helo;
	m->family = c->family;
	memcpy(m->ip, c->ip, 16);
}

/* RFC 1035 names, and §4.3: a multi-label name. */
static bool domain_ok(const char *s)
{
	const char *dot = strchr(s, '.');
	return dns_name_ok(s) && dot && dot[1] != '\0';
}

static bool ask(struct spf_check *c, const char *name, enum dns_rr_type type, enum waiting w);

static void txt_cb(void *arg, const struct dns_rr_result *res);

/* Reads the SPF record of the top frame's domain. */
static void fetch(struct spf_check *c)
{
	struct frame *f = top(c);
	if (!domain_ok(f->domain)) {
		snprintf(c->explanation, sizeof(c->explanation), "'%s' is not a domain name", f->domain);
		frame_done(c, SPF_RESULT_NONE);
		return;
	}
	ask(c, f->domain, DNS_RR_TXT, WAIT_TXT);
}

static void txt_cb(void *arg, const struct dns_rr_result *res)
{
	struct spf_check *c = arg;
	struct frame *f = top(c);
	c->q = NULL;
	if (res->status == DNS_RR_TEMPORARY) {
		finish_error(c, SPF_RESULT_TEMPERROR, "%s", res->text);
		return;
	}
	const struct dns_rr_item *spf = NULL;
	size_t count = 0;
	for (size_t i = 0; i < res->n; i++)
		if (spf_record_is_spf(res->items[i].text, res->items[i].len)) {
			spf = &res->items[i];
			count++;
		}
	if (count == 0) {
		snprintf(c->explanation, sizeof(c->explanation), "%s has no SPF record%s", f->domain,
		         res->status == DNS_RR_NXDOMAIN ? " (no such domain)" : "");
		frame_done(c, SPF_RESULT_NONE);
		return;
	}
	if (c->depth == 1 && !f->redirected)
		snprintf(c->record, sizeof(c->record), "%.*s", (int)spf->len, spf->text);
	if (count > 1) {
		/* §4.5: more than one record is a permerror */
		snprintf(c->explanation, sizeof(c->explanation),
		         "%zu SPF records at %s (RFC 7208 §4.5: publish exactly one)", count, f->domain);
		finish(c, SPF_RESULT_PERMERROR);
		return;
	}
	f->rec = malloc(sizeof(*f->rec));
	char err[300];
	if (!f->rec) {
		finish_error(c, SPF_RESULT_TEMPERROR, "out of memory");
		return;
	}
	if (!spf_record_parse(spf->text, spf->len, f->rec, err, sizeof(err))) {
		snprintf(c->explanation, sizeof(c->explanation), "SPF record of %s: %s", f->domain, err);
		finish(c, SPF_RESULT_PERMERROR);
		return;
	}
	f->term = 0;
	walk(c);
}

/* §4.6.4: one more DNS-querying term; false (and permerror) past 10. */
static bool count_lookup(struct spf_check *c)
{
	if (++c->lookups > SPF_LOOKUPS_MAX) {
		snprintf(c->explanation, sizeof(c->explanation),
		         "more than %d DNS lookups (RFC 7208 §4.6.4), at %s in %s's record",
		         SPF_LOOKUPS_MAX,
		         top(c)->rec && top(c)->term < top(c)->rec->n
		             ? top(c)->rec->terms[top(c)->term].text : "redirect",
		         top(c)->domain);
		finish(c, SPF_RESULT_PERMERROR);
		return false;
	}
	return true;
}

/* §4.6.4: an empty answer; false (and permerror) past 2. */
static bool count_void(struct spf_check *c)
{
	if (++c->voids > SPF_VOID_LOOKUPS_MAX) {
		snprintf(c->explanation, sizeof(c->explanation),
		         "more than %d DNS lookups gave no answer (RFC 7208 §4.6.4 void lookups), "
		         "last %s",
		         SPF_VOID_LOOKUPS_MAX, c->target);
		finish(c, SPF_RESULT_PERMERROR);
		return false;
	}
	return true;
}

static void rr_cb(void *arg, const struct dns_rr_result *res);

static bool ask(struct spf_check *c, const char *name, enum dns_rr_type type, enum waiting w)
{
	c->waiting = w;
	c->q = dns_rr_lookup(c->r, name, type, w == WAIT_TXT ? txt_cb : rr_cb, c);
	if (!c->q) {
		/* An expanded name DNS cannot carry: the record's fault. */
		finish_error(c, SPF_RESULT_PERMERROR, "cannot look up '%s'", name);
		return false;
	}
	return true;
}

static enum spf_result qualifier_result(enum spf_qualifier q)
{
	switch (q) {
	case SPF_QUAL_FAIL: return SPF_RESULT_FAIL;
	case SPF_QUAL_SOFTFAIL: return SPF_RESULT_SOFTFAIL;
	case SPF_QUAL_NEUTRAL: return SPF_RESULT_NEUTRAL;
	default: return SPF_RESULT_PASS;
	}
}

/* The current term matched: its qualifier decides this frame. */
static void matched(struct spf_check *c)
{
	struct frame *f = top(c);
	const struct spf_term *t = &f->rec->terms[f->term];
	if (!c->matched_in[0])
		snprintf(c->matched_in, sizeof(c->matched_in), "%s", f->domain);
	if (c->depth == 1)
		snprintf(c->matched, sizeof(c->matched), "%s", t->text);
	frame_done(c, qualifier_result(t->qualifier));
}

static void next_term(struct spf_check *c)
{
	top(c)->term++;
	walk(c);
}

static bool expand_target(struct spf_check *c, const char *spec)
{
	char err[300];
	struct spf_macro_ctx m;
	if (!spec) {
		snprintf(c->target, sizeof(c->target), "%s", top(c)->domain);
		return true;
	}
	/* Room for the whole expansion: §7.3 cuts it to 253 octets after. */
	char whole[8192];
	macro_ctx(c, &m);
	if (!spf_macro_expand(spec, &m, true, whole, sizeof(whole), err, sizeof(err))) {
		finish_error(c, SPF_RESULT_PERMERROR, "%s", err);
		return false;
	}
	snprintf(c->target, sizeof(c->target), "%s", whole);
	return true;
}

static enum dns_rr_type addr_type(const struct spf_check *c)
{
	return c->family == AF_INET ? DNS_RR_A : DNS_RR_AAAA;
}

/* Walks the top frame's terms from f->term until one needs DNS, one
 * matches, or none is left. */
static void walk(struct spf_check *c)
{
	struct frame *f = top(c);
	for (; f->term < f->rec->n; f->term++) {
		const struct spf_term *t = &f->rec->terms[f->term];
		switch (t->mech) {
		case SPF_MECH_ALL:
			matched(c);
			return;
		case SPF_MECH_IP4:
		case SPF_MECH_IP6:
			if (spf_cidr_match(c->family, c->ip, t->mech == SPF_MECH_IP4 ? AF_INET : AF_INET6,
			                   t->addr, t->mech == SPF_MECH_IP4 ? t->cidr4 : t->cidr6)) {
				matched(c);
				return;
			}
			continue;
		default:
			break;
		}
		if (!count_lookup(c) || !expand_target(c, t->domain))
			return;
		switch (t->mech) {
		case SPF_MECH_INCLUDE:
			/* §5.2: a new check_host() for the target */
			if (c->depth >= SPF_DEPTH_MAX) {
				finish_error(c, SPF_RESULT_PERMERROR, "includes nested too deep at %s",
				             c->target);
				return;
			}
			c->depth++;
			memset(top(c), 0, sizeof(struct frame));
			snprintf(top(c)->domain, sizeof(top(c)->domain), "%s", c->target);
			fetch(c);
			return;
		case SPF_MECH_A:
			ask(c, c->target, addr_type(c), WAIT_ADDR);
			return;
		case SPF_MECH_MX:
			ask(c, c->target, DNS_RR_MX, WAIT_MX);
			return;
		case SPF_MECH_PTR:
			ask(c, c->ip_text, DNS_RR_PTR, WAIT_PTR);
			return;
		case SPF_MECH_EXISTS:
			/* §5.7: an A query whatever the connection's family */
			ask(c, c->target, DNS_RR_A, WAIT_EXISTS);
			return;
		default:
			return;
		}
	}
	/* No term matched.  §6.1: redirect, unless there is an "all". */
	if (f->rec->redirect && !f->rec->has_all) {
		if (!count_lookup(c) || !expand_target(c, f->rec->redirect))
			return;
		free(f->rec);
		memset(f, 0, sizeof(*f));
		snprintf(f->domain, sizeof(f->domain), "%s", c->target);
		f->redirected = true;
		fetch(c);
		return;
	}
	/* §4.7: the default result is neutral */
	frame_done(c, SPF_RESULT_NEUTRAL);
}

static bool addr_matches(const struct spf_check *c, const struct dns_rr_result *res,
                         unsigned cidr4, unsigned cidr6)
{
	for (size_t i = 0; i < res->n; i++)
		if (spf_cidr_match(c->family, c->ip, res->items[i].family, res->items[i].addr,
		                   res->items[i].family == AF_INET ? cidr4 : cidr6))
			return true;
	return false;
}

/* name is target or under it (§5.5), any case, a trailing dot ignored. */
static bool name_under(const char *name, const char *target)
{
	size_t n = strlen(name), t = strlen(target);
	if (n && name[n - 1] == '.')
		n--;
	if (t && target[t - 1] == '.')
		t--;
	if (n < t || strncasecmp(name + n - t, target, t))
		return false;
	return n == t || name[n - t - 1] == '.';
}

/* mx / ptr: the next name's addresses, or no match when none is left. */
static void names_next(struct spf_check *c, enum waiting w)
{
	if (c->next < c->nnames) {
		ask(c, c->names[c->next++], addr_type(c), w);
		return;
	}
	next_term(c);
}

static void rr_cb(void *arg, const struct dns_rr_result *res)
{
	struct spf_check *c = arg;
	struct frame *f = top(c);
	const struct spf_term *t = &f->rec->terms[f->term];
	enum waiting w = c->waiting;
	c->q = NULL;
	c->waiting = WAIT_NONE;

	if (res->status == DNS_RR_TEMPORARY && w != WAIT_PTR && w != WAIT_PTR_ADDR) {
		finish_error(c, SPF_RESULT_TEMPERROR, "%s (in %s)", res->text, t->text);
		return;
	}
	bool empty = res->status == DNS_RR_NXDOMAIN || res->status == DNS_RR_NODATA;
	if (empty && (w == WAIT_ADDR || w == WAIT_MX || w == WAIT_EXISTS || w == WAIT_PTR) &&
	    !count_void(c))
		return;
	switch (w) {
	case WAIT_ADDR:
		if (res->status == DNS_RR_OK && addr_matches(c, res, t->cidr4, t->cidr6)) {
			matched(c);
			return;
		}
		next_term(c);
		return;
	case WAIT_EXISTS:
		if (res->status == DNS_RR_OK) {
			matched(c);
			return;
		}
		next_term(c);
		return;
	case WAIT_MX:
		c->nnames = c->next = 0;
		if (res->status == DNS_RR_OK && (res->n > SPF_MX_NAMES_MAX || res->truncated)) {
			/* §4.6.4: more than 10 MX names is a permerror */
			snprintf(c->explanation, sizeof(c->explanation),
			         "%s has %zu MX records, more than %d (RFC 7208 §4.6.4)", c->target,
			         res->n, SPF_MX_NAMES_MAX);
			finish(c, SPF_RESULT_PERMERROR);
			return;
		}
		/* A null MX (RFC 7505, "MX 0 .") names no host: nothing to match. */
		for (size_t i = 0; res->status == DNS_RR_OK && i < res->n; i++)
			if (res->items[i].text[0] && strcmp(res->items[i].text, "."))
				snprintf(c->names[c->nnames++], sizeof(c->names[0]), "%s", res->items[i].text);
		names_next(c, WAIT_MX_ADDR);
		return;
	case WAIT_MX_ADDR:
		if (res->status == DNS_RR_OK && addr_matches(c, res, t->cidr4, t->cidr6)) {
			matched(c);
			return;
		}
		names_next(c, WAIT_MX_ADDR);
		return;
	case WAIT_PTR:
		/* §5.5: names under the target first; past 10, ignored (§4.6.4).
		 * A DNS error here is no match. */
		c->nnames = c->next = 0;
		for (size_t i = 0; res->status == DNS_RR_OK && i < res->n && i < SPF_PTR_NAMES_MAX; i++)
			if (name_under(res->items[i].text, c->target))
				snprintf(c->names[c->nnames++], sizeof(c->names[0]), "%s", res->items[i].text);
		names_next(c, WAIT_PTR_ADDR);
		return;
	case WAIT_PTR_ADDR:
		if (res->status == DNS_RR_OK && addr_matches(c, res, 32, 128)) {
			matched(c);
			return;
		}
		names_next(c, WAIT_PTR_ADDR);
		return;
	default:
		return;
	}
}

/* "ip4:192.0.2.0/24 a mx": the terms before the deciding one, for the
 * explanation of a fail. */
static void tried_terms(const struct spf_check *c, char *out, size_t outlen)
{
	const struct frame *f = &c->frames[0];
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; f->rec && i < f->term && i < f->rec->n && o + 1 < outlen; i++) {
		int n = snprintf(out + o, outlen - o, "%s%s", o ? " " : "", f->rec->terms[i].text);
		if (n < 0 || (size_t)n >= outlen - o)
			break;
		o += (size_t)n;
	}
}

/* The top frame has its result. */
static void frame_done(struct spf_check *c, enum spf_result res)
{
	struct frame *f = top(c);
	if (res == SPF_RESULT_NONE && f->redirected) {
		/* §6.1: a redirect to a domain without a record */
		snprintf(c->explanation, sizeof(c->explanation),
		         "redirect=%s: that domain has no SPF record (RFC 7208 §6.1)", f->domain);
		finish(c, SPF_RESULT_PERMERROR);
		return;
	}
	if (c->depth == 1) {
		if (res == SPF_RESULT_NONE) {
			finish(c, res);
			return;
		}
		char tried[600];
		tried_terms(c, tried, sizeof(tried));
		if (!c->matched[0])
			snprintf(c->explanation, sizeof(c->explanation),
			         "no mechanism matched %s (default neutral, RFC 7208 §4.7)%s%s", c->ip_text,
			         tried[0] ? "; tried " : "", tried);
		else if (res == SPF_RESULT_PASS)
			snprintf(c->explanation, sizeof(c->explanation), "%s matched %s%s%s", c->matched,
			         c->ip_text, strcmp(c->matched_in, f->domain) ? " in " : "",
			         strcmp(c->matched_in, f->domain) ? c->matched_in : "");
		else
			snprintf(c->explanation, sizeof(c->explanation), "%s matched; %s is not in %s",
			         c->matched, c->ip_text, tried[0] ? tried : "any earlier term");
		finish(c, res);
		return;
	}
	/* An include's result (§5.2 table). */
	free(f->rec);
	f->rec = NULL;
	char inner[256];
	snprintf(inner, sizeof(inner), "%s", f->domain);
	c->depth--;
	switch (res) {
	case SPF_RESULT_PASS:
		matched(c);
		return;
	case SPF_RESULT_FAIL:
	case SPF_RESULT_SOFTFAIL:
	case SPF_RESULT_NEUTRAL:
		c->matched_in[0] = '\0';
		next_term(c);
		return;
	case SPF_RESULT_TEMPERROR:
		finish(c, res);
		return;
	case SPF_RESULT_NONE:
		snprintf(c->explanation, sizeof(c->explanation),
		         "include:%s: that domain has no SPF record (RFC 7208 §5.2: permerror)", inner);
		finish(c, SPF_RESULT_PERMERROR);
		return;
	case SPF_RESULT_PERMERROR:
		finish(c, res);
		return;
	}
}

struct spf_check *spf_check_start(struct dns_resolver *r, const struct spf_request *req,
                                  spf_cb cb, void *arg)
{
	struct spf_check *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->r = r;
	c->cb = cb;
	c->arg = arg;
	c->later = evtimer_new(dns_resolver_base(r), later_cb, c);
	if (!c->later) {
		free(c);
		return NULL;
	}
	c->family = req->family;
	memcpy(c->ip, req->ip, 16);
	spf_ip_normalise(&c->family, c->ip);
	inet_ntop(c->family, c->ip, c->ip_text, sizeof(c->ip_text));
	snprintf(c->helo, sizeof(c->helo), "%s", req->helo ? req->helo : "");
	/* §2.4: a bounce is checked as postmaster@HELO; §4.3: an empty
	 * local-part is postmaster */
	if (!req->sender || !req->sender[0])
		snprintf(c->sender, sizeof(c->sender), "postmaster@%s", c->helo);
	else if (req->sender[0] == '@' || !strchr(req->sender, '@'))
		snprintf(c->sender, sizeof(c->sender), "postmaster@%s",
		         req->sender[0] == '@' ? req->sender + 1 : req->sender);
	else
		snprintf(c->sender, sizeof(c->sender), "%s", req->sender);
	c->depth = 1;
	snprintf(c->domain, sizeof(c->domain), "%s", req->domain);
	snprintf(c->frames[0].domain, sizeof(c->frames[0].domain), "%s", req->domain);
	fetch(c);
	return c;
}

void spf_check_cancel(struct spf_check *c)
{
	if (!c || c->calling)
		return;   /* from inside cb: freed when cb returns */
	dns_rr_cancel(c->q);
	for (size_t i = 0; i < c->depth && i < SPF_DEPTH_MAX; i++)
		free(c->frames[i].rec);
	event_free(c->later);
	free(c);
}

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail", "softfail",
		                             "temperror", "permerror" };
	return (unsigned)r < 7 ? names[r] : "?";
}
