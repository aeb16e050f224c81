/* The client side of one SMTP connection as a state machine, sans I/O:
 * the caller connects, reads replies (smtp/reply_parse.h) and hands each
 * complete reply here; the session says what to do next and gives the
 * commands to send.  A transaction is a sender and the recipients of one
 * destination (RFC 5321 §5: grouped by domain).  With keep_open a
 * connection carries several, one after the other: at the clean end of
 * one the session says CLIENT_IDLE, and client_session_next starts the
 * next with RSET (RFC 5321 §4.1.1.5) or client_session_quit ends it.
 * Tested with transcripts (tests/unit/test_client_session.c). */
#ifndef RAWMAIL_CLIENT_SESSION_H
#define RAWMAIL_CLIENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/reply_parse.h"
#include "util/buf.h"

enum client_tls_mode {
	CLIENT_TLS_NONE,           /* never STARTTLS */
	CLIENT_TLS_OPPORTUNISTIC,  /* STARTTLS when offered; plaintext otherwise */
	CLIENT_TLS_REQUIRE,        /* STARTTLS or give up (temporary failure) */
};

struct client_session_config {
	const char *helo;          /* our name or address literal */
	enum client_tls_mode tls;
	uint64_t message_size;     /* for SIZE= when the peer offers SIZE */
	bool eightbit;             /* message has 8-bit octets: BODY=8BITMIME */
	bool smtputf8;             /* an address is UTF-8: SMTPUTF8 needed */
	/* Connection reuse: at the end of a transaction that leaves the
	 * connection in a known state, CLIENT_IDLE instead of QUIT.  Never
	 * after a 421 (the peer is closing, RFC 5321 §3.8), a lost
	 * connection or an outcome the session could not see. */
	bool keep_open;
	/* AUTH (RFC 4954) before MAIL, to a relay: PLAIN or LOGIN, whichever
	 * the EHLO AUTH line offers, PLAIN first (smtp/sasl.h).  NULL user:
	 * no AUTH.  The credentials go only over TLS, or in plaintext when
	 * auth_plaintext_ok (the peer is 127.0.0.1 or ::1).  Every way it
	 * fails (not offered, no TLS, refused) is CLIENT_NEXT_HOST with the
	 * recipients PENDING and auth_failed set: the caller makes it a
	 * temporary failure, as a wrong password is fixed by the sender's
	 * administrator, not by the recipient (Postfix's
	 * smtp_sasl_auth_soft_bounce). */
	const char *auth_user;
	const char *auth_password;
	bool auth_plaintext_ok;
};

enum client_rcpt_state {
	CLIENT_RCPT_PENDING = 0,   /* not answered yet */
	CLIENT_RCPT_DELIVERED,     /* 250 to the final dot */
	CLIENT_RCPT_TEMPFAIL,      /* 4xx (or the connection failed) */
	CLIENT_RCPT_PERMFAIL,      /* 5xx */
	CLIENT_RCPT_DEFERRED,      /* 452/552 too many recipients at RCPT
	                              (RFC 5321 §4.5.3.1.10): not tried here,
	                              send in another transaction */
};

struct client_rcpt {
	const char *address;       /* the caller's string */
	enum client_rcpt_state state;
	int code;                  /* the reply that decided it, 0 if none */
	char enhanced[16];
	char *text;                /* that reply's text (malloc'd), or NULL */
};

/* What the caller does next. */
enum client_action {
	CLIENT_SEND,               /* write client_session_output(), then read a reply */
	CLIENT_READ,               /* read the next reply (pipelined replies pending) */
	CLIENT_STARTTLS,           /* 220 to STARTTLS: run the TLS handshake, then
	                              call client_session_tls_done() */
	CLIENT_SEND_DATA,          /* 354: send the message through the DATA
	                              encoder (smtp/dot_encode.h) ending in
	                              ".\r\n", then read the reply */
	CLIENT_DONE,               /* QUIT queued in the output (send it, then
	                              close); every recipient has its final
	                              state (none PENDING).  The reply to QUIT
	                              is not needed. */
	CLIENT_IDLE,               /* keep_open: the transaction is over, every
	                              recipient has its final state, nothing is
	                              queued, and the peer waits for a command:
	                              client_session_next() or _quit() */
	CLIENT_NEXT_HOST,          /* this host will not take the message now
	                              (greeting or EHLO/HELO refused, TLS required
	                              but not offered...): close and try the next
	                              host; recipients stay PENDING.  When the
	                              session gives up for its own policy (TLS
	                              required, STARTTLS refused or not offered)
	                              the output holds "QUIT\r\n": send it if
	                              the connection still works, then close
	                              without waiting for the reply.  Otherwise
	                              the output is empty. */
};

