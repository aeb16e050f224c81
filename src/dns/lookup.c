/* A recipient domain's delivery list: MX query, RFC 5321 §5.1 ordering
 * (mx.c), then A/AAAA of every host, all on the resolver's c-ares
 * channel.  See lookup.h for the contract. */
#include "dns/lookup.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "dns/query_start.h"

/* One family's lookup for one host. */
struct lookup_family {
	struct dns_lookup *q;
	int family;               /* AF_INET or AF_INET6 */
	bool asked;
	int status;               /* ARES_SUCCESS or why not */
	size_t n;
	unsigned char addr[DNS_LOOKUP_ADDRS_MAX][16];
};

struct lookup_host {
	char name[256];
	unsigned preference;
	struct lookup_family fam[2];  /* [0] IPv4, [1] IPv6 */
};

struct dns_lookup {
	struct dns_resolver *r;
	dns_lookup_cb cb;         /* NULL once cancelled */
	void *arg;
	enum dns_family_pref pref;
	dns_mx_random_fn random_fn;
	void *random_arg;
	struct dns_query_start start;
	bool *answered;           /* dns_host_lookup: set if finished inside it */
	size_t pending;           /* address queries in flight */
	bool implicit_mx, null_ignored, truncated;
	bool host_only;           /* dns_host_lookup: A/AAAA of one host, no MX */
	size_t nhosts;
	struct lookup_host hosts[DNS_LOOKUP_HOSTS_MAX];
	struct dns_lookup_addr out[DNS_LOOKUP_HOSTS_MAX * 2 * DNS_LOOKUP_ADDRS_MAX];
	char domain[256];
	char text[600];
};

/* Uniform in [0, bound): rejection sampling, so no modulo bias. */
static uint32_t random_default(void *arg, uint32_t bound)
{
	uint64_t span = (uint64_t)UINT32_MAX + 1;
	uint64_t limit = span - span % bound;
	uint32_t x;

	do {
		if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x)
			return 0;
	} while (x >= limit);
	return x % bound;
}

/* RFC 1035 §2.3.4: 255 octets on the wire, so 253 in text without the
 * root's dot; labels of 1 to 63 octets. */
bool dns_name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (++label > 63) {
			return false;
		}
	}
	return label > 0;
}

static void finish(struct dns_lookup *q, struct dns_lookup_result *res)
{
	if (q->answered)
		*q->answered = true;
	if (q->cb) {
		res->implicit_mx = q->implicit_mx;
		res->null_ignored = q->null_ignored;
		res->truncated = q->truncated;
		if (!res->text)
			res->text = q->text;
		q->cb(q->arg, res);
	}
	free(q);
}

/* " (resolver 127.0.0.1:5353)": which servers were asked, for a failure
 * that may be theirs (a timeout names nobody otherwise).  IPv6 as
 * "[::1]:53".  Empty if c-ares cannot say. */
static void resolvers_describe(struct dns_lookup *q, char *out, size_t outlen)
{
	struct ares_addr_port_node *servers = NULL;
	size_t o = 0;
	out[0] = '\0';
	if (ares_get_servers_ports(dns_resolver_channel(q->r), &servers) != ARES_SUCCESS)
		return;
	for (struct ares_addr_port_node *s = servers; s && o + 1 < outlen; s = s->next) {
		char ip[INET6_ADDRSTRLEN];
		if (!inet_ntop(s->family, &s->addr, ip, sizeof(ip)))
			continue;
		int n = snprintf(out + o, outlen - o, s->family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d",
		                 o ? ", " : " (resolver ", ip, s->udp_port ? s->udp_port : 53);
		if (n < 0 || (size_t)n >= outlen - o)
			break;
		o += (size_t)n;
	}
	ares_free_data(servers);
	if (o > 0 && o + 2 <= outlen)
		memcpy(out + o, ")", 2);
	else
		out[0] = '\0';
}

static void fail(struct dns_lookup *q, enum dns_lookup_status st)
{
	struct dns_lookup_result res;

	memset(&res, 0, sizeof(res));
	res.status = st;
	finish(q, &res);
}

/* NXDOMAIN and NODATA are answers about the name; anything else
 * (SERVFAIL, REFUSED, timeout, a resolver going away) says nothing about
 * it and may change. */
static bool permanent_absence(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}

