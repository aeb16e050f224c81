/* Unit tests for composing messages (src/msg/compose.c and the header
 * writers): exact output for a simple message, the 7bit / quoted-printable
 * choice, encoded words and folding, header injection, attachments.
 * Every composed message is checked for CR LF line endings and lines of
 * at most 998 octets (RFC 5322 §2.1.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "msg/attach.h"
#include "msg/compose.h"

static const char *const one_to[] = { "kfl@example.com" };

static struct msg_compose compose_base(void)
{
	struct msg_compose c = {
		.from = "me@host.example",
		.to = one_to,
		.to_count = 1,
		.subject = "This is from me",
		.body = "Hello there\n",
		.body_len = 12,
	};
	c.stamp.date = 1739437445;
	c.stamp.tz_minutes = 60;
	c.stamp.hostname = "host.example";
	for (size_t i = 0; i < MSG_RANDOM_LEN; i++)
		c.stamp.random[i] = (unsigned char)i;
	return c;
}

/* Every line ends CR LF, none is over max octets (998, or 78 for the
 * header section when strict_header). */
static void check_lines(const char *p, size_t len, size_t header_max)
{
	size_t start = 0;
	bool in_header = true;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r')
			assert_true(i + 1 < len && p[i + 1] == '\n');
		if (p[i] != '\n')
			continue;
		assert_true(i > start && p[i - 1] == '\r');
		size_t n = i - 1 - start;
		assert_true(n <= 998);
		if (n == 0)
			in_header = false;
		if (in_header)
			assert_true(n <= header_max);
		start = i + 1;
	}
	assert_int_equal(start, len);  /* ends with a line break */
}

static char *compose_ok(const struct msg_compose *c, size_t header_max)
{
	struct buf out;
	buf_init(&out, 1 << 22);
	struct msg_error err;
	int rc = msg_compose_build(c, &out, &err);
	if (rc != 0)
		fprintf(stderr, "compose: %s\n", err.text);
	assert_int_equal(rc, 0);
	check_lines(out.data, out.len, header_max);
	size_t len;
	return buf_release(&out, &len);
}

static void test_simple_exact(void **state)
{
	(void)state;
	struct msg_compose c = compose_base();
	char *m = compose_ok(&c, 78);
	assert_string_equal(m,
		"From: me@host.example\r\n"
		"To: kfl@example.com\r\n"
		"Subject: This is from me\r\n"
		"Date: Thu, 13 Feb 2025 10:04:05 +0100\r\n"
		"Message-ID: <20250213090405.000102030405060708090a0b@host.example>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"Hello there\r\n");
	free(m);
}

struct body_case {
	const char *name;
	const char *body;
	size_t len;
	const char *cte;
	const char *want_body;   /* NULL: not compared */
};

#define S(lit) lit, sizeof(lit) - 1
static char long_line[1200];

static struct body_case body_cases[] = {
	{ "ascii", S("a\nb\n"), "7bit", "a\r\nb\r\n" },
	{ "crlf_kept", S("a\r\nb\r\n"), "7bit", "a\r\nb\r\n" },
	{ "no_final_newline", S("a"), "7bit", "a\r\n" },
	{ "empty", S(""), "7bit", "" },
	{ "utf8", S("Gr\xc3\xbc\xc3\x9f" "e\n"), "quoted-printable", "Gr=C3=BC=C3=9Fe\r\n" },
	{ "lone_cr", S("a\rb\n"), "quoted-printable", "a=0Db\r\n" },
	{ "nul", S("a\0b\n"), "quoted-printable", "a=00b\r\n" },
	{ "line_998", long_line, 998, "7bit", NULL },
	{ "line_999", long_line, 999, "quoted-printable", NULL },
	{ "line_1200", long_line, sizeof(long_line), "quoted-printable", NULL },
};

static void test_body_case(void **state)
{
	const struct body_case *tc = *state;
	struct msg_compose c = compose_base();
	c.body = tc->body;
	c.body_len = tc->len;
	char *m = compose_ok(&c, 78);
	char want[128];
	snprintf(want, sizeof(want), "Content-Transfer-Encoding: %s\r\n\r\n", tc->cte);
	char *b = strstr(m, want);
	assert_non_null(b);
	if (tc->want_body)
		assert_string_equal(b + strlen(want), tc->want_body);
	free(m);
}

/* Header values with CR or LF are refused before anything is sent. */
static void test_injection(void **state)
{
	(void)state;
	static const char *const bad_to[] = { "a@x", "b@y\r\nBcc: c@z" };
	for (int k = 0; k < 5; k++) {
		struct msg_compose c = compose_base();
		switch (k) {
		case 0: c.subject = "hi\r\nBcc: victim@x"; break;
		case 1: c.subject = "hi\nX: y"; break;
		case 2: c.from_name = "Me\rX: y"; break;
		case 3: c.from = "me@x\nBcc: y@z"; break;
		case 4: c.to = bad_to; c.to_count = 2; break;
		}
		struct buf out;
		buf_init(&out, 1 << 16);
		struct msg_error err;
		assert_int_equal(msg_compose_build(&c, &out, &err), -1);
		assert_int_equal(err.status, MSG_ERR_INJECTION);
		assert_int_equal(msg_error_exit_code(err.status), 64);
		assert_null(strpbrk(err.text, "\r\n"));
		buf_free(&out);
	}
}

static void test_usage_errors(void **state)
{
	(void)state;
	const char *hosts[] = { "bad host", "", "a..b", "[1.2.3.4" };
	for (size_t k = 0; k < 4; k++) {
		struct msg_compose c = compose_base();
		c.stamp.hostname = hosts[k];
		struct buf out;
		buf_init(&out, 1 << 16);
		struct msg_error err;
		assert_int_equal(msg_compose_build(&c, &out, &err), -1);
		assert_int_equal(err.status, MSG_ERR_USAGE);
		buf_free(&out);
	}
	struct msg_compose c = compose_base();
	c.from = "a\x01@x";
	struct buf out;
	buf_init(&out, 1 << 16);
	struct msg_error err;
	assert_int_equal(msg_compose_build(&c, &out, &err), -1);
	assert_int_equal(err.status, MSG_ERR_USAGE);
	buf_free(&out);
	c = compose_base();
	c.stamp.hostname = "[192.0.2.1]";
	char *m = compose_ok(&c, 78);
	assert_non_null(strstr(m, "@[192.0.2.1]>\r\n"));
	free(m);
}

static void test_too_big(void **state)
{
	(void)state;
	struct msg_compose c = compose_base();
	struct buf out;
	buf_init(&out, 100);
	struct msg_error err;
	assert_int_equal(msg_compose_build(&c, &out, &err), -1);
	assert_int_equal(err.status, MSG_ERR_TOO_BIG);
	buf_free(&out);
}

/* The header field as one unfolded line (RFC 5322 §2.2.3), no CRLF. */
static void header_unfolded(const char *m, const char *name, char *out, size_t size)
{
	const char *p = strstr(m, name);
	assert_non_null(p);
	size_t n = 0;
	for (; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			if (p[2] != ' ' && p[2] != '\t')
				break;
			p++;
			continue;
		}
		assert_true(n + 1 < size);
		out[n++] = *p;
	}
	out[n] = '\0';
}

