/* OpenSSL loaded when it is first needed (issue 13).  Loading libssl,
 * libcrypto and libevent_openssl is ~0.9 ms of every process start here,
 * most of `rawmail send --tls none`'s start-up beyond /bin/true.  So the
 * rawmail binary does not link them: it calls hidden stubs of the same
 * names (scripts/ossl_stubs, generated at build time from the functions
 * the code calls), whose first call loads the three shared libraries with
 * dlopen and fills a table of the real functions; then the table is made
 * read-only and every call is one indirect jump.  OpenSSL stays a shared
 * library: its security updates reach rawmail as before.
 * Every command but `send` loads them at start (ossl_lazy_load in main):
 * serve before its processes chroot, and a missing library is said then.
 * The unit tests, test tools, the static build and other architectures
 * link OpenSSL as usual; there these calls do nothing. */
#ifndef RAWMAIL_NET_OSSL_LAZY_H
#define RAWMAIL_NET_OSSL_LAZY_H

#include <stdbool.h>
#include <stddef.h>

/* Loads the libraries now (once; later calls return at once).  false
 * with a message in why when one cannot be loaded or lacks a function. */
bool ossl_lazy_load(char *why, size_t whylen);

/* Called by a stub's first call: loads, or ends the process with the
 * reason on stderr and exit status 72 (EX_OSFILE: a system file missing),
 * since the stub's caller has no way to hear of a failure. */
void ossl_lazy_require(void);

#endif
