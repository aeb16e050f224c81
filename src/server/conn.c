/* One client connection of the smtp process: frames the input for the
 * protocol core (command lines or raw content), runs STARTTLS, applies the
 * timeouts, and connects the session to the store. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>

#include "dns/reverse.h"
#include "net/tls.h"
#include "auth/users.h"
#include "server/auth_client.h"
#include "server/networks.h"
#include "server/received.h"
#include "smtp/header_fill.h"
#include "smtp/sasl.h"
#include "server/smtpd.h"
#include "server/stream.h"
#include "store/store.h"
#include "util/id.h"
#include "util/log.h"

/* Output waiting for a client that does not read: past this, input is not
 * read until it drains (a pipelining client cannot make us buffer without
 * bound). */
#define OUTPUT_HIGH_WATER (64 * 1024)

/* An address of either family, without sockaddr_storage's 128 bytes:
 * two of them in each connection. */
union conn_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct conn {
	struct smtpd *d;
	const struct smtpd_listener *listener;
	struct stream st;
	bool tls_pending;        /* 220 for STARTTLS queued: handshake after flush */
	bool tls_active;
	bool discarding;         /* inside an overlong command line */
	bool closing;            /* close once the output is flushed */
	bool throttled;          /* reading paused for OUTPUT_HIGH_WATER */
	bool in_process;         /* conn_process is on the stack */
	bool freed_later;        /* conn_free requested while in_process */
	bool store_blocked;      /* reading paused: the store is behind */
	bool active;             /* input since the last reload-drain sweep */
	bool implicit_tls;       /* --submissions: TLS from the first octet (RFC 8314) */
	bool trusted;            /* the client is in a --trusted-network: may relay */
	struct auth_query *auth_query; /* an AUTH waits for the auth process */
	char *auth_senders;      /* the login's allowed senders ("" or NULL: any) */
	struct message_fill *fill; /* a login's or trusted client's message: Date, Message-ID */
	bool fill_failed;        /* the store refused a write made by the fill */
	struct event *greet_timer;
	struct store_txn *txn;
	struct store_query *rcpt_query; /* a RCPT waits for the store's answer */
	char *rcpt_mailbox;      /* its mailbox */
	struct conn *prev, *next;
	struct conn *flush_next;  /* in d->flush_head's list */
	bool flush_queued;
	struct smtp_session s;
	union conn_addr peer;
	union conn_addr local;
	char id[ID_LEN + 1];
	char ip[INET6_ADDRSTRLEN];
	char *tls_desc;          /* set after the handshake */
	struct dns_reverse *rdns_query; /* pending reverse lookup */
	char *rdns;              /* forward-confirmed name of the client */
	bool rdns_done;
	bool rdns_wait;          /* DATA/BDAT held until the lookup answers */
	uint16_t line_len;       /* the command line being handled, with its end */
	struct conn_rate *rate;  /* from the first MAIL on */
};

/* The data rate of a client in a transaction (limits.h,
 * SMTP_MIN_DATA_RATE_DEFAULT), allocated at its first MAIL and kept for the
 * connection: idle sessions do not pay for it.  Octets are counted per
 * read, never per byte. */
struct conn_rate {
	struct event *timer;     /* deadline of a DATA stream or BDAT chunk */
	bool in_phase;
	uint64_t bytes_in;       /* octets taken from the input since */
	int64_t phase_start_ms, txn_start_ms;
	uint64_t phase_bytes, txn_bytes; /* bytes_in when each started */
};

static void conn_process(struct conn *c);
static void conn_free(struct conn *c);
static void fill_start(struct conn *c, const struct smtp_transaction *t);
static void conn_read_cb(void *arg);
static void conn_write_cb(void *arg);
static void conn_event_cb(void *arg, short what);

static const struct stream_cbs conn_stream_cbs = {
	.readable = conn_read_cb,
	.drained = conn_write_cb,
	.event = conn_event_cb,
};

/* ---- session callbacks -------------------------------------------------- */

/* Replies.  Through TLS, the bufferevent writes them.  In plaintext a
 * reply is appended to the output, and the connection queued for
 * conn_flush_all, which writes everything queued in this turn of the loop
 * with one writev(2) per connection: pipelined replies leave together, and
 * no write interest is registered unless the socket is full (stream.h).
 * A reply the output cannot take (out of memory) is lost, and the client
 * times out waiting for it, as with libevent's own buffers. */
static void op_send(void *ctx, const char *data, size_t len)
{
	struct conn *c = ctx;
	stream_write(&c->st, data, len);
	if (c->tls_active || c->flush_queued)   /* tls_active: implicit TLS too */
		return;
	struct smtpd *d = c->d;
	c->flush_queued = true;
	c->flush_next = d->flush_head;
	if (!d->flush_head)
		event_active(d->flush_ev, 0, 0);
	d->flush_head = c;
}

