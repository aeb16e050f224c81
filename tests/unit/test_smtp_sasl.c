/* SASL PLAIN and LOGIN (src/smtp/sasl.c): a table of server exchanges
 * (the AUTH argument, then the client's lines, and what each step must
 * answer), the bounds, the wiping of passwords, the log form of the user,
 * and the client side against the server side.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every table exchange
 * (its lines joined by LF, behind the selector octet) as seeds for
 * tests/fuzz/fuzz_smtp_sasl.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/sasl.h"
#include "testutil.h"

#define USER_PROMPT "VXNlcm5hbWU6"  /* base64 "Username:" */
#define PASS_PROMPT "UGFzc3dvcmQ6"  /* base64 "Password:" */
#define ALICE_SECRET "AGFsaWNlAHNlY3JldA=="  /* NUL alice NUL secret */

struct sasl_case {
	const char *name;
	const char *lines[4];      /* lines[0]: the AUTH argument; NULL ends */
	const char *challenges[3]; /* the 334 text after each line but the last */
	/* after the last line: 0 done, 334 a challenge (final_challenge), else
	 * the error reply's code and enhanced code */
	int code;
	const char *enhanced;
	const char *final_challenge;
	const char *authzid, *authcid, *password; /* when done */
};

static const struct sasl_case cases[] = {
	/* PLAIN (RFC 4616 §2) */
	{ "plain-ir", { "PLAIN " ALICE_SECRET }, { NULL }, 0, NULL, NULL, "", "alice", "secret" },
	{ "plain-ir-lowercase", { "plain " ALICE_SECRET }, { NULL }, 0, NULL, NULL, "", "alice",
	  "secret" },
	{ "plain-mixedcase", { "PlAiN " ALICE_SECRET }, { NULL }, 0, NULL, NULL, "", "alice",
	  "secret" },
	{ "plain-no-ir", { "PLAIN", ALICE_SECRET }, { "" }, 0, NULL, NULL, "", "alice", "secret" },
	{ "plain-waiting", { "PLAIN" }, { NULL }, 334, NULL, "", NULL, NULL, NULL },
	{ "plain-ir-empty-eq", { "PLAIN =" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "plain-empty-line", { "PLAIN", "" }, { "" }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "plain-eq-line", { "PLAIN", "=" }, { "" }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "plain-authzid-same", { "PLAIN YWxpY2UAYWxpY2UAc2VjcmV0" }, { NULL }, 0, NULL, NULL,
	  "alice", "alice", "secret" },
	{ "plain-authzid-other", { "PLAIN Ym9iAGFsaWNlAHNlY3JldA==" }, { NULL }, 535, "5.7.8",
	  NULL, NULL, NULL, NULL },
	{ "plain-authzid-prefix", { "PLAIN YWxpYwBhbGljZQBzZWNyZXQ=" }, { NULL }, 535, "5.7.8",
	  NULL, NULL, NULL, NULL },
	{ "plain-one-nul", { "PLAIN YWxpY2UAc2VjcmV0" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL,
	  NULL },
	{ "plain-no-nul", { "PLAIN YWxpY2VzZWNyZXQ=" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL,
	  NULL },
	{ "plain-three-nuls", { "PLAIN AGFsaWNlAHNlYwByZXQ=" }, { NULL }, 501, "5.5.2", NULL,
	  NULL, NULL, NULL },
	{ "plain-trailing-nul", { "PLAIN AGFsaWNlAHNlY3JldAA=" }, { NULL }, 501, "5.5.2", NULL,
	  NULL, NULL, NULL },
	{ "plain-empty-user", { "PLAIN AABzZWNyZXQ=" }, { NULL }, 535, "5.7.8", NULL, NULL, NULL,
	  NULL },
	{ "plain-empty-password", { "PLAIN AGFsaWNlAA==" }, { NULL }, 535, "5.7.8", NULL, NULL,
	  NULL, NULL },
	{ "plain-user-c0", { "PLAIN AGFsAWljZQBzZWNyZXQ=" }, { NULL }, 535, "5.7.8", NULL, NULL,
	  NULL, NULL },
	{ "plain-user-tab", { "PLAIN AGFsCWljZQBzZWNyZXQ=" }, { NULL }, 535, "5.7.8", NULL, NULL,
	  NULL, NULL },
	{ "plain-user-del", { "PLAIN AGFsf2ljZQBzZWNyZXQ=" }, { NULL }, 535, "5.7.8", NULL, NULL,
	  NULL, NULL },
	{ "plain-user-c1-utf8", { "PLAIN AGFswptpY2UAc2VjcmV0" }, { NULL }, 535, "5.7.8", NULL,
	  NULL, NULL, NULL },
	{ "plain-user-c1-raw", { "PLAIN AGFsm2ljZQBzZWNyZXQ=" }, { NULL }, 535, "5.7.8", NULL,
	  NULL, NULL, NULL },
	{ "plain-user-bad-utf8", { "PLAIN AGFs/2ljZQBzZWNyZXQ=" }, { NULL }, 535, "5.7.8", NULL,
	  NULL, NULL, NULL },
	{ "plain-utf8", { "PLAIN AGrDvHJnZW4Ac8OpY3JldA==" }, { NULL }, 0, NULL, NULL, "",
	  "j\xc3\xbcrgen", "s\xc3\xa9" "cret" },
	{ "plain-password-any-octet", { "PLAIN AGFsaWNlAHAgYQFzc/8=" }, { NULL }, 0, NULL, NULL,
	  "", "alice", "p a\x01ss\xff" },
	{ "plain-user-quotes", { "PLAIN ACJxXHUiAHNlY3JldA==" }, { NULL }, 0, NULL, NULL, "",
	  "\"q\\u\"", "secret" },
	/* base64 (RFC 4648 §4, strict; RFC 4954 §4: 501 5.5.2) */
	{ "b64-short", { "PLAIN AGFsaWNlAHNlY3JldA=" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL,
	  NULL },
	{ "b64-no-padding", { "PLAIN AGFsaWNlAHNlY3JldA" }, { NULL }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "b64-space-inside", { "PLAIN AGFsaWNl AHNlY3JldA==" }, { NULL }, 501, "5.5.2", NULL,
	  NULL, NULL, NULL },
	{ "b64-trailing-garbage", { "PLAIN AGFsaWNlAHNlY3JldA==AAAA" }, { NULL }, 501, "5.5.2",
	  NULL, NULL, NULL, NULL },
	{ "b64-trailing-space", { "PLAIN " ALICE_SECRET " " }, { NULL }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "b64-trailing-cr", { "PLAIN", ALICE_SECRET "\r" }, { "" }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "b64-pad-bits", { "PLAIN AGFsaWNlAHNlY3JldB==" }, { NULL }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "b64-bad-char", { "PLAIN AGFs!WNlAHNlY3JldA==" }, { NULL }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "b64-url-alphabet", { "PLAIN AGFs_WNlAHNlY3JldA==" }, { NULL }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "b64-pad-first", { "PLAIN =AAA" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "b64-pad-three", { "PLAIN A===" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "b64-pad-four", { "PLAIN ====" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "b64-pad-inside", { "PLAIN AA=A" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "b64-ir-empty", { "PLAIN " }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "b64-ir-star", { "PLAIN *" }, { NULL }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "b64-two-stars", { "PLAIN", "**" }, { "" }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	/* mechanism (RFC 4954 §4, §6) */
	{ "mech-unknown", { "CRAM-MD5" }, { NULL }, 504, "5.5.4", NULL, NULL, NULL, NULL },
	{ "mech-prefix", { "PLAINX " ALICE_SECRET }, { NULL }, 504, "5.5.4", NULL, NULL, NULL,
	  NULL },
	{ "mech-short", { "PLAI" }, { NULL }, 504, "5.5.4", NULL, NULL, NULL, NULL },
	{ "mech-none", { "" }, { NULL }, 501, "5.5.4", NULL, NULL, NULL, NULL },
	{ "mech-leading-space", { " PLAIN" }, { NULL }, 501, "5.5.4", NULL, NULL, NULL, NULL },
	/* cancel (RFC 4954 §4: "*" gets 501) */
	{ "cancel-plain", { "PLAIN", "*" }, { "" }, 501, "5.0.0", NULL, NULL, NULL, NULL },
	{ "cancel-login-user", { "LOGIN", "*" }, { USER_PROMPT }, 501, "5.0.0", NULL, NULL, NULL,
	  NULL },
	{ "cancel-login-password", { "LOGIN", "YWxpY2U=", "*" }, { USER_PROMPT, PASS_PROMPT },
	  501, "5.0.0", NULL, NULL, NULL, NULL },
	{ "cancel-login-ir-password", { "LOGIN YWxpY2U=", "*" }, { PASS_PROMPT }, 501, "5.0.0",
	  NULL, NULL, NULL, NULL },
	/* LOGIN (draft-murchison-sasl-login) */
	{ "login", { "LOGIN", "YWxpY2U=", "c2VjcmV0" }, { USER_PROMPT, PASS_PROMPT }, 0, NULL,
	  NULL, "", "alice", "secret" },
	{ "login-lowercase", { "login", "YWxpY2U=", "c2VjcmV0" }, { USER_PROMPT, PASS_PROMPT }, 0,
	  NULL, NULL, "", "alice", "secret" },
	{ "login-ir", { "LOGIN YWxpY2U=", "c2VjcmV0" }, { PASS_PROMPT }, 0, NULL, NULL, "",
	  "alice", "secret" },
	{ "login-utf8", { "LOGIN w6lsw6h2ZQ==", "c2VjcmV0" }, { PASS_PROMPT }, 0, NULL, NULL, "",
	  "\xc3\xa9l\xc3\xa8ve", "secret" },
	{ "login-waiting-user", { "LOGIN" }, { NULL }, 334, NULL, USER_PROMPT, NULL, NULL, NULL },
	{ "login-waiting-password", { "LOGIN", "YWxpY2U=" }, { USER_PROMPT }, 334, NULL,
	  PASS_PROMPT, NULL, NULL, NULL },
	{ "login-ir-empty-eq", { "LOGIN =" }, { NULL }, 535, "5.7.8", NULL, NULL, NULL, NULL },
	{ "login-empty-user", { "LOGIN", "" }, { USER_PROMPT }, 535, "5.7.8", NULL, NULL, NULL,
	  NULL },
	{ "login-empty-password", { "LOGIN", "YWxpY2U=", "" }, { USER_PROMPT, PASS_PROMPT }, 535,
	  "5.7.8", NULL, NULL, NULL, NULL },
	{ "login-nul-user", { "LOGIN", "YWwAaWNl" }, { USER_PROMPT }, 501, "5.5.2", NULL, NULL,
	  NULL, NULL },
	{ "login-nul-password", { "LOGIN", "YWxpY2U=", "c2VjAHJldA==" },
	  { USER_PROMPT, PASS_PROMPT }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "login-user-c0", { "LOGIN", "YWwBaWNl" }, { USER_PROMPT }, 535, "5.7.8", NULL, NULL,
	  NULL, NULL },
	{ "login-bad-b64-user", { "LOGIN", "YWxpY2V=" }, { USER_PROMPT }, 501, "5.5.2", NULL,
	  NULL, NULL, NULL },
	{ "login-bad-b64-password", { "LOGIN", "YWxpY2U=", "c2VjcmV0=" },
	  { USER_PROMPT, PASS_PROMPT }, 501, "5.5.2", NULL, NULL, NULL, NULL },
	{ "login-eq-password", { "LOGIN", "YWxpY2U=", "=" }, { USER_PROMPT, PASS_PROMPT }, 501,
	  "5.5.2", NULL, NULL, NULL, NULL },
};

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* Runs one exchange: every line but the last must bring its challenge;
 * the last, the case's outcome (a done exchange's fields checked). */
static void run_case(const struct sasl_case *c)
{
	struct smtp_sasl_server s;
	smtp_sasl_server_init(&s);
	size_t n = 0;
	while (n < 4 && c->lines[n])
		n++;
	enum smtp_sasl_step step = SMTP_SASL_ERROR;
	for (size_t i = 0; i < n; i++) {
		const char *l = c->lines[i];
		step = i == 0 ? smtp_sasl_server_start(&s, l, strlen(l))
		              : smtp_sasl_server_line(&s, l, strlen(l));
		if (i + 1 < n) {
			if (step != SMTP_SASL_CHALLENGE || strcmp(s.challenge, c->challenges[i]) != 0) {
				print_error("%s: line %zu: step %d, reply %d %s\n", c->name, i, step,
				            s.reply.code, s.reply.text);
				fail();
			}
		}
	}
	if (c->code == 0) {
		if (step != SMTP_SASL_DONE) {
			print_error("%s: step %d, reply %d %s\n", c->name, step, s.reply.code,
			            s.reply.text);
			fail();
		}
		assert_string_equal(s.authzid, c->authzid);
		assert_string_equal(s.authcid, c->authcid);
		assert_string_equal(s.password, c->password);
		assert_null(s.challenge);
		/* Nothing more is expected. */
		struct smtp_sasl_server t = s;
		assert_int_equal(smtp_sasl_server_line(&t, "*", 1), SMTP_SASL_ERROR);
		assert_int_equal(t.reply.code, 503);
		assert_true(all_zero(t.password, sizeof(t.password)));
		smtp_sasl_server_reset(&t);
	} else if (c->code == 334) {
		if (step != SMTP_SASL_CHALLENGE || strcmp(s.challenge, c->final_challenge) != 0) {
			print_error("%s: step %d, wanted a challenge\n", c->name, step);
			fail();
		}
	} else {
		if (step != SMTP_SASL_ERROR || s.reply.code != c->code ||
		    strcmp(s.reply.enhanced, c->enhanced) != 0) {
			print_error("%s: step %d, reply %d %s %s; wanted %d %s\n", c->name, step,
			            s.reply.code, s.reply.enhanced ? s.reply.enhanced : "-", s.reply.text,
			            c->code, c->enhanced);
			fail();
		}
		/* An error wipes the password and ends the exchange. */
		assert_true(all_zero(s.password, sizeof(s.password)));
		assert_int_equal(smtp_sasl_server_line(&s, ALICE_SECRET, strlen(ALICE_SECRET)),
		                 SMTP_SASL_ERROR);
		assert_int_equal(s.reply.code, 503);
	}
	smtp_sasl_server_reset(&s);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* The reply texts never repeat what the client sent, and format as one
 * valid reply line. */
static void test_error_replies_write(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sasl_case *c = &cases[i];
		if (c->code == 0 || c->code == 334)
			continue;
		struct smtp_sasl_server s;
		smtp_sasl_server_init(&s);
		enum smtp_sasl_step step = smtp_sasl_server_start(&s, c->lines[0], strlen(c->lines[0]));
		for (size_t k = 1; k < 4 && c->lines[k] && step == SMTP_SASL_CHALLENGE; k++)
			step = smtp_sasl_server_line(&s, c->lines[k], strlen(c->lines[k]));
		assert_int_equal(step, SMTP_SASL_ERROR);
		assert_null(strstr(s.reply.text, "alice"));
		assert_null(strstr(s.reply.text, "secret"));
		struct buf out;
		buf_init(&out, 1024);
		assert_int_equal(smtp_reply_write(&out, &s.reply), 0);
		buf_free(&out);
		smtp_sasl_server_reset(&s);
	}
}

static char *b64(const unsigned char *in, size_t len)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		uint32_t w = (uint32_t)in[i] << 16 | (left > 1 ? (uint32_t)in[i + 1] << 8 : 0) |
		             (left > 2 ? in[i + 2] : 0);
		out[n++] = a[(w >> 18) & 63];
		out[n++] = a[(w >> 12) & 63];
		out[n++] = left > 1 ? a[(w >> 6) & 63] : '=';
		out[n++] = left > 2 ? a[w & 63] : '=';
	}
	out[n] = '\0';
	return out;
}

/* PLAIN message NUL user NUL password with the given lengths ('u', 'p'),
 * fed as a continuation line. */
static enum smtp_sasl_step plain_sized(struct smtp_sasl_server *s, size_t ulen, size_t plen)
{
	size_t len = ulen + plen + 2;
	unsigned char *m = malloc(len);
	m[0] = 0;
	memset(m + 1, 'u', ulen);
	m[1 + ulen] = 0;
	memset(m + 2 + ulen, 'p', plen);
	char *line = b64(m, len);
	assert_int_equal(smtp_sasl_server_start(s, "PLAIN", 5), SMTP_SASL_CHALLENGE);
	enum smtp_sasl_step step = smtp_sasl_server_line(s, line, strlen(line));
	free(line);
	free(m);
	return step;
}

static void test_bounds(void **state)
{
	(void)state;
	struct smtp_sasl_server s;
	smtp_sasl_server_init(&s);
	/* RFC 4616 §2: 255-octet names are accepted, passwords up to 1024. */
	assert_int_equal(plain_sized(&s, SMTP_AUTH_NAME_MAX, SMTP_AUTH_PASSWORD_MAX), SMTP_SASL_DONE);
	assert_int_equal(strlen(s.authcid), SMTP_AUTH_NAME_MAX);
	assert_int_equal(strlen(s.password), SMTP_AUTH_PASSWORD_MAX);
	assert_int_equal(plain_sized(&s, SMTP_AUTH_NAME_MAX + 1, 6), SMTP_SASL_ERROR);
	assert_int_equal(s.reply.code, 535);
	assert_int_equal(plain_sized(&s, 5, SMTP_AUTH_PASSWORD_MAX + 1), SMTP_SASL_ERROR);
	assert_int_equal(s.reply.code, 535);

	/* RFC 4954 §4: a line of 12288 octets is read; one more is 500 5.5.6,
	 * as a continuation and as an initial response. */
	char *line = malloc(SMTP_AUTH_LINE_MAX + 8);
	memset(line, 'A', SMTP_AUTH_LINE_MAX + 1);
	assert_int_equal(smtp_sasl_server_start(&s, "PLAIN", 5), SMTP_SASL_CHALLENGE);
	assert_int_equal(smtp_sasl_server_line(&s, line, SMTP_AUTH_LINE_MAX), SMTP_SASL_ERROR);
	assert_int_equal(s.reply.code, 501); /* decoded: all NULs, malformed */
	assert_string_equal(s.reply.enhanced, "5.5.2");
	assert_int_equal(smtp_sasl_server_start(&s, "LOGIN", 5), SMTP_SASL_CHALLENGE);
	assert_int_equal(smtp_sasl_server_line(&s, line, SMTP_AUTH_LINE_MAX + 1), SMTP_SASL_ERROR);
	assert_int_equal(s.reply.code, 500);
	assert_string_equal(s.reply.enhanced, "5.5.6");
	memcpy(line, "PLAIN ", 6);
	memset(line + 6, 'A', SMTP_AUTH_LINE_MAX + 1);
	assert_int_equal(smtp_sasl_server_start(&s, line, 6 + SMTP_AUTH_LINE_MAX + 1),
	                 SMTP_SASL_ERROR);
	assert_int_equal(s.reply.code, 500);
	assert_string_equal(s.reply.enhanced, "5.5.6");
	/* An overlong line that is not base64 at all is still "too long". */
	memset(line, '!', SMTP_AUTH_LINE_MAX + 1);
	assert_int_equal(smtp_sasl_server_start(&s, "PLAIN", 5), SMTP_SASL_CHALLENGE);
	assert_int_equal(smtp_sasl_server_line(&s, line, SMTP_AUTH_LINE_MAX + 1), SMTP_SASL_ERROR);
	assert_int_equal(s.reply.code, 500);
	free(line);
	smtp_sasl_server_reset(&s);
}

static void test_reset_wipes(void **state)
{
	(void)state;
	struct smtp_sasl_server s;
	smtp_sasl_server_init(&s);
	const char *arg = "PLAIN " ALICE_SECRET;
	assert_int_equal(smtp_sasl_server_start(&s, arg, strlen(arg)), SMTP_SASL_DONE);
	assert_string_equal(s.password, "secret");
	smtp_sasl_server_reset(&s);
	assert_true(all_zero(&s, sizeof(s)));
	/* A new start wipes the last exchange's password too. */
	assert_int_equal(smtp_sasl_server_start(&s, arg, strlen(arg)), SMTP_SASL_DONE);
	assert_int_equal(smtp_sasl_server_start(&s, "LOGIN", 5), SMTP_SASL_CHALLENGE);
	assert_true(all_zero(s.password, sizeof(s.password)));
	assert_string_equal(s.authcid, "");
	smtp_sasl_server_reset(&s);
}

static void test_user_log(void **state)
{
	(void)state;
	struct smtp_sasl_server s;
	char log[4 * SMTP_AUTH_NAME_MAX + 1];
	smtp_sasl_server_init(&s);
	smtp_sasl_server_user_log(&s, log, sizeof(log));
	assert_string_equal(log, "");
	const char *arg = "PLAIN ACJxXHUiAHNlY3JldA=="; /* user "q\u" */
	assert_int_equal(smtp_sasl_server_start(&s, arg, strlen(arg)), SMTP_SASL_DONE);
	smtp_sasl_server_user_log(&s, log, sizeof(log));
	assert_string_equal(log, "\\\"q\\\\u\\\"");
	assert_null(strstr(log, "secret"));
	/* Known after LOGIN's first step, and after a refused authzid. */
	assert_int_equal(smtp_sasl_server_start(&s, "LOGIN w6lsw6h2ZQ==", 18), SMTP_SASL_CHALLENGE);
	smtp_sasl_server_user_log(&s, log, sizeof(log));
	assert_string_equal(log, "\xc3\xa9l\xc3\xa8ve");
	arg = "PLAIN Ym9iAGFsaWNlAHNlY3JldA==";
	assert_int_equal(smtp_sasl_server_start(&s, arg, strlen(arg)), SMTP_SASL_ERROR);
	smtp_sasl_server_user_log(&s, log, sizeof(log));
	assert_string_equal(log, "alice");
	/* A small destination is cut, still terminated. */
	smtp_sasl_server_user_log(&s, log, 3);
	assert_string_equal(log, "al");
	smtp_sasl_server_reset(&s);
}

/* The client's responses, accepted by our server. */
static void round_trip(const char *user, const char *password)
{
	char resp[SMTP_SASL_RESPONSE_MAX];
	char arg[SMTP_SASL_RESPONSE_MAX + 8];
	struct smtp_sasl_server s;
	smtp_sasl_server_init(&s);

	int n = smtp_sasl_client_plain(resp, sizeof(resp), user, password);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(resp));
	int m = snprintf(arg, sizeof(arg), "PLAIN %s", resp);
	assert_int_equal(smtp_sasl_server_start(&s, arg, (size_t)m), SMTP_SASL_DONE);
	assert_string_equal(s.authzid, "");
	assert_string_equal(s.authcid, user);
	assert_string_equal(s.password, password);
	/* The same without the initial response. */
	assert_int_equal(smtp_sasl_server_start(&s, "PLAIN", 5), SMTP_SASL_CHALLENGE);
	assert_int_equal(smtp_sasl_server_line(&s, resp, (size_t)n), SMTP_SASL_DONE);
	assert_string_equal(s.password, password);

	assert_int_equal(smtp_sasl_server_start(&s, "LOGIN", 5), SMTP_SASL_CHALLENGE);
	for (unsigned step = 0; step < 2; step++) {
		n = smtp_sasl_client_login(resp, sizeof(resp), s.challenge, strlen(s.challenge), step,
		                           user, password);
		assert_true(n > 0);
		assert_int_equal(smtp_sasl_server_line(&s, resp, (size_t)n),
		                 step == 0 ? SMTP_SASL_CHALLENGE : SMTP_SASL_DONE);
	}
	assert_string_equal(s.authcid, user);
	assert_string_equal(s.password, password);
	smtp_sasl_server_reset(&s);
}

static void test_client_round_trip(void **state)
{
	(void)state;
	round_trip("alice", "secret");
	round_trip("j\xc3\xbcrgen@example.org", "p\xc3\xa4ss w:rd\x01");
	round_trip("a", "b");
	round_trip("ab", "cd");
	char user[SMTP_AUTH_NAME_MAX + 1], password[SMTP_AUTH_PASSWORD_MAX + 1];
	memset(user, 'u', SMTP_AUTH_NAME_MAX);
	user[SMTP_AUTH_NAME_MAX] = '\0';
	memset(password, 'p', SMTP_AUTH_PASSWORD_MAX);
	password[SMTP_AUTH_PASSWORD_MAX] = '\0';
	round_trip(user, password);
}

static void test_client_refusals(void **state)
{
	(void)state;
	char resp[SMTP_SASL_RESPONSE_MAX];
	assert_int_equal(smtp_sasl_client_plain(resp, sizeof(resp), "alice", "secret"), 20);
	assert_string_equal(resp, ALICE_SECRET);
	assert_int_equal(smtp_sasl_client_plain(resp, sizeof(resp), "", "secret"), -1);
	assert_string_equal(resp, "");
	assert_int_equal(smtp_sasl_client_plain(resp, sizeof(resp), "alice", ""), -1);
	assert_int_equal(smtp_sasl_client_plain(resp, 20, "alice", "secret"), -1);
	assert_string_equal(resp, "");
	assert_int_equal(smtp_sasl_client_plain(resp, 21, "alice", "secret"), 20);
	char big[SMTP_AUTH_PASSWORD_MAX + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(smtp_sasl_client_plain(resp, sizeof(resp), "alice", big), -1);
	big[SMTP_AUTH_NAME_MAX + 1] = '\0';
	assert_int_equal(smtp_sasl_client_plain(resp, sizeof(resp), big, "secret"), -1);

	/* LOGIN: the prompt decides; an unknown one goes by position; a third
	 * 334 is not answered. */
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), PASS_PROMPT, 12, 0, "alice",
	                                        "secret"), 8);
	assert_string_equal(resp, "c2VjcmV0");
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), USER_PROMPT, 12, 1, "alice",
	                                        "secret"), 8);
	assert_string_equal(resp, "YWxpY2U=");
	/* "User Name" and "password:" (Microsoft, lower case) */
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), "VXNlciBOYW1l", 12, 1, "alice",
	                                        "secret"), 8);
	assert_string_equal(resp, "YWxpY2U=");
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), "cGFzc3dvcmQ6", 12, 0, "alice",
	                                        "secret"), 8);
	assert_string_equal(resp, "c2VjcmV0");
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), "", 0, 0, "alice", "secret"), 8);
	assert_string_equal(resp, "YWxpY2U=");
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), "!!", 2, 1, "alice", "secret"),
	                 8);
	assert_string_equal(resp, "c2VjcmV0");
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), PASS_PROMPT, 12, 2, "alice",
	                                        "secret"), -1);
	assert_int_equal(smtp_sasl_client_login(resp, sizeof(resp), USER_PROMPT, 12, 0, "",
	                                        "secret"), -1);
	assert_int_equal(smtp_sasl_client_login(resp, 8, USER_PROMPT, 12, 0, "alice", "secret"),
	                 -1);
}

