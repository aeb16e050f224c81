/* Unit tests for delivery status notifications (src/msg/dsn.c): the exact
 * structure of a bounce, the fields of the delivery-status part, status
 * codes derived from replies, folding of long replies and header lines,
 * hostile octets in addresses and replies, several recipients, delayed
 * against failed, empty and huge original header sections, refusals.
 * Every DSN built is also checked whole by dsn_check_message
 * (tests/unit/dsn_check.h, shared with the fuzz harness).
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the cases as seeds for
 * tests/fuzz/fuzz_msg_dsn.c, in its input format (see there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dsn_check.h"
#include "msg/dsn.h"
#include "testutil.h"

#define S(s) s, sizeof(s) - 1

static const char simple_original[] =
	"Received: from x by y\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.com\r\n"
	"Subject: lunch\r\n"
	"\r\n"
	"Shall we?\r\n";

static const char gmail_reply[] =
	"550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
	"550-5.1.1 double-checking the recipient's email address for typos or\r\n"
	"550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si\r\n";

static struct msg_dsn_recipient rcpt_base(void)
{
	struct msg_dsn_recipient r = {
		.final_recipient = "bob@example.com",
		.action = MSG_DSN_FAILED,
		.remote_mta = "mx.example.com",
		.diagnostic = "550 5.1.1 no such user",
		.diagnostic_len = 22,
		.last_attempt = 1739437000,
	};
	return r;
}

static struct msg_dsn dsn_base(const struct msg_dsn_recipient *rcpts, size_t n)
{
	struct msg_dsn d = {
		.reporting_mta = "mail.example.net",
		.sender = "alice@example.org",
		.arrival = 1739430000,
		.original = simple_original,
		.original_len = sizeof(simple_original) - 1,
		.rcpts = rcpts,
		.rcpt_count = n,
	};
	d.stamp.date = 1739437445;
	d.stamp.tz_minutes = 60;
	for (size_t i = 0; i < MSG_RANDOM_LEN; i++)
		d.stamp.random[i] = (unsigned char)i;
	return d;
}

/* Builds d, checks it whole, returns it (NUL-terminated) in out. */
static void build_ok(const struct msg_dsn *d, struct buf *out)
{
	struct msg_error err;
	memset(&err, 0, sizeof(err));
	buf_init(out, 16u * 1024u * 1024u);
	int rc = msg_dsn_build(d, out, &err);
	if (rc != 0)
		print_error("msg_dsn_build: %s\n", err.text);
	assert_int_equal(rc, 0);
	const char *why = dsn_check_message(out->data, out->len, d->rcpt_count);
	if (why) {
		print_error("dsn_check_message: %s\n", why);
		test_print_escaped(out->data, out->len);
	}
	assert_null(why);
}

/* The part of the message after "--boundary\r\n" number k (0..2) up to
 * the next delimiter, in a malloc'd string. */
static char *part_of(const char *msg, size_t k)
{
	const char *bq = strstr(msg, "boundary=\"");
	assert_non_null(bq);
	bq += 10;
	size_t blen = (size_t)(strchr(bq, '"') - bq);
	char delim[96];
	snprintf(delim, sizeof(delim), "\r\n--%.*s", (int)blen, bq);
	const char *p = msg;
	for (size_t i = 0; i <= k; i++) {
		p = strstr(p, delim);
		assert_non_null(p);
		p += strlen(delim) + 2;
	}
	const char *e = strstr(p, delim);
	assert_non_null(e);
	char *s = malloc((size_t)(e - p) + 1);
	assert_non_null(s);
	memcpy(s, p, (size_t)(e - p));
	s[e - p] = '\0';
	return s;
}

/* The part's content (after its header section). */
static const char *content_of(const char *part)
{
	const char *c = strstr(part, "\r\n\r\n");
	assert_non_null(c);
	return c + 4;
}

/* An unfolded field value from a block of fields ("" when absent). */
static const char *field_of(const char *block, const char *name)
{
	static char v[65536];
	size_t nlen = strlen(name);
	for (const char *p = block; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
			size_t o = 0;
			const char *q = p + nlen + 1;
			while (*q == ' ')
				q++;
			for (; *q && o + 1 < sizeof(v); q++) {
				if (q[0] == '\r' && q[1] == '\n' && q[2] != ' ' && q[2] != '\t')
					break;
				if (q[0] == '\r' && q[1] == '\n') {
					q++;
					continue;
				}
				v[o++] = *q;
			}
			v[o] = '\0';
			return v;
		}
	}
	return "";
}

/* ---- structure ------------------------------------------------------------ */