static bool op_mail(void *ctx, struct smtp_transaction *t, const struct smtp_command *cmd,
                    struct smtp_reply *reply)
{
	struct conn *c = ctx;
	id_new(t->qid);
	if (!store_client_alive(c->d->store)) {
		smtp_reply_set(reply, 451, "4.3.0", "Mail storage unavailable, try again later");
		return false;
	}
	/* DESIGN.md: refuse at MAIL what cannot fit, before the client sends
	 * 25 MiB (RFC 1870 §6.1: 452 for a temporary lack of space). */
	uint64_t space = store_client_free_space(c->d->store);
	if ((cmd->has_size && cmd->size > space) || space < 64 * 1024) {
		smtp_reply_set(reply, 452, "4.3.1", "Insufficient system storage");
		return false;
	}
	/* A login limited to some senders uses only those (the users file's
	 * third field; Postfix's reject_sender_login_mismatch).  The null
	 * sender is a bounce's, owned by no one. */
	if (c->s.auth_user && c->auth_senders && c->auth_senders[0] && t->sender[0] &&
	    !auth_senders_text_allowed(c->auth_senders, t->sender)) {
		char from[SMTP_PATH_MAX * 2], user[4 * SMTP_AUTH_NAME_MAX + 8];
		log_event(LOG_INFO, "sender_refused", "session=%s user=%s from=%s", c->id,
		          log_quote(user, sizeof(user), c->s.auth_user, strlen(c->s.auth_user)),
		          log_quote(from, sizeof(from), t->sender, strlen(t->sender)));
		smtp_reply_set(reply, 553, "5.7.1", "Sender address not allowed for this login");
		return false;
	}
	char from[SMTP_PATH_MAX * 2], helo[SMTP_DOMAIN_MAX * 2];
	const char *h = c->s.helo ? c->s.helo : "";
	log_event(LOG_INFO, "mail", "session=%s qid=%s from=%s helo=%s size=%llu", c->id, t->qid,
	          log_quote(from, sizeof(from), t->sender, strlen(t->sender)),
	          log_quote(helo, sizeof(helo), h, strlen(h)),
	          (unsigned long long)(cmd->has_size ? cmd->size : 0));
	return true;
}

/* Distinct mailboxes among t's recipients once mailbox joins them. */
static size_t distinct_mailboxes(const struct smtp_transaction *t, const char *mailbox)
{
	for (size_t i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i].mailbox && !strcmp(t->rcpts[i].mailbox, mailbox))
			return t->nmailboxes;
	return t->nmailboxes + 1;
}

static void rcpt_answer(void *arg, enum store_mailbox_answer a)
{
	struct conn *c = arg;
	char *mailbox = c->rcpt_mailbox;
	c->rcpt_query = NULL;
	c->rcpt_mailbox = NULL;
	struct smtp_reply reply;
	switch (a) {
	case STORE_MAILBOX_EXISTS:
	case STORE_MAILBOX_GRANTED:
		break;
	case STORE_MAILBOX_LIMIT_CLIENT:
	case STORE_MAILBOX_LIMIT_TOTAL:
		/* RFC 5321 §4.2.3: 450 is "mailbox unavailable ... temporarily
		 * blocked for policy reasons"; RFC 3463 X.7.1: delivery not
		 * authorized.  Temporary: the hour passes, the client retries. */
		smtp_reply_set(&reply, 450, "4.7.1", "Too many new mailboxes %s, try again later",
		               a == STORE_MAILBOX_LIMIT_CLIENT ? "from your address" : "this hour");
		free(mailbox);
		mailbox = NULL;
		break;
	case STORE_MAILBOX_ERROR:
	default:
		smtp_reply_set(&reply, 451, "4.3.0", "Mail storage unavailable, try again later");
		free(mailbox);
		mailbox = NULL;
		break;
	}
	smtp_session_rcpt_done(&c->s, mailbox, &reply);
	if (c->s.mode == SMTP_INPUT_LINE && !c->closing) {
		stream_reading(&c->st, true);
		conn_process(c);
	} else if (c->s.mode == SMTP_INPUT_CLOSE) {
		conn_process(c);
	}
}

static enum smtp_rcpt_status op_rcpt(void *ctx, const struct smtp_transaction *t,
                                     const struct smtp_address *rcpt, char **mailbox,
                                     struct smtp_reply *reply)
{
	struct conn *c = ctx;
	if ((c->s.auth_user || c->trusted) &&
	    !policy_domain_ours(&c->d->policy, (const struct sockaddr *)&c->local, rcpt)) {
		/* Issue 10: a login or a trusted network relays through the
		 * outgoing queue (no mailbox of ours; serve starts only with a
		 * spool when either is configured). */
		*mailbox = NULL;
		return SMTP_RCPT_ACCEPT;
	}
	char *box = policy_recipient(&c->d->policy, (const struct sockaddr *)&c->local, rcpt, reply);
	if (!box)
		return SMTP_RCPT_REFUSE;
	/* RFC 1870 §6.1 lets a server refuse a RCPT with 452 when the message
	 * size times the recipients exceeds the storage it has: one copy per
	 * distinct mailbox (issue 8, item 4). */
	uint64_t space = store_client_free_space(c->d->store);
	if (t->size && space != UINT64_MAX &&
	    (uint64_t)distinct_mailboxes(t, box) > space / t->size) {
		free(box);
		smtp_reply_set(reply, 452, "4.3.1", "Insufficient system storage");
		return SMTP_RCPT_REFUSE;
	}
	/* A --mailbox list or postmaster decides alone; a mailbox the store
	 * said exists needs no question (no round trip in the common case). */
	if (c->d->cfg->mailboxes.n || !strcmp(box, "postmaster") ||
	    store_mailbox_known(c->d->store, box)) {
		*mailbox = box;
		return SMTP_RCPT_ACCEPT;
	}
	c->rcpt_query = store_mailbox_ask(c->d->store, box, (const struct sockaddr *)&c->peer,
	                                  rcpt_answer, c);
	if (!c->rcpt_query) {
		free(box);
		smtp_reply_set(reply, 451, "4.3.0", "Mail storage unavailable, try again later");
		return SMTP_RCPT_REFUSE;
	}
	c->rcpt_mailbox = box;
	/* Nothing is read until the answer: it comes within one round trip
	 * to the store, and the read timeout must not run meanwhile. */
	stream_reading(&c->st, false);
	return SMTP_RCPT_PENDING;
}

