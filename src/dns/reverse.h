/* The verified name of an address (forward-confirmed reverse DNS, as
 * Postfix does it): the PTR name, kept only if its A/AAAA records include
 * the address again.  Used for Received: and, later, `rawmail check`. */
#ifndef RAWMAIL_DNS_REVERSE_H
#define RAWMAIL_DNS_REVERSE_H

#include <sys/socket.h>

#include "dns/resolver.h"

enum dns_reverse_status {
	DNS_REVERSE_OK,           /* name confirmed */
	DNS_REVERSE_NONE,         /* no PTR, or a PTR that is not a host name */
	DNS_REVERSE_UNCONFIRMED,  /* the PTR name does not resolve back */
	DNS_REVERSE_TEMPFAIL,     /* timeout, SERVFAIL, resolver going away */
};

struct dns_reverse;
/* name is valid during the call only: the confirmed name with
 * DNS_REVERSE_OK, the PTR name that does not resolve back with
 * DNS_REVERSE_UNCONFIRMED (never to be used as the client's name), else
 * NULL. */
typedef void (*dns_reverse_cb)(void *arg, enum dns_reverse_status st, const char *name);

/* Starts the lookup; cb runs exactly once later (never from inside this
 * call), unless dns_reverse_cancel is called first.  NULL if it could not
 * start (out of memory, c-ares failing at once): no callback then. */
struct dns_reverse *dns_reverse_lookup(struct dns_resolver *r, const struct sockaddr *sa,
                                       dns_reverse_cb cb, void *arg);
/* The caller no longer wants the answer (its connection closed). */
void dns_reverse_cancel(struct dns_reverse *q);

const char *dns_reverse_status_name(enum dns_reverse_status st);

#endif