static void test_structure_exact(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);
	static const char expected[] =
		"From: MAILER-DAEMON@mail.example.net (Mail Delivery System)\r\n"
		"To: alice@example.org\r\n"
		"Subject: Undelivered Mail Returned to Sender\r\n"
		"Date: Thu, 13 Feb 2025 10:04:05 +0100\r\n"
		"Message-ID: <20250213090405.000102030405060708090a0b@mail.example.net>\r\n"
		"Auto-Submitted: auto-replied\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/report; report-type=delivery-status;\r\n"
		"\tboundary=\"=_rawmail_dsn_0c0d0e0f1011121314151617\"\r\n"
		"\r\n"
		"This is a MIME-encapsulated message.\r\n"
		"\r\n"
		"--=_rawmail_dsn_0c0d0e0f1011121314151617\r\n"
		"Content-Description: Notification\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"This is the mail system at host mail.example.net.\r\n"
		"\r\n"
		"Your message could not be delivered to one or more\r\n"
		"recipients; the mail system has given up on them.\r\n"
		"The header section of your message is attached.\r\n"
		"\r\n"
		"<bob@example.com>: delivery failed, no further attempts (status 5.1.1)\r\n"
		"    Last attempt: Thu, 13 Feb 2025 09:56:40 +0100\r\n"
		"    The server mx.example.com answered:\r\n"
		"        550 5.1.1 no such user\r\n"
		"\r\n"
		"\r\n"
		"--=_rawmail_dsn_0c0d0e0f1011121314151617\r\n"
		"Content-Description: Delivery report\r\n"
		"Content-Type: message/delivery-status\r\n"
		"\r\n"
		"Reporting-MTA: dns; mail.example.net\r\n"
		"Arrival-Date: Thu, 13 Feb 2025 08:00:00 +0100\r\n"
		"\r\n"
		"Final-Recipient: rfc822; bob@example.com\r\n"
		"Action: failed\r\n"
		"Status: 5.1.1\r\n"
		"Remote-MTA: dns; mx.example.com\r\n"
		"Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
		"Last-Attempt-Date: Thu, 13 Feb 2025 09:56:40 +0100\r\n"
		"\r\n"
		"--=_rawmail_dsn_0c0d0e0f1011121314151617\r\n"
		"Content-Description: Undelivered Message Headers\r\n"
		"Content-Type: text/rfc822-headers\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"Received: from x by y\r\n"
		"From: Alice <alice@example.org>\r\n"
		"To: bob@example.com\r\n"
		"Subject: lunch\r\n"
		"\r\n"
		"--=_rawmail_dsn_0c0d0e0f1011121314151617--\r\n";
	if (strcmp(out.data, expected) != 0) {
		print_error("got:\n%s\n", out.data);
		fail();
	}
	buf_free(&out);
}

/* Appending to a buffer that already holds something keeps it. */
static void test_appends(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	buf_init(&out, 1u << 20);
	assert_int_equal(buf_append_str(&out, "Return-Path: <>\r\n"), 0);
	struct msg_error err;
	assert_int_equal(msg_dsn_build(&d, &out, &err), 0);
	assert_memory_equal(out.data, "Return-Path: <>\r\nFrom: MAILER-DAEMON@", 37);
	buf_free(&out);
}

/* ---- delayed, multi-recipient -------------------------------------------- */