static bool op_message_begin(void *ctx, struct smtp_transaction *t, struct smtp_reply *reply)
{
	struct conn *c = ctx;
	struct buf received;
	buf_init(&received, 4096);
	struct received_info info = {
		.helo = c->s.helo,
		.rdns = c->rdns,
		.peer = (const struct sockaddr *)&c->peer,
		.by = c->d->cfg->hostname,
		.esmtp = c->s.esmtp,
		.tls = c->tls_active,
		.smtputf8 = t->smtputf8,
		.auth = c->s.auth_user != NULL,
		.auth_user = c->s.auth_user,
		.tls_desc = c->tls_desc,
		.qid = t->qid,
		.for_rcpt = t->nrcpts == 1 ? t->rcpts[0].address : NULL,
		.when = time(NULL),
	};
	struct store_recipient *rcpts = calloc(t->nrcpts, sizeof(*rcpts));
	if (!rcpts || received_format(&received, &info) != 0) {
		free(rcpts);
		buf_free(&received);
		smtp_reply_set(reply, 451, "4.3.0", "Out of memory, try again later");
		return false;
	}
	for (size_t i = 0; i < t->nrcpts; i++) {
		rcpts[i].address = t->rcpts[i].address;
		rcpts[i].mailbox = t->rcpts[i].mailbox;
	}
	/* DKIM (issue 11): the store signs relayed mail only for a login with
	 * a senders field, and only a From that field allows; a login without
	 * one (any sender) and a trusted network (no login) are never signed
	 * for.  The key stays in the store: only this text goes there. */
	const char *signer = c->s.auth_user && c->auth_senders && c->auth_senders[0]
	                             ? c->auth_senders
	                             : NULL;
	c->txn = store_txn_begin(c->d->store, t->qid, t->sender, rcpts, t->nrcpts, received.data,
	                         signer, c->ip, c->s.helo);
	free(rcpts);
	buf_free(&received);
	if (!c->txn) {
		smtp_reply_set(reply, 451, "4.3.0", "Mail storage unavailable, try again later");
		return false;
	}
	fill_start(c, t);
	return true;
}

/* RFC 6409 §8.2, §8.3: a submission server adds a missing Date and
 * Message-ID, here to the mail of logins and trusted networks (devices
 * often send neither), while it streams to the store. */
struct message_fill {
	struct smtp_header_fill f;
	char date[64];
	char msgid[SMTP_DOMAIN_MAX + 64];
};

static void fill_emit(void *arg, const char *p, size_t n)
{
	struct conn *c = arg;
	if (!c->txn || store_txn_write(c->txn, p, n) != 0)
		c->fill_failed = true;
}

