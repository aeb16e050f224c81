/* All destinations of one message (client/batch.h). */
#include "client/batch.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns/reverse.h"
#include "util/buf.h"

#define TRANSCRIPT_MAX (4 * 1024 * 1024)

enum group_state {
	G_WAITING,      /* not started (parallel limit) */
	G_LOOKUP,       /* MX / address lookup running */
	G_PTR,          /* waiting for the verdict on our IPv6 source */
	G_DELIVERING,   /* route running */
	G_DONE,
};

struct source_verdict;

struct group {
	struct client_batch *b;
	enum group_state state;
	char name[256];              /* the domain (lower case) or the literal as written */
	struct dns_destination dest;
	struct client_result *results;   /* the group's own, copied back at the end */
	size_t *index;                   /* results[k] is req.results[index[k]] */
	size_t n;
	struct dns_lookup *lookup;
	struct client_session_config cfg;   /* the request's, with this group's SMTPUTF8 */
	struct dns_lookup_addr *addrs;   /* the plan (host names in hosts[]) */
	char (*hosts)[256];
	size_t naddrs;
	struct source_verdict *verdict;
	char family_note[200];
	struct buf transcript;
	bool slot_lent;              /* waiting for the pool: its slot is lent out */
	/* A relay or a route's host instead of the MX (NULL: MX), and
	 * which of the two. */
	const struct client_relay_host *via;
	bool via_relay;
	char via_note[300];
};

/* Whether our IPv6 source address toward a destination has a PTR that
 * resolves back to it: asked once per source address. */
struct source_verdict {
	struct client_batch *b;
	unsigned char addr[16];
	bool answered;
	bool confirmed;
	char note[200];
	struct dns_reverse *q;
};

#define VERDICTS_MAX 8

struct client_batch {
	struct client_batch_request own;   /* the request, copied */
	const struct client_batch_request *req;   /* &own */
	struct group *groups;
	size_t ngroups;
	size_t active;
	size_t next;                 /* next group to start */
	size_t done;
	bool live;                   /* one destination: transcript as it happens */
	bool starting;               /* inside start_more */
	bool finished;               /* done was called */
	struct source_verdict verdicts[VERDICTS_MAX];
	size_t nverdicts;
	size_t lent;                 /* groups whose slot is lent out */
};

static void group_start(struct group *g);