static void test_delayed(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	r.action = MSG_DSN_DELAYED;
	r.diagnostic = "451 greylisted, come back later";
	r.diagnostic_len = strlen(r.diagnostic);
	r.will_retry_until = 1739869445;   /* + 5 days */
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);
	assert_non_null(strstr(out.data, "\r\nSubject: Delayed Mail (still being retried)\r\n"));
	char *ds = part_of(out.data, 1);
	assert_non_null(strstr(ds, "\r\n\r\nFinal-Recipient: rfc822; bob@example.com\r\n"
	                           "Action: delayed\r\n"
	                           "Status: 4.0.0\r\n"));
	assert_non_null(strstr(ds, "\r\nWill-Retry-Until: Tue, 18 Feb 2025 10:04:05 +0100\r\n"));
	free(ds);
	char *text = part_of(out.data, 0);
	assert_non_null(strstr(text, "not delivered yet, still trying"));
	assert_non_null(strstr(text, "you do not need to send the message again"));
	assert_null(strstr(text, "given up"));
	free(text);
	buf_free(&out);

	/* Will-Retry-Until is for delayed recipients only (RFC 3464 §2.3.9). */
	r.action = MSG_DSN_FAILED;
	build_ok(&d, &out);
	assert_null(strstr(out.data, "Will-Retry-Until"));
	assert_non_null(strstr(out.data, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	buf_free(&out);
}

static void test_multi_recipient(void **state)
{
	struct msg_dsn_recipient r[3] = { rcpt_base(), rcpt_base(), rcpt_base() };
	r[0].final_recipient = "one@example.com";
	r[0].original_recipient = "One@Example.COM";
	r[1].final_recipient = "two@example.com";
	r[1].action = MSG_DSN_DELAYED;
	r[1].diagnostic = "421 4.4.2 timeout";
	r[1].diagnostic_len = strlen(r[1].diagnostic);
	r[2].final_recipient = "three@[192.0.2.1]";
	r[2].remote_mta = NULL;
	r[2].diagnostic = NULL;
	r[2].diagnostic_len = 0;
	r[2].reason = "connection refused by 192.0.2.1";
	r[2].last_attempt = 0;
	struct msg_dsn d = dsn_base(r, 3);
	struct buf out;
	build_ok(&d, &out);
	/* One failed recipient makes it a bounce. */
	assert_non_null(strstr(out.data, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	char *ds = part_of(out.data, 1);
	const char *c = content_of(ds);
	const char *b1 = strstr(c, "\r\n\r\n");
	assert_non_null(b1);
	const char *b2 = strstr(b1 + 4, "\r\n\r\n");
	assert_non_null(b2);
	const char *b3 = strstr(b2 + 4, "\r\n\r\n");
	assert_non_null(b3);
	assert_string_equal(field_of(b1 + 4, "Original-Recipient"), "rfc822; One@Example.COM");
	assert_string_equal(field_of(b1 + 4, "Final-Recipient"), "rfc822; one@example.com");
	assert_string_equal(field_of(b2 + 4, "Final-Recipient"), "rfc822; two@example.com");
	assert_string_equal(field_of(b2 + 4, "Action"), "delayed");
	assert_string_equal(field_of(b2 + 4, "Status"), "4.4.2");
	assert_string_equal(field_of(b3 + 4, "Final-Recipient"), "rfc822; three@[192.0.2.1]");
	assert_string_equal(field_of(b3 + 4, "Status"), "5.0.0");
	assert_string_equal(field_of(b3 + 4, "Diagnostic-Code"),
	                    "X-Rawmail; connection refused by 192.0.2.1");
	assert_string_equal(field_of(b3 + 4, "Remote-MTA"), "");
	assert_string_equal(field_of(b3 + 4, "Last-Attempt-Date"), "");
	free(ds);
	char *text = part_of(out.data, 0);
	const char *t1 = strstr(text, "<one@example.com>: delivery failed");
	const char *t2 = strstr(text, "<two@example.com>: not delivered yet");
	const char *t3 = strstr(text, "<three@[192.0.2.1]>: delivery failed");
	assert_true(t1 && t2 && t3 && t1 < t2 && t2 < t3);
	assert_non_null(strstr(text, "(originally addressed to <One@Example.COM>)"));
	assert_non_null(strstr(text, "Reason: connection refused by 192.0.2.1"));
	free(text);
	buf_free(&out);
}

/* ---- status ------------------------------------------------------------------ */

struct status_case {
	const char *name;
	enum msg_dsn_action action;
	const char *given;
	const char *reply;
	const char *expected;
};

static const struct status_case status_cases[] = {
	{ "enhanced_multiline", MSG_DSN_FAILED, NULL, gmail_reply, "5.1.1" },
	{ "basic_5xx", MSG_DSN_FAILED, NULL, "550 no such user here", "5.0.0" },
	{ "basic_4xx", MSG_DSN_DELAYED, NULL, "421 too busy", "4.0.0" },
	{ "basic_only_code", MSG_DSN_FAILED, NULL, "554", "5.0.0" },
	{ "class_mismatch", MSG_DSN_FAILED, NULL, "550 4.2.2 mailbox full", "5.0.0" },
	{ "expired_4xx_failed", MSG_DSN_FAILED, NULL, "451 4.3.0 try later", "4.3.0" },
	{ "given_wins", MSG_DSN_FAILED, "4.4.7", "451 4.3.0 try later", "4.4.7" },
	{ "given_invalid", MSG_DSN_FAILED, "5.1", "550 5.7.1 spam", "5.7.1" },
	{ "given_garbage", MSG_DSN_FAILED, "5.1.1\r\nX: y", NULL, "5.0.0" },
	{ "three_digit_parts", MSG_DSN_FAILED, NULL, "550 5.123.456 odd", "5.123.456" },
	{ "four_digit_part", MSG_DSN_FAILED, NULL, "550 5.1234.1 odd", "5.0.0" },
	{ "no_reply_failed", MSG_DSN_FAILED, NULL, NULL, "5.0.0" },
	{ "no_reply_delayed", MSG_DSN_DELAYED, NULL, NULL, "4.0.0" },
	{ "not_a_reply", MSG_DSN_DELAYED, NULL, "connection timed out", "4.0.0" },
	{ "reply_2xx", MSG_DSN_FAILED, NULL, "250 2.0.0 ok?", "5.0.0" },
	{ "no_space", MSG_DSN_FAILED, NULL, "5501 x", "5.0.0" },
};

static void test_status_case(void **state)
{
	const struct status_case *c = *state;
	struct msg_dsn_recipient r = rcpt_base();
	r.action = c->action;
	r.status = c->given;
	r.diagnostic = c->reply;
	r.diagnostic_len = c->reply ? strlen(c->reply) : 0;
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);
	char *ds = part_of(out.data, 1);
	const char *blk = strstr(content_of(ds), "\r\n\r\n");
	assert_non_null(blk);
	assert_string_equal(field_of(blk + 4, "Status"), c->expected);
	free(ds);
	buf_free(&out);
}

/* ---- the diagnostic ---------------------------------------------------------- */

static void test_diagnostic_multiline(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	r.diagnostic = gmail_reply;
	r.diagnostic_len = strlen(gmail_reply);
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);
	char *ds = part_of(out.data, 1);
	/* RFC 3464 §2.3.6: the whole reply, its lines joined by a space,
	 * folded at 78 characters where it has spaces. */
	assert_string_equal(field_of(ds, "Diagnostic-Code"),
	                    "smtp; 550-5.1.1 The email account that you tried to reach does not "
	                    "exist. Please try 550-5.1.1 double-checking the recipient's email "
	                    "address for typos or 550 5.1.1 unnecessary spaces. "
	                    "https://support.google.com/mail/?p=NoSuchUser a1si");
	const char *f = strstr(ds, "Diagnostic-Code:");
	const char *end = strstr(f, "\r\nLast-Attempt-Date:");
	assert_non_null(end);
	for (const char *l = f; l < end;) {
		const char *e = strstr(l, "\r\n");
		assert_true(e - l <= 78);
		l = e + 2;
	}
	free(ds);
	/* The text part shows each line of the reply as it came. */
	char *text = part_of(out.data, 0);
	assert_non_null(strstr(text, "\r\n        550-5.1.1 double-checking the recipient's email "
	                             "address for typos or\r\n"));
	free(text);
	buf_free(&out);
}

/* A reply with a word longer than a line is cut at 998 octets. */
static void test_diagnostic_long_word(void **state)
{
	static char reply[5000];
	memcpy(reply, "550 ", 4);
	memset(reply + 4, 'x', sizeof(reply) - 4);
	struct msg_dsn_recipient r = rcpt_base();
	r.diagnostic = reply;
	r.diagnostic_len = sizeof(reply);
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);   /* checks every line <= 998 */
	char *ds = part_of(out.data, 1);
	/* Unfolded, the value is the reply with the cuts as spaces. */
	const char *v = field_of(ds, "Diagnostic-Code");
	size_t xs = 0;
	for (const char *p = v; *p; p++)
		xs += *p == 'x';
	assert_int_equal(xs, sizeof(reply) - 4);
	free(ds);
	/* In the text part a line that long makes it quoted-printable. */
	char *text = part_of(out.data, 0);
	assert_non_null(strstr(text, "Content-Transfer-Encoding: quoted-printable\r\n"));
	free(text);
	buf_free(&out);
}