static void fill_start(struct conn *c, const struct smtp_transaction *t)
{
	free(c->fill);
	c->fill = NULL;
	c->fill_failed = false;
	if (!c->s.auth_user && !c->trusted)
		return;
	c->fill = calloc(1, sizeof(*c->fill));
	if (!c->fill)
		return; /* the message goes as the client wrote it */
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(c->fill->date, sizeof(c->fill->date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(c->fill->msgid, sizeof(c->fill->msgid), "<%s@%s>", t->qid, c->d->cfg->hostname);
	smtp_header_fill_init(&c->fill->f, c->fill->date, c->fill->msgid);
}

static bool op_message_write(void *ctx, struct smtp_transaction *t, const char *data, size_t len)
{
	struct conn *c = ctx;
	if (!c->txn)
		return false;
	if (!c->fill)
		return store_txn_write(c->txn, data, len) == 0;
	smtp_header_fill_feed(&c->fill->f, data, len, fill_emit, c);
	return !c->fill_failed;
}

static void commit_done(void *arg, enum store_result r)
{
	struct conn *c = arg;
	struct smtp_reply reply;
	struct smtp_transaction *t = c->s.txn;
	c->txn = NULL;
	switch (r) {
	case STORE_OK:
		smtp_reply_set(&reply, 250, "2.0.0", "Ok: queued as %s", t ? t->qid : "");
		break;
	case STORE_NOSPACE:
		smtp_reply_set(&reply, 452, "4.3.1", "Insufficient system storage");
		break;
	case STORE_TEMPFAIL:
	default:
		smtp_reply_set(&reply, 451, "4.3.0", "Local error in processing, message not stored");
		break;
	}
	if (t)
		log_event(r == STORE_OK ? LOG_INFO : LOG_WARN, r == STORE_OK ? "accepted" : "not_stored",
		          "session=%s qid=%s rcpts=%zu size=%llu result=%d", c->id, t->qid, t->nrcpts,
		          (unsigned long long)t->content.stored_size, reply.code);
	smtp_session_message_done(&c->s, &reply);
	if (c->d->stopping && c->s.mode == SMTP_INPUT_LINE) {
		conn_shutdown(c, "Server shutting down, try again later", true);
		return;
	}
	if (c->s.mode == SMTP_INPUT_LINE && !c->closing) {
		stream_reading(&c->st, true);
		conn_process(c);
	} else if (c->s.mode == SMTP_INPUT_CLOSE) {
		conn_process(c);
	}
}

static void op_message_commit(void *ctx, struct smtp_transaction *t)
{
	struct conn *c = ctx;
	/* Nothing more is read until the store answers: the client waits for
	 * our reply to the final dot anyway, and this stops the read timeout. */
	stream_reading(&c->st, false);
	if (c->fill) {
		smtp_header_fill_finish(&c->fill->f, fill_emit, c);
		bool failed = c->fill_failed;
		free(c->fill);
		c->fill = NULL;
		if (failed) {
			/* The store is gone: its loss answers 451 as for any write. */
			store_txn_abort(c->txn);
			c->txn = NULL;
			commit_done(c, STORE_TEMPFAIL);
			return;
		}
	}
	store_txn_commit(c->txn, commit_done, c);
}

static void op_message_abort(void *ctx, struct smtp_transaction *t)
{
	struct conn *c = ctx;
	if (c->txn)
		store_txn_abort(c->txn);
	c->txn = NULL;
	free(c->fill);
	c->fill = NULL;
}

static void op_starttls(void *ctx)
{
	struct conn *c = ctx;
	c->tls_pending = true;
}

static void op_refused(void *ctx, const char *what, const struct smtp_reply *r)
{
	struct conn *c = ctx;
	char text[300];
	log_event(LOG_INFO, "refused", "session=%s qid=%s what=%s code=%d status=%s text=%s", c->id,
	          c->s.txn && c->s.txn->qid[0] ? c->s.txn->qid : "-", what, r->code,
	          r->enhanced ? r->enhanced : "-", log_quote(text, sizeof(text), r->text, strlen(r->text)));
}

/* Each recipient with the reply it got, accepted or not (Postfix's to=). */
static void op_recipient(void *ctx, const char *address, const struct smtp_reply *r)
{
	struct conn *c = ctx;
	char to[SMTP_PATH_MAX * 2], text[300];
	if (r->code < 400)
		log_event(LOG_INFO, "rcpt", "session=%s qid=%s to=%s code=%d status=%s", c->id,
		          c->s.txn ? c->s.txn->qid : "-",
		          log_quote(to, sizeof(to), address, strlen(address)), r->code,
		          r->enhanced ? r->enhanced : "-");
	else
		log_event(LOG_INFO, "rcpt", "session=%s qid=%s to=%s code=%d status=%s text=%s",
		          c->id, c->s.txn ? c->s.txn->qid : "-",
		          log_quote(to, sizeof(to), address, strlen(address)), r->code,
		          r->enhanced ? r->enhanced : "-",
		          log_quote(text, sizeof(text), r->text, strlen(r->text)));
}

/* RFC 2920 §3.1: asked at DATA, which ends a pipelined group.  Anything
 * read after the DATA line, or waiting in the socket, was sent before the
 * 354.  Inside TLS only the decrypted input is looked at: the socket holds
 * records, not commands.  One recv per DATA, none per byte. */
static bool op_input_pending(void *ctx)
{
	struct conn *c = ctx;
	if (stream_input_length(&c->st) > c->line_len)
		return true;
	if (c->tls_active)
		return false;
	char probe;
	return recv(c->st.fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void auth_answer(void *arg, enum auth_answer a, const char *senders)
{
	struct conn *c = arg;
	c->auth_query = NULL;
	char user[4 * SMTP_AUTH_NAME_MAX + 8] = "\"\"";
	if (c->s.sasl)
		smtp_sasl_server_user_log(c->s.sasl, user, sizeof(user));
	static const char *const names[] = { "ok", "failed", "tempfail" };
	log_event(a == AUTH_ANSWER_OK ? LOG_INFO : LOG_WARN, "auth",
	          "session=%s ip=%s user=\"%s\" result=%s failures=%u", c->id, c->ip, user,
	          names[a <= AUTH_ANSWER_TEMPFAIL ? a : AUTH_ANSWER_TEMPFAIL],
	          c->s.auth_failures + (a == AUTH_ANSWER_FAIL));
	if (a == AUTH_ANSWER_OK && senders && senders[0]) {
		free(c->auth_senders);
		c->auth_senders = strdup(senders);
		if (!c->auth_senders)
			a = AUTH_ANSWER_TEMPFAIL; /* never a login without its limits */
	}
	smtp_session_auth_done(&c->s, a == AUTH_ANSWER_OK     ? SMTP_AUTH_OK
	                              : a == AUTH_ANSWER_FAIL ? SMTP_AUTH_FAIL
	                                                      : SMTP_AUTH_TEMPFAIL);
	if (c->s.mode == SMTP_INPUT_LINE && !c->closing) {
		stream_reading(&c->st, true);
		conn_process(c);
	} else if (c->s.mode == SMTP_INPUT_CLOSE) {
		conn_process(c);
	}
}

/* The password goes to the auth process, the only one that reads the
 * users file; nothing is read from the client until it answers. */
static void op_auth(void *ctx, const char *user, const char *password)
{
	struct conn *c = ctx;
	c->auth_query = c->d->auth ? auth_client_check(c->d->auth, (const struct sockaddr *)&c->peer,
	                                               user, password, auth_answer, c)
	                           : NULL;
	if (c->auth_query) {
		stream_reading(&c->st, false);
		return;
	}
	/* The auth process is gone: 454, and the session reads on (the
	 * session takes a synchronous answer). */
	log_event(LOG_WARN, "auth", "session=%s ip=%s result=tempfail reason=\"no auth process\"",
	          c->id, c->ip);
	smtp_session_auth_done(&c->s, SMTP_AUTH_TEMPFAIL);
}

static const struct smtp_session_ops conn_ops = {
	.auth = op_auth,
	.send = op_send,
	.mail = op_mail,
	.rcpt = op_rcpt,
	.message_begin = op_message_begin,
	.message_write = op_message_write,
	.message_commit = op_message_commit,
	.message_abort = op_message_abort,
	.starttls = op_starttls,
	.refused = op_refused,
	.recipient = op_recipient,
	.input_pending = op_input_pending,
};

/* ---- timeouts ----------------------------------------------------------- */

static bool overloaded(const struct smtpd *d)
{
	return d->nconn * 100 >= (unsigned long)d->cfg->max_connections * SMTP_OVERLOAD_PERCENT;
}

int64_t conn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long a phase may last in all (ms): its grace, plus one second per
 * min-data-rate octets received since it began at since_bytes (Postfix's
 * smtpd_min_data_rate).  A client that trickles a byte per read gets its
 * grace and hardly more, however often it reads. */
static int64_t conn_allowed_ms(const struct conn *c, unsigned grace_secs, uint64_t since_bytes)
{
	uint64_t credit = (c->rate->bytes_in - since_bytes) * 1000 / c->d->cfg->min_data_rate;
	if (credit > (uint64_t)INT64_MAX / 2)
		credit = (uint64_t)INT64_MAX / 2;
	return (int64_t)grace_secs * 1000 + (int64_t)credit;
}

/* Reading paused by us, not by the client: the store is behind, the reply
 * to the final dot is pending, or Received: waits for the client's name. */
static bool conn_paused_by_us(const struct conn *c)
{
	return c->store_blocked || c->rdns_wait || c->s.mode == SMTP_INPUT_WAIT;
}

/* RFC 5321 §4.5.3.2: the server may close after a timeout; 421 tells the
 * client why. */
static void conn_timed_out(struct conn *c, const char *why)
{
	if (c->closing) {
		conn_free(c);
		return;
	}
	smtp_session_shutdown(&c->s, why);
	if (c->s.mode != SMTP_INPUT_CLOSE) {
		/* Waiting for the store: keep the session until it answers. */
		return;
	}
	c->closing = true;
	stream_reading(&c->st, false);
	if (stream_output_length(&c->st) == 0)
		conn_free(c);
}

static void conn_phase_start(struct conn *c, int64_t now);

/* The whole-phase deadline of a DATA stream or BDAT chunk: one timer armed
 * when the phase starts, looked at only when it fires (never per read).
 * If the client earned more time by what it sent, the timer is re-armed
 * for the rest; a client sending at least min-data-rate needs O(log)
 * re-arms for a whole message. */
static void phase_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_rate *r = c->rate;
	int64_t now = conn_now_ms();
	if (conn_paused_by_us(c)) {
		/* Our wait is not the client's: its phase starts again. */
		conn_phase_start(c, now);
		return;
	}
	int64_t left = r->phase_start_ms + conn_allowed_ms(c, c->d->cfg->timeout_data, r->phase_bytes) -
	               now;
	if (left > 0) {
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
		evtimer_add(r->timer, &tv);
		return;
	}
	r->in_phase = false;
	log_event(LOG_INFO, "timeout", "session=%s state=data reason=data-rate octets=%llu ms=%lld",
	          c->id, (unsigned long long)(r->bytes_in - r->phase_bytes),
	          (long long)(now - r->phase_start_ms));
	conn_timed_out(c, "Timeout: data arriving too slowly, closing connection");
}

static void conn_phase_start(struct conn *c, int64_t now)
{
	struct conn_rate *r = c->rate;
	if (!r->timer) {
		r->timer = evtimer_new(c->d->base, phase_timer_cb, c);
		if (!r->timer)
			return; /* the per-read timeout still applies */
	}
	r->in_phase = true;
	r->phase_start_ms = now;
	r->phase_bytes = r->bytes_in;
	struct timeval tv = { c->d->cfg->timeout_data, 0 };
	evtimer_add(r->timer, &tv);
}

/* Content phases (DATA, a BDAT chunk) have a deadline; others only the
 * per-read timeout.  Without a rate (its allocation failed) only the
 * per-read timeout applies. */
static void conn_phase_update(struct conn *c)
{
	struct conn_rate *r = c->rate;
	if (!r)
		return;
	if (c->s.mode == SMTP_INPUT_DATA) {
		if (!r->in_phase)
			conn_phase_start(c, conn_now_ms());
	} else if (r->in_phase) {
		evtimer_del(r->timer);
		r->in_phase = false;
	}
}

/* MAIL started a transaction: its rate is counted from here. */
static void conn_rate_transaction(struct conn *c)
{
	if (!c->rate)
		c->rate = calloc(1, sizeof(*c->rate));
	if (!c->rate)
		return; /* no deadline and no eviction for slowness: still served */
	c->rate->txn_start_ms = conn_now_ms();
	c->rate->txn_bytes = c->rate->bytes_in;
}

bool conn_evict_if_slow(struct conn *c, int64_t now)
{
	if (!c->rate || !smtp_session_in_transaction(&c->s) || c->closing || c->tls_pending ||
	    conn_paused_by_us(c))
		return false;
	/* Under overload a transaction gets the overload timeout as grace,
	 * plus its data-rate credit since MAIL. */
	int64_t took = now - c->rate->txn_start_ms;
	if (took <= conn_allowed_ms(c, SMTP_TIMEOUT_OVERLOAD, c->rate->txn_bytes))
		return false;
	uint64_t octets = c->rate->bytes_in - c->rate->txn_bytes;
	if (!conn_shutdown(c, "Server busy, closing slow transaction", true))
		return false;
	log_event(LOG_INFO, "evicted", "session=%s reason=slow-transaction octets=%llu ms=%lld",
	          c->id, (unsigned long long)octets, (long long)took);
	return true;
}

/* RFC 5321 §4.5.3.2: one read timeout per phase; shorter under overload
 * (Postfix's stress mode) for sessions that have not started a transaction. */
static void conn_set_timeouts(struct conn *c)
{
	const struct serve_config *cfg = c->d->cfg;
	unsigned secs = c->s.mode == SMTP_INPUT_DATA ? cfg->timeout_data : cfg->timeout_command;
	if (overloaded(c->d) && !smtp_session_in_transaction(&c->s) && secs > SMTP_TIMEOUT_OVERLOAD)
		secs = SMTP_TIMEOUT_OVERLOAD;
	stream_set_timeouts(&c->st, secs, cfg->timeout_command);
	conn_phase_update(c);
}

/* ---- input framing ------------------------------------------------------ */

/* DATA or BDAT: the commands after which Received: is built. */
static bool starts_content(const char *line, size_t len)
{
	return len >= 4 && (!strncasecmp(line, "DATA", 4) || !strncasecmp(line, "BDAT", 4)) &&
	       (len == 4 || line[4] == ' ');
}

/* Feeds command lines; returns false when no complete line is buffered. */
static bool conn_feed_line(struct conn *c, struct evbuffer *in)
{
	size_t eol_len = 0;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (c->discarding) {
		/* An overlong line is dropped as it arrives, never buffered. */
		if (eol.pos < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return false;
		}
		evbuffer_drain(in, (size_t)eol.pos + eol_len);
		c->discarding = false;
		smtp_session_line_too_long(&c->s);
		return true;
	}
	/* Longer while an AUTH exchange may run (RFC 4954 §4: 12288). */
	size_t max = smtp_session_line_max(&c->s);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) > max) {
			c->discarding = true;
			evbuffer_drain(in, evbuffer_get_length(in));
		}
		return false;
	}
	if ((size_t)eol.pos > max) {
		evbuffer_drain(in, (size_t)eol.pos + eol_len);
		smtp_session_line_too_long(&c->s);
		return true;
	}
	size_t total = (size_t)eol.pos + eol_len;
	const char *line = (const char *)evbuffer_pullup(in, (ssize_t)total);
	if (c->rdns_query && starts_content(line, (size_t)eol.pos)) {
		/* Received: is written when content starts: give the client's
		 * name the chance to be in it.  The resolver's own deadline
		 * bounds the wait; the greeting never waited. */
		c->rdns_wait = true;
		stream_reading(&c->st, false);
		return false;
	}
	bool had_txn = smtp_session_in_transaction(&c->s);
	/* AUTH lines carry a password (in base64): wiped before the buffer
	 * memory is given back. */
	bool secret = c->s.sasl || (eol.pos >= 4 && !strncasecmp(line, "AUTH", 4));
	c->line_len = (uint16_t)total; /* at most SMTP_AUTH_LINE_MAX + 2 */
	smtp_session_line(&c->s, line, (size_t)eol.pos);
	if (secret)
		explicit_bzero((void *)line, total);
	evbuffer_drain(in, total);
	if (!had_txn && smtp_session_in_transaction(&c->s))
		conn_rate_transaction(c);
	else if (c->rate)
		c->rate->bytes_in += total;
	return true;
}

