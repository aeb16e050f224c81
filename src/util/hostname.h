/* The host's own name, found without a slow lookup: gethostname(), and if
 * that has no dot, the first dotted alias of it in /etc/hosts.  The
 * greeting, Received: by, the default HELO and the default sender use it. */
#ifndef RAWMAIL_UTIL_HOSTNAME_H
#define RAWMAIL_UTIL_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the name into out.  Returns true if it is a fully qualified
 * (dotted) name, false if only the short name was found (callers that need
 * an FQDN then use an address literal).  hosts_path is normally
 * "/etc/hosts" (a parameter so tests can pass their own). */
bool hostname_get(char *out, size_t outlen, const char *hosts_path);

/* A host name's text as DNS carries it: 1-253 octets of letters, digits,
 * '-', '_' and '.', no empty label, labels of at most 63 octets (RFC 1035
 * §2.3.4), one trailing dot allowed.  For names from peers (PTR targets)
 * and for SNI: anything else (spaces, brackets, UTF-8) is not a host name. */
bool hostname_syntax_ok(const char *name);

#endif
