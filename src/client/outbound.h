/* The outbound delivery engine: everything rawmail needs to deliver mail
 * to other servers, behind one configuration, on the caller's libevent
 * event_base.  `rawmail send` submits one message; a queue runner (later:
 * `rawmail queue run`, serve's runner) submits many and mixes the engine
 * with its own timers on the same loop.
 *
 *   engine = client_outbound_new(base, &config, err, errlen);
 *   client_outbound_submit(engine, &message, done, arg, err, errlen);  (any number)
 *   event_base_dispatch(base);     (the caller's loop; done ends it when it should)
 *   client_outbound_free(engine);
 *
 * Each message is delivered as client/batch.h says (recipients grouped by
 * destination, each destination resolved and tried address by address,
 * client/route.h); several messages are delivered at once, and the
 * destinations in progress across all of them stay within one limit
 * (parallel).  A message's done callback runs once, from the loop, when
 * every one of its recipients has an outcome: delivered, temporary or
 * permanent failure, with the deciding reply, the host and address that
 * gave it, and flags (connect timeouts only, certificate refused).
 *
 * Costs are paid at first need, so a plaintext `rawmail send` to an
 * address literal starts as fast as before there was an engine: the DNS
 * resolver is made at the first message with a domain destination, the
 * TLS context at the first STARTTLS (net/tls.h, tls_client_lazy) — except
 * that a cafile is read at once, so a bad file is an error before
 * anything is sent.
 *
 * Connections are shared (client/pool.h): at most connections_per_address
 * at once to one peer address, across every message and domain; a
 * connection that finished a transaction cleanly carries the next message
 * for the same peer (RSET between), so several messages to one
 * destination, and domains whose MX is the same host, share connections.
 * An idle connection waits up to 2 s, and only while the engine has other
 * work: a lone message's connection is closed (QUIT) as soon as it is
 * done, before its done callback runs. */
#ifndef RAWMAIL_CLIENT_OUTBOUND_H
#define RAWMAIL_CLIENT_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "client/batch.h"
#include "client/pool.h"
#include "client/route.h"
#include "client/session.h"
#include "dns/lookup.h"
#include "dns/mx.h"

/* Each DNS query's try when the configuration does not say; c-ares
 * tries twice. */
#define CLIENT_OUTBOUND_DNS_TIMEOUT_MS 5000
#define CLIENT_OUTBOUND_TIMEOUT 30
#define CLIENT_OUTBOUND_PINS_MAX 16

struct client_outbound_config {
	const char *dns;              /* resolver "ADDR[:PORT]"; NULL: the system's */
	unsigned dns_timeout_ms;      /* 0: CLIENT_OUTBOUND_DNS_TIMEOUT_MS */
	unsigned short port;          /* 0: 25 */
	enum client_tls_mode tls;     /* NONE, OPPORTUNISTIC, REQUIRE */
	bool tls_verify;              /* the certificate must be valid for the MX name
	                                 (implies tls REQUIRE) */
	const char *cafile;           /* trust anchors for tls_verify; NULL: the system's */
	const unsigned char (*tls_pins)[32];  /* accepted certificates or keys (deliver.h) */
	size_t tls_npins;             /* at most CLIENT_OUTBOUND_PINS_MAX */
	enum dns_family_pref family;  /* -4 / -6; ignored with family_auto */
	bool family_auto;             /* IPv6 first only with a confirmed PTR (batch.h) */
	/* EHLO name: NULL this host's name (util/hostname.h), "" (or no
	 * dotted name) our address literal toward each peer (route.h). */
	const char *helo;
	int timeout;                  /* seconds, each step (0: CLIENT_OUTBOUND_TIMEOUT) */
	int final_timeout;            /* for the reply to the final dot (0: 600) */
	size_t parallel;              /* destinations in progress at once, all messages
	                                 together (0: CLIENT_BATCH_PARALLEL) */
	size_t connections_per_address;  /* connections at once to one peer address
	                                    (0: CLIENT_POOL_PER_ADDRESS) */
	int idle_ms;                  /* an idle connection's wait (0: CLIENT_POOL_IDLE_MS) */
	/* A relay (smarthost) and routes instead of the MX (client/relay.h,
	 * batch.h).  TLS to the relay: relay_tls, and relay_verify (the
	 * certificate must name the relay host: cafile or the system's store)
	 * with tls_pins as for MX delivery.  AUTH to the relay with
	 * auth_user and auth_password (copied, and wiped when the engine is
	 * freed). */
	const struct client_relay_host *relay;   /* NULL: none */
	const struct client_relay_route *routes;
	size_t nroutes;                          /* at most CLIENT_RELAY_ROUTES_MAX */
	enum client_tls_mode relay_tls;
	bool relay_verify;
	const char *auth_user;
	const char *auth_password;
	/* Resolve and plan, connect to nothing: plan is called per
	 * destination, planned recipients stay PENDING. */
	bool dry_run;
	client_plan_fn plan;
	/* -v: the conversation, line by line (see batch.h for when lines come
	 * as they happen and when in blocks).  NULL: none. */
	client_transcript_fn transcript;
	bool transcript_body;         /* -vv: the message lines too */
	void *arg;                    /* for plan and transcript */
	dns_mx_random_fn random_fn;   /* equal-preference MX order; NULL: getrandom */
	void *random_arg;
};