/* Feeds raw content from the first buffer segment; false if none. */
static bool conn_feed_data(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	if (store_client_pending(c->d->store) > STORE_CLIENT_HIGH_WATER) {
		/* The store is behind (syncing): content stays in the kernel's
		 * socket buffers instead of our memory until it catches up. */
		c->store_blocked = true;
		c->d->store_blocked++;
		stream_reading(&c->st, false);
		return false;
	}
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
		/* A zero-length BDAT chunk needs no input at all. */
		return false;
	}
	size_t used = smtp_session_data(&c->s, v.iov_base, v.iov_len);
	evbuffer_drain(in, used);
	if (c->rate)
		c->rate->bytes_in += used;
	return used > 0;
}

static void conn_start_tls(struct conn *c)
{
	struct smtpd *d = c->d;
	SSL *ssl = SSL_new(d->tls);
	if (!ssl) {
		log_event(LOG_WARN, "tls_failed", "session=%s reason=SSL_new", c->id);
		conn_close_now(c);
		return;
	}
	stream_set_timeouts(&c->st, d->cfg->timeout_command, d->cfg->timeout_command);
	if (stream_start_tls(&c->st, d->base, ssl) != 0) {
		conn_free(c);
		return;
	}
	c->tls_pending = false;
	c->tls_active = true;
}

