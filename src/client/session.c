/* The client SMTP state machine for one connection and its transactions
 * (client/session.h).  No I/O: replies come in, commands go out through
 * s->out, and the caller is told what to do next.
 *
 * Peers are not trusted (DESIGN.md "Untrusted input"): every decision is
 * made on the reply code's class, and a class that makes no sense for the
 * step (1xx, 3xx where no 3xx is due, anything outside 2xx-5xx) is taken
 * as a temporary failure of that step, never as success. */
#include "client/session.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/sasl.h"

enum client_state {
	ST_GREETING = 0,   /* waiting for the 220 */
	ST_EHLO,           /* EHLO sent */
	ST_HELO,           /* HELO sent (EHLO refused with 500/502) */
	ST_STARTTLS,       /* STARTTLS sent */
	ST_TLS,            /* 220 to STARTTLS: the caller runs the handshake */
	ST_AUTH,           /* AUTH sent (or an answer to its 334) */
	ST_MAIL,           /* MAIL sent (with pipelining: RCPTs and DATA too) */
	ST_RCPT,           /* RCPT reply for rcpts[rcpt_next] due */
	ST_DATA,           /* DATA reply due */
	ST_DOT,            /* message handed to the caller; reply to the dot due */
	ST_DOT_DISCARD,    /* lone ".\r\n" sent after an unwanted 354; reply ignored */
	ST_IDLE,           /* keep_open: between transactions */
	ST_RSET,           /* RSET sent before the next transaction */
	ST_DONE,           /* QUIT queued */
	ST_NEXT_HOST,      /* gave up on this host */
	ST_LOST,           /* connection lost */
};

/* What the session writes at most: the commands of one pipelined batch.
 * Every piece is bounded by the caller's strings, so the buffer is sized
 * from them at init rather than by a guess. */
#define CLIENT_COMMAND_OVERHEAD 64

static int reply_class(int code)
{
	return code >= 200 && code <= 599 ? code / 100 : 0;
}

static char *text_copy(const char *text)
{
	return strdup(text ? text : "");
}

