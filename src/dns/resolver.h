/* DNS for rawmail: one c-ares channel driven by the process's libevent
 * loop (its sockets and timer become events), with its own deadlines.
 * ../shared/DESIGN.md says why c-ares: a few ms to start, async without
 * threads or forks, honours a configured server (--dns 127.0.0.1:5353). */
#ifndef RAWMAIL_DNS_RESOLVER_H
#define RAWMAIL_DNS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;

/* Creates a channel.  server is "ADDR", "ADDR:PORT", "[IPV6]:PORT" or an
 * unbracketed IPv6 address; NULL uses the system's resolv.conf (read now,
 * so call this before a chroot).  timeout_ms bounds one try of one query;
 * there are two tries.  NULL with a message in err on failure. */
struct dns_resolver *dns_resolver_new(const char *server, unsigned timeout_ms, char *err,
                                      size_t errlen);
/* Binds the channel to an event loop; required before the first query. */
bool dns_resolver_attach(struct dns_resolver *r, struct event_base *base);
/* Pending queries are answered with a failure, then everything is freed. */
void dns_resolver_free(struct dns_resolver *r);
/* True if a server was given explicitly (not the system's). */
bool dns_resolver_explicit(const struct dns_resolver *r);

/* Checks and normalises a --dns value into c-ares' "addr:port" form
 * (server_parse.c: no c-ares, for the settings readers). */
bool dns_server_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen);

/* The c-ares channel, for the lookups in this module (ares_channel). */
void *dns_resolver_channel(struct dns_resolver *r);
/* The event loop it is attached to (NULL before dns_resolver_attach). */
struct event_base *dns_resolver_base(struct dns_resolver *r);
/* Re-arms the timeout after a query was started. */
void dns_resolver_kick(struct dns_resolver *r);

#endif
