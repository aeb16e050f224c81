/* The client session state machine (src/client/session.c), tested by
 * transcripts: what the peer answers ("S:", parsed by the real reply
 * parser), the exact commands the session must send ("C:") and what it
 * tells the caller to do after each reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/session.h"
#include "smtp/reply_parse.h"

#define FAKE_RCPTS_MAX 8

struct fake {
	struct smtp_reply_parser parser;
	struct client_session s;
	struct client_session_config cfg;
	struct client_rcpt rcpts[FAKE_RCPTS_MAX];
	size_t nrcpts;
};

/* A session for the NULL-terminated recipients; the config can be changed
 * before fake_start(). */
static struct fake *fake_new(const char *first, ...)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	smtp_reply_parser_init(&f->parser);
	f->cfg.helo = "client.test";
	f->cfg.tls = CLIENT_TLS_NONE;
	f->cfg.message_size = 1234;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(f->nrcpts < FAKE_RCPTS_MAX);
		f->rcpts[f->nrcpts++].address = a;
	}
	va_end(ap);
	return f;
}

static void fake_start(struct fake *f)
{
	client_session_init(&f->s, &f->cfg, "a@example.test", f->rcpts, f->nrcpts);
}

static void fake_free(struct fake *f)
{
	client_session_free(&f->s);
	for (size_t i = 0; i < f->nrcpts; i++)
		assert_null(f->rcpts[i].text);
	free(f);
}

static const char *action_name(enum client_action a)
{
	switch (a) {
	case CLIENT_SEND: return "SEND";
	case CLIENT_READ: return "READ";
	case CLIENT_STARTTLS: return "STARTTLS";
	case CLIENT_SEND_DATA: return "SEND_DATA";
	case CLIENT_DONE: return "DONE";
	case CLIENT_IDLE: return "IDLE";
	case CLIENT_NEXT_HOST: return "NEXT_HOST";
	}
	return "?";
}

static void action_check(enum client_action got, enum client_action want)
{
	if (got != want)
		fail_msg("action %s, want %s", action_name(got), action_name(want));
}

/* S: one complete reply as the peer writes it, through the real parser. */
static void S(struct fake *f, const char *wire, enum client_action want)
{
	struct smtp_server_reply r;
	size_t used = 0, len = strlen(wire);
	enum smtp_reply_parse_status st = smtp_reply_parser_feed(&f->parser, wire, len, &used, &r);
	assert_int_equal(st, SMTP_REPLY_DONE);
	assert_int_equal(used, len);
	action_check(client_session_reply(&f->s, &r), want);
}

/* C: the output since the last call, exactly; then drained as the caller
 * would. */
static void C(struct fake *f, const char *want)
{
	struct buf *out = client_session_output(&f->s);
	const char *got = out->data ? out->data : "";
	if (strcmp(got, want) != 0)
		fail_msg("commands differ\n--- got:\n%s--- want:\n%s", got, want);
	buf_reset(out);
}

static void rcpt_check(const struct client_rcpt *r, enum client_rcpt_state state, int code,
                       const char *enhanced, const char *text)
{
	assert_int_equal(r->state, state);
	assert_int_equal(r->code, code);
	assert_string_equal(r->enhanced, enhanced);
	if (text)
		assert_string_equal(r->text, text);
	else
		assert_null(r->text);
}

static const char ehlo_pipelining[] =
	"250-mx.test Hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
static const char ehlo_plain[] = "250-mx.test Hello\r\n250 ENHANCEDSTATUSCODES\r\n";

/* Greeting and EHLO with the given reply, checking EHLO was sent. */
static void hello(struct fake *f, const char *ehlo_reply, enum client_action want)
{
	fake_start(f);
	S(f, "220 mx.test ESMTP\r\n", CLIENT_SEND);
	C(f, "EHLO client.test\r\n");
	S(f, ehlo_reply, want);
}