static void group_note(struct group *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void group_line(void *arg, const char *line)
{
	struct group *g = arg;
	const struct client_batch_request *req = g->b->req;
	if (!req->transcript)
		return;
	if (g->b->live) {
		req->transcript(req->arg, line);
		return;
	}
	/* Past the cap the conversation is cut, not the delivery. */
	if (buf_append_str(&g->transcript, line) == 0)
		buf_append(&g->transcript, "\n", 1);
}

static void group_note(struct group *g, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	group_line(g, line);
}

static void flush_transcript(struct group *g)
{
	const struct client_batch_request *req = g->b->req;
	if (!req->transcript || g->b->live || g->transcript.len == 0)
		return;
	char *p = g->transcript.data;
	while (*p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		req->transcript(req->arg, p);
		if (!nl)
			break;
		p = nl + 1;
	}
	buf_free(&g->transcript);
}

static size_t slots_max(const struct client_batch_slots *s)
{
	return s->max ? s->max : CLIENT_BATCH_PARALLEL;
}

/* Starts groups while the shared slots allow.  A group may finish inside
 * group_start (a dry run, a failure at once) and call this again: the
 * outer call's loop goes on instead, so the stack does not grow with the
 * number of destinations. */
static void start_more(struct client_batch *b)
{
	if (b->starting)
		return;
	b->starting = true;
	struct client_batch_slots *slots = b->req->slots;
	while (slots->active < slots_max(slots) && b->next < b->ngroups) {
		struct group *g = &b->groups[b->next++];
		b->active++;
		slots->active++;
		group_start(g);
	}
	b->starting = false;
	if (b->done == b->ngroups && !b->finished) {
		b->finished = true;
		b->req->done(b->req->arg);
	}
}

static void group_done(struct group *g)
{
	struct client_batch *b = g->b;
	g->state = G_DONE;
	flush_transcript(g);
	for (size_t k = 0; k < g->n; k++) {
		struct client_result *dst = &b->req->results[g->index[k]];
		client_result_clear(dst);
		*dst = g->results[k];   /* the text moves with it */
		g->results[k].text = NULL;
	}
	b->active--;
	b->req->slots->active--;
	b->done++;
	start_more(b);
	/* This batch had the first claim on the slot; what is left goes to
	 * the others (after start_more, so done may already have run: the
	 * batch is freed only later, from the loop). */
	if (b->req->slot_freed && b->req->slots->active < slots_max(b->req->slots))
		b->req->slot_freed(b->req->arg);
}

static void settle_all(struct group *g, enum client_rcpt_state st, int code, const char *enhanced,
                       const char *reason)
{
	for (size_t k = 0; k < g->n; k++) {
		client_result_set(&g->results[k], st, code, enhanced, reason);
		snprintf(g->results[k].host, sizeof(g->results[k].host), "%s", g->name);
	}
}

static void route_done(void *arg)
{
	group_done(arg);
}

/* A route waiting for its peer's limit uses no connection: its slot goes
 * to another destination meanwhile (one busy MX must not hold every slot
 * while destinations elsewhere wait), and comes back when the route gets
 * its connection, past the limit for a moment if need be: that
 * connection was given up by a route that is ending. */
static void route_waiting(void *arg, bool waiting)
{
	struct group *g = arg;
	struct client_batch *b = g->b;
	struct client_batch_slots *slots = b->req->slots;
	if (!waiting) {
		if (g->slot_lent) {
			g->slot_lent = false;
			b->lent--;
			slots->active++;
		}
		return;
	}
	if (g->slot_lent)
		return;
	g->slot_lent = true;
	b->lent++;
	slots->active--;
	start_more(b);
	if (b->req->slot_freed && slots->active < slots_max(slots))
		b->req->slot_freed(b->req->arg);
}

static void deliver(struct group *g)
{
	const struct client_batch_request *req = g->b->req;
	if (req->plan)
		req->plan(req->arg, g->name, g->addrs,
		          g->naddrs < CLIENT_ROUTE_ADDRS_MAX ? g->naddrs : CLIENT_ROUTE_ADDRS_MAX,
		          g->via ? "" : g->family_note, g->via ? (g->via_relay ? "relay" : "route") : NULL,
		          g->via ? g->via->port : 0);
	if (req->dry_run) {
		group_done(g);
		return;
	}
	g->cfg = *req->cfg;
	for (size_t k = 0; k < g->n; k++)
		for (const char *p = g->results[k].address; *p; p++)
			if ((unsigned char)*p >= 0x80)
				g->cfg.smtputf8 = true;
	struct client_route_request r = {
		.base = req->base,
		.tls_ctx = req->tls_ctx,
		.tls_lazy = req->tls_lazy,
		.cfg = &g->cfg,
		.tls_verify = req->tls_verify,
		.tls_pins = req->tls_pins,
		.tls_npins = req->tls_npins,
		.literal = g->via ? g->via->literal : g->dest.kind != DNS_DESTINATION_NAME,
		.sender = req->sender,
		.message = req->message,
		.message_len = req->message_len,
		.port = req->port,
		.timeout = req->timeout,
		.final_timeout = req->final_timeout,
		.addrs = g->addrs,
		.naddrs = g->naddrs,
		.results = g->results,
		.nresults = g->n,
		.transcript = req->transcript ? group_line : NULL,
		.transcript_body = req->transcript_body,
		.pool = req->pool,
		.owner = g->b,
		.waiting = route_waiting,
		.done = route_done,
		.arg = g,
	};
	if (g->via) {
		r.port = g->via->port;
		r.implicit_tls = g->via->implicit_tls;
		r.via = g->via_relay ? "relay" : "route";
		if (g->via_relay) {
			g->cfg.tls = req->relay_tls;
			r.tls_verify = req->relay_verify;
			g->cfg.auth_user = req->auth_user;
			g->cfg.auth_password = req->auth_password;
		}
	}
	g->state = G_DELIVERING;
	if (!client_route_start(&r)) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.3.0", "out of memory");
		group_done(g);
	}
}