/* Runs the session over whatever input is buffered, as far as it goes. */
static void conn_process(struct conn *c)
{
	if (c->in_process)
		return;
	c->in_process = true;
	/* Nothing reads while the session runs: the input stays this one. */
	struct evbuffer *in = stream_input(&c->st);
	enum smtp_input_mode before = c->s.mode;
	for (;;) {
		if (stream_output_length(&c->st) > OUTPUT_HIGH_WATER) {
			c->throttled = true;
			stream_reading(&c->st, false);
			break;
		}
		if (!in)
			break;
		bool progress = false;
		if (c->s.mode == SMTP_INPUT_LINE)
			progress = conn_feed_line(c, in);
		else if (c->s.mode == SMTP_INPUT_DATA)
			progress = conn_feed_data(c, in);
		if (!progress)
			break;
	}
	c->in_process = false;
	if (c->freed_later) {
		conn_free(c);
		return;
	}
	if (c->s.mode == SMTP_INPUT_CLOSE || c->closing) {
		c->closing = true;
		stream_reading(&c->st, false);
		if (stream_output_length(&c->st) == 0)
			conn_free(c);
		return;
	}
	if (c->tls_pending) {
		/* CVE-2011-0411: anything the client sent after STARTTLS, in
		 * plaintext, is thrown away, never run inside TLS. */
		if (in)
			evbuffer_drain(in, evbuffer_get_length(in));
		stream_reading(&c->st, false);
		if (stream_output_length(&c->st) == 0)
			conn_start_tls(c);
		return;
	}
	stream_trim(&c->st);    /* an idle session holds no input buffer */
	if (c->s.mode != before)
		conn_set_timeouts(c);
}

/* ---- plaintext replies (op_send) ---------------------------------------- */

/* Writes what c's output holds (stream_flush): all written, conn_write_cb
 * runs the drain's actions (close, STARTTLS, unthrottle). */
static void conn_flush(struct conn *c)
{
	/* Queued before STARTTLS replaced its plaintext: the OpenSSL
	 * bufferevent writes for itself. */
	if (c->tls_active)
		return;
	stream_flush(&c->st);   /* may free c */
}

void conn_flush_all(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *d = arg;
	while (d->flush_head) {
		struct conn *c = d->flush_head;
		d->flush_head = c->flush_next;
		c->flush_queued = false;
		conn_flush(c);          /* may free c */
	}
}

/* ---- libevent callbacks ------------------------------------------------- */

static void conn_read_cb(void *arg)
{
	struct conn *c = arg;
	c->active = true;
	conn_process(c);
}