/* A huge reply is cut at DSN_DIAGNOSTIC_MAX, and says so. */
static void test_diagnostic_huge(void **state)
{
	size_t len = 200000;
	char *reply = malloc(len);
	assert_non_null(reply);
	for (size_t i = 0; i < len; i++)
		reply[i] = i % 60 == 59 ? '\n' : "550-5.0.0 yes "[i % 60 % 14];
	struct msg_dsn_recipient r = rcpt_base();
	r.diagnostic = reply;
	r.diagnostic_len = len;
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);
	assert_true(out.len < 4 * DSN_DIAGNOSTIC_MAX);
	char *ds = part_of(out.data, 1);
	const char *v = field_of(ds, "Diagnostic-Code");
	assert_true(strlen(v) <= DSN_DIAGNOSTIC_MAX + 16);
	assert_string_equal(v + strlen(v) - 4, " ...");
	free(ds);
	free(reply);
	buf_free(&out);
}

/* ---- hostile octets ----------------------------------------------------------- */

/* No line of the output starts with what the attacker tried to add. */
static void assert_no_line(const char *msg, const char *start)
{
	size_t n = strlen(start);
	if (strncmp(msg, start, n) == 0)
		fail_msg("message starts with %s", start);
	for (const char *p = msg; (p = strstr(p, "\r\n")) != NULL; p += 2)
		if (strncmp(p + 2, start, n) == 0)
			fail_msg("a line starts with %s", start);
}

