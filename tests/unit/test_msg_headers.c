/* Unit tests for raw messages (src/msg/raw.c, raw_lines.c) and the -t
 * address lists (src/msg/address_list.c).
 *
 * Two tables: address lists (a field body → the addresses read, or an
 * error) and raw messages (input, -t or not → output, recipients, or an
 * error).  Every output is prepared a second time and must not change.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every case as a seed for
 * tests/fuzz/fuzz_msg_headers.c, behind its selector octet (bit 0: -t, bit 1:
 * parse the rest as one address list); address-list cases are written as
 * "To: value" messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/raw.h"

#define S(lit) lit, sizeof(lit) - 1

/* Fixed stamp: 2025-02-13 09:04:05 UTC, shown at +0100. */
#define DATE_LINE "Date: Thu, 13 Feb 2025 10:04:05 +0100"
#define MID_LINE "Message-ID: <20250213090405.000102030405060708090a0b@host.example>"
#define FROM_LINE "From: sender@host.example"
#define ADDED_LF FROM_LINE "\n" DATE_LINE "\n" MID_LINE "\n"
#define ADDED_CRLF FROM_LINE "\r\n" DATE_LINE "\r\n" MID_LINE "\r\n"
#define HAVE_ALL "From: f@f\nDate: d\nMessage-ID: <i@d>\n"

static void stamp_fill(struct msg_stamp *s)
{
	s->date = 1739437445;
	s->tz_minutes = 60;
	s->hostname = "host.example";
	for (size_t i = 0; i < MSG_RANDOM_LEN; i++)
		s->random[i] = (unsigned char)i;
}

/* ---- address lists ---------------------------------------------------- */

struct list_case {
	const char *name;
	const char *value;
	const char *want;      /* addresses joined by "|"; NULL: an error */
};

static const struct list_case list_cases[] = {
	{ "plain", "a@x", "a@x" },
	{ "empty", "", "" },
	{ "spaces_only", "   ", "" },
	{ "two", "a@x, b@y", "a@x|b@y" },
	{ "display_name", "John Doe <j@x>, b@y", "j@x|b@y" },
	{ "quoted_name_with_comma", "\"Doe, John\" <j@x>, \"a,b\" <k@y>", "j@x|k@y" },
	{ "quoted_name_with_angle", "\"<evil@x>\" <good@y>", "good@y" },
	{ "quoted_local_part", "\"a,b c\"@x", "\"a,b c\"@x" },
	{ "quoted_pair", "\"a\\\"b\"@x", "\"a\\\"b\"@x" },
	{ "undisclosed", "undisclosed-recipients:;", "" },
	{ "undisclosed_spaced", "undisclosed-recipients: ;", "" },
	{ "group", "team: a@x, \"b c\"@y; d@z", "a@x|\"b c\"@y|d@z" },
	{ "group_angle", "Team: Ann <a@x>, Bob <b@y>;, c@z", "a@x|b@y|c@z" },
	{ "group_unclosed", "team: a@x", "a@x" },
	{ "comment", "a@x (comment, with comma), (c) b@y", "a@x|b@y" },
	{ "comment_nested", "(nested (comment) here) a@x", "a@x" },
	{ "comment_in_angle", "<a(c)@x>", "a@x" },
	{ "route", "<@r1,@r2:u@h>", "u@h" },
	{ "empty_elements", "a@x,,b@y,", "a@x|b@y" },
	{ "domain_literal", "u@[192.0.2.1], v@[IPv6:::1]", "u@[192.0.2.1]|v@[IPv6:::1]" },
	{ "obs_spaced", "john . doe @ example.com", "john.doe@example.com" },
	{ "encoded_word_name", "=?UTF-8?Q?J=C3=B6rg?= <j@x>", "j@x" },
	{ "utf8_name", "J\xc3\xb6rg <j@x>", "j@x" },
	{ "utf8_address", "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "j\xc3\xb6rg@b\xc3\xbc" "cher.example" },
	{ "duplicate", "a@x, A <a@x>", "a@x" },
	{ "obs_phrase_dots", "Dr. J. Smith <j@x>", "j@x" },
	{ "empty_angle", "<>", "" },
	{ "tab_separated", "a@x,\tb@y", "a@x|b@y" },
	{ "no_domain", "root", "root" },
	{ "err_unterminated_quote", "\"abc@x", NULL },
	{ "err_unterminated_comment", "a@x (abc", NULL },
	{ "err_unterminated_angle", "<a@x", NULL },
	{ "err_unterminated_literal", "a@[1.2.3.4", NULL },
	{ "err_phrase_without_address", "John Doe, a@x", NULL },
	{ "err_text_after_angle", "<a@x> b@y", NULL },
	{ "err_semicolon_outside_group", "a@x; b@y", NULL },
	{ "err_group_in_group", "a: b: c@x;;", NULL },
	{ "err_control", "a@x\x01", NULL },
	{ "err_comma_in_angle", "<a@x,b@y>", NULL },
	{ "err_space_in_angle", "<a b@x>", NULL },
	{ "err_nested_angle", "<a<b@y>>", NULL },
	{ "err_stray_close", "a@x>", NULL },
	{ "err_too_long",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x", NULL },
};
#define NLIST (sizeof(list_cases) / sizeof(list_cases[0]))

static void join_recipients(const struct msg_recipients *r, char *out, size_t size)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < r->count; i++) {
		int w = snprintf(out + n, size - n, "%s%s", i ? "|" : "", r->addrs[i]);
		assert_true(w >= 0 && (size_t)w < size - n);
		n += (size_t)w;
	}
}