static void test_pipelining_one_batch(void **state)
{
	struct fake *f = fake_new("b@y.test", "c@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	/* RFC 2920 §3.1: the whole group in one write, DATA last. */
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
	S(f, "250 2.1.0 Ok\r\n", CLIENT_READ);
	S(f, "250 2.1.5 Ok\r\n", CLIENT_READ);
	S(f, "250 2.1.5 Ok\r\n", CLIENT_READ);
	assert_false(client_session_data_sent(&f->s));
	S(f, "354 End data with <CR><LF>.<CR><LF>\r\n", CLIENT_SEND_DATA);
	C(f, "");
	assert_true(client_session_data_sent(&f->s));
	S(f, "250 2.0.0 Ok: queued as X1\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_DELIVERED, 250, "2.0.0", "2.0.0 Ok: queued as X1");
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_DELIVERED, 250, "2.0.0", "2.0.0 Ok: queued as X1");
	assert_null(f->s.fail_reason);
	/* The reply to QUIT is not needed, and harmless if handed over. */
	S(f, "221 2.0.0 Bye\r\n", CLIENT_DONE);
	C(f, "");
	fake_free(f);
}

static void test_one_at_a_time(void **state)
{
	struct fake *f = fake_new("b@y.test", "c@y.test", NULL);
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	S(f, "250 2.1.0 Ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<b@y.test>\r\n");
	S(f, "250 2.1.5 Ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<c@y.test>\r\n");
	S(f, "250 2.1.5 Ok\r\n", CLIENT_SEND);
	C(f, "DATA\r\n");
	S(f, "354 go ahead\r\n", CLIENT_SEND_DATA);
	C(f, "");
	S(f, "250 ok\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_DELIVERED, 250, "", "ok");
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_DELIVERED, 250, "", "ok");
	fake_free(f);
}

static void test_helo_fallback(void **state)
{
	static const char *const codes[] = { "500 unknown command\r\n", "502 not implemented\r\n" };
	for (size_t i = 0; i < 2; i++) {
		struct fake *f = fake_new("b@y.test", NULL);
		hello(f, codes[i], CLIENT_SEND);
		C(f, "HELO client.test\r\n");
		S(f, "250 mx.test\r\n", CLIENT_SEND);
		C(f, "MAIL FROM:<a@example.test>\r\n");
		S(f, "250 ok\r\n", CLIENT_SEND);
		C(f, "RCPT TO:<b@y.test>\r\n");
		fake_free(f);
	}
	/* HELO refused in its turn: this host is no good. */
	struct fake *f = fake_new("b@y.test", NULL);
	hello(f, "502 no\r\n", CLIENT_SEND);
	C(f, "HELO client.test\r\n");
	S(f, "501 bad HELO\r\n", CLIENT_NEXT_HOST);
	C(f, "");
	assert_string_equal(f->s.fail_reason, "HELO refused");
	fake_free(f);
}

static void test_no_helo_after_421_or_554(void **state)
{
	static const char *const codes[] = { "421 4.3.2 shutting down\r\n", "554 5.7.1 go away\r\n",
	                                     "451 try later\r\n" };
	static const int want[] = { 421, 554, 451 };
	for (size_t i = 0; i < 3; i++) {
		struct fake *f = fake_new("b@y.test", NULL);
		hello(f, codes[i], CLIENT_NEXT_HOST);
		C(f, "");
		assert_int_equal(f->s.fail_code, want[i]);
		assert_string_equal(f->s.fail_reason, "EHLO refused");
		rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
		fake_free(f);
	}
}

static void test_greeting_refused(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	fake_start(f);
	S(f, "421 4.3.2 mx.test busy\r\n", CLIENT_NEXT_HOST);
	C(f, "");
	assert_int_equal(f->s.fail_code, 421);
	assert_string_equal(f->s.fail_enhanced, "4.3.2");
	assert_string_equal(f->s.fail_text, "4.3.2 mx.test busy");
	assert_string_equal(f->s.fail_reason, "greeting refused");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);

	/* RFC 5321 §3.1: 554 instead of 220. */
	f = fake_new("b@y.test", NULL);
	fake_start(f);
	S(f, "554-mx.test no SMTP service here\r\n554 go away\r\n", CLIENT_NEXT_HOST);
	C(f, "");
	assert_int_equal(f->s.fail_code, 554);
	assert_string_equal(f->s.fail_text, "mx.test no SMTP service here\ngo away");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);
}