struct client_session {
	const struct client_session_config *cfg;
	const char *sender;        /* reverse-path without <>, "" for null */
	struct client_rcpt *rcpts;
	size_t nrcpts;
	/* private */
	int state;
	struct buf out;
	bool esmtp, pipelining, size_ext, eightbit_ext, smtputf8_ext, starttls_ext;
	bool tls_active;
	int auth_offered;          /* enum smtp_sasl_mech from the EHLO AUTH line */
	bool authenticated;        /* 235 came: the connection is authenticated */
	bool auth_failed;          /* gave up on the host because of AUTH */
	bool secret_out;           /* out holds credentials (transcripts hide them) */
	unsigned auth_step;        /* LOGIN's 334s answered so far */
	uint64_t size_max;         /* SIZE's announced maximum, 0: none (RFC 1870) */
	bool mail_failed;          /* MAIL refused: later replies only consumed */
	bool data_sent;            /* SEND_DATA returned (see client_session_data_sent) */
	bool dot_sent;             /* the final dot was queued (client_session_dot_sent) */
	bool out_failed;           /* an append to out failed (memory) */
	bool peer_closing;         /* a 421 came: the connection is not reused */
	unsigned transactions;     /* started on this connection (RSET before the 2nd...) */
	size_t replies_expected;   /* pipelined commands not answered yet */
	size_t rcpt_next;          /* next recipient whose RCPT reply is due */
	size_t accepted;           /* recipients accepted at RCPT */
	/* why NEXT_HOST or a whole-transaction failure: the deciding reply */
	int fail_code;
	char fail_enhanced[16];
	char *fail_text;
	const char *fail_reason;   /* short words for people, e.g. "greeting refused" */
};

/* rcpts[] belongs to the caller and must outlive the session; each gets
 * its state, code and text as the replies come.  init resets every
 * recipient to PENDING with no code or text (pass only the ones to try on
 * this host; client_session_free leaves text NULL, so the same array can
 * go to the next host's session).  A recipient accepted at RCPT stays
 * PENDING with that 2xx reply recorded until the reply to the dot.
 * Outcomes decided here without a peer reply:
 *   - SMTPUTF8 needed, not offered: all PERMFAIL 553 5.6.7 (RFC 6531 §3.2);
 *   - SIZE announced and message_size above it: all PERMFAIL 552 5.3.4
 *     (RFC 1870 §6), before MAIL is sent. */
void client_session_init(struct client_session *s, const struct client_session_config *cfg,
                         const char *sender, struct client_rcpt *rcpts, size_t nrcpts);
/* Hands over the next complete reply (the first is the greeting). */
enum client_action client_session_reply(struct client_session *s,
                                        const struct smtp_server_reply *reply);
/* Implicit TLS (RFC 8314 §3.3): the handshake ran before the greeting,
 * so the session starts as if STARTTLS were done (no STARTTLS). */
void client_session_tls_implicit(struct client_session *s);
/* The output holds credentials (an AUTH command or an answer to a 334):
 * a transcript shows "<hidden>" for them, and the caller wipes its
 * copies after writing. */
bool client_session_output_secret(const struct client_session *s);
/* The handshake after STARTTLS succeeded: EHLO again (RFC 3207 §4.2). */
enum client_action client_session_tls_done(struct client_session *s);
/* The connection failed or timed out: every recipient still PENDING
 * stays PENDING (the caller tries the next host), unless the message
 * was already sent (after the final dot: the outcome is unknown, so they
 * become TEMPFAIL and a retry may duplicate — RFC 5321 §4.5.3.2.6). */
void client_session_lost(struct client_session *s);
/* Bytes to write now (commands, CRLF-terminated); the caller drains it. */
struct buf *client_session_output(struct client_session *s);
/* True once CLIENT_SEND_DATA was returned (the message is being sent). */
bool client_session_data_sent(const struct client_session *s);
/* The caller has queued the final ".\r\n" for writing.  From then on the
 * message counts as possibly delivered, since the session cannot see
 * whether the dot reached the peer: a connection lost in that state makes
 * accepted recipients TEMPFAIL (code 0), never PENDING, as trying the next
 * host at once could deliver twice.  Lost before it (mid-message), nothing
 * can have been delivered (RFC 5321 §4.1.1.4: the dot ends the data), and
 * the recipients go back to PENDING for the next host. */
void client_session_dot_sent(struct client_session *s);
/* keep_open, after CLIENT_IDLE (and client_session_transaction_clear):
 * the next transaction on the same connection, with its own
 * configuration (the connection's helo and tls must be the same), sender
 * and recipients.  RSET goes first (RFC 5321 §4.1.1.5): whatever the last
 * transaction left behind (a MAIL accepted with no recipient, a refused
 * DATA) is cleared, and its reply shows the connection still works.  A
 * refused RSET (or one called in any state but idle) gives
 * CLIENT_NEXT_HOST with the recipients PENDING and fail_reason "RSET
 * refused": the caller tries them on a new connection, not as a failure
 * of the host. */
enum client_action client_session_next(struct client_session *s,
                                       const struct client_session_config *cfg,
                                       const char *sender, struct client_rcpt *rcpts,
                                       size_t nrcpts);
/* After CLIENT_IDLE: nothing more to send here; QUIT is queued, CLIENT_DONE. */
enum client_action client_session_quit(struct client_session *s);
/* The transaction's recipients are done with (their outcomes copied): their
 * texts are freed and the session no longer points at them, so the
 * caller may free the array while the connection stays open. */
void client_session_transaction_clear(struct client_session *s);
/* Whether a later transaction on this connection would be the second or
 * more (a failure then may be the reused connection's, not the host's). */
bool client_session_reused(const struct client_session *s);
void client_session_free(struct client_session *s);

#endif