static void conn_write_cb(void *arg)
{
	struct conn *c = arg;
	if (stream_output_length(&c->st) != 0)
		return;
	if (c->closing) {
		conn_free(c);
		return;
	}
	if (c->tls_pending) {
		conn_start_tls(c);
		return;
	}
	if (c->throttled) {
		c->throttled = false;
		if (c->s.mode == SMTP_INPUT_LINE || c->s.mode == SMTP_INPUT_DATA) {
			stream_reading(&c->st, true);
			conn_process(c);
		}
	}
}

static void conn_event_cb(void *arg, short what)
{
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake finished: after STARTTLS, or at accept on
		 * a --submissions listener. */
		char desc[128];
		SSL *ssl = stream_ssl(&c->st);
		tls_describe(ssl, desc, sizeof(desc));
		c->tls_desc = strdup(desc);
		log_event(LOG_INFO, "tls", "session=%s version=%s cipher=%s", c->id,
		          SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		smtp_session_tls_started(&c->s);
		if (c->implicit_tls) {
			smtp_session_greet(&c->s);
			stream_reading(&c->st, true);
		}
		conn_set_timeouts(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_event(LOG_INFO, "timeout", "session=%s state=%s", c->id,
		          c->s.mode == SMTP_INPUT_DATA ? "data" : "command");
		conn_timed_out(c, "Timeout, closing connection");
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if ((what & BEV_EVENT_ERROR) && c->tls_active && !c->tls_desc) {
			unsigned long e = stream_tls_error(&c->st);
			char reason[256] = "handshake failed";
			if (e)
				ERR_error_string_n(e, reason, sizeof(reason));
			char q[300];
			log_event(LOG_INFO, "tls_failed", "session=%s reason=%s", c->id,
			          log_quote(q, sizeof(q), reason, strlen(reason)));
		}
		if (smtp_session_in_content(&c->s) && c->s.mode != SMTP_INPUT_WAIT)
			log_event(LOG_INFO, "lost", "session=%s qid=%s state=content", c->id,
			          c->s.txn ? c->s.txn->qid : "-");
		conn_free(c);
	}
}

/* ---- accept, close ------------------------------------------------------ */

static void conn_greet(struct conn *c)
{
	/* Postscreen's pregreet test: a client that talks before the greeting
	 * is not an SMTP client that follows RFC 5321 §4.3.1 (usually a
	 * spambot); refuse it and store nothing from it. */
	char probe;
	ssize_t n = recv(c->st.fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0) {
		log_event(LOG_INFO, "pregreet", "session=%s ip=%s", c->id, c->ip);
		const char msg[] = "554 5.5.1 Protocol error: data sent before greeting\r\n";
		c->closing = true;
		op_send(c, msg, sizeof(msg) - 1);   /* closed once written */
		return;
	}
	smtp_session_greet(&c->s);
	conn_set_timeouts(c);
	/* Writing is conn_flush_all's (op_send). */
	stream_reading(&c->st, true);
}

static void greet_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	event_free(c->greet_timer);
	c->greet_timer = NULL;
	conn_greet(c);
}

static void rdns_done_cb(void *arg, enum dns_reverse_status st, const char *name)
{
	struct conn *c = arg;
	c->rdns_query = NULL;
	c->rdns_done = true;
	if (st == DNS_REVERSE_OK)
		c->rdns = strdup(name);
	log_event(LOG_INFO, "rdns", "session=%s ip=%s status=%s name=%s", c->id, c->ip,
	          dns_reverse_status_name(st), c->rdns ? c->rdns : "-");
	if (c->rdns_wait) {
		c->rdns_wait = false;
		if (!c->closing) {
			stream_reading(&c->st, true);
			conn_process(c);
		}
	}
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* The client's name for Received:, looked up while the session goes on
 * (never delaying the greeting).  With the system's resolver, loopback
 * clients are not looked up: their names are local, and the query would
 * only leave the machine. */
static void conn_start_rdns(struct conn *c)
{
	struct dns_resolver *dns = c->d->dns;
	if (!dns || (!dns_resolver_explicit(dns) && is_loopback((const struct sockaddr *)&c->peer)))
		return;
	struct dns_reverse *q = dns_reverse_lookup(dns, (const struct sockaddr *)&c->peer,
	                                           rdns_done_cb, c);
	if (!c->rdns_done)
		c->rdns_query = q;
}

static void conn_link(struct smtpd *d, struct conn *c)
{
	c->prev = d->newest;
	if (d->newest)
		d->newest->next = c;
	else
		d->oldest = c;
	d->newest = c;
	d->nconn++;
}

static void conn_unlink(struct smtpd *d, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		d->oldest = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		d->newest = c->prev;
	d->nconn--;
}

void conn_accept(const struct smtpd_listener *l, int fd, const struct sockaddr *peer,
                 socklen_t peerlen)
{
	struct smtpd *d = l->d;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->d = d;
	c->listener = l;
	memcpy(&c->peer, peer, peerlen < sizeof(c->peer) ? peerlen : sizeof(c->peer));
	socklen_t len = sizeof(c->local);
	getsockname(fd, (struct sockaddr *)&c->local, &len);
	if (peer->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->ip, sizeof(c->ip));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->ip, sizeof(c->ip));
	id_new(c->id);
	c->implicit_tls = l->addr->kind == LISTEN_SUBMISSIONS && d->tls;
	SSL *ssl = c->implicit_tls ? SSL_new(d->tls) : NULL;
	if (c->implicit_tls && !ssl) {
		close(fd);
		free(c);
		return;
	}
	if ((ssl ? stream_init_tls(&c->st, d->base, fd, ssl, &conn_stream_cbs, c)
	         : stream_init_plain(&c->st, d->base, fd, &conn_stream_cbs, c)) != 0) {
		close(fd);
		free(c);
		return;
	}
	c->tls_active = c->implicit_tls;
	ipcount_add(&d->per_ip, (const struct sockaddr *)&c->peer);
	conn_link(d, c);
	smtp_session_init(&c->s, &d->session_cfg, &conn_ops, c, d->tls != NULL && !c->implicit_tls);
	c->trusted = networks_match(&d->trusted, (const struct sockaddr *)&c->peer);
	c->s.auth_offer = l->auth;
	/* RFC 6409 §4.3: submission wants a login; a trusted network's
	 * devices (cameras, printers) may send without one. */
	c->s.auth_required = l->addr->kind != LISTEN_MX && !c->trusted;
	log_event(LOG_INFO, "connect", "session=%s ip=%s port=%u conns=%u%s%s", c->id, c->ip,
	          ntohs(peer->sa_family == AF_INET ? ((const struct sockaddr_in *)peer)->sin_port
	                                           : ((const struct sockaddr_in6 *)peer)->sin6_port),
	          d->nconn, l->addr->kind == LISTEN_MX ? "" : " listener=",
	          l->addr->kind == LISTEN_MX ? "" : config_listen_key(l->addr->kind));
	if (c->trusted)
		log_event(LOG_INFO, "trusted", "session=%s ip=%s relay=yes", c->id, c->ip);
	conn_start_rdns(c);
	if (c->implicit_tls) {
		/* RFC 8314 §3.3: the handshake first; the greeting after it
		 * (conn_event_cb).  The client speaks first here, so there is
		 * no pregreet test. */
		stream_set_timeouts(&c->st, d->cfg->timeout_command, d->cfg->timeout_command);
		return;
	}
	if (d->cfg->greet_pause_ms) {
		c->greet_timer = evtimer_new(d->base, greet_timer_cb, c);
		struct timeval tv = { d->cfg->greet_pause_ms / 1000,
		                      (suseconds_t)(d->cfg->greet_pause_ms % 1000) * 1000 };
		if (c->greet_timer && evtimer_add(c->greet_timer, &tv) == 0)
			return;
	}
	conn_greet(c);
}

