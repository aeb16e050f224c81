/* One SMTP delivery attempt to one address on libevent: connect with a
 * deadline, drive client_session (client/session.h) with a reply parser
 * (smtp/reply_parse.h), STARTTLS through a client SSL_CTX (net/tls.h),
 * the message through the DATA encoder (smtp/dot_encode.h).  Walking a
 * destination's host list and retrying DEFERRED recipients are the
 * caller's; several deliveries may run on one event_base at once.
 *
 * Connection reuse: with cfg->keep_open a transaction that ends cleanly
 * leaves the connection open (result reusable); its owner then starts
 * another on it (client_deliver_next: RSET, then the transaction) or
 * closes it (client_deliver_close).  While idle the connection reads:
 * anything from the peer (a 421 at its idle timeout, EOF) makes it
 * unusable (client_deliver_usable). */
#ifndef RAWMAIL_CLIENT_DELIVER_H
#define RAWMAIL_CLIENT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "client/session.h"
#include "net/fingerprint.h"

enum client_deliver_end {
	CLIENT_DELIVER_DONE,       /* the session ended with CLIENT_DONE */
	CLIENT_DELIVER_NEXT_HOST,  /* the session said CLIENT_NEXT_HOST */
	CLIENT_DELIVER_LOST,       /* connect failed, timeout, EOF, TLS or I/O
	                              error, malformed reply: client_session_lost
	                              was called (PENDING recipients stay
	                              PENDING unless the final dot was sent) */
};

struct client_deliver_result {
	bool connected;            /* the TCP connection was established */
	bool tls;                  /* the TLS handshake completed */
	enum client_deliver_end end;
	/* DONE with keep_open and the connection in a known state: it stays
	 * open and is the caller's (next or close); otherwise it is closed
	 * and freed after the callback. */
	bool reusable;
	/* This transaction ran on a connection that had carried another: a
	 * failure before the message was sent may be the connection's (the
	 * peer timed it out), not the host's, so try a new connection. */
	bool reused;
	int greeting_code;         /* the peer's greeting, 0 if none came */
	/* The TCP connect timed out (no answer at all, not a refusal): when
	 * every address of a destination does this, outgoing port 25 is
	 * probably blocked by the network. */
	bool connect_timeout;
	/* STARTTLS was accepted but the handshake failed, or timed out, or a
	 * certificate check (tls_verify, tls_pins) refused the peer: in
	 * opportunistic mode the caller retries in plaintext. */
	bool tls_failed;
	/* Of those, the ones where our own certificate check refused the
	 * peer (not a handshake error): fail_reason ends with its
	 * fingerprint. */
	bool certificate_refused;
	/* The session gave up because of AUTH (not offered, no TLS for it,
	 * refused): a temporary failure whatever the reply's class
	 * (client/session.h). */
	bool auth_failed;
	/* Why it ended badly, for people ("connection refused", "timed out
	 * waiting for a reply", "malformed reply", "greeting refused"...),
	 * NULL after DONE.  With fail_code: the session's deciding reply (0 if
	 * none).  Valid during the done callback only. */
	const char *fail_reason;
	int fail_code;
	const char *fail_enhanced;
	const char *fail_text;
};

/* A line of the -v transcript, without line ending: "S> 250 ok",
 * "C> MAIL FROM:<a@b>", "C> (12 lines of message)", credentials as
 * "C> AUTH PLAIN <hidden>" and "C> <hidden>", and after STARTTLS
 * "-- TLS established: TLSv1.3 TLS_AES_256_GCM_SHA384, peer certificate
 * SHA256:<64 hex>, verified" (or "pinned", "verified and pinned", "not
 * verified"). */
typedef void (*client_transcript_fn)(void *arg, const char *line);
/* Called once per transaction; unless res->reusable the delivery is freed
 * right after it returns (client_deliver_next and _close must not be
 * called from inside it).
 * The recipients' outcomes are in the caller's client_rcpt array: state,
 * code and enhanced stay, but each text is freed (set to NULL) when the
 * callback returns (client_session_free), so copy what must outlive it. */
typedef void (*client_deliver_done_fn)(void *arg, const struct client_deliver_result *res);