struct header_case {
	const char *name;
	const char *subject;
	const char *from_name;
	const char *want_subject;  /* unfolded; NULL: not compared */
	const char *want_from;     /* unfolded */
};

static const struct header_case header_cases[] = {
	{ "ascii", "Hello", NULL, "Subject: Hello", "From: me@host.example" },
	{ "empty_subject", "", NULL, "Subject:", NULL },
	{ "atom_name", "x", "John Doe", NULL, "From: John Doe <me@host.example>" },
	{ "quoted_name", "x", "Doe, John", NULL, "From: \"Doe, John\" <me@host.example>" },
	{ "quoted_escape", "x", "a \"b\" \\c", NULL, "From: \"a \\\"b\\\" \\\\c\" <me@host.example>" },
	{ "utf8_name", "x", "J\xc3\xb6rg M\xc3\xbcller", NULL,
	  "From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <me@host.example>" },
	{ "utf8_subject", "Gr\xc3\xbc\xc3\x9f" "e", NULL, "Subject: =?UTF-8?B?R3LDvMOfZQ==?=", NULL },
	{ "looks_encoded", "=?x?=", NULL, "Subject: =?UTF-8?B?PT94Pz0=?=", NULL },
	{ "mostly_ascii", "Caf\xc3\xa9 au lait", NULL, "Subject: =?UTF-8?Q?Caf=C3=A9_au_lait?=", NULL },
	{ "control_subject", "a\tb\x01", NULL, "Subject: =?UTF-8?Q?a=09b=01?=", NULL },
	{ "cjk_subject", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", NULL, "Subject: =?UTF-8?B?5pel5pys6Kqe?=", NULL },
	{ "long_ascii_subject",
	  "The quick brown fox jumps over the lazy dog and keeps running far beyond the "
	  "seventy-eight column mark, again and again and again", NULL,
	  "Subject: The quick brown fox jumps over the lazy dog and keeps running far beyond the "
	  "seventy-eight column mark, again and again and again", NULL },
};

static void test_header_case(void **state)
{
	const struct header_case *tc = *state;
	struct msg_compose c = compose_base();
	c.subject = tc->subject;
	c.from_name = tc->from_name;
	char *m = compose_ok(&c, 78);
	char got[2048];
	if (tc->want_subject) {
		header_unfolded(m, "Subject:", got, sizeof(got));
		assert_string_equal(got, tc->want_subject);
	}
	if (tc->want_from) {
		header_unfolded(m, "From:", got, sizeof(got));
		assert_string_equal(got, tc->want_from);
	}
	free(m);
}

/* A subject word longer than a line can only be encoded; a long non-ASCII
 * subject folds into many encoded words.  Lines stay within 78. */
static void test_long_subjects(void **state)
{
	(void)state;
	static char word[1500];
	memset(word, 'x', sizeof(word) - 1);
	struct msg_compose c = compose_base();
	c.subject = word;
	char *m = compose_ok(&c, 78);
	assert_non_null(strstr(m, "Subject: =?UTF-8?Q?xxx"));
	free(m);
	static char utf8[3 * 300 + 1];
	for (size_t i = 0; i < 300; i++)
		memcpy(utf8 + 3 * i, "\xe2\x82\xac", 3);   /* € */
	c.subject = utf8;
	c.from_name = utf8;
	m = compose_ok(&c, 78);
	free(m);
}

static void test_to_folding(void **state)
{
	(void)state;
	static char names[40][32];
	static const char *to[40];
	for (size_t i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "user%zu@example.com", i);
		to[i] = names[i];
	}
	struct msg_compose c = compose_base();
	c.to = to;
	c.to_count = 40;
	char *m = compose_ok(&c, 78);
	char got[4096];
	header_unfolded(m, "To:", got, sizeof(got));
	assert_non_null(strstr(got, "To: user0@example.com, user1@example.com,"));
	assert_non_null(strstr(got, ", user39@example.com"));
	free(m);
}