static void test_list_case(void **state)
{
	const struct list_case *tc = *state;
	struct msg_recipients r;
	struct msg_error err;
	msg_recipients_init(&r, 100);
	int rc = msg_address_list_parse(tc->value, strlen(tc->value), &r, &err);
	if (!tc->want) {
		assert_int_equal(rc, -1);
		assert_int_equal(err.status, MSG_ERR_ADDRESS);
		assert_int_equal(msg_error_exit_code(err.status), 65);
	} else {
		assert_int_equal(rc, 0);
		char got[2048];
		join_recipients(&r, got, sizeof(got));
		assert_string_equal(got, tc->want);
	}
	msg_recipients_free(&r);
}

static void test_list_max(void **state)
{
	(void)state;
	struct msg_recipients r;
	struct msg_error err;
	msg_recipients_init(&r, 2);
	assert_int_equal(msg_address_list_parse(S("a@x, b@x, a@x"), &r, &err), 0);
	assert_int_equal(msg_address_list_parse(S("c@x"), &r, &err), -1);
	assert_int_equal(err.status, MSG_ERR_ADDRESS);
	assert_non_null(strstr(err.text, "more than 2 recipients"));
	msg_recipients_free(&r);
}

/* ---- raw messages ----------------------------------------------------- */

struct raw_case {
	const char *name;
	bool t;                /* -t */
	const char *in;
	size_t inlen;
	const char *want;      /* NULL: an error */
	const char *rcpts;     /* with -t, joined by "|" */
	enum msg_status status;
	size_t line;
};