static void enhanced_copy(char dst[16], const char *src)
{
	size_t n = src ? strnlen(src, 15) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

/* Gives a recipient its outcome.  A copy of the text is kept: the parser's
 * text is only valid until its next call. */
static void rcpt_set(struct client_rcpt *r, enum client_rcpt_state state, int code,
                     const char *enhanced, const char *text)
{
	free(r->text);
	r->state = state;
	r->code = code;
	enhanced_copy(r->enhanced, enhanced);
	r->text = text ? text_copy(text) : NULL;
}

static void rcpt_set_reply(struct client_rcpt *r, enum client_rcpt_state state,
                           const struct smtp_server_reply *reply)
{
	/* A reply always has a text, if empty: "" rather than NULL. */
	rcpt_set(r, state, reply->code, reply->enhanced, reply->text ? reply->text : "");
}

/* 2xx success, 5xx permanent; everything else temporary. */
static enum client_rcpt_state failure_state(int code)
{
	return reply_class(code) == 5 ? CLIENT_RCPT_PERMFAIL : CLIENT_RCPT_TEMPFAIL;
}

/* Accepted at RCPT: still PENDING, with the 2xx RCPT reply recorded. */
static bool rcpt_accepted(const struct client_rcpt *r)
{
	return r->state == CLIENT_RCPT_PENDING && reply_class(r->code) == 2;
}

static void fail_set(struct client_session *s, int code, const char *enhanced,
                     const char *text, const char *reason)
{
	free(s->fail_text);
	s->fail_code = code;
	enhanced_copy(s->fail_enhanced, enhanced);
	s->fail_text = text ? text_copy(text) : NULL;
	s->fail_reason = reason;
}

static void fail_set_reply(struct client_session *s, const struct smtp_server_reply *reply,
                           const char *reason)
{
	fail_set(s, reply->code, reply->enhanced, reply->text ? reply->text : "", reason);
}

static bool out_printf(struct client_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool out_printf(struct client_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	if (rc < 0)
		s->out_failed = true;
	return rc == 0;
}

/* The buffer is sized at init for the largest batch, so this only fails
 * when memory runs out; the host is then given up like any local trouble
 * that a retry may cure. */
/* Output that may hold credentials goes without leaving them behind. */
static void out_discard(struct client_session *s)
{
	if (s->secret_out && s->out.data)
		explicit_bzero(s->out.data, s->out.len);
	s->secret_out = false;
	buf_reset(&s->out);
}

static enum client_action out_check(struct client_session *s, enum client_action action)
{
	if (!s->out_failed)
		return action;
	out_discard(s);
	s->state = ST_NEXT_HOST;
	fail_set(s, 0, "", NULL, "out of memory");
	return CLIENT_NEXT_HOST;
}

static enum client_action quit(struct client_session *s)
{
	out_printf(s, "QUIT\r\n");
	s->state = ST_DONE;
	return out_check(s, CLIENT_DONE);
}

/* The end of a transaction, whatever its outcome: with keep_open the
 * connection waits for the next one, unless the peer said it is closing
 * (421, RFC 5321 §3.8) or our output failed. */
static enum client_action transaction_end(struct client_session *s)
{
	if (s->cfg->keep_open && !s->peer_closing && !s->out_failed) {
		s->state = ST_IDLE;
		return CLIENT_IDLE;
	}
	return quit(s);
}

static enum client_action next_host(struct client_session *s, bool send_quit)
{
	/* RFC 5321 §4.1.1.10: QUIT is how a session ends.  Only queued where
	 * the peer is still in a state to read commands (a TLS policy
	 * refusal), not after a refused greeting or EHLO, where the peer
	 * usually closes. */
	if (send_quit)
		out_printf(s, "QUIT\r\n");
	s->state = ST_NEXT_HOST;
	return out_check(s, CLIENT_NEXT_HOST);
}

static void ehlo_send(struct client_session *s)
{
	out_printf(s, "EHLO %s\r\n", s->cfg->helo);
	s->state = ST_EHLO;
}

static bool keyword_is(const char *word, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(word, name, len) == 0;
}

/* RFC 1870 §4: "SIZE" with an optional maximum in octets; 0 or none means
 * no fixed limit.  Digits only; an overflowing number counts as none. */
static uint64_t size_param(const char *p, const char *end)
{
	uint64_t n = 0;
	while (p < end && *p == ' ')
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return 0;
		n = n * 10 + d;
	}
	return n;
}

/* RFC 5321 §4.1.1.1: the first line of the 250 is the greeting; each
 * further line is one extension keyword, then its parameters. */
static void ehlo_parse(struct client_session *s, const char *text)
{
	const char *line = strchr(text ? text : "", '\n');
	while (line) {
		line++;
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		const char *sp = memchr(line, ' ', (size_t)(end - line));
		size_t wordlen = (size_t)((sp ? sp : end) - line);
		if (keyword_is(line, wordlen, "PIPELINING")) {
			s->pipelining = true;
		} else if (keyword_is(line, wordlen, "SIZE")) {
			s->size_ext = true;
			s->size_max = size_param(line + wordlen, end);
		} else if (keyword_is(line, wordlen, "8BITMIME")) {
			s->eightbit_ext = true;
		} else if (keyword_is(line, wordlen, "SMTPUTF8")) {
			s->smtputf8_ext = true;
		} else if (keyword_is(line, wordlen, "STARTTLS")) {
			s->starttls_ext = true;
		} else if (keyword_is(line, wordlen, "AUTH") ||
		           (wordlen > 5 && !strncasecmp(line, "AUTH=", 5))) {
			/* RFC 4954 §3; the old "AUTH=" form still sent by some
			 * servers lists the same names. */
			const char *params = line + (keyword_is(line, wordlen, "AUTH") ? wordlen : 5);
			int mech = smtp_sasl_client_choose(params, (size_t)(end - params));
			if (mech != SMTP_SASL_NONE &&
			    (s->auth_offered == SMTP_SASL_NONE || mech == SMTP_SASL_PLAIN))
				s->auth_offered = mech;
		}
		line = eol;
	}
}

static void extensions_forget(struct client_session *s)
{
	s->esmtp = false;
	s->pipelining = false;
	s->size_ext = false;
	s->size_max = 0;
	s->eightbit_ext = false;
	s->smtputf8_ext = false;
	s->starttls_ext = false;
	s->auth_offered = SMTP_SASL_NONE;
}

/* The whole transaction refused before it began: every recipient gets the
 * same synthetic reply, then QUIT. */
static enum client_action refuse_all(struct client_session *s, int code, const char *enhanced,
                                     const char *text, const char *reason)
{
	for (size_t i = 0; i < s->nrcpts; i++)
		rcpt_set(&s->rcpts[i], failure_state(code), code, enhanced, text);
	fail_set(s, code, enhanced, text, reason);
	return transaction_end(s);
}

static void rcpt_send(struct client_session *s, size_t i)
{
	out_printf(s, "RCPT TO:<%s>\r\n", s->rcpts[i].address);
}

static enum client_action transaction_start(struct client_session *s)
{
	const struct client_session_config *cfg = s->cfg;

	/* RFC 6531 §3.2: a UTF-8 address must not be sent to a server that
	 * did not offer SMTPUTF8; it would be mangled or refused anyway. */
	if (cfg->smtputf8 && !s->smtputf8_ext)
		return refuse_all(s, 553, "5.6.7", "peer does not support SMTPUTF8",
		                  "peer does not support SMTPUTF8");
	/* RFC 1870 §6: a message over the announced maximum would only be
	 * refused after it was sent. */
	if (s->size_ext && s->size_max && cfg->message_size > s->size_max)
		return refuse_all(s, 552, "5.3.4", "message larger than the peer's SIZE limit",
		                  "message too big for peer");
	if (s->nrcpts == 0)
		return transaction_end(s);

	out_printf(s, "MAIL FROM:<%s>", s->sender);
	if (s->size_ext)
		out_printf(s, " SIZE=%llu", (unsigned long long)cfg->message_size);
	/* RFC 6152 §2.  Without 8BITMIME offered no BODY= is given: the
	 * composer sends 7-bit (quoted-printable) bodies, so this only
	 * happens for raw input, which is passed on as it is. */
	if (cfg->eightbit && s->eightbit_ext)
		out_printf(s, " BODY=8BITMIME");
	if (cfg->smtputf8)
		out_printf(s, " SMTPUTF8");
	out_printf(s, "\r\n");
	/* RFC 2920 §3.1: MAIL, every RCPT and DATA may go in one batch, DATA
	 * being the last command of the group; the replies then come in
	 * order and are read one by one. */
	if (s->pipelining) {
		for (size_t i = 0; i < s->nrcpts; i++)
			rcpt_send(s, i);
		out_printf(s, "DATA\r\n");
		s->replies_expected = s->nrcpts + 2;
	} else {
		s->replies_expected = 1;
	}
	s->state = ST_MAIL;
	return out_check(s, CLIENT_SEND);
}

/* Gives up on the host for AUTH's sake (see session.h). */
static enum client_action auth_give_up(struct client_session *s, const char *reason,
                                       bool send_quit)
{
	if (!s->fail_reason || s->fail_code == 0)
		fail_set(s, 0, "", NULL, reason);
	else
		s->fail_reason = reason;
	s->auth_failed = true;
	return next_host(s, send_quit);
}

/* A line with credentials: marked so that the caller hides it from the
 * transcript and wipes the buffer once written. */
static enum client_action auth_send_response(struct client_session *s, const char *prefix,
                                             const char *response)
{
	out_printf(s, "%s%s\r\n", prefix, response);
	s->secret_out = true;
	s->state = ST_AUTH;
	return out_check(s, CLIENT_SEND);
}

/* RFC 4954 §4: AUTH after EHLO (and after TLS), before MAIL. */
static enum client_action auth_start(struct client_session *s)
{
	const struct client_session_config *cfg = s->cfg;
	if (!s->tls_active && !cfg->auth_plaintext_ok)
		return auth_give_up(s, "not sending the password without TLS (only to a relay at "
		                       "127.0.0.1 or ::1)", true);
	if (s->auth_offered == SMTP_SASL_NONE)
		return auth_give_up(s, "the relay offers no AUTH (PLAIN or LOGIN) but --auth-user "
		                       "is set: the credentials were not sent", true);
	s->auth_step = 0;
	if (s->auth_offered == SMTP_SASL_LOGIN) {
		out_printf(s, "AUTH LOGIN\r\n");
		s->state = ST_AUTH;
		return out_check(s, CLIENT_SEND);
	}
	char resp[SMTP_SASL_RESPONSE_MAX];
	if (smtp_sasl_client_plain(resp, sizeof(resp), cfg->auth_user, cfg->auth_password) < 0)
		return auth_give_up(s, "--auth-user or its password is empty or too long", true);
	enum client_action a = auth_send_response(s, "AUTH PLAIN ", resp);
	explicit_bzero(resp, sizeof(resp));
	return a;
}

static enum client_action on_auth(struct client_session *s, const struct smtp_server_reply *r)
{
	if (r->code == 235) {
		s->authenticated = true;
		return transaction_start(s);
	}
	if (r->code == 334 && s->auth_offered == SMTP_SASL_LOGIN) {
		char resp[SMTP_SASL_RESPONSE_MAX];
		const char *text = r->text ? r->text : "";
		int n = smtp_sasl_client_login(resp, sizeof(resp), text, strlen(text), s->auth_step++,
		                               s->cfg->auth_user, s->cfg->auth_password);
		if (n < 0) {
			/* RFC 4954 §4: "*" cancels the exchange. */
			out_printf(s, "*\r\n");
			fail_set_reply(s, r, "AUTH LOGIN: unexpected challenge");
			s->state = ST_AUTH;
			return out_check(s, CLIENT_SEND);
		}
		enum client_action a = auth_send_response(s, "", resp);
		explicit_bzero(resp, sizeof(resp));
		return a;
	}
	/* 535 5.7.8 and every other refusal (a 334 where PLAIN sent its
	 * initial response, a 501 after our cancel): give up on the host.
	 * RFC 4954 §6: 454 4.7.0 is the server's own trouble, not ours. */
	fail_set_reply(s, r, "");
	return auth_give_up(s, reply_class(r->code) == 4
	                           ? "authentication failed temporarily at the relay (its trouble, "
	                             "not necessarily --auth-user / --auth-password-file)"
	                           : "authentication failed: the relay refused the credentials of "
	                             "--auth-user / --auth-password-file",
	                    r->code != 421);
}

/* After EHLO (and TLS): AUTH if configured, then the transaction. */
static enum client_action before_transaction(struct client_session *s)
{
	if (s->cfg->auth_user && !s->authenticated)
		return auth_start(s);
	return transaction_start(s);
}

/* After EHLO or HELO: STARTTLS first if the policy asks for it. */
static enum client_action after_hello(struct client_session *s)
{
	enum client_tls_mode mode = s->cfg->tls;
	if (mode == CLIENT_TLS_NONE || s->tls_active)
		return before_transaction(s);
	if (s->starttls_ext) {
		out_printf(s, "STARTTLS\r\n");
		s->state = ST_STARTTLS;
		return out_check(s, CLIENT_SEND);
	}
	if (mode == CLIENT_TLS_REQUIRE) {
		fail_set(s, 0, "", NULL, "STARTTLS not offered");
		return next_host(s, true);
	}
	return before_transaction(s);
}

static enum client_action on_greeting(struct client_session *s, const struct smtp_server_reply *r)
{
	/* RFC 5321 §3.1: 554 (or any refusal) at the greeting means this
	 * host will not talk now; another MX may. */
	if (reply_class(r->code) != 2) {
		fail_set_reply(s, r, "greeting refused");
		return next_host(s, false);
	}
	ehlo_send(s);
	return out_check(s, CLIENT_SEND);
}

static enum client_action on_ehlo(struct client_session *s, const struct smtp_server_reply *r)
{
	if (reply_class(r->code) == 2) {
		extensions_forget(s);
		s->esmtp = true;
		ehlo_parse(s, r->text);
		return after_hello(s);
	}
	/* RFC 5321 §4.1.4: HELO only for a server that does not know EHLO
	 * (500/502).  A 421 or 554 is the server refusing us, not EHLO; and
	 * after STARTTLS, falling back would drop to a session without the
	 * extensions the policy chose TLS for. */
	if ((r->code == 500 || r->code == 502) && !s->tls_active) {
		out_printf(s, "HELO %s\r\n", s->cfg->helo);
		s->state = ST_HELO;
		return out_check(s, CLIENT_SEND);
	}
	fail_set_reply(s, r, "EHLO refused");
	return next_host(s, false);
}

static enum client_action on_helo(struct client_session *s, const struct smtp_server_reply *r)
{
	if (reply_class(r->code) != 2) {
		fail_set_reply(s, r, "HELO refused");
		return next_host(s, false);
	}
	extensions_forget(s);
	return after_hello(s);
}

static enum client_action on_starttls(struct client_session *s, const struct smtp_server_reply *r)
{
	if (reply_class(r->code) == 2) {
		s->state = ST_TLS;
		return CLIENT_STARTTLS;
	}
	/* RFC 3207 §4: after a refused STARTTLS the session goes on in
	 * plaintext, which opportunistic mode accepts and require does not. */
	if (s->cfg->tls == CLIENT_TLS_REQUIRE) {
		fail_set_reply(s, r, "STARTTLS refused");
		return next_host(s, true);
	}
	return before_transaction(s);
}

static enum client_action on_mail(struct client_session *s, const struct smtp_server_reply *r)
{
	s->replies_expected--;
	s->rcpt_next = 0;
	s->state = ST_RCPT;
	if (reply_class(r->code) != 2) {
		/* The sender refused: the transaction cannot happen, so the
		 * reply is every recipient's outcome. */
		for (size_t i = 0; i < s->nrcpts; i++)
			rcpt_set_reply(&s->rcpts[i], failure_state(r->code), r);
		fail_set_reply(s, r, "MAIL refused");
		s->mail_failed = true;
		/* RFC 2920 §3.1: the replies to the pipelined RCPTs and DATA
		 * still come and are read before QUIT. */
		if (s->pipelining)
			return CLIENT_READ;
		return transaction_end(s);
	}
	if (s->pipelining)
		return CLIENT_READ;
	rcpt_send(s, 0);
	return out_check(s, CLIENT_SEND);
}

static void rcpt_decide(struct client_session *s, struct client_rcpt *rc,
                        const struct smtp_server_reply *r)
{
	if (reply_class(r->code) == 2) {
		rcpt_set_reply(rc, CLIENT_RCPT_PENDING, r);
		s->accepted++;
	} else if (r->code == 452 || r->code == 552) {
		/* RFC 5321 §4.5.3.1.10: too many recipients for this
		 * transaction (552 is the old way of saying it): the recipient
		 * is not refused, it goes in another transaction. */
		rcpt_set_reply(rc, CLIENT_RCPT_DEFERRED, r);
	} else {
		rcpt_set_reply(rc, failure_state(r->code), r);
	}
}

static enum client_action on_rcpt(struct client_session *s, const struct smtp_server_reply *r)
{
	s->replies_expected--;
	if (!s->mail_failed)
		rcpt_decide(s, &s->rcpts[s->rcpt_next], r);
	s->rcpt_next++;
	if (s->rcpt_next < s->nrcpts) {
		if (s->pipelining)
			return CLIENT_READ;
		rcpt_send(s, s->rcpt_next);
		return out_check(s, CLIENT_SEND);
	}
	s->state = ST_DATA;
	if (s->pipelining)
		return CLIENT_READ;
	/* Without pipelining DATA is only sent when someone will get the
	 * message (RFC 5321 §3.3: DATA needs at least one accepted RCPT). */
	if (s->accepted == 0)
		return transaction_end(s);
	out_printf(s, "DATA\r\n");
	s->replies_expected = 1;
	return out_check(s, CLIENT_SEND);
}

static enum client_action on_data(struct client_session *s, const struct smtp_server_reply *r)
{
	s->replies_expected = 0;
	if (reply_class(r->code) == 3) {
		if (s->accepted > 0 && !s->mail_failed) {
			s->state = ST_DOT;
			s->data_sent = true;
			return CLIENT_SEND_DATA;
		}
		/* RFC 2920 §3.1: a pipelined DATA that the server accepted
		 * although no RCPT was: the client must then end the (empty)
		 * message with the dot alone.  Its reply is read and ignored;
		 * nobody is delivered whatever it says. */
		out_printf(s, ".\r\n");
		s->state = ST_DOT_DISCARD;
		return out_check(s, CLIENT_SEND);
	}
	if (s->accepted > 0 && !s->mail_failed) {
		for (size_t i = 0; i < s->nrcpts; i++)
			if (rcpt_accepted(&s->rcpts[i]))
				rcpt_set_reply(&s->rcpts[i], failure_state(r->code), r);
		fail_set_reply(s, r, "DATA refused");
	}
	return transaction_end(s);
}

static enum client_action on_dot(struct client_session *s, const struct smtp_server_reply *r)
{
	/* RFC 5321 §4.2.5: the reply to the final dot decides for every
	 * recipient accepted at RCPT together. */
	enum client_rcpt_state st = reply_class(r->code) == 2 ? CLIENT_RCPT_DELIVERED
	                                                    : failure_state(r->code);
	for (size_t i = 0; i < s->nrcpts; i++)
		if (rcpt_accepted(&s->rcpts[i]))
			rcpt_set_reply(&s->rcpts[i], st, r);
	if (st != CLIENT_RCPT_DELIVERED)
		fail_set_reply(s, r, "message refused");
	return transaction_end(s);
}

static enum client_action on_rset(struct client_session *s, const struct smtp_server_reply *r)
{
	if (reply_class(r->code) == 2)
		return transaction_start(s);
	/* The connection is in no known state: the recipients stay PENDING
	 * for a new one.  No QUIT after a 421 (the peer is gone). */
	fail_set_reply(s, r, "RSET refused");
	return next_host(s, r->code != 421);
}

/* The output buffer holds one pipelined batch at most: sized from this
 * transaction's strings. */
static size_t out_max(const struct client_session_config *cfg, const char *sender,
                      const struct client_rcpt *rcpts, size_t nrcpts)
{
	size_t max = CLIENT_COMMAND_OVERHEAD * 4 + strlen(cfg->helo) + strlen(sender);
	for (size_t i = 0; i < nrcpts; i++)
		max += strlen(rcpts[i].address) + CLIENT_COMMAND_OVERHEAD;
	if (cfg->auth_user)
		max += SMTP_SASL_RESPONSE_MAX + CLIENT_COMMAND_OVERHEAD;
	return max;
}

static void rcpts_reset(struct client_rcpt *rcpts, size_t nrcpts)
{
	for (size_t i = 0; i < nrcpts; i++) {
		struct client_rcpt *r = &rcpts[i];
		r->state = CLIENT_RCPT_PENDING;
		r->code = 0;
		r->enhanced[0] = '\0';
		r->text = NULL;
	}
}

void client_session_init(struct client_session *s, const struct client_session_config *cfg,
                         const char *sender, struct client_rcpt *rcpts, size_t nrcpts)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->sender = sender;
	s->rcpts = rcpts;
	s->nrcpts = nrcpts;
	s->state = ST_GREETING;
	s->transactions = 1;
	rcpts_reset(rcpts, nrcpts);
	buf_init(&s->out, out_max(cfg, sender, rcpts, nrcpts));
}