static void test_dates(void **state)
{
	(void)state;
	static const struct {
		int tz;
		const char *want;
	} dates[] = {
		{ 0, "Date: Thu, 13 Feb 2025 09:04:05 +0000\r\n" },
		{ -300, "Date: Thu, 13 Feb 2025 04:04:05 -0500\r\n" },
		{ 330, "Date: Thu, 13 Feb 2025 14:34:05 +0530\r\n" },
		{ -600, "Date: Wed, 12 Feb 2025 23:04:05 -1000\r\n" },
		{ 5000, "Date: Thu, 13 Feb 2025 09:04:05 +0000\r\n" },
	};
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		struct buf out;
		buf_init(&out, 256);
		assert_int_equal(msg_header_write_date(&out, 1739437445, dates[i].tz, NULL), 0);
		assert_string_equal(out.data, dates[i].want);
		buf_free(&out);
	}
}

/* ---- attachments ------------------------------------------------------ */

static void test_mime_types(void **state)
{
	(void)state;
	static const char *const t[][2] = {
		{ "a.txt", "text/plain" }, { "dir/x.HTML", "text/html" },
		{ "r.pdf", "application/pdf" }, { "p.png", "image/png" },
		{ "p.JPG", "image/jpeg" }, { "p.jpeg", "image/jpeg" }, { "g.gif", "image/gif" },
		{ "z.zip", "application/zip" }, { "t.tar.gz", "application/gzip" },
		{ "d.csv", "text/csv" }, { "d.json", "application/json" },
		{ "d.xml", "application/xml" }, { "w.doc", "application/msword" },
		{ "w.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
		{ "s.xls", "application/vnd.ms-excel" },
		{ "s.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
		{ "noext", "application/octet-stream" }, { ".txt", "application/octet-stream" },
		{ "a.txt/", "application/octet-stream" }, { "x.unknown", "application/octet-stream" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(msg_attach_mime_type(t[i][0]), t[i][1]);
}

struct name_case {
	const char *path;
	const char *want;   /* the Content-Disposition field, unfolded */
};

static void test_attach_names(void **state)
{
	(void)state;
	static const struct name_case names[] = {
		{ "/tmp/report.pdf", "Content-Disposition: attachment; filename=\"report.pdf\"" },
		{ "a b.txt", "Content-Disposition: attachment; filename=\"a b.txt\"" },
		{ "Gr\xc3\xbc\xc3\x9f" "e.txt",
		  "Content-Disposition: attachment; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt" },
		{ "evil\r\nX: y.txt",
		  "Content-Disposition: attachment; filename*=UTF-8''evil%0D%0AX%3A%20y.txt" },
		{ "q\"uote.txt", "Content-Disposition: attachment; filename*=UTF-8''q%22uote.txt" },
		{ "dir/", "Content-Disposition: attachment; filename=\"attachment\"" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct buf out;
		buf_init(&out, 4096);
		assert_int_equal(msg_attach_write_headers(&out, names[i].path), 0);
		char got[1024];
		header_unfolded(out.data, "Content-Disposition:", got, sizeof(got));
		assert_string_equal(got, names[i].want);
		buf_free(&out);
	}
	/* A long non-ASCII name: RFC 2231 §3 continuations, short lines. */
	static char longname[3 * 100 + 5];
	for (size_t i = 0; i < 100; i++)
		memcpy(longname + 3 * i, "\xe2\x82\xac", 3);
	memcpy(longname + 300, ".pdf", 5);
	struct buf out;
	buf_init(&out, 8192);
	assert_int_equal(msg_attach_write_headers(&out, longname), 0);
	assert_non_null(strstr(out.data, "filename*0*=UTF-8''%E2%82%AC"));
	assert_non_null(strstr(out.data, "%E2%82%AC;\r\n filename*1*=%E2%82%AC"));
	assert_non_null(strstr(out.data, ".pdf\r\n"));
	assert_non_null(strstr(out.data, "Content-Type: application/pdf\r\n"));
	check_lines(out.data, out.len, 78);
	buf_free(&out);
}

static void test_attach_read(void **state)
{
	(void)state;
	char path[] = "/tmp/test_msg_compose_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\0world", 11), 11);
	close(fd);
	struct buf data;
	buf_init(&data, 1 << 20);
	struct msg_error err;
	assert_int_equal(msg_attach_read_file(path, &data, &err), 0);
	assert_int_equal(data.len, 11);
	assert_memory_equal(data.data, "hello\0world", 11);
	buf_free(&data);
	buf_init(&data, 5);
	assert_int_equal(msg_attach_read_file(path, &data, &err), -1);
	assert_int_equal(err.status, MSG_ERR_TOO_BIG);
	buf_free(&data);
	unlink(path);
	assert_int_equal(msg_attach_read_file(path, &data, &err), -1);
	assert_int_equal(err.status, MSG_ERR_FILE);
	assert_int_equal(msg_error_exit_code(err.status), 66);
	assert_int_equal(msg_attach_read_file("/tmp", &data, &err), -1);
	assert_int_equal(err.status, MSG_ERR_FILE);
}

static void test_multipart(void **state)
{
	(void)state;
	struct msg_attachment att[2] = {
		{ .name = "/x/report.pdf", .data = "%PDF-1.4 binary\x01\xff", .len = 17 },
		{ .name = "empty.txt", .data = "", .len = 0 },
	};
	struct msg_compose c = compose_base();
	c.attachments = att;
	c.attachment_count = 2;
	char *m = compose_ok(&c, 78);
	const char *b = "=_rawmail_0c0d0e0f1011121314151617";
	char want[256];
	snprintf(want, sizeof(want), "Content-Type: multipart/mixed; boundary=\"%s\"\r\n", b);
	assert_non_null(strstr(m, want));
	snprintf(want, sizeof(want), "\r\n--%s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	         "Content-Transfer-Encoding: 7bit\r\n\r\nHello there\r\n\r\n--%s\r\n"
	         "Content-Type: application/pdf\r\n", b, b);
	assert_non_null(strstr(m, want));
	assert_non_null(strstr(m, "filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
	                       "\r\nJVBERi0xLjQgYmluYXJ5Af8=\r\n"));
	snprintf(want, sizeof(want), "\r\n--%s--\r\n", b);
	assert_non_null(strstr(m, want));
	assert_string_equal(m + strlen(m) - strlen(want), want);
	free(m);

	/* A text that holds the boundary is sent quoted-printable, where
	 * "=_" cannot occur. */
	c.body = "line\n--=_rawmail_0c0d0e0f1011121314151617\n";
	c.body_len = strlen(c.body);
	m = compose_ok(&c, 78);
	assert_non_null(strstr(m, "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	                       "line\r\n--=3D_rawmail_"));
	free(m);
}

int main(void)
{
	memset(long_line, 'a', sizeof(long_line));
	struct CMUnitTest tests[64];
	size_t n = 0;
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_simple_exact);
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++)
		tests[n++] = (struct CMUnitTest){ .name = body_cases[i].name,
		                                  .test_func = test_body_case,
		                                  .initial_state = &body_cases[i] };
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++)
		tests[n++] = (struct CMUnitTest){ .name = header_cases[i].name,
		                                  .test_func = test_header_case,
		                                  .initial_state = (void *)&header_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_injection);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_usage_errors);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_too_big);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_long_subjects);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_to_folding);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_dates);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mime_types);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_attach_names);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_attach_read);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_multipart);
	return _cmocka_run_group_tests("msg_compose", tests, n, NULL, NULL);
}