static const struct raw_case raw_cases[] = {
	{ "adds_missing_lf", false, S("Subject: hi\n\nbody\n"),
	  "Subject: hi\n" ADDED_LF "\nbody\n", NULL, MSG_OK, 0 },
	{ "adds_missing_crlf", false, S("Subject: hi\r\n\r\nbody\r\n"),
	  "Subject: hi\r\n" ADDED_CRLF "\r\nbody\r\n", NULL, MSG_OK, 0 },
	{ "complete_unchanged", false, S(HAVE_ALL "Subject: s\n\nbody\nFrom: not a header\n"),
	  HAVE_ALL "Subject: s\n\nbody\nFrom: not a header\n", NULL, MSG_OK, 0 },
	{ "names_case_insensitive", false, S("FROM: a@b\ndate: x\nMESSAGE-id: <y@z>\n\n"),
	  "FROM: a@b\ndate: x\nMESSAGE-id: <y@z>\n\n", NULL, MSG_OK, 0 },
	{ "only_date_missing", false, S("From: a@b\nMessage-ID: <y@z>\n\nb"),
	  "From: a@b\nMessage-ID: <y@z>\n" DATE_LINE "\n\nb", NULL, MSG_OK, 0 },
	{ "not_from_prefix", false, S("From-x: a\nDate: d\nMessage-ID: <i@d>\n\n"),
	  "From-x: a\nDate: d\nMessage-ID: <i@d>\n" FROM_LINE "\n\n", NULL, MSG_OK, 0 },
	{ "empty_input", false, S(""), ADDED_CRLF, NULL, MSG_OK, 0 },
	{ "all_headers_no_newline", false, S("Subject: s"),
	  "Subject: s\r\n" ADDED_CRLF, NULL, MSG_OK, 0 },
	{ "all_headers", false, S(HAVE_ALL "Subject: s\n"),
	  HAVE_ALL "Subject: s\n", NULL, MSG_OK, 0 },
	{ "body_only", false, S("Hello there\n"),
	  ADDED_LF "\nHello there\n", NULL, MSG_OK, 0 },
	{ "header_then_body_line", false, S("Subject: a\nHello\nmore\n"),
	  "Subject: a\n" ADDED_LF "\nHello\nmore\n", NULL, MSG_OK, 0 },
	{ "mbox_from_line_is_body", false, S("From x@y Thu Feb 13 10:04:05 2025\n"),
	  ADDED_LF "\nFrom x@y Thu Feb 13 10:04:05 2025\n", NULL, MSG_OK, 0 },
	{ "continuation_first_is_body", false, S(" x\n"), ADDED_LF "\n x\n", NULL, MSG_OK, 0 },
	{ "separator_first", false, S("\nbody\n"), ADDED_LF "\nbody\n", NULL, MSG_OK, 0 },
	{ "folded_kept", false, S(HAVE_ALL "Subject: a\n b\n\tc\n\nx"),
	  HAVE_ALL "Subject: a\n b\n\tc\n\nx", NULL, MSG_OK, 0 },
	{ "bcc_removed_without_t", false, S(HAVE_ALL "Bcc: hidden@x,\n more@y\nTo: a@x\n\nb\n"),
	  HAVE_ALL "To: a@x\n\nb\n", NULL, MSG_OK, 0 },
	{ "bcc_last_no_newline", false, S("To: a@x\nBCC: hidden@x"),
	  "To: a@x\n" ADDED_LF, NULL, MSG_OK, 0 },
	{ "t_to_cc_bcc", true,
	  S("To: Ann <a@x>, \"Doe, B\" <b@y>\r\nBcc: c@z,\r\n d@w\r\nCc: e@v (E)\r\n"
	    "From: f@f\r\nDate: d\r\nMessage-ID: <i@d>\r\nSubject: s\r\n\r\nTo: body@x\r\n"),
	  "To: Ann <a@x>, \"Doe, B\" <b@y>\r\nCc: e@v (E)\r\n"
	  "From: f@f\r\nDate: d\r\nMessage-ID: <i@d>\r\nSubject: s\r\n\r\nTo: body@x\r\n",
	  "a@x|b@y|c@z|d@w|e@v", MSG_OK, 0 },
	{ "t_folded_group", true,
	  S(HAVE_ALL "to: team:\n  a@x,\n\tb@y;,\n undisclosed-recipients:;\ncc :c@z\n\n"),
	  HAVE_ALL "to: team:\n  a@x,\n\tb@y;,\n undisclosed-recipients:;\ncc :c@z\n\n",
	  "a@x|b@y|c@z", MSG_OK, 0 },
	{ "t_only_bcc", true, S(HAVE_ALL "Bcc: secret@x\n\n"), HAVE_ALL "\n", "secret@x", MSG_OK, 0 },
	{ "t_none", true, S(HAVE_ALL "Subject: x\n\n"), HAVE_ALL "Subject: x\n\n", "", MSG_OK, 0 },
	{ "t_reply_to_ignored", true, S(HAVE_ALL "Reply-To: r@x\nResent-To: q@x\nTo: a@x\n\n"),
	  HAVE_ALL "Reply-To: r@x\nResent-To: q@x\nTo: a@x\n\n", "a@x", MSG_OK, 0 },
	{ "t_body_not_read", true, S(HAVE_ALL "\nTo: body@x\nBcc: body@y\n"),
	  HAVE_ALL "\nTo: body@x\nBcc: body@y\n", "", MSG_OK, 0 },
	{ "t_bad_list", true, S("To: John Doe\n\n"), NULL, NULL, MSG_ERR_ADDRESS, 0 },
	{ "t_bad_list_in_bcc", true, S("Bcc: <a@x\n\n"), NULL, NULL, MSG_ERR_ADDRESS, 0 },
};
#define NRAW (sizeof(raw_cases) / sizeof(raw_cases[0]))

