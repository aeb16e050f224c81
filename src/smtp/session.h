/* The server side of an SMTP session as a state machine, sans I/O: the
 * caller frames input (command lines, or raw bytes in DATA/BDAT), the
 * session answers through ops->send and asks the caller for policy and
 * storage decisions through the other ops.  Tested with transcripts
 * (tests/unit/test_smtp_session.c), driven by server/conn.c in rawmail.
 *
 * Memory: an idle session is this struct plus the HELO name; everything a
 * transaction needs is allocated at MAIL and freed when it ends. */
#ifndef RAWMAIL_SMTP_SESSION_H
#define RAWMAIL_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/address.h"
#include "smtp/command.h"
#include "smtp/content.h"
#include "smtp/reply.h"

struct smtp_sasl_server;

struct smtp_session_config {
	const char *hostname;       /* greeting, EHLO reply */
	uint64_t max_message_size;  /* SIZE announced and enforced */
	unsigned max_recipients;    /* past it: 452 4.5.3 */
	unsigned max_errors;        /* bad commands before 421 and close */
	enum smtp_bare_policy bare_policy;
	bool accept_bare_ip;        /* user@192.0.2.1 taken as user@[192.0.2.1] */
	unsigned max_auth_failures; /* failed AUTH exchanges before 421 and close */
};

/* Where AUTH (RFC 4954) is offered; the caller sets s->auth_offer after
 * init, per listener. */
enum smtp_auth_offer {
	SMTP_AUTH_OFF = 0,      /* an MX listener: AUTH gets 502 5.5.1 */
	SMTP_AUTH_AFTER_TLS,    /* offered and taken only under TLS (538 5.7.11 before) */
	SMTP_AUTH_ANYTIME,      /* a listener bound to 127.0.0.1 or ::1: no TLS needed */
};

/* The answer to ops->auth. */
enum smtp_auth_result { SMTP_AUTH_OK = 0, SMTP_AUTH_FAIL, SMTP_AUTH_TEMPFAIL };

/* What the caller must do with the input now. */
enum smtp_input_mode {
	SMTP_INPUT_LINE,   /* frame a command line and call smtp_session_line */
	SMTP_INPUT_DATA,   /* pass raw bytes to smtp_session_data */
	SMTP_INPUT_WAIT,   /* read nothing: an async answer is pending */
	SMTP_INPUT_CLOSE,  /* flush output, then close the connection */
};

struct smtp_recipient {
	char *address;   /* as given, for Delivered-To (UTF-8 possible) */
	char *mailbox;   /* Maildir directory chosen by policy */
};

struct smtp_transaction {
	char qid[32];
	char *sender;               /* reverse-path without <>, "" for null */
	uint64_t size;              /* SIZE= on MAIL (RFC 1870), 0 if none */
	char *rcpt_pending;         /* the address of a RCPT waiting for ops->rcpt's answer */
	bool smtputf8;
	enum smtp_body_type body;
	struct smtp_recipient *rcpts;
	size_t nrcpts, rcpt_cap;
	size_t nmailboxes;          /* distinct mailboxes among rcpts */
	unsigned rcpt_attempts;     /* RCPT commands, accepted or not */
	bool chunking;              /* BDAT used in this transaction */
	bool failed;                /* a BDAT chunk failed: discard the rest */
	bool too_big;               /* content went over max_message_size */
	bool begun;                 /* ops->message_begin succeeded */
	struct smtp_content content;
	uint64_t chunk_left;        /* BDAT octets still to read */
	uint64_t chunk_size;        /* octets of the current BDAT chunk */
	bool chunk_last;
};

enum smtp_rcpt_status {
	SMTP_RCPT_ACCEPT,
	SMTP_RCPT_REFUSE,
	SMTP_RCPT_PENDING,
};