/* IPv4 before IPv6 within each host, hosts in their MX order. */
static void prefer_ipv4(struct group *g)
{
	size_t i = 0;
	while (i < g->naddrs) {
		size_t j = i;
		while (j < g->naddrs && g->addrs[j].host == g->addrs[i].host)
			j++;
		struct dns_lookup_addr tmp[2 * DNS_LOOKUP_ADDRS_MAX];
		size_t n = 0;
		for (int pass = 0; pass < 2; pass++)
			for (size_t k = i; k < j && n < 2 * DNS_LOOKUP_ADDRS_MAX; k++)
				if ((g->addrs[k].family == AF_INET) == (pass == 0))
					tmp[n++] = g->addrs[k];
		memcpy(&g->addrs[i], tmp, n * sizeof(tmp[0]));
		i = j;
	}
}

static void apply_verdict(struct group *g)
{
	struct source_verdict *v = g->verdict;
	snprintf(g->family_note, sizeof(g->family_note), "%s", v->note);
	group_note(g, "-- %s", v->note);
	if (!v->confirmed)
		prefer_ipv4(g);
	deliver(g);
}

static void verdict_cb(void *arg, enum dns_reverse_status st, const char *name)
{
	struct source_verdict *v = arg;
	char ip[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, v->addr, ip, sizeof(ip));
	v->q = NULL;
	v->answered = true;
	v->confirmed = st == DNS_REVERSE_OK;
	if (v->confirmed)
		snprintf(v->note, sizeof(v->note), "our IPv6 address %s has PTR %s: IPv6 first", ip, name);
	else
		snprintf(v->note, sizeof(v->note),
		         "our IPv6 address %s has %s: IPv4 first (receivers refuse IPv6 senders "
		         "without one; -6 forces IPv6)",
		         ip,
		         st == DNS_REVERSE_NONE          ? "no PTR record"
		         : st == DNS_REVERSE_UNCONFIRMED ? "a PTR that does not resolve back to it"
		                                         : "a PTR we could not look up");
	struct client_batch *b = v->b;
	for (size_t i = 0; i < b->ngroups; i++) {
		struct group *g = &b->groups[i];
		if (g->state == G_PTR && g->verdict == v)
			apply_verdict(g);
	}
}

/* The source address the kernel would use toward dst: a UDP socket's
 * connect() picks the route and sends nothing. */
static bool source_for(const unsigned char dst[16], unsigned short port, unsigned char src[16])
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port ? port : 25) };
	memcpy(&sa.sin6_addr, dst, 16);
	struct sockaddr_in6 me;
	socklen_t len = sizeof(me);
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	          getsockname(fd, (struct sockaddr *)&me, &len) == 0;
	close(fd);
	if (ok)
		memcpy(src, &me.sin6_addr, 16);
	return ok;
}