static void test_starttls_offered(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_OPPORTUNISTIC;
	hello(f, "250-mx.test\r\n250-SIZE 100000\r\n250-starttls\r\n250 8BITMIME\r\n", CLIENT_SEND);
	C(f, "STARTTLS\r\n");
	S(f, "220 2.0.0 Ready to start TLS\r\n", CLIENT_STARTTLS);
	C(f, "");
	/* RFC 3207 §4.2: EHLO again; SIZE from before TLS is forgotten and
	 * the new list (PIPELINING, no SIZE, no STARTTLS) is used. */
	action_check(client_session_tls_done(&f->s), CLIENT_SEND);
	C(f, "EHLO client.test\r\n");
	S(f, "250-mx.test\r\n250 PIPELINING\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
	assert_true(f->s.tls_active);
	assert_false(f->s.size_ext);
	fake_free(f);
}

static void test_starttls_after_tls_not_again(void **state)
{
	/* A peer still offering STARTTLS after TLS: not asked twice. */
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_REQUIRE;
	hello(f, "250-mx.test\r\n250 STARTTLS\r\n", CLIENT_SEND);
	C(f, "STARTTLS\r\n");
	S(f, "220 go\r\n", CLIENT_STARTTLS);
	action_check(client_session_tls_done(&f->s), CLIENT_SEND);
	C(f, "EHLO client.test\r\n");
	S(f, "250-mx.test\r\n250 STARTTLS\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	fake_free(f);
}

static void test_starttls_opportunistic_not_offered_or_refused(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_OPPORTUNISTIC;
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	fake_free(f);

	/* RFC 3207 §4: refused, so plaintext it is. */
	f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_OPPORTUNISTIC;
	hello(f, "250-mx.test\r\n250 STARTTLS\r\n", CLIENT_SEND);
	C(f, "STARTTLS\r\n");
	S(f, "454 4.7.0 TLS not available due to temporary reason\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	assert_false(f->s.tls_active);
	fake_free(f);
}

static void test_starttls_required(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_REQUIRE;
	hello(f, ehlo_pipelining, CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_string_equal(f->s.fail_reason, "STARTTLS not offered");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);

	f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_REQUIRE;
	hello(f, "250-mx.test\r\n250 STARTTLS\r\n", CLIENT_SEND);
	C(f, "STARTTLS\r\n");
	S(f, "454 4.7.0 TLS not available\r\n", CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_string_equal(f->s.fail_reason, "STARTTLS refused");
	assert_int_equal(f->s.fail_code, 454);
	fake_free(f);

	/* HELO has no STARTTLS. */
	f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_REQUIRE;
	hello(f, "502 what\r\n", CLIENT_SEND);
	C(f, "HELO client.test\r\n");
	S(f, "250 mx.test\r\n", CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_string_equal(f->s.fail_reason, "STARTTLS not offered");
	fake_free(f);
}

static void test_mail_params(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.eightbit = true;
	f->cfg.smtputf8 = true;
	hello(f, "250-mx.test\r\n250-size 50000\r\n250-8bitmime\r\n250 SMTPUTF8\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n");
	fake_free(f);

	/* BODY= only when offered; SIZE without a number is no limit. */
	f = fake_new("b@y.test", NULL);
	f->cfg.eightbit = true;
	hello(f, "250-mx.test\r\n250 SIZE\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test> SIZE=1234\r\n");
	fake_free(f);

	/* RFC 1870 §6: over the announced maximum, not sent at all. */
	f = fake_new("b@y.test", NULL);
	hello(f, "250-mx.test\r\n250 SIZE 1000\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 552, "5.3.4",
	           "message larger than the peer's SIZE limit");
	fake_free(f);
}

static void test_smtputf8_not_offered(void **state)
{
	struct fake *f = fake_new("b@y.test", "c@y.test", NULL);
	f->cfg.smtputf8 = true;
	hello(f, ehlo_pipelining, CLIENT_DONE);
	C(f, "QUIT\r\n");
	for (size_t i = 0; i < 2; i++)
		rcpt_check(&f->rcpts[i], CLIENT_RCPT_PERMFAIL, 553, "5.6.7",
		           "peer does not support SMTPUTF8");
	fake_free(f);
}

static void test_mail_refused_pipelined(void **state)
{
	struct fake *f = fake_new("b@y.test", "c@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
	S(f, "451 4.3.0 try later\r\n", CLIENT_READ);
	/* The later replies still come and are read, and change nothing. */
	S(f, "503 5.5.1 need MAIL\r\n", CLIENT_READ);
	S(f, "503 5.5.1 need MAIL\r\n", CLIENT_READ);
	S(f, "503 5.5.1 need MAIL\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	for (size_t i = 0; i < 2; i++)
		rcpt_check(&f->rcpts[i], CLIENT_RCPT_TEMPFAIL, 451, "4.3.0", "4.3.0 try later");
	assert_string_equal(f->s.fail_reason, "MAIL refused");
	fake_free(f);

	/* 550, and a broken peer that says 354 to DATA anyway: the lone dot
	 * ends the empty message (RFC 2920 §3.1), its reply is ignored. */
	f = fake_new("b@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
	S(f, "550 5.7.1 sender rejected\r\n", CLIENT_READ);
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "354 go\r\n", CLIENT_SEND);
	C(f, ".\r\n");
	assert_false(client_session_data_sent(&f->s));
	S(f, "250 queued\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 550, "5.7.1", "5.7.1 sender rejected");
	fake_free(f);
}

static void test_mail_refused_one_at_a_time(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	S(f, "550 5.1.8 bad sender\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 550, "5.1.8", "5.1.8 bad sender");
	fake_free(f);
}

static void test_mixed_rcpt(void **state)
{
	struct fake *f = fake_new("ok@y.test", "gone@y.test", "many@y.test", "later@y.test",
	                          "old@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<ok@y.test>\r\nRCPT TO:<gone@y.test>\r\n"
	     "RCPT TO:<many@y.test>\r\nRCPT TO:<later@y.test>\r\nRCPT TO:<old@y.test>\r\nDATA\r\n");
	S(f, "250 2.1.0 Ok\r\n", CLIENT_READ);
	S(f, "250 2.1.5 Ok\r\n", CLIENT_READ);
	S(f, "550 5.1.1 <gone@y.test>: Recipient address rejected\r\n", CLIENT_READ);
	S(f, "452 4.5.3 Too many recipients\r\n", CLIENT_READ);
	S(f, "451 4.7.1 greylisted\r\n", CLIENT_READ);
	/* RFC 5321 §4.5.3.1.10: 552 here means too many recipients. */
	S(f, "552 too many\r\n", CLIENT_READ);
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 250, "2.1.5", "2.1.5 Ok");
	S(f, "250 2.0.0 queued\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_DELIVERED, 250, "2.0.0", "2.0.0 queued");
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_PERMFAIL, 550, "5.1.1",
	           "5.1.1 <gone@y.test>: Recipient address rejected");
	rcpt_check(&f->rcpts[2], CLIENT_RCPT_DEFERRED, 452, "4.5.3", "4.5.3 Too many recipients");
	rcpt_check(&f->rcpts[3], CLIENT_RCPT_TEMPFAIL, 451, "4.7.1", "4.7.1 greylisted");
	rcpt_check(&f->rcpts[4], CLIENT_RCPT_DEFERRED, 552, "", "too many");
	fake_free(f);
}

static void test_all_rcpt_refused(void **state)
{
	struct fake *f = fake_new("b@y.test", "c@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "550 5.1.1 no such user\r\n", CLIENT_READ);
	S(f, "451 4.3.0 later\r\n", CLIENT_READ);
	S(f, "554 5.5.1 No valid recipients\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 550, "5.1.1", "5.1.1 no such user");
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_TEMPFAIL, 451, "4.3.0", "4.3.0 later");
	assert_null(f->s.fail_reason);
	fake_free(f);

	/* Without pipelining DATA is not sent at all. */
	f = fake_new("b@y.test", NULL);
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<b@y.test>\r\n");
	S(f, "550 5.1.1 no such user\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	fake_free(f);
}

static void test_data_refused(void **state)
{
	struct fake *f = fake_new("b@y.test", "c@y.test", NULL);
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<b@y.test>\r\n");
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<c@y.test>\r\n");
	S(f, "550 5.1.1 unknown\r\n", CLIENT_SEND);
	C(f, "DATA\r\n");
	S(f, "451 4.3.0 local trouble\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_TEMPFAIL, 451, "4.3.0", "4.3.0 local trouble");
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_PERMFAIL, 550, "5.1.1", "5.1.1 unknown");
	assert_string_equal(f->s.fail_reason, "DATA refused");
	fake_free(f);
}

/* Up to the 354 with pipelining and one recipient. */
static struct fake *to_data(void)
{
	struct fake *f = fake_new("b@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	return f;
}

static void test_final_reply(void **state)
{
	struct fake *f = to_data();
	S(f, "451 4.3.0 queue write failed\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_TEMPFAIL, 451, "4.3.0", "4.3.0 queue write failed");
	assert_string_equal(f->s.fail_reason, "message refused");
	fake_free(f);

	/* Gmail's multi-line refusal: kept whole, lines joined by '\n'. */
	f = to_data();
	S(f, "550-5.7.1 [192.0.2.1] Our system has detected that this message is\r\n"
	     "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n"
	     "550-5.7.1 this message has been blocked. For more information, go to\r\n"
	     "550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError - gsmtp\r\n",
	  CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 550, "5.7.1",
	           "5.7.1 [192.0.2.1] Our system has detected that this message is\n"
	           "5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n"
	           "5.7.1 this message has been blocked. For more information, go to\n"
	           "5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError - gsmtp");
	fake_free(f);

	f = to_data();
	S(f, "554 5.7.0 rejected\r\n", CLIENT_DONE);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 554, "5.7.0", "5.7.0 rejected");
	fake_free(f);
}

static void test_lost(void **state)
{
	/* Before the message: accepted or not, back to PENDING for the next
	 * host; outcomes already decided stay. */
	struct fake *f = fake_new("b@y.test", "c@y.test", "d@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
	     "RCPT TO:<d@y.test>\r\nDATA\r\n");
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "550 5.1.1 unknown\r\n", CLIENT_READ);
	client_session_lost(&f->s);
	assert_false(client_session_data_sent(&f->s));
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_PERMFAIL, 550, "5.1.1", "5.1.1 unknown");
	rcpt_check(&f->rcpts[2], CLIENT_RCPT_PENDING, 0, "", NULL);
	C(f, "");
	fake_free(f);

	/* During the message, before the dot: nothing can have been
	 * delivered, back to PENDING for the next host. */
	f = to_data();
	assert_true(client_session_data_sent(&f->s));
	client_session_lost(&f->s);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);

	/* After the dot: unknown, so TEMPFAIL (RFC 5321 §4.5.3.2.6). */
	f = to_data();
	client_session_dot_sent(&f->s);
	client_session_lost(&f->s);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_TEMPFAIL, 0, "",
	           "connection lost after the message was sent: outcome unknown");
	assert_string_equal(f->s.fail_reason, "connection lost");
	fake_free(f);

	/* After DONE nothing changes. */
	f = to_data();
	S(f, "250 ok\r\n", CLIENT_DONE);
	client_session_lost(&f->s);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_DELIVERED, 250, "", "ok");
	fake_free(f);
}

/* Codes the parser never gives (it wants 2xx-5xx) or that make no sense
 * for the step: temporary, never success, never a crash. */
static void test_garbage_codes(void **state)
{
	struct smtp_server_reply r = { .code = 150, .enhanced = "", .text = "weird", .nlines = 1 };

	struct fake *f = fake_new("b@y.test", NULL);
	fake_start(f);
	action_check(client_session_reply(&f->s, &r), CLIENT_NEXT_HOST);
	assert_int_equal(f->s.fail_code, 150);
	fake_free(f);

	f = fake_new("b@y.test", "c@y.test", NULL);
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "250 ok\r\n", CLIENT_READ);
	r.code = 354;   /* 3xx to RCPT */
	action_check(client_session_reply(&f->s, &r), CLIENT_READ);
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_TEMPFAIL, 354, "", "weird");
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	r.code = 0;     /* nonsense to the dot */
	r.text = NULL;
	action_check(client_session_reply(&f->s, &r), CLIENT_DONE);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_TEMPFAIL, 0, "", "");
	fake_free(f);

	/* 2xx to DATA (no 354): the message cannot go. */
	f = fake_new("b@y.test", NULL);
	hello(f, ehlo_plain, CLIENT_SEND);
	S(f, "250 ok\r\n", CLIENT_SEND);
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
	S(f, "250 sure\r\n", CLIENT_DONE);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_TEMPFAIL, 250, "", "sure");
	fake_free(f);

	/* 1xx to EHLO is not 500/502: no HELO, next host. */
	f = fake_new("b@y.test", NULL);
	fake_start(f);
	S(f, "220 hi\r\n", CLIENT_SEND);
	r.code = 199;
	r.text = "x";
	action_check(client_session_reply(&f->s, &r), CLIENT_NEXT_HOST);
	C(f, "EHLO client.test\r\n");
	fake_free(f);
}

static void test_ehlo_lines_parsed_carefully(void **state)
{
	/* Keywords on the first line (the greeting) do not count; a keyword
	 * must be the whole word. */
	struct fake *f = fake_new("b@y.test", NULL);
	hello(f, "250-PIPELINING mx.test\r\n250-PIPELININGX\r\n250-SIZES 10\r\n250 X-SIZE\r\n",
	      CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	fake_free(f);
}

/* Connection reuse (keep_open): a transaction to its end on a pipelining
 * peer; the output must then be empty (the connection waits). */
static void transaction_pipelined(struct fake *f, const char *rcpt, const char *dot_reply,
                                  enum client_action want)
{
	char cmds[256];
	snprintf(cmds, sizeof(cmds), "MAIL FROM:<a@example.test>\r\nRCPT TO:<%s>\r\nDATA\r\n", rcpt);
	C(f, cmds);
	S(f, "250 2.1.0 Ok\r\n", CLIENT_READ);
	S(f, "250 2.1.5 Ok\r\n", CLIENT_READ);
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	client_session_dot_sent(&f->s);
	S(f, dot_reply, want);
}

static void test_reuse_two_transactions(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	transaction_pipelined(f, "b@y.test", "250 2.0.0 queued as A\r\n", CLIENT_IDLE);
	C(f, "");   /* no QUIT: the connection waits for the next message */
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_DELIVERED, 250, "2.0.0", "2.0.0 queued as A");
	assert_false(client_session_reused(&f->s));
	client_session_transaction_clear(&f->s);
	assert_null(f->rcpts[0].text);

	/* The second message: its own recipients and size; RSET first
	 * (RFC 5321 §4.1.1.5), the extensions learnt at EHLO kept. */
	struct client_rcpt two[1] = { { .address = "c@z.test" } };
	struct client_session_config cfg2 = f->cfg;
	cfg2.message_size = 99;
	action_check(client_session_next(&f->s, &cfg2, "d@example.test", two, 1), CLIENT_SEND);
	C(f, "RSET\r\n");
	assert_true(client_session_reused(&f->s));
	assert_false(client_session_data_sent(&f->s));
	S(f, "250 2.0.0 Ok\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<d@example.test>\r\nRCPT TO:<c@z.test>\r\nDATA\r\n");
	S(f, "250 2.1.0 Ok\r\n", CLIENT_READ);
	S(f, "250 2.1.5 Ok\r\n", CLIENT_READ);
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	S(f, "250 2.0.0 queued as B\r\n", CLIENT_IDLE);
	rcpt_check(&two[0], CLIENT_RCPT_DELIVERED, 250, "2.0.0", "2.0.0 queued as B");
	client_session_transaction_clear(&f->s);
	assert_null(two[0].text);
	action_check(client_session_quit(&f->s), CLIENT_DONE);
	C(f, "QUIT\r\n");
	fake_free(f);
}

/* A failed transaction leaves the connection usable: RSET clears what the
 * peer kept of it (a MAIL accepted with no recipient). */
static void test_reuse_after_failed_transaction(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<b@y.test>\r\n");
	S(f, "550 5.1.1 unknown\r\n", CLIENT_IDLE);
	C(f, "");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 550, "5.1.1", "5.1.1 unknown");
	client_session_transaction_clear(&f->s);
	struct client_rcpt two[1] = { { .address = "c@y.test" } };
	action_check(client_session_next(&f->s, &f->cfg, "a@example.test", two, 1), CLIENT_SEND);
	C(f, "RSET\r\n");
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	client_session_transaction_clear(&f->s);
	fake_free(f);

	/* The final dot refused with 5xx: still a clean end. */
	f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	transaction_pipelined(f, "b@y.test", "554 5.7.1 spam\r\n", CLIENT_IDLE);
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 554, "5.7.1", "5.7.1 spam");
	fake_free(f);

	/* SMTPUTF8 needed and not offered: decided here, nothing was sent,
	 * the connection serves the next message. */
	f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	f->cfg.smtputf8 = true;
	hello(f, ehlo_pipelining, CLIENT_IDLE);
	C(f, "");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PERMFAIL, 553, "5.6.7", "peer does not support SMTPUTF8");
	fake_free(f);
}

