#include "smtp/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/sasl.h"
#include "util/buf.h"

/* Protocol states; the transaction's own progress is in s->txn. */
enum {
	ST_START,     /* before HELO/EHLO */
	ST_READY,     /* after HELO/EHLO, no transaction */
	ST_MAIL,      /* MAIL accepted, RCPTs may follow */
	ST_DATA,      /* in DATA content */
	ST_BDAT,      /* in a BDAT chunk */
	ST_COMMIT,    /* waiting for the store's answer */
	ST_RCPT_WAIT, /* waiting for ops->rcpt's asynchronous answer */
	ST_TLS,       /* STARTTLS accepted, handshake pending */
	ST_CLOSED,    /* 221 or 421 sent */
	ST_DISCARD,   /* reading a refused BDAT chunk */
	ST_AUTH,      /* an AUTH exchange reads the client's next response */
	ST_AUTH_WAIT, /* credentials handed to ops->auth, waiting for its answer */
};

/* Why a BDAT chunk is being discarded. */
enum { DISCARD_NO_MAIL = 1, DISCARD_NO_MAIL_RCPT, DISCARD_NO_RCPT, DISCARD_FAILED };

/* Largest decode step: content is decoded through a stack buffer. */
#define DECODE_CHUNK 16384

static void session_reply(struct smtp_session *s, const struct smtp_reply *r)
{
	char line[SMTP_REPLY_LINE_MAX + 64];
	struct buf b;
	/* A reply never exceeds one line of text; a fixed stack buffer keeps
	 * replies off the heap. */
	b.data = line;
	b.len = 0;
	b.cap = sizeof(line);
	b.max = sizeof(line) - 1;
	if (smtp_reply_write(&b, r) == 0)
		s->ops->send(s->ctx, b.data, b.len);
}

static void reply(struct smtp_session *s, int code, const char *enh, const char *text)
{
	struct smtp_reply r;
	smtp_reply_set(&r, code, enh, "%s", text);
	session_reply(s, &r);
}

static void refuse(struct smtp_session *s, const char *what, const struct smtp_reply *r)
{
	if (s->ops->refused)
		s->ops->refused(s->ctx, what, r);
	session_reply(s, r);
}

static void refuse_text(struct smtp_session *s, const char *what, int code, const char *enh,
                        const char *text)
{
	struct smtp_reply r;
	smtp_reply_set(&r, code, enh, "%s", text);
	refuse(s, what, &r);
}

static void transaction_free(struct smtp_session *s)
{
	struct smtp_transaction *t = s->txn;
	if (!t)
		return;
	if (t->begun)
		s->ops->message_abort(s->ctx, t);
	for (size_t i = 0; i < t->nrcpts; i++) {
		free(t->rcpts[i].address);
		free(t->rcpts[i].mailbox);
	}
	free(t->rcpts);
	free(t->rcpt_pending);
	free(t->sender);
	free(t);
	s->txn = NULL;
}

/* Ends the transaction after its content was committed or refused: the
 * store owns a committed message, so no abort is sent. */
static void transaction_end(struct smtp_session *s)
{
	if (s->txn)
		s->txn->begun = false;
	transaction_free(s);
	if (s->state != ST_CLOSED)
		s->state = ST_READY;
}

void smtp_session_init(struct smtp_session *s, const struct smtp_session_config *cfg,
                       const struct smtp_session_ops *ops, void *ctx, bool tls_offered)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->ops = ops;
	s->ctx = ctx;
	s->state = ST_START;
	s->mode = SMTP_INPUT_LINE;
	s->tls_offered = tls_offered;
}

void smtp_session_greet(struct smtp_session *s)
{
	struct smtp_reply r;
	/* RFC 5321 §4.2: no enhanced code on the greeting (RFC 2034 §3). */
	smtp_reply_set(&r, 220, NULL, "%s ESMTP rawmail", s->cfg->hostname);
	session_reply(s, &r);
}

/* Ends an AUTH exchange: nothing of it stays in memory. */
static void auth_exchange_free(struct smtp_session *s)
{
	if (!s->sasl)
		return;
	smtp_sasl_server_reset(s->sasl);
	free(s->sasl);
	s->sasl = NULL;
}