/* Decides the family order for a looked-up group (family_auto). */
static void choose_family(struct group *g)
{
	struct client_batch *b = g->b;
	const struct dns_lookup_addr *v6 = NULL;
	for (size_t i = 0; i < g->naddrs && !v6; i++)
		if (g->addrs[i].family == AF_INET6)
			v6 = &g->addrs[i];
	bool has_v4 = false;
	for (size_t i = 0; i < g->naddrs; i++)
		has_v4 |= g->addrs[i].family == AF_INET;
	if (!v6 || !has_v4) {
		deliver(g);   /* one family only: nothing to choose */
		return;
	}
	unsigned char src[16];
	if (!source_for(v6->addr, b->req->port, src)) {
		snprintf(g->family_note, sizeof(g->family_note),
		         "no IPv6 route to %s: IPv4 first", v6->host);
		group_note(g, "-- %s", g->family_note);
		prefer_ipv4(g);
		deliver(g);
		return;
	}
	struct source_verdict *v = NULL;
	for (size_t i = 0; i < b->nverdicts && !v; i++)
		if (!memcmp(b->verdicts[i].addr, src, 16))
			v = &b->verdicts[i];
	if (!v && b->nverdicts < VERDICTS_MAX) {
		v = &b->verdicts[b->nverdicts++];
		v->b = b;
		memcpy(v->addr, src, 16);
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
		memcpy(&sa.sin6_addr, src, 16);
		v->q = dns_reverse_lookup(b->req->resolver, (struct sockaddr *)&sa, verdict_cb, v);
		if (!v->q) {
			v->answered = true;
			snprintf(v->note, sizeof(v->note), "could not ask for our PTR: IPv4 first");
		}
	}
	if (!v) {
		prefer_ipv4(g);
		deliver(g);
		return;
	}
	g->verdict = v;
	if (v->answered) {
		apply_verdict(g);
		return;
	}
	g->state = G_PTR;
}

static void lookup_cb(void *arg, const struct dns_lookup_result *res)
{
	struct group *g = arg;
	const struct client_batch_request *req = g->b->req;
	g->lookup = NULL;
	switch (res->status) {
	case DNS_LOOKUP_OK:
		break;
	case DNS_LOOKUP_NULLMX:
		group_note(g, "-- %s: null MX (RFC 7505): the domain accepts no mail", g->name);
		settle_all(g, CLIENT_RCPT_PERMFAIL, 556, "5.1.10",
		           "the domain accepts no mail (null MX record, RFC 7505)");
		goto no_plan;
	case DNS_LOOKUP_PERMANENT:
		group_note(g, "-- %s: %s", g->name, res->text);
		if (g->via) {
			/* The relay's or route's name is our configuration, not
			 * the recipient's domain: wait for it to be fixed. */
			char why[700];
			snprintf(why, sizeof(why), "%s %s: %s", g->via_relay ? "relay" : "route",
			         g->via->host, res->text);
			settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.4.3", why);
			goto no_plan;
		}
		settle_all(g, CLIENT_RCPT_PERMFAIL, 0, "5.1.2", res->text);
		goto no_plan;
	case DNS_LOOKUP_TEMPORARY:
		group_note(g, "-- %s: %s", g->name, res->text);
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.4.3", res->text);
		goto no_plan;
	}
	g->addrs = calloc(res->n, sizeof(*g->addrs));
	g->hosts = calloc(res->n, sizeof(*g->hosts));
	if (!g->addrs || !g->hosts) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.3.0", "out of memory");
		group_done(g);
		return;
	}
	/* Copies: res lives only during this call.  Equal host pointers mark
	 * one host's run (prefer_ipv4 relies on it). */
	for (size_t i = 0; i < res->n; i++) {
		g->addrs[i] = res->addrs[i];
		if (i > 0 && res->addrs[i].host == res->addrs[i - 1].host) {
			g->addrs[i].host = g->addrs[i - 1].host;
			continue;
		}
		snprintf(g->hosts[i], sizeof(g->hosts[i]), "%s", res->addrs[i].host);
		g->addrs[i].host = g->hosts[i];
	}
	g->naddrs = res->n;
	if (res->text && res->text[0])
		group_note(g, "-- %s: %s", g->name, res->text);
	if (req->family_auto && !g->via)
		choose_family(g);
	else
		deliver(g);
	return;

no_plan:
	if (req->plan)
		req->plan(req->arg, g->name, NULL, 0, "", NULL, 0);
	group_done(g);
}