static void test_client_choose(void **state)
{
	(void)state;
	static const struct {
		const char *params;
		enum smtp_sasl_mech mech;
	} t[] = {
		{ "PLAIN LOGIN", SMTP_SASL_PLAIN },
		{ "LOGIN PLAIN", SMTP_SASL_PLAIN },
		{ "CRAM-MD5 DIGEST-MD5 LOGIN PLAIN", SMTP_SASL_PLAIN },
		{ "login", SMTP_SASL_LOGIN },
		{ "CRAM-MD5 LOGIN", SMTP_SASL_LOGIN },
		{ "  plain\t", SMTP_SASL_PLAIN },
		{ "CRAM-MD5", SMTP_SASL_NONE },
		{ "", SMTP_SASL_NONE },
		{ "PLAINX LOGINY XPLAIN", SMTP_SASL_NONE },
		{ "SCRAM-SHA-256 XOAUTH2 OAUTHBEARER", SMTP_SASL_NONE },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (smtp_sasl_client_choose(t[i].params, strlen(t[i].params)) != t[i].mech) {
			print_error("choose \"%s\"\n", t[i].params);
			fail();
		}
	}
}

/* The fuzzer's seed corpus: one file per table exchange, its lines
 * joined by LF (the harness splits on LF). */
static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char joined[512];
		size_t n = 0;
		for (size_t k = 0; k < 4 && cases[i].lines[k]; k++) {
			size_t l = strlen(cases[i].lines[k]);
			if (n + l + 1 > sizeof(joined))
				return -1;
			if (k > 0)
				joined[n++] = '\n';
			memcpy(joined + n, cases[i].lines[k], l);
			n += l;
		}
		if (test_seed_write(dir, "sasl", i, cases[i].name, 0, joined, n) < 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_error_replies_write),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_reset_wipes),
		cmocka_unit_test(test_user_log),
		cmocka_unit_test(test_client_round_trip),
		cmocka_unit_test(test_client_refusals),
		cmocka_unit_test(test_client_choose),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