/* RFC 5321 §3.8: after a 421 the peer closes; never reused, whichever step
 * it answered. */
static void test_no_reuse_after_421(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	transaction_pipelined(f, "b@y.test", "421 4.3.2 shutting down\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_TEMPFAIL, 421, "4.3.2", "4.3.2 shutting down");
	fake_free(f);

	/* 421 to one RCPT of two, the other delivered: the transaction ends,
	 * the connection with it. */
	f = fake_new("b@y.test", "c@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "250 ok\r\n", CLIENT_READ);
	S(f, "421 4.7.0 too busy\r\n", CLIENT_READ);
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	S(f, "250 ok\r\n", CLIENT_DONE);
	C(f, "QUIT\r\n");
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_DELIVERED, 250, "", "ok");
	rcpt_check(&f->rcpts[1], CLIENT_RCPT_TEMPFAIL, 421, "4.7.0", "4.7.0 too busy");
	fake_free(f);

	/* 421 to the RSET: no QUIT (the peer is gone), recipients untouched
	 * for a new connection. */
	f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	transaction_pipelined(f, "b@y.test", "250 ok\r\n", CLIENT_IDLE);
	client_session_transaction_clear(&f->s);
	struct client_rcpt two[1] = { { .address = "c@y.test" } };
	action_check(client_session_next(&f->s, &f->cfg, "a@example.test", two, 1), CLIENT_SEND);
	C(f, "RSET\r\n");
	S(f, "421 4.4.2 idle too long\r\n", CLIENT_NEXT_HOST);
	C(f, "");
	rcpt_check(&two[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	assert_string_equal(f->s.fail_reason, "RSET refused");
	assert_true(client_session_reused(&f->s));
	fake_free(f);

	/* A 421 that comes while idle (the peer's idle timeout): the next
	 * transaction is refused at once, nothing sent. */
	f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	transaction_pipelined(f, "b@y.test", "250 ok\r\n", CLIENT_IDLE);
	S(f, "421 4.4.2 timeout\r\n", CLIENT_IDLE);
	client_session_transaction_clear(&f->s);
	two[0] = (struct client_rcpt){ .address = "c@y.test" };
	action_check(client_session_next(&f->s, &f->cfg, "a@example.test", two, 1),
	             CLIENT_NEXT_HOST);
	C(f, "");
	rcpt_check(&two[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);
}

static void test_rset_refused(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_plain, CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	S(f, "250 ok\r\n", CLIENT_SEND);
	S(f, "250 ok\r\n", CLIENT_SEND);
	C(f, "RCPT TO:<b@y.test>\r\nDATA\r\n");
	S(f, "354 go\r\n", CLIENT_SEND_DATA);
	S(f, "250 ok\r\n", CLIENT_IDLE);
	client_session_transaction_clear(&f->s);
	struct client_rcpt two[2] = { { .address = "c@y.test" }, { .address = "d@y.test" } };
	action_check(client_session_next(&f->s, &f->cfg, "a@example.test", two, 2), CLIENT_SEND);
	C(f, "RSET\r\n");
	S(f, "502 5.5.1 RSET not implemented\r\n", CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	rcpt_check(&two[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	rcpt_check(&two[1], CLIENT_RCPT_PENDING, 0, "", NULL);
	assert_string_equal(f->s.fail_reason, "RSET refused");
	assert_int_equal(f->s.fail_code, 502);
	fake_free(f);

	/* Lost while waiting for the RSET's reply: nothing of the message
	 * went, the recipients stay PENDING. */
	f = fake_new("b@y.test", NULL);
	f->cfg.keep_open = true;
	hello(f, ehlo_pipelining, CLIENT_SEND);
	transaction_pipelined(f, "b@y.test", "250 ok\r\n", CLIENT_IDLE);
	client_session_transaction_clear(&f->s);
	two[0] = (struct client_rcpt){ .address = "c@y.test" };
	action_check(client_session_next(&f->s, &f->cfg, "a@example.test", two, 1), CLIENT_SEND);
	client_session_lost(&f->s);
	rcpt_check(&two[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);
}

/* AUTH (RFC 4954) to a relay: after TLS, PLAIN when offered (even listed
 * after LOGIN), its initial response in the command; the output marked
 * secret for transcripts. */
static void test_auth_plain_after_tls(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_REQUIRE;
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	hello(f, "250-relay.test\r\n250-AUTH LOGIN\r\n250 STARTTLS\r\n", CLIENT_SEND);
	C(f, "STARTTLS\r\n");
	S(f, "220 go\r\n", CLIENT_STARTTLS);
	action_check(client_session_tls_done(&f->s), CLIENT_SEND);
	C(f, "EHLO client.test\r\n");
	S(f, "250-relay.test\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n", CLIENT_SEND);
	assert_true(client_session_output_secret(&f->s));
	C(f, "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	S(f, "235 2.7.0 Authentication successful\r\n", CLIENT_SEND);
	assert_false(client_session_output_secret(&f->s));
	C(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
	fake_free(f);
}

static void test_auth_login(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_NONE;
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	f->cfg.auth_plaintext_ok = true;   /* 127.0.0.1 */
	hello(f, "250-relay.test\r\n250 AUTH=LOGIN\r\n", CLIENT_SEND);
	C(f, "AUTH LOGIN\r\n");
	assert_false(client_session_output_secret(&f->s));
	S(f, "334 VXNlcm5hbWU6\r\n", CLIENT_SEND);
	assert_true(client_session_output_secret(&f->s));
	C(f, "dXNlcg==\r\n");
	S(f, "334 UGFzc3dvcmQ6\r\n", CLIENT_SEND);
	assert_true(client_session_output_secret(&f->s));
	C(f, "c2VjcmV0\r\n");
	S(f, "235 2.7.0 ok\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	fake_free(f);
}

static void test_auth_refusals(void **state)
{
	/* No TLS, not loopback: nothing of the credentials is sent. */
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_NONE;
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	hello(f, "250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n", CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_true(f->s.auth_failed);
	assert_non_null(strstr(f->s.fail_reason, "without TLS"));
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);

	/* No AUTH offered. */
	f = fake_new("b@y.test", NULL);
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	f->cfg.auth_plaintext_ok = true;
	hello(f, ehlo_pipelining, CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_true(f->s.auth_failed);
	assert_non_null(strstr(f->s.fail_reason, "offers no AUTH"));
	fake_free(f);

	/* Only mechanisms we do not know. */
	f = fake_new("b@y.test", NULL);
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	f->cfg.auth_plaintext_ok = true;
	hello(f, "250-relay.test\r\n250 AUTH CRAM-MD5 GSSAPI\r\n", CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_true(f->s.auth_failed);
	fake_free(f);

	/* 535: the reply kept, the reason names the options. */
	f = fake_new("b@y.test", NULL);
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "wrong";
	f->cfg.auth_plaintext_ok = true;
	hello(f, "250-relay.test\r\n250 AUTH PLAIN\r\n", CLIENT_SEND);
	C(f, "AUTH PLAIN AHVzZXIAd3Jvbmc=\r\n");
	S(f, "535 5.7.8 Authentication credentials invalid\r\n", CLIENT_NEXT_HOST);
	C(f, "QUIT\r\n");
	assert_true(f->s.auth_failed);
	assert_int_equal(f->s.fail_code, 535);
	assert_string_equal(f->s.fail_enhanced, "5.7.8");
	assert_non_null(strstr(f->s.fail_reason, "--auth-user"));
	rcpt_check(&f->rcpts[0], CLIENT_RCPT_PENDING, 0, "", NULL);
	fake_free(f);

	/* 454: the relay's own trouble, said so. */
	f = fake_new("b@y.test", NULL);
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	f->cfg.auth_plaintext_ok = true;
	hello(f, "250-relay.test\r\n250 AUTH PLAIN\r\n", CLIENT_SEND);
	C(f, "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	S(f, "454 4.7.0 Temporary authentication failure\r\n", CLIENT_NEXT_HOST);
	assert_true(f->s.auth_failed);
	assert_non_null(strstr(f->s.fail_reason, "temporarily"));
	fake_free(f);

	/* A third LOGIN prompt: cancelled with "*". */
	f = fake_new("b@y.test", NULL);
	f->cfg.auth_user = "user";
	f->cfg.auth_password = "secret";
	f->cfg.auth_plaintext_ok = true;
	hello(f, "250-relay.test\r\n250 AUTH LOGIN\r\n", CLIENT_SEND);
	C(f, "AUTH LOGIN\r\n");
	S(f, "334 VXNlcm5hbWU6\r\n", CLIENT_SEND);
	C(f, "dXNlcg==\r\n");
	S(f, "334 UGFzc3dvcmQ6\r\n", CLIENT_SEND);
	C(f, "c2VjcmV0\r\n");
	S(f, "334 TW9yZTo=\r\n", CLIENT_SEND);
	C(f, "*\r\n");
	S(f, "501 5.0.0 cancelled\r\n", CLIENT_NEXT_HOST);
	assert_true(f->s.auth_failed);
	fake_free(f);
}

/* smtps://: TLS before the greeting, no STARTTLS. */
static void test_implicit_tls(void **state)
{
	struct fake *f = fake_new("b@y.test", NULL);
	f->cfg.tls = CLIENT_TLS_REQUIRE;
	fake_start(f);
	client_session_tls_implicit(&f->s);
	S(f, "220 relay.test ESMTP\r\n", CLIENT_SEND);
	C(f, "EHLO client.test\r\n");
	S(f, "250-relay.test\r\n250 STARTTLS\r\n", CLIENT_SEND);
	C(f, "MAIL FROM:<a@example.test>\r\n");
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelining_one_batch),
		cmocka_unit_test(test_one_at_a_time),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_no_helo_after_421_or_554),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_starttls_offered),
		cmocka_unit_test(test_starttls_after_tls_not_again),
		cmocka_unit_test(test_starttls_opportunistic_not_offered_or_refused),
		cmocka_unit_test(test_starttls_required),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_smtputf8_not_offered),
		cmocka_unit_test(test_mail_refused_pipelined),
		cmocka_unit_test(test_mail_refused_one_at_a_time),
		cmocka_unit_test(test_mixed_rcpt),
		cmocka_unit_test(test_all_rcpt_refused),
		cmocka_unit_test(test_data_refused),
		cmocka_unit_test(test_final_reply),
		cmocka_unit_test(test_lost),
		cmocka_unit_test(test_garbage_codes),
		cmocka_unit_test(test_ehlo_lines_parsed_carefully),
		cmocka_unit_test(test_reuse_two_transactions),
		cmocka_unit_test(test_reuse_after_failed_transaction),
		cmocka_unit_test(test_no_reuse_after_421),
		cmocka_unit_test(test_rset_refused),
		cmocka_unit_test(test_auth_plain_after_tls),
		cmocka_unit_test(test_auth_login),
		cmocka_unit_test(test_auth_refusals),
		cmocka_unit_test(test_implicit_tls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