static size_t put(struct dns_lookup *q, size_t n, const struct lookup_host *h,
                  const struct lookup_family *f, size_t i)
{
	struct dns_lookup_addr *a = &q->out[n];

	a->host = h->name;
	a->preference = h->preference;
	a->family = f->family;
	memset(a->addr, 0, sizeof(a->addr));
	memcpy(a->addr, f->addr[i], f->family == AF_INET ? 4 : 16);
	return n + 1;
}

/* Every address query has ended: the list, host by host in MX order
 * (RFC 5321 §5.1: preference is the owner's order; the family is only
 * ours to choose within a host). */
static void assemble(struct dns_lookup *q)
{
	struct dns_lookup_result res;
	size_t n = 0;
	int temp_status = ARES_SUCCESS;

	if (!q->cb) {
		free(q);
		return;
	}
	memset(&res, 0, sizeof(res));
	for (size_t i = 0; i < q->nhosts; i++) {
		struct lookup_host *h = &q->hosts[i];
		struct lookup_family *v4 = &h->fam[0], *v6 = &h->fam[1];
		bool temp = false;

		for (int k = 0; k < 2; k++)
			if (h->fam[k].asked && h->fam[k].n == 0 && !permanent_absence(h->fam[k].status)) {
				temp = true;
				if (temp_status == ARES_SUCCESS)
					temp_status = h->fam[k].status;
			}
		if (v4->n + v6->n == 0) {
			/* A host with no address is skipped (RFC 5321 §5.1: the
			 * next MX is tried); one whose lookup failed temporarily
			 * makes the whole result temporary if nothing else works. */
			if (temp)
				res.hosts_tempfail++;
			else
				res.hosts_skipped++;
			continue;
		}
		const struct lookup_family *first = v4, *second = v6;
		if (q->pref == DNS_FAMILY_V6_ONLY || q->pref == DNS_FAMILY_V6_FIRST ||
		    q->pref == DNS_FAMILY_ANY) {
			first = v6;
			second = v4;
		}
		if (q->pref == DNS_FAMILY_ANY) {
			/* RFC 8305 §4: alternate families, preferred first. */
			size_t a = 0, b = 0;
			while (a < first->n || b < second->n) {
				if (a < first->n)
					n = put(q, n, h, first, a++);
				if (b < second->n)
					n = put(q, n, h, second, b++);
			}
		} else {
			for (size_t a = 0; a < first->n; a++)
				n = put(q, n, h, first, a);
			for (size_t b = 0; b < second->n; b++)
				n = put(q, n, h, second, b);
		}
	}
	const char *fam = q->pref == DNS_FAMILY_V4_ONLY ? "an IPv4 address"
	                : q->pref == DNS_FAMILY_V6_ONLY ? "an IPv6 address" : "an address";
	res.addrs = q->out;
	res.n = n;
	if (n > 0) {
		res.status = DNS_LOOKUP_OK;
		if (res.hosts_skipped || res.hosts_tempfail)
			snprintf(q->text, sizeof(q->text),
			         "%zu of %zu hosts without %s, %zu failing temporarily", res.hosts_skipped,
			         q->nhosts, fam, res.hosts_tempfail);
	} else if (res.hosts_tempfail > 0) {
		res.status = DNS_LOOKUP_TEMPORARY;
		char asked[200];
		resolvers_describe(q, asked, sizeof(asked));
		snprintf(q->text, sizeof(q->text), "address lookup of %s%s failed: %s%s",
		         q->implicit_mx || q->host_only ? "" : "the MX hosts of ", q->domain,
		         ares_strerror(temp_status), asked);
	} else {
		res.status = DNS_LOOKUP_PERMANENT;
		if (q->host_only)
			snprintf(q->text, sizeof(q->text), "%s has no %s", q->domain, fam + 3);
		else if (q->implicit_mx)
			snprintf(q->text, sizeof(q->text), "%s has no MX record and no %s", q->domain,
			         fam + 3);
		else
			snprintf(q->text, sizeof(q->text), "no MX host of %s has %s", q->domain, fam);
	}
	finish(q, &res);
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct lookup_family *f = arg;
	struct dns_lookup *q = f->q;

	f->status = status;
	if (status == ARES_SUCCESS && ai) {
		for (struct ares_addrinfo_node *node = ai->nodes; node; node = node->ai_next) {
			const unsigned char *p;
			size_t len;
			bool dup = false;

			if (node->ai_family != f->family || f->n >= DNS_LOOKUP_ADDRS_MAX)
				continue;
			if (f->family == AF_INET) {
				p = (const unsigned char *)&((struct sockaddr_in *)(void *)node->ai_addr)->sin_addr;
				len = 4;
			} else {
				p = ((struct sockaddr_in6 *)(void *)node->ai_addr)->sin6_addr.s6_addr;
				len = 16;
			}
			for (size_t i = 0; i < f->n; i++)
				if (!memcmp(f->addr[i], p, len))
					dup = true;
			if (!dup)
				memcpy(f->addr[f->n++], p, len);
		}
		if (f->n == 0)
			f->status = ARES_ENODATA;
	}
	if (ai)
		ares_freeaddrinfo(ai);
	if (--q->pending == 0)
		assemble(q);
}

