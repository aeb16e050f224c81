/* A minimal TXT lookup, private to check/ until dns/ has its own
 * (dns_txt_lookup, issue 11's SPF work): the lead replaces this file's
 * callers with it and deletes it. */
#ifndef RAWMAIL_CHECK_TXT_H
#define RAWMAIL_CHECK_TXT_H

#include <stddef.h>

#include "dns/resolver.h"

enum check_txt_status {
	CHECK_TXT_OK,        /* records[0..n) */
	CHECK_TXT_NONE,      /* NXDOMAIN or no TXT record */
	CHECK_TXT_TEMPFAIL,  /* timeout, SERVFAIL, ... */
};

/* records: each TXT record's strings joined (RFC 7208 §3.3, RFC 9989
 * §4.7: a record split into several strings reads as one), valid during
 * the call only. */
typedef void (*check_txt_cb)(void *arg, enum check_txt_status st, const char *const *records,
                             size_t n);

/* Starts the query; cb runs once, later from the loop.  false if it did
 * not start (no callback then). */
bool check_txt_lookup(struct dns_resolver *r, const char *name, check_txt_cb cb, void *arg);

#endif
