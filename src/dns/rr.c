/* One question, one type of answer (rr.h), on the resolver's channel. */
#include "dns/rr.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/lookup.h"
#include "dns/query_start.h"
#include "util/limits.h"

struct dns_rr_query {
	struct dns_resolver *r;
	dns_rr_cb cb;             /* NULL once cancelled */
	void *arg;
	enum dns_rr_type type;
	struct dns_query_start start;
	char name[256];
	char qname[80];           /* PTR: the reverse name asked */
	char text[300];
};

/* "1.2.0.192.in-addr.arpa" / RFC 3596 §2.5's nibbles under ip6.arpa. */
static bool reverse_name(const char *ip, char *out, size_t outlen)
{
	unsigned char a[16];
	size_t o = 0;

	if (inet_pton(AF_INET, ip, a) == 1)
		return snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]) <
		       (int)outlen;
	if (inet_pton(AF_INET6, ip, a) != 1 || outlen < 74)
		return false;
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--) {
		out[o++] = hex[a[i] & 15];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", 9);
	return true;
}

struct collect {
	struct dns_rr_item items[DNS_RR_ITEMS_MAX];
	size_t n;
	bool truncated;
	char *store[DNS_RR_ITEMS_MAX];
};

static void add_text(struct collect *c, const char *s, size_t len)
{
	if (c->n >= DNS_RR_ITEMS_MAX) {
		c->truncated = true;
		return;
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, s, len);
	copy[len] = '\0';
	c->store[c->n] = copy;
	c->items[c->n].text = copy;
	c->items[c->n].len = len;
	c->n++;
}

static void add_addr(struct collect *c, int family, const void *addr)
{
	char text[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, addr, text, sizeof(text)))
		return;
	size_t before = c->n;
	add_text(c, text, strlen(text));
	if (c->n > before) {
		c->items[before].family = family;
		memcpy(c->items[before].addr, addr, family == AF_INET ? 4 : 16);
	}
}

/* TXT: character-strings of one record joined (RFC 7208 §3.3); c-ares
 * marks each record's first string. */
static int parse_txt(const unsigned char *abuf, int alen, struct collect *c)
{
	struct ares_txt_ext *txt = NULL;
	int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (rc != ARES_SUCCESS)
		return rc;
	char *rec = malloc(DNS_TXT_RECORD_MAX);
	size_t len = 0;
	bool open = false, toolong = false;
	for (struct ares_txt_ext *t = txt; rec && t; t = t->next) {
		if (t->record_start && open) {
			if (!toolong)
				add_text(c, rec, len);
			len = 0;
			toolong = false;
		}
		open = true;
		if (len + t->length > DNS_TXT_RECORD_MAX) {
			toolong = true;
			continue;
		}
		memcpy(rec + len, t->txt, t->length);
		len += t->length;
	}
	if (rec && open && !toolong)
		add_text(c, rec, len);
	free(rec);
	ares_free_data(txt);
	return ARES_SUCCESS;
}

static int parse_addrs(const unsigned char *abuf, int alen, int family, struct collect *c)
{
	struct hostent *h = NULL;
	int rc = family == AF_INET ? ares_parse_a_reply(abuf, alen, &h, NULL, NULL)
	                           : ares_parse_aaaa_reply(abuf, alen, &h, NULL, NULL);
	if (rc != ARES_SUCCESS)
		return rc;
	for (char **a = h->h_addr_list; a && *a; a++)
		add_addr(c, family, *a);
	ares_free_hostent(h);
	return ARES_SUCCESS;
}

static int parse_mx(const unsigned char *abuf, int alen, struct collect *c)
{
	struct ares_mx_reply *mx = NULL;
	int rc = ares_parse_mx_reply(abuf, alen, &mx);
	if (rc != ARES_SUCCESS)
		return rc;
	/* Most preferred first: a selection sort over a short list. */
	size_t total = 0;
	for (struct ares_mx_reply *m = mx; m; m = m->next)
		total++;
	bool *used = calloc(total ? total : 1, sizeof(*used));
	for (size_t k = 0; used && k < total; k++) {
		struct ares_mx_reply *best = NULL;
		size_t best_i = 0, i = 0;
		for (struct ares_mx_reply *m = mx; m; m = m->next, i++)
			if (!used[i] && (!best || m->priority < best->priority)) {
				best = m;
				best_i = i;
			}
		used[best_i] = true;
		add_text(c, best->host, strlen(best->host));
	}
	free(used);
	ares_free_data(mx);
	return ARES_SUCCESS;
}

