/* smtp_reply_set / smtp_reply_write / smtp_reply_write_lines: the exact
 * octets on the wire, and text that can never split a reply. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "smtp/reply.h"
#include "util/limits.h"

/* Appends r to a fresh buffer and compares the octets. */
static void expect_write(const struct smtp_reply *r, const char *want)
{
	struct buf out;

	buf_init(&out, 4096);
	assert_int_equal(smtp_reply_write(&out, r), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	buf_free(&out);
}

static void test_write_table(void **state)
{
	static const struct {
		int code;
		const char *enhanced;
		const char *text;
		const char *wire;
	} cases[] = {
		{ 250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n" },
		{ 220, NULL, "mx.example ESMTP rawmail", "220 mx.example ESMTP rawmail\r\n" },
		{ 354, NULL, "End data with <CR><LF>.<CR><LF>",
		  "354 End data with <CR><LF>.<CR><LF>\r\n" },
		{ 500, "5.5.2", "Command unrecognized", "500 5.5.2 Command unrecognized\r\n" },
		{ 421, "4.3.2", "Shutting down", "421 4.3.2 Shutting down\r\n" },
		{ 552, "5.3.4", "Message size exceeds fixed maximum message size",
		  "552 5.3.4 Message size exceeds fixed maximum message size\r\n" },
		{ 553, "5.6.7", "x", "553 5.6.7 x\r\n" },
		{ 250, "2.123.456", "long codes", "250 2.123.456 long codes\r\n" },
		{ 250, NULL, "", "250\r\n" },
		{ 250, "2.0.0", "", "250 2.0.0\r\n" },
		{ 334, NULL, "", "334\r\n" },
		{ 211, NULL, "status", "211 status\r\n" },
		{ 554, NULL, "top", "554 top\r\n" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct smtp_reply r;
		smtp_reply_set(&r, cases[i].code, cases[i].enhanced, "%s", cases[i].text);
		assert_int_equal(r.code, cases[i].code);
		assert_ptr_equal(r.enhanced, cases[i].enhanced);
		assert_string_equal(r.text, cases[i].text);
		expect_write(&r, cases[i].wire);
	}
}

/* RFC 5321 §4.2.1: CR and LF would end the line; every control byte
 * (and DEL) becomes '?', other octets stay. */
static void test_set_replaces_controls(void **state)
{
	struct smtp_reply r;

	smtp_reply_set(&r, 250, "2.1.0", "<%s> ok", "a\r\nb\x01\x7f\x1b[0m\t\xc3\xa9");
	assert_string_equal(r.text, "<a??b???[0m?\xc3\xa9> ok");
	expect_write(&r, "250 2.1.0 <a??b???[0m?\xc3\xa9> ok\r\n");

	/* a forged second reply stays on one line */
	smtp_reply_set(&r, 501, "5.5.4", "Bad name %s", "x\r\n250 2.0.0 Ok");
	expect_write(&r, "501 5.5.4 Bad name x??250 2.0.0 Ok\r\n");

	/* a NUL from %c ends the text */
	smtp_reply_set(&r, 250, NULL, "a%cb", 0);
	assert_string_equal(r.text, "a");

	smtp_reply_set(&r, 250, NULL, "%d %s", 42, "x");
	assert_string_equal(r.text, "42 x");
}

/* Text longer than the struct is cut, never overflows. */
static void test_set_truncates(void **state)
{
	struct smtp_reply r;
	char big[1000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	smtp_reply_set(&r, 250, "2.0.0", "%s", big);
	assert_int_equal(strlen(r.text), sizeof r.text - 1);

	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(smtp_reply_write(&out, &r), 0);
	assert_int_equal(out.len, 4 + 6 + sizeof r.text - 1 + 2);
	buf_free(&out);
}

/* A struct filled by hand: the text is sanitised on output too, and an
 * unterminated text array is read only within its bounds. */
static void test_write_hand_filled(void **state)
{
	struct smtp_reply r = { .code = 550, .enhanced = "5.7.1" };
	struct buf out;

	memcpy(r.text, "no\r\nway", 8);
	expect_write(&r, "550 5.7.1 no??way\r\n");

	memset(r.text, 'y', sizeof r.text);
	buf_init(&out, 4096);
	assert_int_equal(smtp_reply_write(&out, &r), 0);
	assert_int_equal(out.len, 10 + sizeof r.text + 2);
	assert_memory_equal(out.data + out.len - 2, "\r\n", 2);
	buf_free(&out);
}

/* Invalid codes are refused instead of writing a malformed line. */
static void test_write_invalid(void **state)
{
	static const struct {
		int code;
		const char *enhanced;
	} bad[] = {
		{ 0, NULL }, { 99, NULL }, { 199, NULL }, { 600, NULL }, { 1000, NULL },
		{ -250, NULL }, { 260, NULL }, { 599, NULL }, /* second digit 0-5 */
		{ 250, "5.0.0" },     /* class differs from the code */
		{ 354, "3.0.0" },     /* RFC 3463: no class 3 */
		{ 250, "" }, { 250, "2" }, { 250, "2." }, { 250, "2.0" }, { 250, "2.0." },
		{ 250, "2.0.0." }, { 250, "2.0.0 " }, { 250, "2.1234.0" }, { 250, "2.0.1234" },
		{ 250, "2.a.0" }, { 250, "2..0" }, { 250, "2.0.0\r\n" }, { 250, "20.0.0" },
	};
	struct buf out;

	buf_init(&out, 4096);
	assert_int_equal(buf_append_str(&out, "keep"), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_reply r;
		const char *line = "x";
		smtp_reply_set(&r, bad[i].code, bad[i].enhanced, "x");
		assert_int_equal(smtp_reply_write(&out, &r), -1);
		assert_int_equal(smtp_reply_write_lines(&out, bad[i].code, bad[i].enhanced,
		                                        &line, 1), -1);
		assert_int_equal(out.len, 4);
		assert_string_equal(out.data, "keep");
	}
	buf_free(&out);
}

/* A full buffer gives -1 and leaves what was there. */
static void test_write_full(void **state)
{
	struct smtp_reply r;
	struct buf out;

	smtp_reply_set(&r, 250, "2.0.0", "Ok");
	buf_init(&out, 20);
	assert_int_equal(smtp_reply_write(&out, &r), 0);   /* 14 octets */
	assert_int_equal(smtp_reply_write(&out, &r), -1);
	assert_int_equal(out.len, 14);
	assert_string_equal(out.data, "250 2.0.0 Ok\r\n");
	buf_free(&out);

	buf_init(&out, 14);
	assert_int_equal(smtp_reply_write(&out, &r), 0);
	assert_int_equal(out.len, 14);
	buf_free(&out);

	buf_init(&out, 13);
	assert_int_equal(smtp_reply_write(&out, &r), -1);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void expect_lines(int code, const char *enhanced, const char *const *lines, size_t n,
                         const char *want)
{
	struct buf out;

	buf_init(&out, 8192);
	assert_int_equal(smtp_reply_write_lines(&out, code, enhanced, lines, n), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	buf_free(&out);
}

/* RFC 5321 §4.2.1 multi-line replies, RFC 2034 §4 enhanced on each line. */
static void test_lines(void **state)
{
	static const char *const ehlo[] = { "mx.example", "PIPELINING", "SMTPUTF8" };
	static const char *const one[] = { "Ok" };
	static const char *const with_empty[] = { "", "x", "" };
	static const char *const with_null[] = { "a", NULL, "b" };
	static const char *const dirty[] = { "mx\r\n250 evil", "SIZE\t1" };

	expect_lines(250, NULL, ehlo, 3, "250-mx.example\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n");
	expect_lines(250, NULL, one, 1, "250 Ok\r\n");
	expect_lines(250, "2.0.0", one, 1, "250 2.0.0 Ok\r\n");
	expect_lines(214, "2.0.0", ehlo, 3,
	             "214-2.0.0 mx.example\r\n214-2.0.0 PIPELINING\r\n214 2.0.0 SMTPUTF8\r\n");
	expect_lines(250, NULL, with_empty, 3, "250-\r\n250-x\r\n250\r\n");
	expect_lines(250, "2.0.0", with_empty, 3, "250-2.0.0\r\n250-2.0.0 x\r\n250 2.0.0\r\n");
	expect_lines(250, NULL, with_null, 3, "250-a\r\n250-\r\n250 b\r\n");
	expect_lines(250, NULL, dirty, 2, "250-mx??250 evil\r\n250 SIZE?1\r\n");
}

/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with CRLF. */
static void test_lines_long(void **state)
{
	static char big[2000];
	const char *lines[2] = { big, big };
	struct buf out;

	memset(big, 'z', sizeof big - 1);
	buf_init(&out, 8192);
	assert_int_equal(smtp_reply_write_lines(&out, 250, "2.0.0", lines, 2), 0);
	assert_int_equal(out.len, 2 * SMTP_REPLY_LINE_MAX);
	assert_memory_equal(out.data, "250-2.0.0 zzz", 13);
	assert_memory_equal(out.data + SMTP_REPLY_LINE_MAX - 2, "\r\n250 2.0.0 zzz", 15);
	assert_memory_equal(out.data + out.len - 3, "z\r\n", 3);
	buf_free(&out);
}

/* Never half a multi-line reply: on a full buffer nothing is appended. */
static void test_lines_full(void **state)
{
	static const char *const ehlo[] = { "mx.example", "PIPELINING", "SMTPUTF8" };
	struct buf out;

	buf_init(&out, 40);
	assert_int_equal(buf_append_str(&out, "250 Ok\r\n"), 0);
	assert_int_equal(smtp_reply_write_lines(&out, 250, NULL, ehlo, 3), -1);
	assert_int_equal(out.len, 8);
	assert_string_equal(out.data, "250 Ok\r\n");
	assert_int_equal(smtp_reply_write_lines(&out, 250, NULL, ehlo, 0), -1);
	assert_int_equal(out.len, 8);
	buf_free(&out);

	/* exactly enough room */
	buf_init(&out, 46);
	assert_int_equal(smtp_reply_write_lines(&out, 250, NULL, ehlo, 3), 0);
	assert_int_equal(out.len, 46);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_table),
		cmocka_unit_test(test_set_replaces_controls),
		cmocka_unit_test(test_set_truncates),
		cmocka_unit_test(test_write_hand_filled),
		cmocka_unit_test(test_write_invalid),
		cmocka_unit_test(test_write_full),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_lines_long),
		cmocka_unit_test(test_lines_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