static void close_with(struct smtp_session *s, int code, const char *enh, const char *text)
{
	reply(s, code, enh, text);
	transaction_free(s);
	auth_exchange_free(s);
	s->state = ST_CLOSED;
	s->mode = SMTP_INPUT_CLOSE;
}

/* Counts a client error; past the limit the session is closed, as Postfix
 * does with smtpd_hard_error_limit, so a confused or hostile client cannot
 * hold a connection by sending garbage forever. */
static void count_error(struct smtp_session *s)
{
	if (++s->errors >= s->cfg->max_errors && s->state != ST_CLOSED)
		close_with(s, 421, "4.7.0", "Too many errors, closing connection");
}

/* AUTH may start now: offered on this listener, under TLS where it must
 * be, and no login yet (RFC 4954 §4: one successful AUTH per session). */
static bool auth_available(const struct smtp_session *s)
{
	return s->auth_offer != SMTP_AUTH_OFF && !s->auth_user &&
	       (s->tls || s->auth_offer == SMTP_AUTH_ANYTIME);
}

static void do_helo(struct smtp_session *s, const struct smtp_command *c)
{
	/* RFC 5321 §4.1.4: HELO/EHLO resets any transaction in progress. */
	transaction_free(s);
	free(s->helo);
	s->helo = strdup(c->helo);
	if (!s->helo) {
		close_with(s, 421, "4.3.0", "Out of memory, closing connection");
		return;
	}
	s->esmtp = c->verb == SMTP_CMD_EHLO;
	s->state = ST_READY;
	if (!s->esmtp) {
		struct smtp_reply r;
		smtp_reply_set(&r, 250, NULL, "%s", s->cfg->hostname);
		session_reply(s, &r);
		return;
	}
	char size[40];
	snprintf(size, sizeof(size), "SIZE %llu", (unsigned long long)s->cfg->max_message_size);
	const char *lines[10];
	size_t n = 0;
	lines[n++] = s->cfg->hostname;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "ENHANCEDSTATUSCODES";
	if (s->tls_offered && !s->tls)
		lines[n++] = "STARTTLS";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "CHUNKING";
	if (auth_available(s))
		lines[n++] = "AUTH " SMTP_SASL_MECHANISMS;
	char out[512];
	struct buf b = { out, 0, sizeof(out), sizeof(out) - 1 };
	if (smtp_reply_write_lines(&b, 250, NULL, lines, n) == 0)
		s->ops->send(s->ctx, b.data, b.len);
}