/* One message.  Every pointer is the caller's and must stay valid until
 * the message's done callback has returned (a queue runner's message may
 * be large: the engine does not copy it). */
struct client_outbound_message {
	/* The reverse-path, without <>; "" for the null sender.  Its domain
	 * in ASCII (A-labels); a UTF-8 local part asks for SMTPUTF8. */
	const char *sender;
	const char *data;             /* RFC 5322, any line ends, not dot-stuffed */
	size_t len;
	/* As RCPT TO takes them: no <>, domain in A-labels or a literal.
	 * Duplicates are the caller's to remove. */
	const char *const *recipients;
	/* The same recipients as first given (a DSN's Original-Recipient),
	 * or NULL: passed back in each result's original. */
	const char *const *originals;
	size_t nrecipients;
};

/* results[i] is recipients[i]'s outcome; valid during the call only. */
typedef void (*client_outbound_done_fn)(void *arg, const struct client_result *results,
                                        size_t n);

struct client_outbound;

/* The configuration is copied (strings and pins too).  NULL with the
 * reason in err: out of memory, or a cafile that cannot be used. */
struct client_outbound *client_outbound_new(struct event_base *base,
                                            const struct client_outbound_config *cfg,
                                            char *err, size_t errlen);

enum client_outbound_submit_status {
	CLIENT_OUTBOUND_SUBMITTED = 0,
	CLIENT_OUTBOUND_ERR_MEMORY,
	CLIENT_OUTBOUND_ERR_EMPTY,    /* no recipients */
	/* The message needs DNS and the resolver cannot be made: a bad
	 * configured server is the configuration's fault; the system's
	 * resolv.conf missing is the machine's (temporary). */
	CLIENT_OUTBOUND_ERR_DNS,
};

/* Starts delivering a message.  done runs later from the loop, never
 * from inside this call.  On any status but SUBMITTED nothing started,
 * done will not run, and err says why. */
enum client_outbound_submit_status client_outbound_submit(
	struct client_outbound *e, const struct client_outbound_message *m,
	client_outbound_done_fn done, void *arg, char *err, size_t errlen);

/* Stop starting (a runner's SIGTERM): destinations waiting for a slot
 * or a connection never start, connections are not reused; what is under
 * way (a lookup, a connection, a transaction) goes on to its end.  The
 * messages that never start never get their done: the caller exits once
 * client_outbound_busy is false (their entries stay queued as they were). */
void client_outbound_stop(struct client_outbound *e);
/* Something has begun and not ended: a destination being resolved or
 * delivered, or a finished message whose done has not run yet. */
bool client_outbound_busy(const struct client_outbound *e);
/* Messages submitted whose done has not run yet. */
size_t client_outbound_in_flight(const struct client_outbound *e);

/* Connections opened and reused so far (client/pool.h). */
void client_outbound_stats(const struct client_outbound *e, struct client_pool_stats *out);

/* Frees the engine, its resolver and TLS context.  Only once no message
 * is in flight (every done has run): a delivery under way cannot be
 * cancelled yet, so freeing earlier is a bug and aborts. */
void client_outbound_free(struct client_outbound *e);

#endif
