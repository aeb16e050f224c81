#include "dns/reverse.h"

#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dns/query_start.h"
#include "util/hostname.h"

struct dns_reverse {
	struct dns_resolver *r;
	dns_reverse_cb cb;        /* NULL once cancelled or answered */
	void *arg;
	int family;
	unsigned char addr[16];
	char name[256];
	struct dns_query_start start;
};

static void finish(struct dns_reverse *q, enum dns_reverse_status st, const char *name)
{
	if (q->cb)
		q->cb(q->arg, st, name);
	free(q);
}

static enum dns_reverse_status failure(int status)
{
	/* NXDOMAIN and NODATA are answers ("no name"); the rest says
	 * nothing about the name and may change: temporary. */
	return status == ARES_ENOTFOUND || status == ARES_ENODATA ? DNS_REVERSE_NONE
	                                                          : DNS_REVERSE_TEMPFAIL;
}

static void forward_cb(void *arg, int status, int timeouts, struct hostent *host)
{
	struct dns_reverse *q = arg;
	if (status != ARES_SUCCESS || !host) {
		bool answer = status == ARES_ENOTFOUND || status == ARES_ENODATA;
		finish(q, answer ? DNS_REVERSE_UNCONFIRMED : DNS_REVERSE_TEMPFAIL,
		       answer ? q->name : NULL);
		return;
	}
	size_t n = q->family == AF_INET ? 4 : 16;
	for (char **a = host->h_addr_list; a && *a; a++)
		if (host->h_addrtype == q->family && (size_t)host->h_length == n &&
		    !memcmp(*a, q->addr, n)) {
			finish(q, DNS_REVERSE_OK, q->name);
			return;
		}
	/* the PTR name, so `rawmail check` can say which name needs the record */
	finish(q, DNS_REVERSE_UNCONFIRMED, q->name);
}

static void ptr_cb(void *arg, int status, int timeouts, struct hostent *host)
{
	struct dns_reverse *q = arg;
	if (dns_query_start_refused(&q->start))
		return;
	if (status != ARES_SUCCESS || !host || !host->h_name) {
		finish(q, failure(status), NULL);
		return;
	}
	if (!q->cb || status == ARES_EDESTRUCTION) {
		finish(q, DNS_REVERSE_TEMPFAIL, NULL);
		return;
	}
	if (!hostname_syntax_ok(host->h_name)) {
		finish(q, DNS_REVERSE_NONE, NULL);
		return;
	}
	size_t len = strlen(host->h_name);
	memcpy(q->name, host->h_name, len + 1);
	ares_gethostbyname(dns_resolver_channel(q->r), q->name, q->family, forward_cb, q);
	dns_resolver_kick(q->r);
}

struct dns_reverse *dns_reverse_lookup(struct dns_resolver *r, const struct sockaddr *sa,
                                       dns_reverse_cb cb, void *arg)
{
	struct dns_reverse *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	if (sa->sa_family == AF_INET) {
		q->family = AF_INET;
		memcpy(q->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			q->family = AF_INET;
			memcpy(q->addr, a6->s6_addr + 12, 4);
		} else {
			q->family = AF_INET6;
			memcpy(q->addr, a6->s6_addr, 16);
		}
	}
	dns_query_start_begin(&q->start);
	ares_gethostbyaddr(dns_resolver_channel(r), q->addr, q->family == AF_INET ? 4 : 16,
	                   q->family, ptr_cb, q);
	if (!dns_query_start_end(&q->start, r)) {
		free(q);
		return NULL;
	}
	return q;
}

void dns_reverse_cancel(struct dns_reverse *q)
{
	/* c-ares cannot cancel one query: the answer is dropped when it comes. */
	if (q)
		q->cb = NULL;
}

const char *dns_reverse_status_name(enum dns_reverse_status st)
{
	static const char *const names[] = { "ok", "none", "unconfirmed", "tempfail" };
	return (unsigned)st < 4 ? names[st] : "?";
}