static void test_hostile_reply(void **state)
{
	static const char reply[] =
		"550 5.1.1 no\r\nSubject: injected\r\n\r\n--=_rawmail_dsn_0c0d0e0f1011121314151617--"
		"\r\nContent-Type: text/html\r\n\0NUL \x1b[2J\x07 \x9b\xff\xc3\xa9 \r\r\n\n"
		"Final-Recipient: rfc822; evil@example.com";
	struct msg_dsn_recipient r = rcpt_base();
	r.diagnostic = reply;
	r.diagnostic_len = sizeof(reply) - 1;
	r.remote_mta = "mx\r\nX-Evil: 1";
	r.reason = "x\r\nY: 2";
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);   /* one recipient block, no stray boundary */
	assert_no_line(out.data, "Subject: injected");
	assert_no_line(out.data, "Content-Type: text/html");
	assert_no_line(out.data, "Final-Recipient: rfc822; evil");
	assert_no_line(out.data, "X-Evil");
	for (size_t i = 0; i < out.len; i++) {
		unsigned char c = (unsigned char)out.data[i];
		assert_true(c == '\r' || c == '\n' || c == '\t' || (c >= 32 && c < 127));
	}
	char *ds = part_of(out.data, 1);
	assert_string_equal(field_of(ds, "Remote-MTA"), "dns; mx\\x0d\\x0aX-Evil: 1");
	const char *v = field_of(ds, "Diagnostic-Code");
	assert_non_null(strstr(v, "550 5.1.1 no Subject: injected --=_rawmail_dsn_"));
	/* NUL, ESC, BEL, C1, an invalid octet, U+00E9. */
	assert_non_null(strstr(v, "\\x00NUL \\x1b[2J\\x07 \\x9b\\xff\\x{E9}"));
	free(ds);
	buf_free(&out);
}

static void test_hostile_addresses(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	r.final_recipient = "a\r\nBcc: x@y\x01";
	r.original_recipient = "b+c=d\\e@\x7f";
	struct msg_dsn d = dsn_base(&r, 1);
	struct buf out;
	build_ok(&d, &out);
	assert_no_line(out.data, "Bcc:");
	char *ds = part_of(out.data, 1);
	/* RFC 6533 §3 utf-8-addr-xtext: only QCHARs stay. */
	assert_string_equal(field_of(ds, "Final-Recipient"),
	                    "utf-8; a\\x{5C}x0d\\x{5C}x0aBcc:\\x{20}x@y\\x{5C}x01");
	assert_string_equal(field_of(ds, "Original-Recipient"),
	                    "utf-8; b\\x{2B}c\\x{3D}d\\x{5C}e@\\x{5C}x7f");
	free(ds);
	char *text = part_of(out.data, 0);
	assert_non_null(strstr(text, "<a\\x0d\\x0aBcc: x@y\\x01>: delivery failed"));
	free(text);
	buf_free(&out);

	/* The sender becomes To: a line break or control there is refused
	 * (it could not be delivered anyway). */
	struct msg_error err;
	buf_init(&out, 1u << 20);
	d.sender = "alice@example.org\r\nBcc: x@y";
	assert_int_equal(msg_dsn_build(&d, &out, &err), -1);
	assert_int_equal(err.status, MSG_ERR_INJECTION);
	assert_int_equal(out.len, 0);
	static const char *const bad_senders[] = { "alice\x01@example.org", "alice\x7f@example.org",
	                                           "j\xf6rg@example.de", "a\xc2\x9b@example.org" };
	for (size_t i = 0; i < sizeof(bad_senders) / sizeof(bad_senders[0]); i++) {
		d.sender = bad_senders[i];
		assert_int_equal(msg_dsn_build(&d, &out, &err), -1);
		assert_int_equal(err.status, MSG_ERR_USAGE);
		assert_int_equal(out.len, 0);
	}
	buf_free(&out);
}

