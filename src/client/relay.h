/* Where mail goes instead of the recipients' MX: a relay (smarthost) for
 * every message, and fixed routes for single domains.  The values as
 * written on the command line and in rawmail.conf(5), parsed and checked
 * here, sans I/O (the sendmail entry links this without the engine):
 *
 *   --relay HOST[:PORT]            STARTTLS on the submission port, 587
 *   --relay smtps://HOST[:PORT]    implicit TLS (RFC 8314 §3.3), 465
 *   --route DOMAIN=HOST[:PORT]     one domain to a fixed host, port 25
 *   [routes] DOMAIN = HOST[:PORT]  the same in the file
 *
 * HOST is a DNS name (resolved by A/AAAA, never MX), an IPv4 address, or
 * an IPv6 address in brackets ("[::1]", "[IPv6:::1]" too).  A route
 * matches its domain exactly, without case (no subdomains: a route for
 * example.com does not take mail for lab.example.com). */
#ifndef RAWMAIL_CLIENT_RELAY_H
#define RAWMAIL_CLIENT_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/limits.h"

#define CLIENT_RELAY_PORT_SUBMISSION 587   /* RFC 6409 §3.1 */
#define CLIENT_RELAY_PORT_SUBMISSIONS 465  /* RFC 8314 §7.3 */
#define CLIENT_RELAY_PORT_ROUTE 25
/* Routes at most, flags and file together. */
#define CLIENT_RELAY_ROUTES_MAX 64

struct client_relay_host {
	char host[SMTP_DOMAIN_MAX + 1];  /* lower-case name, or the address as text */
	bool literal;                    /* an IP address: no DNS, no SNI */
	int family;                      /* literal: AF_INET or AF_INET6 */
	unsigned char addr[16];          /* literal: network order */
	unsigned short port;
	bool implicit_tls;               /* smtps:// */
};

struct client_relay_route {
	char domain[SMTP_DOMAIN_MAX + 1];  /* lower case, no trailing dot */
	struct client_relay_host to;
};

/* "[smtps://]HOST[:PORT]".  false with err saying what is expected. */
bool client_relay_host_parse(const char *text, struct client_relay_host *out, char *err,
                             size_t errlen);
/* A route's host, "HOST[:PORT]" (no smtps://: a route is MX-like
 * delivery, port 25 by default, TLS as for MX delivery). */
bool client_relay_route_host_parse(const char *text, struct client_relay_host *out, char *err,
                                   size_t errlen);
/* A route from domain and host ([routes] key and value). */
bool client_relay_route_make(const char *domain, const char *host,
                             struct client_relay_route *out, char *err, size_t errlen);
/* "DOMAIN=HOST[:PORT]" (--route). */
bool client_relay_route_parse(const char *text, struct client_relay_route *out, char *err,
                              size_t errlen);
/* The route for domain (exact, case-insensitive, a trailing dot aside),
 * or NULL. */
const struct client_relay_route *client_relay_route_find(const struct client_relay_route *routes,
                                                         size_t n, const char *domain);
/* 127.0.0.1 or ::1 exactly: this machine, where a password may go
 * without TLS (no one else can listen on the path). */
bool client_relay_is_loopback(int family, const unsigned char *addr);
/* "smtp.example.net:587", "smtps://[::1]:465": for messages. */
void client_relay_host_format(const struct client_relay_host *h, char *out, size_t outlen);

#endif
