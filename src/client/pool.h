/* The engine's connections, shared by every route (client/route.h) of every
 * message: at most a few at once per peer address, and a connection that
 * finished a transaction cleanly goes to the next route that wants the
 * same peer instead of being closed (RSET, then its transaction:
 * client_deliver_next).  So domains whose MX is the same host share
 * connections, and several messages to one destination go over one.
 *
 * A route asks for a ticket before it connects to an address; the ticket
 * is the right to one connection there, counted against the address's
 * limit until the route gives it back:
 *   - with an idle connection when the route is done with it (release):
 *     the pool hands it to a route waiting for the same peer, keeps it
 *     idle a short time while the engine has other work (another
 *     destination may resolve to the same host), or closes it with QUIT;
 *   - or without one (closed): the connection failed, or the route moves
 *     to another address.
 * A route that holds a ticket may connect again on it (after a reused
 * connection failed, or for the plaintext retry): still one connection.
 *
 * Peers match on address and port for the limit; an idle connection goes
 * only to a route with the same TLS requirement (mode, and the name the
 * certificate must carry when it is verified).
 *
 * Each request names its owner (the message): a route waits, even below
 * the limit, while another route of the same owner holds a connection to
 * the same peer, and then gets that connection.  So one message's domains
 * that share an MX host go over one connection, one transaction each
 * (RFC 5321 §5: recipients are grouped by domain), instead of opening
 * one connection per domain at once. */
#ifndef RAWMAIL_CLIENT_POOL_H
#define RAWMAIL_CLIENT_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "client/deliver.h"
#include "client/session.h"

/* Connections at once to one peer address, all messages together, when the
 * configuration does not say: a limit per address that starts at
 * CLIENT_POOL_PER_ADDRESS and follows the peer, as Postfix's per-destination
 * concurrency does (smtp_initial_destination_concurrency 5,
 * default_destination_concurrency_limit 20, positive feedback
 * 1/concurrency): each transaction that ends cleanly adds 1/limit, so the
 * limit grows by one after as many clean transactions as it allows
 * connections, up to CLIENT_POOL_PER_ADDRESS_MAX; each connection that
 * fails (refused, timed out, a 4xx or 5xx greeting or EHLO, lost) takes
 * one away, down to CLIENT_POOL_PER_ADDRESS_MIN.  OpenSMTPD's limit per
 * route is 5.  Ours counts per address, across every domain that shares
 * the host, and a reused connection carries message after message: a busy
 * queue to one host (10,000 messages, one smtp-sink: bench/queue) reaches
 * 20 after about 200 messages, and one message never opens more than one.
 * The learned limit lasts while the engine knows the peer (a connection
 * to it open or wanted).  A configured limit is fixed. */
#define CLIENT_POOL_PER_ADDRESS 5
#define CLIENT_POOL_PER_ADDRESS_MAX 20
#define CLIENT_POOL_PER_ADDRESS_MIN 1
/* How long an idle connection waits for another message (Postfix's
 * smtp_connection_cache_time_limit is 2 s).  Only while the engine has
 * other work: a lone message's connection is closed at once. */
#define CLIENT_POOL_IDLE_MS 2000

struct client_peer_key {
	int family;                  /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned short port;
	enum client_tls_mode tls;    /* the mode this connection was made with */
	bool implicit_tls;           /* smtps:// */
	bool auth;                   /* authenticated (a relay's) */
	char servername[256];        /* the name checked in the certificate, or "" */
};

struct client_pool;
struct client_pool_ticket;

/* Whether the engine has other work that might want a connection kept
 * (destinations being resolved or delivered besides the caller's). */
typedef bool (*client_pool_busy_fn)(void *arg);
/* A ticket granted, from the loop: d is an idle connection to the same peer
 * (start the next transaction on it: client_deliver_next), or NULL
 * (connect: client_deliver_start). */
typedef void (*client_pool_grant_fn)(void *arg, struct client_pool_ticket *t,
                                     struct client_delivery *d);

/* per_address 0: the limit that follows each peer (above), else that
 * fixed limit; idle_ms 0: CLIENT_POOL_IDLE_MS. */
struct client_pool *client_pool_new(struct event_base *base, size_t per_address, int idle_ms,
                                    client_pool_busy_fn busy, void *busy_arg);
/* Idle connections get QUIT and are closed.  Tickets still out are a bug
 * of the caller (routes cannot be cancelled): they are forgotten. */
void client_pool_free(struct client_pool *p);

/* Asks for a ticket to key's address; grant runs later from the loop,
 * never inside this call.  *queued tells whether the request waits for the
 * address's limit (or for the owner's connection) rather than being
 * granted at once.  false: out of memory (nothing asked). */
bool client_pool_acquire(struct client_pool *p, const struct client_peer_key *key,
                         const void *owner, client_pool_grant_fn grant, void *arg,
                         bool *queued);
/* The ticket's connection d finished its transaction and is reusable
 * (client_deliver_result.reusable); key is what it was made with.  The
 * pool takes d and the ticket: another route gets them, or d waits idle,
 * or it is closed (its QUIT in the caller's transcript, which must still
 * be valid during this call). */
void client_pool_release(struct client_pool *p, struct client_pool_ticket *t,
                         const struct client_peer_key *key, struct client_delivery *d);
/* The ticket is given back without a connection. */
void client_pool_closed(struct client_pool *p, struct client_pool_ticket *t);
/* A connection to key's address failed (refused, timed out, lost, or the
 * peer would not take mail on it now): one connection less allowed there
 * (unless the limit is fixed). */
void client_pool_failed(struct client_pool *p, const struct client_peer_key *key);
/* The peer refused RSET: its connections are not kept for reuse. */
void client_pool_no_reuse(struct client_pool *p, const struct client_peer_key *key);
/* Closes every idle connection (the engine has no more work). */
void client_pool_close_idle(struct client_pool *p);
/* Stop starting (a runner's SIGTERM): idle connections are closed, and
 * from now on no connection is granted, new or reused; routes that ask
 * wait for good, connections in use finish their transaction and close. */
void client_pool_stop(struct client_pool *p);

/* Counters for tests and reports. */
struct client_pool_stats {
	size_t connections;          /* tickets granted without a connection (new ones) */
	size_t reused;               /* tickets granted with an idle connection */
	size_t idle;                 /* connections idle now */
	size_t peak;                 /* most connections at once to one address */
};
void client_pool_stats(const struct client_pool *p, struct client_pool_stats *out);

#endif