void client_session_transaction_clear(struct client_session *s)
{
	for (size_t i = 0; i < s->nrcpts; i++) {
		free(s->rcpts[i].text);
		s->rcpts[i].text = NULL;
	}
	s->rcpts = NULL;
	s->nrcpts = 0;
}

enum client_action client_session_next(struct client_session *s,
                                       const struct client_session_config *cfg,
                                       const char *sender, struct client_rcpt *rcpts,
                                       size_t nrcpts)
{
	bool idle = s->state == ST_IDLE && !s->peer_closing;
	client_session_transaction_clear(s);
	s->cfg = cfg;
	s->sender = sender;
	s->rcpts = rcpts;
	s->nrcpts = nrcpts;
	rcpts_reset(rcpts, nrcpts);
	/* Everything of the last transaction goes; what the connection
	 * learnt (extensions, TLS) stays. */
	s->mail_failed = false;
	s->data_sent = false;
	s->dot_sent = false;
	s->replies_expected = 0;
	s->rcpt_next = 0;
	s->accepted = 0;
	s->transactions++;
	fail_set(s, 0, "", NULL, NULL);
	buf_free(&s->out);
	buf_init(&s->out, out_max(cfg, sender, rcpts, nrcpts));
	if (!idle) {
		fail_set(s, 0, "", NULL, "connection not reusable");
		s->state = ST_NEXT_HOST;
		return CLIENT_NEXT_HOST;
	}
	out_printf(s, "RSET\r\n");
	s->state = ST_RSET;
	return out_check(s, CLIENT_SEND);
}