static struct msg_raw raw_options(bool t)
{
	struct msg_raw opt = { .from = "sender@host.example", .extract_recipients = t };
	stamp_fill(&opt.stamp);
	return opt;
}

static void test_raw_case(void **state)
{
	const struct raw_case *tc = *state;
	struct msg_raw opt = raw_options(tc->t);
	struct buf out;
	buf_init(&out, 1 << 20);
	struct msg_recipients r;
	msg_recipients_init(&r, 100);
	struct msg_error err;
	int rc = msg_raw_prepare(&opt, tc->in, tc->inlen, &out, &r, &err);
	if (!tc->want) {
		assert_int_equal(rc, -1);
		assert_int_equal(err.status, tc->status);
		assert_int_equal(err.line, tc->line);
	} else {
		assert_int_equal(rc, 0);
		assert_string_equal(out.data ? out.data : "", tc->want);
		if (tc->t) {
			char got[2048];
			join_recipients(&r, got, sizeof(got));
			assert_string_equal(got, tc->rcpts);
		} else {
			assert_int_equal(r.count, 0);
		}
		/* A prepared message is a fixed point. */
		struct buf again;
		buf_init(&again, 1 << 20);
		struct msg_recipients r2;
		msg_recipients_init(&r2, 100);
		assert_int_equal(msg_raw_prepare(&opt, out.data, out.len, &again, &r2, &err), 0);
		assert_int_equal(again.len, out.len);
		assert_memory_equal(again.data, out.data, out.len);
		msg_recipients_free(&r2);
		buf_free(&again);
	}
	msg_recipients_free(&r);
	buf_free(&out);
}

/* RFC 5322 §2.1.1: 998 octets pass, 999 are refused with the line number,
 * the CR of CR LF not counted. */