/* The one address of an IP literal (a destination's or a relay's). */
static void deliver_literal(struct group *g, const char *host, int family,
                            const unsigned char *ip)
{
	g->addrs = calloc(1, sizeof(*g->addrs));
	if (!g->addrs) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.3.0", "out of memory");
		group_done(g);
		return;
	}
	g->addrs[0].host = host;
	g->addrs[0].family = family;
	memcpy(g->addrs[0].addr, ip, family == AF_INET ? 4 : 16);
	g->naddrs = 1;
	deliver(g);
}

/* A relay or a route instead of the MX: its address, or the A/AAAA
 * lookup of its name. */
static void group_start_via(struct group *g)
{
	const struct client_batch_request *req = g->b->req;
	const struct client_relay_host *h = g->via;
	char where[300];
	client_relay_host_format(h, where, sizeof(where));
	snprintf(g->via_note, sizeof(g->via_note), "%s: via %s %s", g->name,
	         g->via_relay ? "relay" : "route", where);
	group_note(g, "-- %s", g->via_note);
	if (h->literal) {
		deliver_literal(g, h->host, h->family, h->addr);
		return;
	}
	if (!req->resolver) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.4.3", "no resolver");
		group_done(g);
		return;
	}
	/* No PTR verdict for a relay: it is the relay's to deliver, and it
	 * knows us (AUTH); -4 / -6 still choose. */
	enum dns_family_pref pref = req->family_auto ? DNS_FAMILY_ANY : req->family;
	bool answered;
	g->state = G_LOOKUP;
	struct dns_lookup *q = dns_host_lookup(req->resolver, h->host, pref, lookup_cb, g, &answered);
	if (answered)
		return;
	g->lookup = q;
	if (!q) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.4.3", "cannot start the DNS lookup");
		if (req->plan)
			req->plan(req->arg, g->name, NULL, 0, "", NULL, 0);
		group_done(g);
	}
}

static void group_start(struct group *g)
{
	const struct client_batch_request *req = g->b->req;
	if (g->dest.kind == DNS_DESTINATION_NAME) {
		const struct client_relay_route *rr =
			client_relay_route_find(req->routes, req->nroutes, g->name);
		/* A route wins over the relay: the domain's own way. */
		g->via = rr ? &rr->to : req->relay;
		g->via_relay = !rr && req->relay;
		if (g->via) {
			group_start_via(g);
			return;
		}
	}
	if (g->dest.kind == DNS_DESTINATION_IPV4 || g->dest.kind == DNS_DESTINATION_IPV6) {
		g->addrs = calloc(1, sizeof(*g->addrs));
		if (!g->addrs) {
			settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.3.0", "out of memory");
			group_done(g);
			return;
		}
		g->addrs[0].host = g->name;
		g->addrs[0].family = g->dest.kind == DNS_DESTINATION_IPV4 ? AF_INET : AF_INET6;
		memcpy(g->addrs[0].addr, g->dest.ip, g->addrs[0].family == AF_INET ? 4 : 16);
		g->naddrs = 1;
		deliver(g);
		return;
	}
	if (!req->resolver) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.4.3", "no resolver");
		group_done(g);
		return;
	}
	enum dns_family_pref pref = req->family_auto ? DNS_FAMILY_ANY : req->family;
	g->state = G_LOOKUP;
	g->lookup = dns_destination_lookup(req->resolver, g->name, pref, req->random_fn,
	                                   req->random_arg, lookup_cb, g);
	if (!g->lookup) {
		settle_all(g, CLIENT_RCPT_TEMPFAIL, 0, "4.4.3", "cannot start the DNS lookup");
		if (req->plan)
			req->plan(req->arg, g->name, NULL, 0, "", NULL, 0);
		group_done(g);
	}
}

static const char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : "";
}

/* Destinations equal for grouping: the same literal address, or the same
 * domain name compared ASCII case-insensitively (a trailing dot aside). */