static void test_utf8(void **state)
{
	static const char original[] =
		"From: J\xc3\xb6rg <j\xc3\xb6rg@example.de>\r\n"
		"Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\r\n"
		"X-Bad: \xff\x01=\r\n"
		"\r\nbody";
	struct msg_dsn_recipient r = rcpt_base();
	r.final_recipient = "m\xc3\xbcller@b\xc3\xbc" "cher.example";
	r.diagnostic = "550 5.1.1 <m\xc3\xbcller@b\xc3\xbc" "cher.example> unknown";
	r.diagnostic_len = strlen(r.diagnostic);
	struct msg_dsn d = dsn_base(&r, 1);
	d.sender = "j\xc3\xb6rg@example.de";
	d.original = original;
	d.original_len = sizeof(original) - 1;
	struct buf out;
	build_ok(&d, &out);   /* 8-bit only in To */
	assert_non_null(strstr(out.data, "\r\nTo: j\xc3\xb6rg@example.de\r\n"));
	char *ds = part_of(out.data, 1);
	assert_string_equal(field_of(ds, "Final-Recipient"),
	                    "utf-8; m\\x{FC}ller@b\\x{FC}cher.example");
	assert_string_equal(field_of(ds, "Diagnostic-Code"),
	                    "smtp; 550 5.1.1 <m\\x{FC}ller@b\\x{FC}cher.example> unknown");
	free(ds);
	char *text = part_of(out.data, 0);
	assert_non_null(strstr(text, "Content-Type: text/plain; charset=UTF-8\r\n"
	                             "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_non_null(strstr(text, "<m=C3=BCller@b=C3=BCcher.example>"));
	free(text);
	char *hp = part_of(out.data, 2);
	assert_non_null(strstr(hp, "Content-Type: text/rfc822-headers; charset=UTF-8\r\n"
	                           "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_non_null(strstr(hp, "\r\nFrom: J=C3=B6rg <j=C3=B6rg@example.de>\r\n"));
	assert_non_null(strstr(hp, "\r\nX-Bad: =FF=01=3D\r\n"));
	assert_null(strstr(hp, "body"));
	free(hp);
	buf_free(&out);
}

/* ---- the original header section ------------------------------------------------ */

struct headers_case {
	const char *name;
	const char *in;
	size_t len;
	const char *expected;   /* the part's content */
};

static const struct headers_case headers_cases[] = {
	{ "empty_message", S(""), "" },
	{ "empty_header_section", S("\r\nbody\r\n"), "" },
	{ "empty_header_section_lf", S("\nbody\n"), "" },
	{ "lf_only", S("A: 1\nB: 2\n\nbody"), "A: 1\r\nB: 2\r\n" },
	{ "bare_cr_and_lf", S("A: 1\rB: 2\nC: 3\r\n\r\nbody"), "A: 1\r\nB: 2\r\nC: 3\r\n" },
	{ "cr_cr_lf", S("A: 1\r\r\nB: 2\r\n\r\n"), "A: 1\r\n" },
	{ "no_body", S("A: 1\r\nB: 2"), "A: 1\r\nB: 2\r\n" },
	{ "folded_kept", S("A: 1\r\n  2\r\n\tB\r\n\r\nC: 3\r\n"), "A: 1\r\n  2\r\n\tB\r\n" },
	{ "body_not_copied", S("A: 1\r\n\r\nSecret: body\r\n"), "A: 1\r\n" },
	{ "boundary_lookalike", S("X: 1\r\n--=_rawmail_dsn_0c0d0e0f1011121314151617--\r\n\r\n"),
	  "X: 1\r\n--=_rawmail_dsn_0c0d0e0f1011121314151617--\r\n" },
};

static void test_headers_case(void **state)
{
	const struct headers_case *c = *state;
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	d.original = c->in;
	d.original_len = c->len;
	struct buf out;
	build_ok(&d, &out);   /* the boundary lookalike must not end the message */
	char *hp = part_of(out.data, 2);
	assert_string_equal(content_of(hp), c->expected);
	free(hp);
	buf_free(&out);
}

/* The boundary changes when the original holds it. */
static void test_boundary_collision(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	d.original = "X: =_rawmail_dsn_0c0d0e0f1011121314151617 =_rawmail_dsn_0c0d0e0f1011121314151617_1\r\n";
	d.original_len = strlen(d.original);
	struct buf out;
	build_ok(&d, &out);
	assert_non_null(strstr(out.data, "boundary=\"=_rawmail_dsn_0c0d0e0f1011121314151617_2\""));
	buf_free(&out);
}

/* Lines over 998 octets are folded before white space when they have
 * some (unfolding gives them back), else cut with CR LF SP. */
static void test_headers_long_lines(void **state)
{
	size_t words = 1500;
	struct buf in;
	buf_init(&in, 1u << 20);
	assert_int_equal(buf_append_str(&in, "X-Words:"), 0);
	for (size_t i = 0; i < words; i++)
		assert_int_equal(buf_append_str(&in, " word"), 0);
	assert_int_equal(buf_append_str(&in, "\r\nX-Blob: "), 0);
	for (size_t i = 0; i < 2500; i++)
		assert_int_equal(buf_append(&in, "b", 1), 0);
	assert_int_equal(buf_append_str(&in, "\r\n\r\nbody\r\n"), 0);

	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	d.original = in.data;
	d.original_len = in.len;
	struct buf out;
	build_ok(&d, &out);
	char *hp = part_of(out.data, 2);
	const char *c = content_of(hp);
	/* Unfold (RFC 5322 §2.2.3: remove CR LF before white space). */
	struct buf u;
	buf_init(&u, 1u << 20);
	for (const char *p = c; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
			p++;
			continue;
		}
		assert_int_equal(buf_append(&u, p, 1), 0);
	}
	const char *blob = strstr(in.data, "\r\nX-Blob");
	/* X-Words comes back exactly. */
	assert_memory_equal(u.data, in.data, (size_t)(blob - in.data));
	/* X-Blob comes back with one space per cut (two cuts). */
	const char *ub = strstr(u.data, "X-Blob: ");
	assert_non_null(ub);
	size_t bs = 0, spaces = 0;
	for (const char *p = ub + 8; *p != '\r'; p++) {
		bs += *p == 'b';
		spaces += *p == ' ';
	}
	assert_int_equal(bs, 2500);
	assert_int_equal(spaces, 2);
	buf_free(&u);
	free(hp);
	buf_free(&out);
	buf_free(&in);
}

/* A huge header section is cut at DSN_HEADERS_MAX before a field; a
 * single field bigger than that is cut at a line. */
static void test_headers_huge(void **state)
{
	struct buf in;
	buf_init(&in, 8u << 20);
	for (size_t i = 0; in.len < 200000; i++)
		assert_int_equal(buf_printf(&in, "X-Field-%zu: value\r\n continued %zu\r\n", i, i), 0);
	assert_int_equal(buf_append_str(&in, "\r\nbody\r\n"), 0);
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	d.original = in.data;
	d.original_len = in.len;
	struct buf out;
	build_ok(&d, &out);
	assert_true(out.len < DSN_HEADERS_MAX + 8192);
	char *hp = part_of(out.data, 2);
	const char *c = content_of(hp);
	size_t clen = strlen(c);
	assert_true(clen <= DSN_HEADERS_MAX);
	assert_true(clen > DSN_HEADERS_MAX - 100);
	/* Whole fields: it is a prefix of the input, ending after a
	 * continuation line. */
	assert_memory_equal(c, in.data, clen);
	assert_true(strncmp(in.data + clen, "X-Field-", 8) == 0);
	free(hp);
	buf_free(&out);

	/* One field of 100,000 folded lines. */
	buf_reset(&in);
	assert_int_equal(buf_append_str(&in, "X-Huge: start\r\n"), 0);
	while (in.len < 100000)
		assert_int_equal(buf_append_str(&in, " more and more\r\n"), 0);
	d.original = in.data;
	d.original_len = in.len;
	build_ok(&d, &out);
	hp = part_of(out.data, 2);
	c = content_of(hp);
	clen = strlen(c);
	assert_true(clen <= DSN_HEADERS_MAX && clen > DSN_HEADERS_MAX - 100);
	assert_memory_equal(c, in.data, clen);
	free(hp);
	buf_free(&out);
	buf_free(&in);
}

/* ---- refusals and limits ---------------------------------------------------------- */

static void test_refusals(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d;
	struct buf out;
	struct msg_error err;
	buf_init(&out, 1u << 20);

	d = dsn_base(&r, 1);
	d.sender = "";   /* RFC 5321 §4.5.5: never a bounce to <> */
	assert_int_equal(msg_dsn_build(&d, &out, &err), -1);
	assert_int_equal(err.status, MSG_ERR_USAGE);
	d.sender = NULL;
	assert_int_equal(msg_dsn_build(&d, &out, &err), -1);

	d = dsn_base(&r, 0);
	assert_int_equal(msg_dsn_build(&d, &out, &err), -1);
	assert_int_equal(err.status, MSG_ERR_USAGE);

	static const char *const bad_hosts[] = { "", "a b", "host\r\nX: y", ".host", "a..b",
	                                         "[1.2.3.4", "h\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		d = dsn_base(&r, 1);
		d.reporting_mta = bad_hosts[i];
		assert_int_equal(msg_dsn_build(&d, &out, &err), -1);
		assert_int_equal(err.status, MSG_ERR_USAGE);
	}
	d = dsn_base(&r, 1);
	d.reporting_mta = "[192.0.2.7]";
	assert_int_equal(msg_dsn_build(&d, &out, &err), 0);
	assert_non_null(strstr(out.data, "From: MAILER-DAEMON@[192.0.2.7] (Mail Delivery System)"));
	buf_reset(&out);

	struct msg_dsn_recipient bad = rcpt_base();
	bad.final_recipient = "";
	d = dsn_base(&bad, 1);
	assert_int_equal(msg_dsn_build(&d, &out, &err), -1);
	assert_int_equal(err.status, MSG_ERR_USAGE);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void test_too_big(void **state)
{
	struct msg_dsn_recipient r = rcpt_base();
	struct msg_dsn d = dsn_base(&r, 1);
	struct msg_error err;
	for (size_t max = 0; max < 3000; max += 97) {
		struct buf out;
		buf_init(&out, max);
		int rc = msg_dsn_build(&d, &out, &err);
		if (rc == 0) {
			assert_true(max >= out.len);
			buf_free(&out);
			return;
		}
		assert_int_equal(err.status, MSG_ERR_TOO_BIG);
		assert_int_equal(out.len, 0);
		buf_free(&out);
	}
	fail_msg("no DSN within 3000 octets");
}

/* ---- seeds for tests/fuzz/fuzz_msg_dsn.c --------------------------------------------- */

/* The harness's format: a selector octet, then fields separated by
 * "\xff\x1e": host, sender, original, and per recipient final, orcpt,
 * status, remote MTA, reply, reason (see fuzz_msg_dsn.c). */
static void seed_field(struct buf *s, const char *p, size_t len, bool first)
{
	if (!first)
		assert_int_equal(buf_append(s, "\xff\x1e", 2), 0);
	if (p)
		assert_int_equal(buf_append(s, p, len), 0);
}

static void seed_str(struct buf *s, const char *p)
{
	seed_field(s, p, p ? strlen(p) : 0, false);
}

static int seed_write(const char *dir, size_t index, const char *name, const struct msg_dsn *d)
{
	unsigned char sel = 0;
	for (size_t i = 0; i < d->rcpt_count && i < 6; i++)
		if (d->rcpts[i].action == MSG_DSN_DELAYED)
			sel |= (unsigned char)(1u << i);
	struct buf s;
	buf_init(&s, 16u << 20);
	seed_field(&s, d->reporting_mta, strlen(d->reporting_mta), true);
	seed_str(&s, d->sender);
	seed_field(&s, d->original, d->original_len, false);
	for (size_t i = 0; i < d->rcpt_count; i++) {
		const struct msg_dsn_recipient *r = &d->rcpts[i];
		seed_str(&s, r->final_recipient);
		seed_str(&s, r->original_recipient);
		seed_str(&s, r->status);
		seed_str(&s, r->remote_mta);
		seed_field(&s, r->diagnostic, r->diagnostic_len, false);
		seed_str(&s, r->reason);
	}
	int rc = test_seed_write(dir, "dsn", index, name, sel, s.data, s.len);
	buf_free(&s);
	return rc;
}

static int write_seeds(const char *dir)
{
	struct msg_dsn_recipient r[3] = { rcpt_base(), rcpt_base(), rcpt_base() };
	r[1].action = MSG_DSN_DELAYED;
	r[1].diagnostic = gmail_reply;
	r[1].diagnostic_len = strlen(gmail_reply);
	r[2].final_recipient = "m\xc3\xbcller@b\xc3\xbc" "cher.example";
	r[2].original_recipient = "a\r\nBcc: x";
	r[2].diagnostic = "550 x\r\n\0\x1b--=_rawmail_dsn_0c0d0e0f1011121314151617";
	r[2].diagnostic_len = 45;
	r[2].reason = "refused";
	size_t k = 0;
	struct msg_dsn d = dsn_base(r, 1);
	if (seed_write(dir, k++, "simple", &d) < 0)
		return -1;
	d = dsn_base(r, 3);
	if (seed_write(dir, k++, "three", &d) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(headers_cases) / sizeof(headers_cases[0]); i++) {
		d = dsn_base(r, 1);
		d.original = headers_cases[i].in;
		d.original_len = headers_cases[i].len;
		if (seed_write(dir, k++, headers_cases[i].name, &d) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
		struct msg_dsn_recipient one = rcpt_base();
		one.action = status_cases[i].action;
		one.status = status_cases[i].given;
		one.diagnostic = status_cases[i].reply;
		one.diagnostic_len = one.diagnostic ? strlen(one.diagnostic) : 0;
		d = dsn_base(&one, 1);
		if (seed_write(dir, k++, status_cases[i].name, &d) < 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;

	struct CMUnitTest tests[64];
	size_t n = 0;
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_structure_exact);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_appends);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_delayed);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_multi_recipient);
	for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++)
		tests[n++] = (struct CMUnitTest){ .name = status_cases[i].name,
		                                  .test_func = test_status_case,
		                                  .initial_state = (void *)&status_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_diagnostic_multiline);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_diagnostic_long_word);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_diagnostic_huge);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hostile_reply);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hostile_addresses);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_utf8);
	for (size_t i = 0; i < sizeof(headers_cases) / sizeof(headers_cases[0]); i++)
		tests[n++] = (struct CMUnitTest){ .name = headers_cases[i].name,
		                                  .test_func = test_headers_case,
		                                  .initial_state = (void *)&headers_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_boundary_collision);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_headers_long_lines);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_headers_huge);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_refusals);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_too_big);
	return _cmocka_run_group_tests("msg_dsn", tests, n, NULL, NULL);
}
