/* One message to all its recipients: grouped by destination (recipient
 * domain, case-insensitively, or address literal), each destination
 * resolved (dns/lookup.h) and delivered (client/route.h) with its own
 * transaction, several destinations at once on one event loop.
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

#include "client/route.h"
#include "dns/lookup.h"
#include "dns/resolver.h"

/* Destinations delivered at once when the caller does not say. */
#define CLIENT_BATCH_PARALLEL 32

/* A destination's plan, for --dry-run: the addresses in the order they
 * would be tried.  addrs is NULL and n 0 when the lookup failed; then
 * results[] already hold the failure.  Valid during the call only. */
typedef void (*client_plan_fn)(void *arg, const char *destination,
                               const struct dns_lookup_addr *addrs, size_t n,
                               const char *family_note);

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
	size_t parallel;                /* 0: CLIENT_BATCH_PARALLEL */
	bool dry_run;                   /* resolve and plan; connect to nothing;
	                                   planned recipients stay PENDING */
	dns_mx_random_fn random_fn;     /* NULL: getrandom */
	void *random_arg;
	struct client_result *results;  /* address set by the caller, rest zero */
	size_t nresults;
	client_plan_fn plan;            /* dry runs */
	/* -v lines.  With one destination they come as they happen; with
	 * several, each destination's lines come together when it is done,
	 * so parallel conversations do not interleave. */
	client_transcript_fn transcript;
	bool transcript_body;           /* -vv */
	void *arg;
};

/* Runs base's loop until every recipient has an outcome (or a plan).
 * false only when out of memory before anything started. */
bool client_batch_run(const struct client_batch_request *req);

#endif