struct client_deliver_request {
	struct event_base *base;
	SSL_CTX *tls_ctx;          /* client context; NULL with CLIENT_TLS_NONE, or ... */
	struct tls_client_lazy *tls_lazy;  /* ... made from this at the first STARTTLS */
	/* Checks of the peer's certificate after STARTTLS (net/tls.h, struct
	 * tls_client_check, has the details).  None set: opportunistic, any
	 * certificate is accepted (RFC 7435).
	 *   tls_servername: the host's DNS name (the MX name): sent as SNI,
	 *     and with tls_verify the name the certificate must hold.  NULL for
	 *     an address-literal destination: no SNI, and tls_verify checks the
	 *     connected address against the certificate's IP SANs.
	 *   tls_verify: the chain must lead to one of tls_ctx's trust anchors
	 *     (tls_client_ctx_new with verify) and name the peer.
	 *   tls_pins, tls_npins: SHA-256 of the leaf certificate or of its
	 *     public key (net/fingerprint.h); one must match.  Without
	 *     tls_verify the pin alone authenticates (DANE-EE style: chain,
	 *     dates and name unchecked); with it, both must hold.
	 * A refused certificate ends the handshake: end LOST, tls_failed set,
	 * fail_reason says why and gives the peer's fingerprint ("certificate
	 * verification failed: ...", "certificate name mismatch: ...",
	 * "certificate fingerprint does not match any --tls-fingerprint ...");
	 * nothing of the transaction was sent, recipients stay PENDING.  The
	 * caller decides whether to retry in plaintext (opportunistic) or not. */
	const char *tls_servername;
	bool tls_verify;
	/* Implicit TLS (RFC 8314 §3.3, smtps://): the handshake, with the
	 * checks above, right after connecting, before the greeting. */
	bool implicit_tls;
	const unsigned char (*tls_pins)[TLS_FINGERPRINT_LEN];
	size_t tls_npins;
	const struct sockaddr *addr;
	socklen_t addrlen;
	const struct client_session_config *cfg;
	const char *sender;        /* without <>, "" for the null reverse-path */
	struct client_rcpt *rcpts; /* caller's, must outlive the delivery */
	size_t nrcpts;
	const char *message;       /* the message as given (any line endings, no
	                              dot-stuffing); must outlive the delivery */
	size_t message_len;
	/* Seconds for the connection, each reply, each write (RFC 5321
	 * §4.5.3.2); final_timeout for the reply to the final dot, 0: 600. */
	int timeout;
	int final_timeout;
	client_transcript_fn transcript;   /* NULL: no transcript */
	/* -vv: the message itself in the transcript, one "C> " line per line
	 * as it goes on the wire (dot-stuffed), instead of a line count. */
	bool transcript_body;
	client_deliver_done_fn done;
	void *arg;                 /* for both callbacks */
};

struct client_delivery;

/* Starts the attempt; the done callback always runs later from the event
 * loop, never from inside this call.  NULL only when out of memory or the
 * request is unusable (nothing started, no callback). */
struct client_delivery *client_deliver_start(const struct client_deliver_request *req);

/* After a done with reusable: the next transaction on the same connection
 * (RSET first).  Of req only the transaction's fields are used: cfg (the
 * same helo and tls as the first), sender, rcpts, message, timeouts,
 * transcript, done, arg.  done runs later from the loop.  false: the
 * connection was not usable (or memory ran out): it is closed and freed,
 * no callback, the recipients are untouched (PENDING) for a new one. */
bool client_deliver_next(struct client_delivery *d, const struct client_deliver_request *req);
/* After a done with reusable: QUIT is written at once (best effort, the
 * reply is not needed: RFC 5321 §4.1.1.10), the connection closed and d
 * freed; no callback.  The transcript (if any) gets "C> QUIT". */
void client_deliver_close(struct client_delivery *d);
/* Idle, and nothing has come from the peer since the last reply. */
bool client_deliver_usable(const struct client_delivery *d);
/* Idle connections kept by someone else than the last transaction's
 * owner: its transcript is no longer called. */
void client_deliver_detach(struct client_delivery *d);

const char *client_deliver_end_name(enum client_deliver_end end);

#endif