enum client_action client_session_quit(struct client_session *s)
{
	return quit(s);
}

bool client_session_reused(const struct client_session *s)
{
	return s->transactions > 1;
}

enum client_action client_session_reply(struct client_session *s,
                                        const struct smtp_server_reply *reply)
{
	/* RFC 5321 §3.8: 421 means the server is closing the channel, at
	 * whatever step it comes. */
	if (reply->code == 421)
		s->peer_closing = true;
	/* Whatever was written before this reply has gone. */
	s->secret_out = false;
	switch (s->state) {
	case ST_GREETING:
		return on_greeting(s, reply);
	case ST_EHLO:
		return on_ehlo(s, reply);
	case ST_HELO:
		return on_helo(s, reply);
	case ST_STARTTLS:
		return on_starttls(s, reply);
	case ST_AUTH:
		return on_auth(s, reply);
	case ST_MAIL:
		return on_mail(s, reply);
	case ST_RCPT:
		return on_rcpt(s, reply);
	case ST_DATA:
		return on_data(s, reply);
	case ST_DOT:
		return on_dot(s, reply);
	case ST_DOT_DISCARD:
		return transaction_end(s);
	case ST_RSET:
		return on_rset(s, reply);
	case ST_IDLE:
		/* Nothing was asked: a peer that talks now (a 421 at its idle
		 * timeout) is not a connection to reuse. */
		s->peer_closing = true;
		return CLIENT_IDLE;
	case ST_TLS:
		/* Bytes before the handshake are an attack (RFC 3207 §6: the
		 * CVE-2011-0411 class); the caller must not hand them over. */
		fail_set_reply(s, reply, "reply before TLS handshake");
		return next_host(s, false);
	case ST_NEXT_HOST:
		return CLIENT_NEXT_HOST;
	default:
		/* Done or lost: the reply to QUIT and anything after it. */
		return CLIENT_DONE;
	}
}

