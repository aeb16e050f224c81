/* Starting a c-ares query without a callback inside the call (dns/
 * internal; lookup.c and reverse.c).  c-ares may answer from inside
 * ares_query / ares_gethostbyaddr (a name it cannot encode, no memory, no
 * socket): then nothing was started, and the caller must hear it from the
 * start function's NULL, never from its own callback running inside the
 * call it made.  The shape, in both files:
 *
 *     dns_query_start_begin(&q->start);
 *     ares_query(channel, ..., query_cb, q);
 *     if (!dns_query_start_end(&q->start, r)) { free(q); return NULL; }
 *
 * and first thing in query_cb:
 *
 *     if (dns_query_start_refused(&q->start)) return;
 */
#ifndef RAWMAIL_DNS_QUERY_START_H
#define RAWMAIL_DNS_QUERY_START_H

#include <stdbool.h>

#include "dns/resolver.h"

struct dns_query_start {
	bool starting;   /* inside the start call */
	bool failed;     /* c-ares answered inside it: nothing runs */
};

static inline void dns_query_start_begin(struct dns_query_start *s)
{
	s->starting = true;
	s->failed = false;
}

/* In the query's callback: true if this answer came inside the start
 * call (the callback must return at once; the start call frees). */
static inline bool dns_query_start_refused(struct dns_query_start *s)
{
	if (s->starting)
		s->failed = true;
	return s->starting;
}

/* After the start call: false if the query never started; else arms the
 * channel's timer for it. */
static inline bool dns_query_start_end(struct dns_query_start *s, struct dns_resolver *r)
{
	s->starting = false;
	if (s->failed)
		return false;
	dns_resolver_kick(r);
	return true;
}

#endif