struct smtp_session_ops {
	/* Writes bytes to the client. */
	void (*send)(void *ctx, const char *data, size_t len);
	/* MAIL accepted syntactically: assign t->qid and decide.  Return true
	 * to accept; false with *reply set to refuse (e.g. 452 4.3.1, 451). */
	bool (*mail)(void *ctx, struct smtp_transaction *t, const struct smtp_command *cmd,
	             struct smtp_reply *reply);
	/* A recipient: SMTP_RCPT_ACCEPT with *mailbox set to the mailbox name
	 * to deliver to (malloc'd, the session frees it); SMTP_RCPT_REFUSE with
	 * *reply set to the refusal; or SMTP_RCPT_PENDING when the answer needs
	 * an asynchronous question (the store, at RCPT: may this new mailbox be
	 * created?): the session then reads nothing (SMTP_INPUT_WAIT) until the
	 * caller gives the answer with smtp_session_rcpt_done. */
	enum smtp_rcpt_status (*rcpt)(void *ctx, const struct smtp_transaction *t,
	                              const struct smtp_address *rcpt, char **mailbox,
	                              struct smtp_reply *reply);
	/* Content starts (after 354, or at the first BDAT): open the store
	 * transaction.  False with *reply set if storage is unavailable. */
	bool (*message_begin)(void *ctx, struct smtp_transaction *t, struct smtp_reply *reply);
	/* Content in stored form (LF line endings). False: storage failed. */
	bool (*message_write)(void *ctx, struct smtp_transaction *t, const char *data, size_t len);
	/* Content complete: commit asynchronously, then the caller calls
	 * smtp_session_message_done with the final reply. */
	void (*message_commit)(void *ctx, struct smtp_transaction *t);
	/* Drop a begun message (refused, RSET, connection lost). */
	void (*message_abort)(void *ctx, struct smtp_transaction *t);
	/* 220 sent for STARTTLS: the caller discards buffered input, runs the
	 * handshake, then calls smtp_session_tls_started. */
	void (*starttls)(void *ctx);
	/* Logging hook for a refused command (may be NULL). */
	void (*refused)(void *ctx, const char *what, const struct smtp_reply *reply);
	/* Logging hook for the reply to each RCPT whose address parsed, 250 or
	 * refusal, with the address as it is stored (may be NULL: refusals
	 * then go to refused). */
	void (*recipient)(void *ctx, const char *address, const struct smtp_reply *reply);
	/* True if the client sent more octets after the command line being
	 * handled (may be NULL: never).  Asked at DATA, which RFC 2920 §3.1
	 * makes the last command of a pipelined group. */
	bool (*input_pending)(void *ctx);
	/* An AUTH exchange gave credentials: check them (asynchronously; the
	 * session reads nothing meanwhile) and answer with
	 * smtp_session_auth_done.  user and password are NUL-terminated;
	 * the password is wiped when the call returns: copy what is needed. */
	void (*auth)(void *ctx, const char *user, const char *password);
};

struct smtp_session {
	const struct smtp_session_config *cfg;
	const struct smtp_session_ops *ops;
	void *ctx;
	int state;                  /* private */
	enum smtp_input_mode mode;
	char *helo;                 /* malloc'd, NULL before HELO/EHLO */
	bool esmtp;                 /* EHLO (not HELO) */
	bool tls;                   /* TLS is active */
	bool tls_offered;           /* STARTTLS may be announced */
	unsigned char discard_reason; /* private: a refused BDAT chunk */
	unsigned char discard_state;
	uint64_t discard_left;
	unsigned errors;
	unsigned messages;          /* accepted in this session */
	enum smtp_auth_offer auth_offer; /* set by the caller after init */
	bool auth_required;         /* MAIL before AUTH gets 530 5.7.0 (submission) */
	unsigned auth_failures;     /* failed exchanges in this session */
	char *auth_user;            /* the login after 235, malloc'd; NULL before */
	struct smtp_sasl_server *sasl; /* private: during an AUTH exchange */
	struct smtp_transaction *txn; /* NULL outside a transaction */
};

void smtp_session_init(struct smtp_session *s, const struct smtp_session_config *cfg,
                       const struct smtp_session_ops *ops, void *ctx, bool tls_offered);
/* Sends the 220 greeting. */
void smtp_session_greet(struct smtp_session *s);
/* A complete command line without its line ending. */
void smtp_session_line(struct smtp_session *s, const char *line, size_t len);
/* The longest line the caller should frame now (without its CRLF):
 * SMTP_AUTH_LINE_MAX while AUTH may start or is under way (RFC 4954 §4),
 * else SMTP_COMMAND_LINE_MAX. */
size_t smtp_session_line_max(const struct smtp_session *s);
/* A command line longer than smtp_session_line_max was read and discarded. */
void smtp_session_line_too_long(struct smtp_session *s);
/* Raw bytes in SMTP_INPUT_DATA mode; returns how many were consumed (the
 * rest, after the end of DATA or of a BDAT chunk, is command input). */
size_t smtp_session_data(struct smtp_session *s, const char *data, size_t len);
/* The answer to an ops->rcpt that returned SMTP_RCPT_PENDING: mailbox
 * (malloc'd, taken over) to accept, or NULL and the refusal in reply.
 * Ignored (mailbox freed) if the session no longer waits for it (closed). */
void smtp_session_rcpt_done(struct smtp_session *s, char *mailbox, const struct smtp_reply *reply);
/* The answer to message_commit: a 250, 451 or 452 reply. */
void smtp_session_message_done(struct smtp_session *s, const struct smtp_reply *reply);
/* The answer to ops->auth: 235 2.7.0, 535 5.7.8 (after max_auth_failures
 * of them, 421 4.7.0 and close) or 454 4.7.0.  Ignored if the session no
 * longer waits for it. */
void smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result r);
/* The TLS handshake after STARTTLS succeeded: back to the start (RFC 3207 §4.2). */
void smtp_session_tls_started(struct smtp_session *s);
/* Server shutting down or overloaded: sends 421 and asks for close. */
void smtp_session_shutdown(struct smtp_session *s, const char *why);
/* The connection is gone: abort any transaction, free everything. */
void smtp_session_free(struct smtp_session *s);
/* True between MAIL and the end of the transaction. */
bool smtp_session_in_transaction(const struct smtp_session *s);
/* True while message content is being received (DATA or BDAT chunks). */
bool smtp_session_in_content(const struct smtp_session *s);

#endif