static void do_mail(struct smtp_session *s, const struct smtp_command *c)
{
	if (s->state == ST_START) {
		refuse_text(s, "mail", 503, "5.5.1", "Send HELO or EHLO first");
		count_error(s);
		return;
	}
	if (s->txn) {
		refuse_text(s, "mail", 503, "5.5.1", "Nested MAIL command");
		count_error(s);
		return;
	}
	if (s->auth_required && !s->auth_user) {
		/* RFC 6409 §4.3, RFC 4954 §6. */
		refuse_text(s, "mail", 530, "5.7.0", "Authentication required");
		return;
	}
	struct smtp_transaction *t = calloc(1, sizeof(*t));
	if (!t) {
		refuse_text(s, "mail", 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	char sender[SMTP_PATH_MAX + 8];
	if (c->null_sender)
		sender[0] = '\0';
	else if (smtp_address_format(&c->addr, sender, sizeof(sender)) < 0)
		sender[0] = '\0';
	t->sender = strdup(sender);
	t->size = c->has_size ? c->size : 0;
	t->smtputf8 = c->smtputf8;
	t->body = c->body;
	if (!t->sender) {
		free(t);
		refuse_text(s, "mail", 451, "4.3.0", "Out of memory, try again later");
		return;
	}
	struct smtp_reply r;
	s->txn = t;
	if (!s->ops->mail(s->ctx, t, c, &r)) {
		transaction_free(s);
		refuse(s, "mail", &r);
		return;
	}
	s->state = ST_MAIL;
	reply(s, 250, "2.1.0", "Ok");
}

/* The reply to a RCPT whose address is known: logged with the address. */
static void rcpt_reply(struct smtp_session *s, const char *addr, const struct smtp_reply *r)
{
	if (s->ops->recipient)
		s->ops->recipient(s->ctx, addr, r);
	else if (r->code >= 400 && s->ops->refused)
		s->ops->refused(s->ctx, "rcpt", r);
	session_reply(s, r);
}

static void rcpt_answer(struct smtp_session *s, const char *addr, int code, const char *enh,
                        const char *text)
{
	struct smtp_reply r;
	smtp_reply_set(&r, code, enh, "%s", text);
	rcpt_reply(s, addr, &r);
}

/* Records an accepted recipient (address formatted, mailbox malloc'd and
 * taken over; NULL for a recipient relayed through the queue) and
 * answers 250. */
static void rcpt_add(struct smtp_session *s, const char *addr, char *mailbox)
{
	struct smtp_transaction *t = s->txn;
	if (t->nrcpts == t->rcpt_cap) {
		size_t cap = t->rcpt_cap ? t->rcpt_cap * 2 : 4;
		struct smtp_recipient *p = realloc(t->rcpts, cap * sizeof(*p));
		if (!p) {
			free(mailbox);
			rcpt_answer(s, addr, 452, "4.3.0", "Out of memory, try again later");
			return;
		}
		t->rcpts = p;
		t->rcpt_cap = cap;
	}
	char *copy = strdup(addr);
	if (!copy) {
		free(mailbox);
		rcpt_answer(s, addr, 452, "4.3.0", "Out of memory, try again later");
		return;
	}
	bool seen = mailbox == NULL; /* relayed: no mailbox of ours */
	for (size_t i = 0; i < t->nrcpts && !seen; i++)
		seen = t->rcpts[i].mailbox && !strcmp(t->rcpts[i].mailbox, mailbox);
	t->nmailboxes += !seen;
	t->rcpts[t->nrcpts].address = copy;
	t->rcpts[t->nrcpts].mailbox = mailbox;
	t->nrcpts++;
	rcpt_answer(s, addr, 250, "2.1.5", "Ok");
}

static void do_rcpt(struct smtp_session *s, const struct smtp_command *c)
{
	struct smtp_transaction *t = s->txn;
	if (!t || s->state != ST_MAIL) {
		refuse_text(s, "rcpt", 503, "5.5.1", "Need MAIL before RCPT");
		count_error(s);
		return;
	}
	t->rcpt_attempts++;
	if (t->chunking) {
		refuse_text(s, "rcpt", 503, "5.5.1", "RCPT after BDAT");
		count_error(s);
		return;
	}
	char addr[SMTP_PATH_MAX + 8];
	if (smtp_address_format(&c->addr, addr, sizeof(addr)) < 0) {
		refuse_text(s, "rcpt", 501, "5.1.3", "Bad recipient address syntax");
		return;
	}
	if (t->nrcpts >= s->cfg->max_recipients) {
		/* RFC 5321 §4.5.3.1.10: 452 lets the client send the rest later. */
		rcpt_answer(s, addr, 452, "4.5.3", "Too many recipients");
		return;
	}
	if (c->addr.utf8 && !t->smtputf8) {
		/* RFC 6531 §3.5: UTF-8 address without SMTPUTF8 on MAIL. */
		rcpt_answer(s, addr, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8 on MAIL");
		return;
	}
	struct smtp_reply r;
	char *mailbox = NULL;
	switch (s->ops->rcpt(s->ctx, t, &c->addr, &mailbox, &r)) {
	case SMTP_RCPT_ACCEPT:
		rcpt_add(s, addr, mailbox);
		return;
	case SMTP_RCPT_PENDING:
		/* Replies keep their order (RFC 2920 §3.1): nothing more is
		 * read until the answer. */
		s->state = ST_RCPT_WAIT;
		s->mode = SMTP_INPUT_WAIT;
		t->rcpt_pending = strdup(addr);
		if (!t->rcpt_pending) /* the answer is dropped when it comes */
			refuse_text(s, "rcpt", 452, "4.3.0", "Out of memory, try again later");
		return;
	case SMTP_RCPT_REFUSE:
	default:
		free(mailbox);
		rcpt_reply(s, addr, &r);
		return;
	}
}

void smtp_session_rcpt_done(struct smtp_session *s, char *mailbox, const struct smtp_reply *reply)
{
	if (s->state != ST_RCPT_WAIT || !s->txn) {
		free(mailbox);
		return;
	}
	struct smtp_transaction *t = s->txn;
	char *addr = t->rcpt_pending;
	t->rcpt_pending = NULL;
	s->state = ST_MAIL;
	s->mode = SMTP_INPUT_LINE;
	if (!addr)
		free(mailbox); /* refused already: out of memory */
	else if (mailbox)
		rcpt_add(s, addr, mailbox);
	else
		rcpt_reply(s, addr, reply);
	free(addr);
}

/* Opens storage for the content; false after replying with the refusal. */
static bool content_begin(struct smtp_session *s)
{
	struct smtp_reply r;
	if (!s->ops->message_begin(s->ctx, s->txn, &r)) {
		refuse(s, "data", &r);
		return false;
	}
	s->txn->begun = true;
	return true;
}

static void do_data(struct smtp_session *s)
{
	struct smtp_transaction *t = s->txn;
	if (!t || s->state != ST_MAIL) {
		refuse_text(s, "data", 503, "5.5.1", "Need MAIL before DATA");
		count_error(s);
		return;
	}
	if (t->chunking) {
		refuse_text(s, "data", 503, "5.5.1", "DATA after BDAT");
		count_error(s);
		return;
	}
	if (s->ops->input_pending && s->ops->input_pending(s->ctx)) {
		/* RFC 2920 §3.1: DATA ends a pipelined group; the client waits
		 * for the 354 before the content.  Content sent with it is the
		 * shape of SMTP smuggling and of spambots: refuse and close, as
		 * Postfix's smtpd_forbid_unauth_pipelining does. */
		struct smtp_reply r;
		smtp_reply_set(&r, 554, "5.5.0", "Protocol error: content sent before the 354 reply to DATA");
		if (s->ops->refused)
			s->ops->refused(s->ctx, "data", &r);
		session_reply(s, &r);
		transaction_free(s);
		s->state = ST_CLOSED;
		s->mode = SMTP_INPUT_CLOSE;
		return;
	}
	if (t->nrcpts == 0) {
		/* RFC 2920 §3.1: with pipelining, DATA after only failed RCPTs
		 * gets 554 and the client sends no content; DATA with no RCPT
		 * at all is out of order. */
		if (t->rcpt_attempts)
			refuse_text(s, "data", 554, "5.5.1", "No valid recipients");
		else
			refuse_text(s, "data", 503, "5.5.1", "Need RCPT before DATA");
		return;
	}
	if (!content_begin(s))
		return;
	smtp_content_init_data(&t->content, s->cfg->bare_policy);
	s->state = ST_DATA;
	s->mode = SMTP_INPUT_DATA;
	reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* The content has ended (DATA's final dot, or BDAT LAST): refuse it or
 * hand it to the store. */
static void content_end(struct smtp_session *s)
{
	struct smtp_transaction *t = s->txn;
	if (t->too_big) {
		refuse_text(s, "data", 552, "5.3.4", "Message size exceeds fixed maximum message size");
		transaction_free(s);
		s->state = ST_READY;
		s->mode = SMTP_INPUT_LINE;
		return;
	}
	if (t->failed) {
		refuse_text(s, "data", 451, "4.3.0", "Local error in processing, try again later");
		transaction_free(s);
		s->state = ST_READY;
		s->mode = SMTP_INPUT_LINE;
		return;
	}
	if (t->content.nul_seen) {
		/* RFC 5322 §2.3 and RFC 6152 §3: NUL is not in message text,
		 * 8BITMIME included (only BINARYMIME, not offered, allows it). */
		refuse_text(s, "data", 554, "5.6.0", "Message refused: NUL octet in message");
		transaction_free(s);
		s->state = ST_READY;
		s->mode = SMTP_INPUT_LINE;
		return;
	}
	if (s->cfg->bare_policy == SMTP_BARE_REJECT && t->content.bare_count) {
		refuse_text(s, "data", 550, "5.6.0",
		            "Message refused: bare CR or LF in message (SMTP smuggling protection)");
		transaction_free(s);
		s->state = ST_READY;
		s->mode = SMTP_INPUT_LINE;
		return;
	}
	s->state = ST_COMMIT;
	s->mode = SMTP_INPUT_WAIT;
	s->ops->message_commit(s->ctx, t);
}

/* Passes decoded content on, unless the message already went over the
 * size limit, in which case the rest is read and dropped (RFC 1870 §6.3:
 * the server keeps reading so the client sees the 552). */
static void content_store(struct smtp_session *s, const char *data, size_t len)
{
	struct smtp_transaction *t = s->txn;
	if (t->too_big || t->failed || len == 0)
		return;
	if (t->content.stored_size > s->cfg->max_message_size) {
		t->too_big = true;
		if (t->begun)
			s->ops->message_abort(s->ctx, t);
		t->begun = false;
		return;
	}
	if (!s->ops->message_write(s->ctx, t, data, len)) {
		t->failed = true;
		if (t->begun)
			s->ops->message_abort(s->ctx, t);
		t->begun = false;
	}
}

static void do_bdat(struct smtp_session *s, const struct smtp_command *c)
{
	struct smtp_transaction *t = s->txn;
	int reason = 0;
	if (!t || s->state != ST_MAIL)
		reason = DISCARD_NO_MAIL;
	else if (t->nrcpts == 0)
		reason = t->rcpt_attempts ? DISCARD_NO_RCPT : DISCARD_NO_MAIL_RCPT;
	else if (t->failed)
		reason = DISCARD_FAILED;
	if (reason) {
		/* RFC 3030 §2: the chunk's octets follow the command whatever the
		 * answer, so they are read and dropped before replying. */
		s->discard_left = c->chunk_size;
		s->discard_reason = (unsigned char)reason;
		s->discard_state = (unsigned char)s->state;
		s->state = ST_DISCARD;
		s->mode = SMTP_INPUT_DATA;
		if (c->chunk_size == 0)
			smtp_session_data(s, "", 0);
		return;
	}
	if (!t->chunking) {
		if (!content_begin(s))
			return;
		t->chunking = true;
		smtp_content_init_bdat(&t->content, s->cfg->bare_policy);
	}
	t->chunk_left = c->chunk_size;
	t->chunk_size = c->chunk_size;
	t->chunk_last = c->last;
	s->state = ST_BDAT;
	s->mode = SMTP_INPUT_DATA;
	if (c->chunk_size == 0)
		smtp_session_data(s, "", 0);
}

/* A refused BDAT chunk has been read and dropped: now the refusal. */
static void bdat_discard_done(struct smtp_session *s)
{
	static const char *const why[] = {
		[DISCARD_NO_MAIL] = "Need MAIL before BDAT",
		[DISCARD_NO_MAIL_RCPT] = "Need RCPT before BDAT",
		[DISCARD_NO_RCPT] = "No valid recipients",
		[DISCARD_FAILED] = "Transaction failed, send RSET",
	};
	s->state = s->discard_state;
	s->mode = SMTP_INPUT_LINE;
	if (s->discard_reason == DISCARD_NO_RCPT)
		refuse_text(s, "bdat", 554, "5.5.1", why[s->discard_reason]);
	else
		refuse_text(s, "bdat", 503, "5.5.1", why[s->discard_reason]);
	count_error(s);
}

/* A BDAT chunk has been read completely. */
static void bdat_chunk_done(struct smtp_session *s)
{
	struct smtp_transaction *t = s->txn;
	char out[2];
	size_t n;
	if (t->chunk_last) {
		n = smtp_content_finish(&t->content, out);
		content_store(s, out, n);
		content_end(s);
		return;
	}
	s->state = ST_MAIL;
	s->mode = SMTP_INPUT_LINE;
	if (t->too_big || t->failed) {
		/* RFC 3030 §4: after a 4xx or 5xx the client sends no more
		 * chunks; any that come anyway are read and refused. */
		if (t->too_big)
			refuse_text(s, "bdat", 552, "5.3.4",
			            "Message size exceeds fixed maximum message size");
		else
			refuse_text(s, "bdat", 451, "4.3.0", "Local error in processing, try again later");
		t->failed = true;
		return;
	}
	char text[64];
	/* RFC 3030 §4.2: the octets of this chunk, as sent. */
	snprintf(text, sizeof(text), "%llu octets received", (unsigned long long)t->chunk_size);
	reply(s, 250, "2.0.0", text);
}

size_t smtp_session_data(struct smtp_session *s, const char *data, size_t len)
{
	char out[DECODE_CHUNK];
	size_t used = 0;
	struct smtp_transaction *t = s->txn;
	if (s->state == ST_DATA) {
		while (used < len && !t->content.done) {
			size_t step = len - used < sizeof(out) ? len - used : sizeof(out);
			size_t outlen = 0;
			size_t n = smtp_content_decode(&t->content, data + used, step, out, &outlen);
			used += n;
			content_store(s, out, outlen);
			if (n == 0)
				break;
		}
		if (t->content.done)
			content_end(s);
		return used;
	}
	if (s->state == ST_DISCARD) {
		size_t step = len < s->discard_left ? len : (size_t)s->discard_left;
		used = step;
		s->discard_left -= step;
		if (s->discard_left == 0)
			bdat_discard_done(s);
		return used;
	}
	if (s->state == ST_BDAT) {
		while (t->chunk_left > 0 && used < len) {
			size_t step = len - used;
			if (step > sizeof(out))
				step = sizeof(out);
			if (step > t->chunk_left)
				step = (size_t)t->chunk_left;
			size_t outlen = 0;
			smtp_content_decode(&t->content, data + used, step, out, &outlen);
			content_store(s, out, outlen);
			used += step;
			t->chunk_left -= step;
		}
		if (t->chunk_left == 0)
			bdat_chunk_done(s);
		return used;
	}
	return 0;
}

static void do_rset(struct smtp_session *s)
{
	transaction_free(s);
	if (s->state != ST_START)
		s->state = ST_READY;
	reply(s, 250, "2.0.0", "Ok");
}

static void do_starttls(struct smtp_session *s)
{
	if (!s->tls_offered || s->tls) {
		refuse_text(s, "starttls", s->tls ? 503 : 454, s->tls ? "5.5.1" : "4.7.0",
		            s->tls ? "TLS already active" : "TLS not available");
		return;
	}
	if (s->txn) {
		refuse_text(s, "starttls", 503, "5.5.1", "MAIL transaction in progress");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	s->state = ST_TLS;
	s->mode = SMTP_INPUT_WAIT;
	s->ops->starttls(s->ctx);
}

/* Where an AUTH exchange stands after a step of smtp/sasl.c. */
static void auth_step(struct smtp_session *s, enum smtp_sasl_step step)
{
	struct smtp_sasl_server *x = s->sasl;
	switch (step) {
	case SMTP_SASL_CHALLENGE: {
		/* RFC 4954 §4: "334" SP [base64] CRLF, the space kept even
		 * for PLAIN's empty challenge. */
		char line[64];
		int n = snprintf(line, sizeof(line), "334 %s\r\n", x->challenge);
		if (n > 0 && (size_t)n < sizeof(line))
			s->ops->send(s->ctx, line, (size_t)n);
		s->state = ST_AUTH;
		return;
	}
	case SMTP_SASL_DONE:
		s->state = ST_AUTH_WAIT;
		s->mode = SMTP_INPUT_WAIT;
		s->ops->auth(s->ctx, x->authcid, x->password);
		if (s->sasl)
			explicit_bzero(s->sasl->password, sizeof(s->sasl->password));
		return;
	case SMTP_SASL_ERROR:
	default: {
		struct smtp_reply r = x->reply;
		auth_exchange_free(s);
		s->state = ST_READY;
		refuse(s, "auth", &r);
		/* 535 is a rejected identity (an empty password, another's
		 * authzid): it counts as a failed login; malformed exchanges
		 * count as errors. */
		if (r.code == 535 && ++s->auth_failures >= s->cfg->max_auth_failures)
			close_with(s, 421, "4.7.0", "Too many authentication failures, closing connection");
		else if (r.code != 535)
			count_error(s);
		return;
	}
	}
}

/* AUTH SP mechanism [SP initial-response] (RFC 4954 §4), taken from the
 * raw line: an initial response may be far longer than smtp_command's
 * argument. */
static void do_auth(struct smtp_session *s, const char *arg, size_t len)
{
	const char *why = NULL, *enh = "5.5.1";
	int code = 503;
	if (s->auth_offer == SMTP_AUTH_OFF) {
		code = 502;
		why = "AUTH not available";
	} else if (s->state == ST_START || !s->esmtp) {
		why = "Send EHLO first";
	} else if (s->auth_user) {
		why = "Already authenticated";
	} else if (s->txn) {
		why = "AUTH not allowed during a mail transaction";
	} else if (!auth_available(s)) {
		/* RFC 4954 §6: encryption required first. */
		code = 538;
		enh = "5.7.11";
		why = "Encryption required for requested authentication mechanism";
	}
	if (why) {
		refuse_text(s, "auth", code, enh, why);
		count_error(s);
		return;
	}
	s->sasl = calloc(1, sizeof(*s->sasl));
	if (!s->sasl) {
		refuse_text(s, "auth", 454, "4.7.0", "Temporary authentication failure");
		return;
	}
	smtp_sasl_server_init(s->sasl);
	while (len > 0 && arg[0] == ' ') {
		arg++;
		len--;
	}
	while (len > 0 && arg[len - 1] == ' ')
		len--;
	auth_step(s, smtp_sasl_server_start(s->sasl, arg, len));
}

static bool is_auth_command(const char *line, size_t len)
{
	return len >= 4 && !strncasecmp(line, "AUTH", 4) && (len == 4 || line[4] == ' ');
}

size_t smtp_session_line_max(const struct smtp_session *s)
{
	if (s->state == ST_AUTH || auth_available(s))
		return SMTP_AUTH_LINE_MAX;
	return SMTP_COMMAND_LINE_MAX;
}

void smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result r)
{
	if (s->state != ST_AUTH_WAIT || !s->sasl)
		return;
	s->state = ST_READY;
	s->mode = SMTP_INPUT_LINE;
	if (r == SMTP_AUTH_OK) {
		s->auth_user = strdup(s->sasl->authcid);
		auth_exchange_free(s);
		if (!s->auth_user) {
			refuse_text(s, "auth", 454, "4.7.0", "Temporary authentication failure");
			return;
		}
		reply(s, 235, "2.7.0", "Authentication successful");
		return;
	}
	auth_exchange_free(s);
	if (r == SMTP_AUTH_TEMPFAIL) {
		refuse_text(s, "auth", 454, "4.7.0", "Temporary authentication failure");
		return;
	}
	refuse_text(s, "auth", 535, "5.7.8", "Authentication credentials invalid");
	if (++s->auth_failures >= s->cfg->max_auth_failures)
		close_with(s, 421, "4.7.0", "Too many authentication failures, closing connection");
}

void smtp_session_line(struct smtp_session *s, const char *line, size_t len)
{
	if (s->mode != SMTP_INPUT_LINE)
		return;
	if (s->state == ST_AUTH) {
		auth_step(s, smtp_sasl_server_line(s->sasl, line, len));
		return;
	}
	if (is_auth_command(line, len)) {
		do_auth(s, line + 4, len - 4);
		return;
	}
	struct smtp_command c;
	struct smtp_reply err;
	unsigned flags = 0;
	if (s->esmtp)
		flags |= SMTP_PARSE_EHLO_SEEN;
	if (s->cfg->accept_bare_ip)
		flags |= SMTP_PARSE_BARE_IP;
	if (s->auth_offer != SMTP_AUTH_OFF && (s->tls || s->auth_offer == SMTP_AUTH_ANYTIME))
		flags |= SMTP_PARSE_AUTH;
	if (!smtp_command_parse(line, len, flags, s->cfg->max_message_size, &c, &err)) {
		refuse(s, "command", &err);
		if (c.verb == SMTP_CMD_BDAT) {
			/* Chunk octets of unknown length follow a malformed BDAT:
			 * nothing after it can be read as commands safely. */
			transaction_free(s);
			s->state = ST_CLOSED;
			s->mode = SMTP_INPUT_CLOSE;
			return;
		}
		count_error(s);
		return;
	}
	switch (c.verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		do_helo(s, &c);
		break;
	case SMTP_CMD_MAIL:
		do_mail(s, &c);
		break;
	case SMTP_CMD_RCPT:
		do_rcpt(s, &c);
		break;
	case SMTP_CMD_DATA:
		do_data(s);
		break;
	case SMTP_CMD_BDAT:
		do_bdat(s, &c);
		break;
	case SMTP_CMD_RSET:
		do_rset(s);
		break;
	case SMTP_CMD_NOOP:
		reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_CMD_QUIT:
		close_with(s, 221, "2.0.0", "Bye");
		break;
	case SMTP_CMD_VRFY:
		/* RFC 5321 §3.5.3: 252 when the server will not verify. */
		reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_CMD_EXPN:
		refuse_text(s, "expn", 502, "5.5.1", "EXPN not available");
		break;
	case SMTP_CMD_HELP:
		reply(s, 214, "2.0.0",
		      "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS");
		break;
	case SMTP_CMD_STARTTLS:
		do_starttls(s);
		break;
	case SMTP_CMD_AUTH: /* taken before parsing: is_auth_command */
	case SMTP_CMD_UNKNOWN:
	default:
		refuse_text(s, "command", 500, "5.5.2", "Command unrecognized");
		count_error(s);
		break;
	}
}

void smtp_session_line_too_long(struct smtp_session *s)
{
	if (s->mode != SMTP_INPUT_LINE)
		return;
	if (s->state == ST_AUTH) {
		auth_step(s, smtp_sasl_server_line(s->sasl, NULL, SMTP_AUTH_LINE_MAX + 1));
		return;
	}
	refuse_text(s, "command", 500, "5.5.2", "Line too long");
	count_error(s);
}

void smtp_session_message_done(struct smtp_session *s, const struct smtp_reply *r)
{
	if (s->state != ST_COMMIT)
		return;
	if (r->code / 100 == 2)
		s->messages++;
	session_reply(s, r);
	transaction_end(s);
	if (s->state != ST_CLOSED)
		s->mode = SMTP_INPUT_LINE;
}

void smtp_session_tls_started(struct smtp_session *s)
{
	/* RFC 3207 §4.2: the server forgets everything it learnt before. */
	s->tls = true;
	free(s->helo);
	s->helo = NULL;
	free(s->auth_user);
	s->auth_user = NULL;
	s->esmtp = false;
	s->state = ST_START;
	s->mode = SMTP_INPUT_LINE;
}

void smtp_session_shutdown(struct smtp_session *s, const char *why)
{
	if (s->state == ST_CLOSED)
		return;
	if (s->state == ST_COMMIT) {
		/* The store decides this message's fate; the 421 follows its
		 * answer would be wrong: close after it instead. */
		return;
	}
	close_with(s, 421, "4.3.2", why);
}

void smtp_session_free(struct smtp_session *s)
{
	if (s->state == ST_COMMIT && s->txn)
		s->txn->begun = false; /* committed: the store finishes it */
	transaction_free(s);
	auth_exchange_free(s);
	free(s->helo);
	s->helo = NULL;
	free(s->auth_user);
	s->auth_user = NULL;
	s->state = ST_CLOSED;
	s->mode = SMTP_INPUT_CLOSE;
}

bool smtp_session_in_transaction(const struct smtp_session *s)
{
	return s->txn != NULL;
}

bool smtp_session_in_content(const struct smtp_session *s)
{
	return s->state == ST_DATA || s->state == ST_BDAT || s->state == ST_COMMIT;
}