/* The hosts are known: ask every host's addresses at once (they are
 * independent, and the list is only complete when all have answered). */
static void start_addresses(struct dns_lookup *q)
{
	struct ares_addrinfo_hints hints;
	ares_channel ch = dns_resolver_channel(q->r);

	/* One extra count so that an answer given from inside
	 * ares_getaddrinfo cannot end the lookup while this loop runs. */
	q->pending = 1;
	for (size_t i = 0; i < q->nhosts; i++) {
		struct lookup_host *h = &q->hosts[i];

		h->fam[0].family = AF_INET;
		h->fam[1].family = AF_INET6;
		for (int k = 0; k < 2; k++) {
			struct lookup_family *f = &h->fam[k];

			f->q = q;
			if ((f->family == AF_INET && q->pref == DNS_FAMILY_V6_ONLY) ||
			    (f->family == AF_INET6 && q->pref == DNS_FAMILY_V4_ONLY))
				continue;
			memset(&hints, 0, sizeof(hints));
			hints.ai_family = f->family;
			/* DNS order: c-ares' RFC 6724 sort would connect a
			 * socket per address, and the caller orders by family. */
			hints.ai_flags = ARES_AI_NOSORT;
			f->asked = true;
			q->pending++;
			ares_getaddrinfo(ch, h->name, NULL, &hints, addr_cb, f);
		}
	}
	dns_resolver_kick(q->r);
	if (--q->pending == 0)
		assemble(q);
}

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *q = arg;
	struct ares_mx_reply *mx = NULL;
	struct dns_mx_record *records = NULL;
	size_t nrecords = 0;
	enum dns_mx_answer answer;

	if (dns_query_start_refused(&q->start))
		return;
	if (!q->cb) {
		free(q);
		return;
	}
	if (status == ARES_EDESTRUCTION) {
		snprintf(q->text, sizeof(q->text), "MX lookup of %s: resolver closed", q->domain);
		fail(q, DNS_LOOKUP_TEMPORARY);
		return;
	}
	switch (status) {
	case ARES_SUCCESS: {
		int rc = ares_parse_mx_reply(abuf, alen, &mx);
		/* An answer with only a CNAME (the alias's target has no MX)
		 * is NOERROR without MX: the implicit MX, and the address
		 * lookup follows the CNAME (RFC 5321 §5.1). */
		if (rc == ARES_ENODATA) {
			answer = DNS_MX_ANSWER_NOERROR;
		} else if (rc != ARES_SUCCESS) {
			answer = DNS_MX_ANSWER_TEMPFAIL;
			status = rc;
		} else {
			answer = DNS_MX_ANSWER_NOERROR;
		}
		break;
	}
	case ARES_ENODATA:
		answer = DNS_MX_ANSWER_NOERROR;
		break;
	case ARES_ENOTFOUND:
		answer = DNS_MX_ANSWER_NXDOMAIN;
		break;
	default:
		/* SERVFAIL, REFUSED, timeout: never a fallback to the A
		 * records (RFC 5321 §5.1 allows the implicit MX only when
		 * there is no MX, which a failure does not tell). */
		answer = DNS_MX_ANSWER_TEMPFAIL;
		break;
	}
	size_t total = 0;
	for (struct ares_mx_reply *m = mx; m; m = m->next)
		total++;
	nrecords = total < DNS_MX_RECORDS_MAX ? total : DNS_MX_RECORDS_MAX;
	if (nrecords > 0) {
		records = calloc(nrecords, sizeof(*records));
		if (!records) {
			ares_free_data(mx);
			snprintf(q->text, sizeof(q->text), "MX lookup of %s: out of memory", q->domain);
			fail(q, DNS_LOOKUP_TEMPORARY);
			return;
		}
		/* Past DNS_MX_RECORDS_MAX, a uniform sample of all of them
		 * (reservoir sampling, Knuth's Algorithm R), not the first. */
		size_t i = 0;
		for (struct ares_mx_reply *m = mx; m; m = m->next, i++) {
			size_t at = i;
			if (i >= nrecords) {
				at = q->random_fn(q->random_arg, (uint32_t)(i + 1)) % (i + 1);
				if (at >= nrecords)
					continue;
			}
			records[at].preference = m->priority;
			records[at].host = m->host;
		}
	}

	struct dns_mx_target targets[DNS_LOOKUP_HOSTS_MAX];
	struct dns_mx_list list = { .targets = targets, .cap = DNS_LOOKUP_HOSTS_MAX };
	enum dns_mx_status st = dns_mx_order(answer, q->domain, records, nrecords, q->random_fn,
	                                     q->random_arg, &list);
	q->null_ignored = list.null_ignored;
	q->truncated = list.truncated || total > nrecords;
	q->implicit_mx = st == DNS_MX_IMPLICIT;
	for (size_t i = 0; i < list.n; i++) {
		/* RFC 2181 §11: a name fits in 255 octets; c-ares drops the
		 * root's dot, so 253 characters. */
		snprintf(q->hosts[q->nhosts].name, sizeof(q->hosts[0].name), "%s", list.targets[i].host);
		q->hosts[q->nhosts].preference = list.targets[i].preference;
		q->nhosts++;
	}
	free(records);
	if (mx)
		ares_free_data(mx);

	switch (st) {
	case DNS_MX_OK:
	case DNS_MX_IMPLICIT:
		start_addresses(q);
		return;
	case DNS_MX_NULL:
		snprintf(q->text, sizeof(q->text), "%s accepts no mail (null MX, RFC 7505)", q->domain);
		fail(q, DNS_LOOKUP_NULLMX);
		return;
	case DNS_MX_NXDOMAIN:
		snprintf(q->text, sizeof(q->text), "%s: no such domain (NXDOMAIN)", q->domain);
		fail(q, DNS_LOOKUP_PERMANENT);
		return;
	case DNS_MX_TEMPFAIL:
		break;
	}
	char asked[200];
	resolvers_describe(q, asked, sizeof(asked));
	snprintf(q->text, sizeof(q->text), "MX lookup of %s failed: %s%s", q->domain,
	         ares_strerror(status), asked);
	fail(q, DNS_LOOKUP_TEMPORARY);
}

