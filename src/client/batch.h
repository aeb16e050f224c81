/* One message to all its recipients: grouped by destination (recipient
 * domain, case-insensitively, or address literal), each destination
 * resolved (dns/lookup.h) and delivered (client/route.h) with its own
 * transaction, several destinations at once on one event loop.  The
 * outbound engine (client/outbound.h) runs one batch per message it is
 * given, several at once, sharing one limit on destinations in progress.
 *
 * The address family when neither -4 nor -6 is given (family_auto): IPv6
 * goes first only when the source address the kernel picks toward the
 * destination has a PTR that resolves back to it; otherwise IPv4 first.
 * Large receivers refuse IPv6 senders without one (Gmail: "550-5.7.1 ...
 * does not meet IPv6 sending guidelines regarding PTR records"), while
 * most hosts that have IPv6 at all get no PTR for it by default. */
#ifndef RAWMAIL_CLIENT_BATCH_H
#define RAWMAIL_CLIENT_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "client/relay.h"
#include "client/route.h"
#include "dns/lookup.h"
#include "dns/resolver.h"

/* Destinations delivered at once when the caller does not say. */
#define CLIENT_BATCH_PARALLEL 32

/* Destinations in progress (looked up, delivering) across every batch that
 * shares it: the engine's limit, so many messages at once do not open
 * many times its connections. */
struct client_batch_slots {
	size_t active;
	size_t max;                     /* 0: CLIENT_BATCH_PARALLEL */
};

/* A destination's plan, for --dry-run: the addresses in the order they
 * would be tried.  addrs is NULL and n 0 when the lookup failed; then
 * results[] already hold the failure.  via: "relay" or "route" when the
 * addresses are those of a relay or route (client/relay.h) on via_port,
 * NULL for the MX.  Valid during the call only. */
typedef void (*client_plan_fn)(void *arg, const char *destination,
                               const struct dns_lookup_addr *addrs, size_t n,
                               const char *family_note, const char *via,
                               unsigned short via_port);

struct client_batch_request {
	struct event_base *base;
	struct dns_resolver *resolver;  /* attached to base; NULL only if
	                                   every destination is a literal */
	SSL_CTX *tls_ctx;
	struct tls_client_lazy *tls_lazy;   /* see client_deliver_request */
	/* cfg->smtputf8 says whether the sender needs SMTPUTF8; each
	 * destination adds its own recipients' need, so one UTF-8 address
	 * does not fail the others at servers without it (RFC 6531 §3.2). */
	const struct client_session_config *cfg;
	bool tls_verify;
	const unsigned char (*tls_pins)[32];
	size_t tls_npins;
	const char *sender;
	const char *message;
	size_t message_len;
	unsigned short port;
	int timeout, final_timeout;
	enum dns_family_pref family;    /* -4 / -6; ignored with family_auto */
	bool family_auto;
	struct client_batch_slots *slots;  /* shared; must outlive the batch */
	struct client_pool *pool;       /* shared connections (client/pool.h), or NULL */
	/* Instead of the MX (client/relay.h): a domain with a route goes to
	 * its host (TLS as above, port the route's); every other domain name
	 * to the relay when there is one (never address literals), with
	 * relay_tls and relay_verify, and AUTH when auth_user is set.  The
	 * host is resolved by A/AAAA, never MX. */
	const struct client_relay_route *routes;
	size_t nroutes;
	const struct client_relay_host *relay;   /* NULL: none */
	enum client_tls_mode relay_tls;
	bool relay_verify;
	const char *auth_user;
	const char *auth_password;
	bool dry_run;                   /* resolve and plan; connect to nothing;
	                                   planned recipients stay PENDING */
	dns_mx_random_fn random_fn;     /* NULL: getrandom */
	void *random_arg;
	/* address (and original) set by the caller, rest zero; the
	 * caller's, must outlive the batch */
	struct client_result *results;
	size_t nresults;
	client_plan_fn plan;            /* dry runs */
	/* -v lines.  With transcript_live and one destination they come as
	 * they happen; otherwise each destination's lines come together when
	 * it is done, so parallel conversations do not interleave. */
	client_transcript_fn transcript;
	bool transcript_body;           /* -vv */
	bool transcript_live;
	/* Every recipient has an outcome (or a plan).  May run inside
	 * client_batch_start or client_batch_resume: it must not free the
	 * batch itself, only arrange for that (the engine does it from the
	 * loop). */
	void (*done)(void *arg);
	/* A destination of this batch ended and gave back its slot: other
	 * batches sharing the slots may start one.  NULL: none to tell. */
	void (*slot_freed)(void *arg);
	void *arg;                      /* for every callback above */
};

struct client_batch;

/* Starts as many destinations as the slots allow; the rest wait for
 * client_batch_resume.  req is copied.  NULL when out of memory (nothing
 * started, no callback). */
struct client_batch *client_batch_start(const struct client_batch_request *req);
/* Starts waiting destinations while slots are free. */
void client_batch_resume(struct client_batch *b);
/* Whether destinations wait for a slot. */
bool client_batch_waiting(const struct client_batch *b);
/* After done: frees.  Before done only while no destination is
 * delivering (lookups are cancelled; a route cannot be, yet). */
void client_batch_free(struct client_batch *b);

#endif