void client_session_tls_implicit(struct client_session *s)
{
	s->tls_active = true;
}

bool client_session_output_secret(const struct client_session *s)
{
	return s->secret_out;
}

enum client_action client_session_tls_done(struct client_session *s)
{
	if (s->state != ST_TLS) {
		fail_set(s, 0, "", NULL, "TLS handshake out of order");
		return next_host(s, false);
	}
	/* RFC 3207 §4.2: everything learnt before TLS is forgotten and EHLO
	 * is asked again; the extensions may differ. */
	s->tls_active = true;
	extensions_forget(s);
	ehlo_send(s);
	return out_check(s, CLIENT_SEND);
}

void client_session_lost(struct client_session *s)
{
	for (size_t i = 0; i < s->nrcpts; i++) {
		struct client_rcpt *r = &s->rcpts[i];
		if (r->state != CLIENT_RCPT_PENDING)
			continue;
		if (s->dot_sent && s->state == ST_DOT) {
			rcpt_set(r, CLIENT_RCPT_TEMPFAIL, 0, "",
			         "connection lost after the message was sent: outcome unknown");
		} else {
			/* Accepted at RCPT but never sent: untouched, so the
			 * next host starts from a clean recipient. */
			rcpt_set(r, CLIENT_RCPT_PENDING, 0, "", NULL);
		}
	}
	if (s->state != ST_DONE && s->state != ST_NEXT_HOST && !s->fail_reason)
		fail_set(s, 0, "", NULL, "connection lost");
	out_discard(s);
	s->state = ST_LOST;
}

struct buf *client_session_output(struct client_session *s)
{
	return &s->out;
}

void client_session_dot_sent(struct client_session *s)
{
	if (s->data_sent)
		s->dot_sent = true;
}

bool client_session_data_sent(const struct client_session *s)
{
	return s->data_sent;
}

void client_session_free(struct client_session *s)
{
	client_session_transaction_clear(s);
	free(s->fail_text);
	s->fail_text = NULL;
	out_discard(s);
	buf_free(&s->out);
}