struct dns_lookup *dns_destination_lookup(struct dns_resolver *r, const char *domain,
                                          enum dns_family_pref pref, dns_mx_random_fn random_fn,
                                          void *random_arg, dns_lookup_cb cb, void *arg)
{
	if (!dns_name_ok(domain))
		return NULL;
	struct dns_lookup *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->pref = pref;
	q->random_fn = random_fn ? random_fn : random_default;
	q->random_arg = random_fn ? random_arg : NULL;
	snprintf(q->domain, sizeof(q->domain), "%s", domain);
	dns_query_start_begin(&q->start);
	ares_query(dns_resolver_channel(r), q->domain, ns_c_in, ns_t_mx, mx_cb, q);
	if (!dns_query_start_end(&q->start, r)) {
		free(q);
		return NULL;
	}
	return q;
}

struct dns_lookup *dns_host_lookup(struct dns_resolver *r, const char *host,
                                   enum dns_family_pref pref, dns_lookup_cb cb, void *arg,
                                   bool *answered)
{
	*answered = false;
	if (!dns_name_ok(host))
		return NULL;
	struct dns_lookup *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->pref = pref;
	q->host_only = true;
	q->random_fn = random_default;
	snprintf(q->domain, sizeof(q->domain), "%s", host);
	snprintf(q->hosts[0].name, sizeof(q->hosts[0].name), "%s", host);
	q->nhosts = 1;
	/* start_addresses holds one count of its own: if every answer came
	 * inside ares_getaddrinfo (/etc/hosts), the result is assembled and
	 * cb runs before it returns, and q is gone. */
	bool done = false;
	q->answered = &done;
	start_addresses(q);
	if (done) {
		*answered = true;
		return NULL;
	}
	q->answered = NULL;
	return q;
}

void dns_lookup_cancel(struct dns_lookup *q)
{
	if (q)
		q->cb = NULL;
}

const char *dns_lookup_status_name(enum dns_lookup_status st)
{
	static const char *const names[] = { "ok", "nullmx", "permanent", "temporary" };
	return (unsigned)st < 4 ? names[st] : "?";
}
