/* Delivery of one message to one destination (a recipient domain or an
 * address literal) on libevent: the destination's addresses in the order
 * given (dns/lookup.h), one connection at a time through client_deliver
 * (deliver.h), until every recipient has a final outcome.
 *
 * The rules (RFC 5321 §5.1, §4.5.3.1.10; issue 4):
 *   - a connection failure, a timeout before the message was sent, or a
 *     refused greeting or EHLO/HELO moves to the next address;
 *   - recipients refused at RCPT keep that outcome: no other host of the
 *     same domain is asked (they all serve the same mailboxes);
 *   - 452/552 "too many recipients" (DEFERRED) sends the rest in another
 *     transaction to the same address, as long as each transaction
 *     delivers or settles at least one recipient;
 *   - a STARTTLS handshake that fails in opportunistic mode is retried
 *     once in plaintext on the same address (RFC 7435: encryption when
 *     possible, never less delivery than without it); required or
 *     verified TLS never falls back;
 *   - a connection lost after the final dot leaves the outcome unknown:
 *     a temporary failure, never a retry elsewhere (it could duplicate);
 *   - when every address failed: permanent only if every one of them
 *     refused with 5xx, temporary otherwise.
 * With a pool (client/pool.h) each connection is asked for first: the
 * route may wait for the address's limit, may get a connection another
 * route finished with (RSET, then this transaction), and gives its own
 * back when it is done.  A transaction that fails on such a reused
 * connection before the message was sent (RSET refused, the peer closed
 * it while idle) is tried again on a new connection to the same address,
 * not counted against the host. */
#ifndef RAWMAIL_CLIENT_ROUTE_H
#define RAWMAIL_CLIENT_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include <netinet/in.h>

#include "client/deliver.h"
#include "client/pool.h"
#include "dns/lookup.h"

/* At most this many connections to different addresses per destination
 * (Postfix's smtp_mx_address_limit is 5): a bound on how long a user
 * waits for a domain whose hosts are all down. */
#define CLIENT_ROUTE_ADDRS_MAX 10

/* The outcome for one recipient, filled in by the route.  The caller sets
 * address and leaves the rest zeroed (state PENDING); the route writes the
 * rest, and client_result_clear frees it. */
struct client_result {
	const char *address;          /* the recipient, the caller's string */
	const char *original;         /* as first given (for a DSN's Original-Recipient),
	                                 the caller's string, or NULL */
	enum client_rcpt_state state; /* at the end: DELIVERED, TEMPFAIL or PERMFAIL */
	int code;                     /* the deciding reply, 0 when none came */
	char enhanced[16];
	char *text;                   /* its lines joined by '\n' (malloc'd), or NULL */
	char reason[512];             /* why, in words, when no reply decided it (a TLS
	                                 reason ends with the peer's fingerprint) */
	char host[256];               /* the host that answered or failed last */
	char ip[INET6_ADDRSTRLEN];    /* its address, "" when none was tried */
	/* Every address tried timed out while connecting: outgoing port 25
	 * is probably blocked by the network. */
	bool connect_timeouts_only;
	/* The last address tried ended because our check refused its TLS
	 * certificate (--tls verify, --tls-fingerprint): reason says why
	 * and ends with the peer's "SHA256:..." fingerprint.  Sending again
	 * cannot help until the certificate or the settings change. */
	bool certificate_refused;
	/* The message went (or was to go) to a relay or a route's fixed host
	 * (client/relay.h) rather than the domain's MX: "relay", "route" or
	 * "".  port: the port it used, 0 when no host was tried. */
	char via[8];
	unsigned short port;
	/* The last attempt ended because of AUTH (client/session.h): kept
	 * as a temporary failure, the reason names --auth-user. */
	bool auth_failed;
};

void client_result_clear(struct client_result *r);
/* Settles a recipient without any connection (DNS said no, dry runs...). */
void client_result_set(struct client_result *r, enum client_rcpt_state state, int code,
                       const char *enhanced, const char *reason);

struct client_route_request {
	struct event_base *base;
	SSL_CTX *tls_ctx;
	struct tls_client_lazy *tls_lazy;     /* see client_deliver_request */
	const struct client_session_config *cfg;
	bool tls_verify;              /* see client_deliver_request */
	const unsigned char (*tls_pins)[32];
	size_t tls_npins;
	bool literal;                 /* an address literal: no name for SNI */
	bool implicit_tls;            /* smtps:// (deliver.h) */
	const char *via;              /* "relay", "route" or NULL (MX delivery) */
	const char *sender;
	const char *message;
	size_t message_len;
	unsigned short port;
	int timeout, final_timeout;
	const struct dns_lookup_addr *addrs;  /* copied by client_route_start */
	size_t naddrs;
	struct client_result *results;        /* the destination's recipients */
	size_t nresults;
	client_transcript_fn transcript;      /* NULL: none */
	bool transcript_body;                 /* -vv: the message lines too */
	struct client_pool *pool;             /* NULL: a new connection each time */
	const void *owner;                    /* the message, for the pool */
	/* The route waits for the pool (the address is at its limit): true
	 * when it starts waiting, false when it gets its ticket.  A waiting
	 * route uses no connection, so its caller may lend its slot to
	 * another destination meanwhile.  NULL: not told. */
	void (*waiting)(void *arg, bool waiting);
	void (*done)(void *arg);              /* every result final; route freed */
	void *arg;
};

/* Starts; done runs later from the loop, never from inside this call.
 * false when out of memory (nothing started, results untouched). */
bool client_route_start(const struct client_route_request *req);

#endif