static void test_raw_line_length(void **state)
{
	(void)state;
	static char msg[4096];
	struct msg_error err;
	size_t n = 0;
	n += (size_t)snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n");
	memset(msg + n, 'a', 998);
	n += 998;
	memcpy(msg + n, "\r\n", 2);
	n += 2;
	assert_int_equal(msg_raw_check_lines(msg, n, &err), 0);
	memset(msg + n, 'b', 998);
	assert_int_equal(msg_raw_check_lines(msg, n + 998, &err), 0);   /* last, no newline */
	msg[n + 998] = 'b';
	assert_int_equal(msg_raw_check_lines(msg, n + 999, &err), -1);
	assert_int_equal(err.status, MSG_ERR_LINE_TOO_LONG);
	assert_int_equal(err.line, 4);
	assert_non_null(strstr(err.text, "line 4 "));
	assert_int_equal(msg_error_exit_code(err.status), 65);
	/* A lone CR is content: 998 octets and a CR before LF is fine, 998
	 * and a CR in the middle is 999. */
	memset(msg, 'c', 998);
	memcpy(msg + 998, "\r\n", 2);
	assert_int_equal(msg_raw_check_lines(msg, 1000, &err), 0);
	msg[500] = '\r';
	msg[998] = 'c';
	msg[999] = '\n';
	assert_int_equal(msg_raw_check_lines(msg, 1000, &err), -1);
	assert_int_equal(err.line, 1);

	struct msg_raw opt = raw_options(false);
	struct buf out;
	buf_init(&out, 1 << 20);
	assert_int_equal(msg_raw_prepare(&opt, msg, 1000, &out, NULL, &err), -1);
	assert_int_equal(err.status, MSG_ERR_LINE_TOO_LONG);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* RFC 5322 §2.3: a NUL anywhere is refused with its line (issue 8 item
 * 15: "\r\n\x00.\r\n" left as "\x00."), as a long line is, and
 * msg_raw_prepare writes nothing. */
static void test_raw_nul(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		size_t len;
		size_t line;
	} cases[] = {
		{ "Subject: x\r\n\r\na\r\n\0.\r\nb\r\n", 24, 4 },
		{ "Sub\0ject: x\r\n\r\n", 15, 1 },
		{ "Subject: x\n\nbody\0", 17, 3 },
		{ "\0", 1, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg_error err = { 0 };
		assert_int_equal(msg_raw_check_lines(cases[i].msg, cases[i].len, &err), -1);
		assert_int_equal(err.status, MSG_ERR_NUL);
		assert_int_equal(err.line, cases[i].line);
		char want[32];
		snprintf(want, sizeof(want), "line %zu ", cases[i].line);
		assert_non_null(strstr(err.text, want));
		assert_int_equal(msg_error_exit_code(err.status), 65);
		struct msg_raw opt = raw_options(false);
		struct buf out;
		buf_init(&out, 1 << 20);
		assert_int_equal(msg_raw_prepare(&opt, cases[i].msg, cases[i].len, &out, NULL, &err),
		                 -1);
		assert_int_equal(out.len, 0);
		buf_free(&out);
	}
}

static void test_raw_too_big(void **state)
{
	(void)state;
	struct msg_raw opt = raw_options(false);
	struct buf out;
	buf_init(&out, 40);
	struct msg_error err;
	assert_int_equal(msg_raw_prepare(&opt, S("Subject: x\n\nbody\n"), &out, NULL, &err), -1);
	assert_int_equal(err.status, MSG_ERR_TOO_BIG);
	buf_free(&out);
}

/* A missing From gets the display name; a From with a line break given by
 * the caller is refused (header injection, exit 64). */
static void test_raw_from_name(void **state)
{
	(void)state;
	struct msg_raw opt = raw_options(false);
	opt.from_name = "J\xc3\xb6rg";
	struct buf out;
	buf_init(&out, 1 << 16);
	struct msg_error err;
	assert_int_equal(msg_raw_prepare(&opt, S("Date: d\nMessage-ID: <i@d>\n\nb"), &out, NULL, &err), 0);
	assert_string_equal(out.data, "Date: d\nMessage-ID: <i@d>\n"
	                    "From: =?UTF-8?B?SsO2cmc=?= <sender@host.example>\n\nb");
	buf_reset(&out);
	opt.from = "a@b\r\nBcc: x@y";
	assert_int_equal(msg_raw_prepare(&opt, S("Subject: s\n\n"), &out, NULL, &err), -1);
	assert_int_equal(err.status, MSG_ERR_INJECTION);
	assert_int_equal(msg_error_exit_code(err.status), 64);
	buf_free(&out);
}

/* The sendmail entry's mending (issue 9): a body line over 998 octets is
 * encoded quoted-printable when the body is plain text, broken as
 * Postfix's smtp_line_length_limit breaks it otherwise; a header line is
 * folded at white space; NUL is still refused. */
static bool has_long_line(const struct buf *b)
{
	return msg_raw_has_long_line(b->data ? b->data : "", b->len);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void mend(const char *in, size_t len, struct buf *out)
{
	struct msg_raw opt = raw_options(false);
	opt.mend_long_lines = true;
	struct msg_error err;
	buf_reset(out);
	assert_int_equal(msg_raw_prepare(&opt, in, len, out, NULL, &err), 0);
	assert_false(has_long_line(out));
	/* A mended message is a fixed point. */
	struct buf again;
	buf_init(&again, 1 << 20);
	assert_int_equal(msg_raw_prepare(&opt, out->data, out->len, &again, NULL, &err), 0);
	assert_int_equal(again.len, out->len);
	assert_memory_equal(again.data, out->data, out->len);
	buf_free(&again);
}

static void test_raw_mend(void **state)
{
	(void)state;
	static char msg[8192], want[8192];
	char line[1201];
	memset(line, 'a', 1200);
	line[1200] = '\0';
	struct buf out;
	buf_init(&out, 1 << 20);

	/* Plain text: quoted-printable; MIME-Version and an 8bit encoding
	 * replaced, not doubled; no Content-Type needed for ASCII. */
	int n = snprintf(msg, sizeof(msg), HAVE_ALL "MIME-Version: 1.0\nSubject: s\n"
	                 "Content-Transfer-Encoding: 8bit\n\nx=1 \n%s\n", line);
	mend(msg, (size_t)n, &out);
	assert_non_null(strstr(out.data, HAVE_ALL "Subject: s\nMIME-Version: 1.0\n"
	                       "Content-Transfer-Encoding: quoted-printable\n\nx=3D1=20\naaa"));
	assert_int_equal(count_of(out.data, "MIME-Version"), 1);
	assert_int_equal(count_of(out.data, "Content-Transfer-Encoding"), 1);
	assert_null(strstr(out.data, "Content-Type"));
	assert_null(strstr(out.data, "\r"));        /* the message's own LF */
	assert_int_equal(count_of(out.data, "=\n"), 15);    /* 16 lines of 75 */

	/* UTF-8 without Content-Type gets its charset; other 8-bit octets
	 * "unknown-8bit"; CR LF kept. */
	n = snprintf(msg, sizeof(msg), "Subject: s\r\n\r\nd\xc3\xa9j\xc3\xa0 %s\r\n", line);
	mend(msg, (size_t)n, &out);
	assert_non_null(strstr(out.data, "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	                       "d=C3=A9j=C3=A0 aaa"));
	assert_null(strstr(out.data + 2, "\n\n"));
	n = snprintf(msg, sizeof(msg), "Subject: s\n\n\xe9t\xe9 %s\n", line);
	mend(msg, (size_t)n, &out);
	assert_non_null(strstr(out.data, "charset=unknown-8bit"));
	/* A Content-Type of its own is kept. */
	n = snprintf(msg, sizeof(msg), "Content-Type: text/plain; charset=iso-8859-1\n\n"
	             "\xe9t\xe9 %s\n", line);
	mend(msg, (size_t)n, &out);
	assert_int_equal(count_of(out.data, "Content-Type"), 1);
	assert_non_null(strstr(out.data, "\n\n=E9t=E9 aaa"));

	/* Multipart, or base64: Postfix's break, CR LF SPACE after 998. */
	const char *kinds[] = { "Content-Type: multipart/mixed; boundary=b\n",
	                        "Content-Type: MESSAGE/rfc822\n",
	                        "Content-Transfer-Encoding: base64\n",
	                        "Content-Transfer-Encoding: quoted-printable\n" };
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		n = snprintf(msg, sizeof(msg), HAVE_ALL "%s\n%s\nend\n", kinds[k], line);
		mend(msg, (size_t)n, &out);
		int w = snprintf(want, sizeof(want), HAVE_ALL "%s\n%.998s\n %s\nend\n", kinds[k],
		                 line, line + 998);
		assert_int_equal(out.len, (size_t)w);
		assert_string_equal(out.data, want);
	}
	/* Longer: every output line, the inserted space included, at most
	 * 998 (the break in CR LF when the line has it). */
	char big[2501];
	memset(big, 'z', 2500);
	big[2500] = '\0';
	n = snprintf(msg, sizeof(msg), HAVE_ALL "Content-Transfer-Encoding: binary\r\n\r\n%s\r\n",
	             big);
	mend(msg, (size_t)n, &out);
	snprintf(want, sizeof(want), "\r\n\r\n%.998s\r\n %.997s\r\n %.505s\r\n", big, big, big);
	assert_non_null(strstr(out.data, want));

	/* A header line: folded before the last white space within 998
	 * octets, after some text; a run without white space is broken as
	 * Postfix does (here after the fold that follows the name). */
	char words[1300];
	size_t wl = 0;
	while (wl < 1200)
		wl += (size_t)snprintf(words + wl, sizeof(words) - wl, " w%03zu", wl / 5);
	n = snprintf(msg, sizeof(msg), HAVE_ALL "Subject:%s\n\nbody\n", words);
	mend(msg, (size_t)n, &out);
	assert_non_null(strstr(out.data, "Subject: w000"));
	assert_int_equal(count_of(out.data, "\n w"), 1);    /* one fold, at a space */
	assert_null(strstr(out.data, "MIME-Version"));       /* the body was fine */
	n = snprintf(msg, sizeof(msg), HAVE_ALL "X-Long: %s\n\nbody\n", line);
	mend(msg, (size_t)n, &out);
	snprintf(want, sizeof(want), "X-Long:\n %.997s\n %s\n\nbody\n", line, line + 997);
	assert_non_null(strstr(out.data, want));
	/* Never between a name and its colon (found by fuzzing). */
	n = snprintf(msg, sizeof(msg), HAVE_ALL "X-Sp :%s\n\nbody\n", line);
	mend(msg, (size_t)n, &out);
	snprintf(want, sizeof(want), "\nX-Sp :%.992s\n %s\n\nbody\n", line, line + 992);
	assert_non_null(strstr(out.data, want));

	/* What was done, for -v. */
	struct msg_raw opt = raw_options(false);
	opt.mend_long_lines = true;
	unsigned mended = 0;
	opt.mended = &mended;
	struct msg_error err;
	n = snprintf(msg, sizeof(msg), "X-Long: %s\n\n%s\n", line, line);
	buf_reset(&out);
	assert_int_equal(msg_raw_prepare(&opt, msg, (size_t)n, &out, NULL, &err), 0);
	assert_int_equal(mended, MSG_RAW_MENDED_QP | MSG_RAW_MENDED_FOLDED);
	mended = 0;
	n = snprintf(msg, sizeof(msg), "Content-Transfer-Encoding: base64\n\n%s\n", line);
	buf_reset(&out);
	assert_int_equal(msg_raw_prepare(&opt, msg, (size_t)n, &out, NULL, &err), 0);
	assert_int_equal(mended, MSG_RAW_MENDED_BROKEN);
	mended = 0;
	buf_reset(&out);
	assert_int_equal(msg_raw_prepare(&opt, S("Subject: s\n\nshort\n"), &out, NULL, &err), 0);
	assert_int_equal(mended, 0);
	opt.mended = NULL;

	/* Still refused: NUL (msg_raw_check_nul). */
	buf_reset(&out);
	assert_int_equal(msg_raw_prepare(&opt, S("Subject: s\n\na\0b\n"), &out, NULL, &err), -1);
	assert_int_equal(err.status, MSG_ERR_NUL);
	buf_free(&out);
}

/* Postfix's append_at_myorigin through msg_raw_prepare: the address
 * fields only, Resent- ones included; a long line it makes is folded. */
static void test_raw_origin(void **state)
{
	(void)state;
	struct msg_raw opt = raw_options(false);
	opt.origin = "o.example";
	struct msg_error err;
	struct buf out;
	buf_init(&out, 1 << 20);
	const char *in = HAVE_ALL "from: root (Cron Daemon)\nTo: a,\n b\nCC:c\nSender: s\n"
	                 "Reply-To: <r>\nResent-From: rf\nResent-Sender: rs\nResent-To: rt\n"
	                 "Resent-Cc: rc\nResent-Bcc: rb\nX-To: x\nSubject: root\n\nTo: body\n";
	assert_int_equal(msg_raw_prepare(&opt, in, strlen(in), &out, NULL, &err), 0);
	assert_string_equal(out.data,
	                    HAVE_ALL "from: root@o.example (Cron Daemon)\nTo: a@o.example,\n "
	                    "b@o.example\nCC:c@o.example\nSender: s@o.example\n"
	                    "Reply-To: <r@o.example>\nResent-From: rf@o.example\n"
	                    "Resent-Sender: rs@o.example\nResent-To: rt@o.example\n"
	                    "Resent-Cc: rc@o.example\nResent-Bcc: rb\nX-To: x\nSubject: root\n\n"
	                    "To: body\n");
	/* 165 names of 5 octets on one line of 993: qualified, it is
	 * folded at the spaces between them. */
	static char msg[4096];
	size_t n = (size_t)snprintf(msg, sizeof(msg), "To:");
	for (int i = 0; i < 165; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, " u%03d,", i);
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\n\n");
	buf_reset(&out);
	assert_int_equal(msg_raw_prepare(&opt, msg, n, &out, NULL, &err), 0);
	assert_false(has_long_line(&out));
	assert_non_null(strstr(out.data, "To: u000@o.example, u001@o.example,"));
	assert_non_null(strstr(out.data, "u164@o.example,\n"));
	buf_free(&out);
}

static int write_seed(const char *dir, const char *name, unsigned char sel, const char *prefix,
                      const char *data, size_t len)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/headers-%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "seed path too long: %s\n", dir);
		return -1;
	}
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t plen = strlen(prefix);
	bool ok = fputc(sel, f) != EOF && fwrite(prefix, 1, plen, f) == plen &&
	          fwrite(data, 1, len, f) == len && fputs("\n\nbody\n", f) != EOF;
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < NRAW; i++)
		if (write_seed(dir, raw_cases[i].name, raw_cases[i].t ? 1 : 0, "",
		               raw_cases[i].in, raw_cases[i].inlen) < 0)
			return -1;
	for (size_t i = 0; i < NLIST; i++)
		if (write_seed(dir, list_cases[i].name, 3, "To: ", list_cases[i].value,
		               strlen(list_cases[i].value)) < 0)
			return -1;
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;

	struct CMUnitTest tests[NLIST + NRAW + 7];
	size_t n = 0;
	for (size_t i = 0; i < NLIST; i++)
		tests[n++] = (struct CMUnitTest){ .name = list_cases[i].name,
		                                  .test_func = test_list_case,
		                                  .initial_state = (void *)&list_cases[i] };
	for (size_t i = 0; i < NRAW; i++)
		tests[n++] = (struct CMUnitTest){ .name = raw_cases[i].name,
		                                  .test_func = test_raw_case,
		                                  .initial_state = (void *)&raw_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_list_max);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_raw_line_length);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_raw_nul);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_raw_too_big);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_raw_from_name);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_raw_mend);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_raw_origin);
	return cmocka_run_group_tests_name("msg_headers", tests, NULL, NULL);
}