static void conn_free(struct conn *c)
{
	if (c->in_process) {
		c->freed_later = true;
		return;
	}
	struct smtpd *d = c->d;
	if (c->flush_queued) {
		struct conn **pp = &d->flush_head;
		while (*pp && *pp != c)
			pp = &(*pp)->flush_next;
		if (*pp)
			*pp = c->flush_next;
		c->flush_queued = false;
	}
	if (c->txn) {
		/* Content begun but not committed: the store drops it.  A message
		 * already committed is finished by the store; we just stop
		 * listening for its answer. */
		if (c->s.mode == SMTP_INPUT_WAIT && c->s.txn)
			store_txn_forget(c->txn);
		else
			store_txn_abort(c->txn);
		c->txn = NULL;
	}
	if (c->rcpt_query)
		store_mailbox_cancel(c->rcpt_query);
	free(c->rcpt_mailbox);
	if (c->auth_query)
		auth_query_cancel(c->auth_query);
	free(c->auth_senders);
	free(c->fill);
	if (c->s.txn)
		c->s.txn->begun = false;
	smtp_session_free(&c->s);
	log_event(LOG_INFO, "disconnect", "session=%s messages=%u errors=%u", c->id, c->s.messages,
	          c->s.errors);
	if (c->greet_timer)
		event_free(c->greet_timer);
	if (c->rate) {
		if (c->rate->timer)
			event_free(c->rate->timer);
		free(c->rate);
	}
	if (c->rdns_query)
		dns_reverse_cancel(c->rdns_query);
	free(c->rdns);
	stream_free(&c->st);
	if (c->store_blocked)
		d->store_blocked--;
	ipcount_remove(&d->per_ip, (const struct sockaddr *)&c->peer);
	conn_unlink(d, c);
	free(c->tls_desc);
	free(c);
	if (d->listeners_paused && !d->stopping) {
		d->listeners_paused = false;
		for (size_t i = 0; i < d->nlisteners; i++)
			evconnlistener_enable(d->listeners[i]);
	}
	if (d->stopping && d->nconn == 0)
		event_base_loopexit(d->base, NULL);
}

void conn_close_now(struct conn *c)
{
	conn_free(c);
}

bool conn_is_idle(const struct conn *c)
{
	return !smtp_session_in_transaction(&c->s) && !c->tls_pending && !c->closing;
}

bool conn_take_activity(struct conn *c)
{
	bool was = c->active;
	c->active = false;
	return was;
}

bool conn_shutdown(struct conn *c, const char *why, bool force)
{
	if (c->closing)
		return false;
	if (!force && !conn_is_idle(c))
		return false;
	if (c->greet_timer) {
		/* Not greeted yet: 421 may be the greeting (RFC 5321 §3.1). */
		event_free(c->greet_timer);
		c->greet_timer = NULL;
	}
	if (c->s.mode == SMTP_INPUT_WAIT && smtp_session_in_content(&c->s))
		return false; /* the store answers first; closed after */
	if (smtp_session_in_content(&c->s)) {
		/* Mid-DATA: nothing of this message is stored. */
		if (c->txn)
			store_txn_abort(c->txn);
		c->txn = NULL;
		if (c->s.txn)
			c->s.txn->begun = false;
	}
	smtp_session_shutdown(&c->s, why);
	c->closing = true;
	stream_reading(&c->st, false);
	if (!c->in_process && stream_output_length(&c->st) == 0)
		conn_free(c);
	return true;
}

struct conn *conn_next(const struct conn *c)
{
	return c->next;
}

void conn_store_drained(struct smtpd *d)
{
	if (d->store_blocked == 0)
		return;
	struct conn *c = d->oldest;
	while (c && d->store_blocked > 0) {
		struct conn *next = c->next;
		if (c->store_blocked) {
			c->store_blocked = false;
			d->store_blocked--;
			if (!c->closing && c->s.mode == SMTP_INPUT_DATA) {
				stream_reading(&c->st, true);
				conn_process(c);
			}
		}
		c = next;
	}
}