static int parse_ptr(const unsigned char *abuf, int alen, struct collect *c)
{
	struct hostent *h = NULL;
	unsigned char dummy[16] = { 0 };
	int rc = ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &h);
	if (rc != ARES_SUCCESS)
		return rc;
	/* c-ares gives the first name as h_name and every name among the
	 * aliases: keep each once. */
	if (h->h_name)
		add_text(c, h->h_name, strlen(h->h_name));
	for (char **a = h->h_aliases; a && *a; a++) {
		bool dup = false;
		for (size_t i = 0; i < c->n; i++)
			if (!strcmp(c->items[i].text, *a))
				dup = true;
		if (!dup)
			add_text(c, *a, strlen(*a));
	}
	ares_free_hostent(h);
	return ARES_SUCCESS;
}

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_rr_query *q = arg;

	if (dns_query_start_refused(&q->start))
		return;
	if (!q->cb) {
		free(q);
		return;
	}
	struct collect *c = calloc(1, sizeof(*c));
	struct dns_rr_result res;
	memset(&res, 0, sizeof(res));
	res.text = "";
	if (!c) {
		status = ARES_ENOMEM;
	} else if (status == ARES_SUCCESS) {
		switch (q->type) {
		case DNS_RR_TXT: status = parse_txt(abuf, alen, c); break;
		case DNS_RR_A: status = parse_addrs(abuf, alen, AF_INET, c); break;
		case DNS_RR_AAAA: status = parse_addrs(abuf, alen, AF_INET6, c); break;
		case DNS_RR_MX: status = parse_mx(abuf, alen, c); break;
		case DNS_RR_PTR: status = parse_ptr(abuf, alen, c); break;
		}
		/* An answer of only a CNAME whose target has none of the type. */
		if (status == ARES_SUCCESS && c->n == 0)
			status = ARES_ENODATA;
	}
	const char *tname[] = { "TXT", "A", "AAAA", "MX", "PTR" };
	if (status == ARES_SUCCESS) {
		res.status = DNS_RR_OK;
		res.items = c->items;
		res.n = c->n;
		res.truncated = c->truncated;
	} else if (status == ARES_ENOTFOUND) {
		res.status = DNS_RR_NXDOMAIN;
		snprintf(q->text, sizeof(q->text), "%s: no such domain (NXDOMAIN)", q->name);
	} else if (status == ARES_ENODATA) {
		res.status = DNS_RR_NODATA;
		snprintf(q->text, sizeof(q->text), "%s has no %s record", q->name, tname[q->type]);
	} else {
		/* SERVFAIL, REFUSED, timeout, a reply c-ares cannot parse, the
		 * resolver closing: nothing is known about the name. */
		res.status = DNS_RR_TEMPORARY;
		snprintf(q->text, sizeof(q->text), "%s lookup of %s failed: %s", tname[q->type], q->name,
		         ares_strerror(status));
	}
	if (res.status != DNS_RR_OK)
		res.text = q->text;
	q->cb(q->arg, &res);
	if (c)
		for (size_t i = 0; i < c->n; i++)
			free(c->store[i]);
	free(c);
	free(q);
}

struct dns_rr_query *dns_rr_lookup(struct dns_resolver *r, const char *name,
                                   enum dns_rr_type type, dns_rr_cb cb, void *arg)
{
	struct dns_rr_query *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	snprintf(q->name, sizeof(q->name), "%s", name);
	const char *ask = q->name;
	if (type == DNS_RR_PTR) {
		if (!reverse_name(name, q->qname, sizeof(q->qname))) {
			free(q);
			return NULL;
		}
		ask = q->qname;
	} else if (strlen(name) >= sizeof(q->name) || !dns_name_ok(name)) {
		free(q);
		return NULL;
	}
	static const int qtype[] = { ns_t_txt, ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_ptr };
	dns_query_start_begin(&q->start);
	ares_query(dns_resolver_channel(r), ask, ns_c_in, qtype[type], query_cb, q);
	if (!dns_query_start_end(&q->start, r)) {
		free(q);
		return NULL;
	}
	return q;
}

struct dns_rr_query *dns_txt_lookup(struct dns_resolver *r, const char *name, dns_rr_cb cb,
                                    void *arg)
{
	return dns_rr_lookup(r, name, DNS_RR_TXT, cb, arg);
}

void dns_rr_cancel(struct dns_rr_query *q)
{
	if (q)
		q->cb = NULL;
}

const char *dns_rr_status_name(enum dns_rr_status st)
{
	static const char *const names[] = { "ok", "nxdomain", "nodata", "temporary" };
	return (unsigned)st < 4 ? names[st] : "?";
}