static bool same_destination(const struct group *g, const char *domain,
                             const struct dns_destination *d)
{
	if (g->dest.kind != d->kind)
		return false;
	if (d->kind == DNS_DESTINATION_IPV4)
		return !memcmp(g->dest.ip, d->ip, 4);
	if (d->kind == DNS_DESTINATION_IPV6)
		return !memcmp(g->dest.ip, d->ip, 16);
	size_t a = strlen(g->name), n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	return a == n && !strncasecmp(g->name, domain, n);
}

static void groups_free(struct client_batch *b)
{
	for (size_t i = 0; i < b->ngroups; i++) {
		struct group *g = &b->groups[i];
		if (g->lookup)
			dns_lookup_cancel(g->lookup);
		for (size_t k = 0; k < g->n; k++)
			client_result_clear(&g->results[k]);
		free(g->results);
		free(g->index);
		free(g->addrs);
		free(g->hosts);
		buf_free(&g->transcript);
	}
	for (size_t i = 0; i < b->nverdicts; i++)
		if (b->verdicts[i].q)
			dns_reverse_cancel(b->verdicts[i].q);
	free(b->groups);
}

static bool build_groups(struct client_batch *b)
{
	const struct client_batch_request *req = b->req;
	size_t *which = calloc(req->nresults ? req->nresults : 1, sizeof(*which));
	b->groups = calloc(req->nresults ? req->nresults : 1, sizeof(*b->groups));
	if (!which || !b->groups) {
		free(which);
		return false;
	}
	for (size_t i = 0; i < req->nresults; i++) {
		const char *domain = domain_of(req->results[i].address);
		struct dns_destination d;
		dns_destination_classify(domain, &d);
		size_t gi = 0;
		while (gi < b->ngroups && !same_destination(&b->groups[gi], domain, &d))
			gi++;
		if (gi == b->ngroups) {
			struct group *g = &b->groups[b->ngroups++];
			g->b = b;
			g->dest = d;
			size_t n = strlen(domain);
			if (d.kind == DNS_DESTINATION_NAME && n > 0 && domain[n - 1] == '.')
				n--;
			snprintf(g->name, sizeof(g->name), "%.*s", (int)n, domain);
			if (d.kind == DNS_DESTINATION_NAME)
				for (char *p = g->name; *p; p++)
					*p = (char)tolower((unsigned char)*p);
			buf_init(&g->transcript, TRANSCRIPT_MAX);
		}
		which[i] = gi;
		b->groups[gi].n++;
	}
	bool ok = true;
	for (size_t gi = 0; gi < b->ngroups; gi++) {
		struct group *g = &b->groups[gi];
		if (ok) {
			g->results = calloc(g->n, sizeof(*g->results));
			g->index = calloc(g->n, sizeof(*g->index));
			ok = g->results && g->index;
		}
		g->n = 0;   /* counted again as they are filled */
	}
	for (size_t i = 0; i < req->nresults && ok; i++) {
		struct group *g = &b->groups[which[i]];
		g->index[g->n] = i;
		g->results[g->n].address = req->results[i].address;
		g->results[g->n].original = req->results[i].original;
		g->n++;
	}
	free(which);
	return ok;
}

struct client_batch *client_batch_start(const struct client_batch_request *req)
{
	struct client_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->own = *req;
	b->req = &b->own;
	if (!build_groups(b) || b->ngroups == 0) {
		groups_free(b);
		free(b);
		return NULL;
	}
	b->live = b->ngroups == 1 && req->transcript_live;
	start_more(b);
	return b;
}

void client_batch_resume(struct client_batch *b)
{
	start_more(b);
}

bool client_batch_waiting(const struct client_batch *b)
{
	return b->next < b->ngroups;
}

void client_batch_free(struct client_batch *b)
{
	if (!b)
		return;
	/* Groups that hold a slot without having finished give it back
	 * (only lookups can be cancelled: see batch.h). */
	b->req->slots->active -= b->active - b->lent;
	groups_free(b);
	free(b);
}
