/* Unit tests for submission's missing Date and Message-ID
 * (src/smtp/header_fill.c).  One table of messages in stored form and
 * what must come out; every case is fed in one call, split in two at every
 * position, byte by byte and in pieces of 2, 3 and 7 (tests/unit/splits.h),
 * each piece in a heap block of exactly its length (the sanitizer build
 * catches a read past it), and each way must give the same octets.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every case's input as a
 * seed for tests/fuzz/fuzz_smtp_header_fill.c, after the harness's
 * selector octet (0: byte by byte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "splits.h"
#include "testutil.h"

#include "smtp/header_fill.h"

#define DATE_VALUE "Sun, 06 Dec 2026 17:05:00 +0000"
#define MSGID_VALUE "<20261206170500.abc@mx.example>"
#define D "Date: " DATE_VALUE "\n"
#define M "Message-ID: " MSGID_VALUE "\n"

struct fill_case {
	const char *name;
	const char *in;
	const char *out;
	bool have_date, have_msgid; /* found in the message */
};

/* Built in main(): a 5000-octet Subject line; a line of 300 name octets
 * with no colon (past SMTP_HEADER_FILL_HOLD_MAX: taken as a field); one of
 * 100 (under it: not a field, so the section ends there). */
#define LONG_VALUE 5000
#define LONG_NAME 300
#define SHORT_NAME 100
static char long_value_in[LONG_VALUE + 64], long_value_out[LONG_VALUE + 256];
static char long_name_in[LONG_NAME + 64], long_name_out[LONG_NAME + 256];
static char short_name_in[SHORT_NAME + 64], short_name_out[SHORT_NAME + 256];

static struct fill_case cases[] = {
	{ "both_present",
	  "From: a@x.test\nDate: Sat, 05 Dec 2026 10:00:00 +0100\nMessage-ID: <1@x.test>\n\nhi\n",
	  "From: a@x.test\nDate: Sat, 05 Dec 2026 10:00:00 +0100\nMessage-ID: <1@x.test>\n\nhi\n",
	  true, true },
	{ "none", "From: a@x.test\nSubject: s\n\nhi\n", "From: a@x.test\nSubject: s\n" D M "\nhi\n",
	  false, false },
	{ "date_only", "Date: x\nFrom: a@x.test\n\nbody\n", "Date: x\nFrom: a@x.test\n" M "\nbody\n",
	  true, false },
	{ "msgid_only", "Message-ID: <2@x>\n\n", "Message-ID: <2@x>\n" D "\n", false, true },
	{ "folded_fields",
	  "Subject: a\n long\n\tsubject\nTo: b@x.test,\n  c@x.test\n\nDate: in body\n",
	  "Subject: a\n long\n\tsubject\nTo: b@x.test,\n  c@x.test\n" D M "\nDate: in body\n",
	  false, false },
	{ "folded_date", "Date:\n Sat, 05 Dec 2026\n 10:00:00 +0100\n\nx\n",
	  "Date:\n Sat, 05 Dec 2026\n 10:00:00 +0100\n" M "\nx\n", true, false },
	{ "message_id_case", "Message-Id: <3@x>\nDATE: y\n\n", "Message-Id: <3@x>\nDATE: y\n\n",
	  true, true },
	{ "message_id_lower", "message-id: <3@x>\n\n", "message-id: <3@x>\n" D "\n", false, true },
	{ "message_id_mixed", "mEsSaGe-iD:<3@x>\ndate:y\n\n", "mEsSaGe-iD:<3@x>\ndate:y\n\n", true,
	  true },
	/* RFC 5322 §4.5.8: WSP before the colon (obsolete, still a field). */
	{ "obsolete_wsp_colon", "Date \t: x\nSubject : s\n\n", "Date \t: x\nSubject : s\n" M "\n",
	  true, false },
	/* Names that only begin like the ones looked for, or are longer. */
	{ "near_names", "Dates: x\nDat: y\nMessage-IDs: z\nMessage-I: w\nResent-Date: v\n\n",
	  "Dates: x\nDat: y\nMessage-IDs: z\nMessage-I: w\nResent-Date: v\n" D M "\n", false,
	  false },
	{ "date_in_body", "Subject: s\n\nDate: not a field\nMessage-ID: <no@x>\n",
	  "Subject: s\n" D M "\nDate: not a field\nMessage-ID: <no@x>\n", false, false },
	{ "date_in_mime_part",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\nDate: x\nMessage-ID: <p@x>\n\n"
	  "part\n--b--\n",
	  "Content-Type: multipart/mixed; boundary=b\n" D M "\n--b\nDate: x\nMessage-ID: <p@x>\n\n"
	  "part\n--b--\n",
	  false, false },
	{ "bodyless", "From: a@x.test\nSubject: s\n", "From: a@x.test\nSubject: s\n" D M, false,
	  false },
	{ "bodyless_no_lf", "Subject: s", "Subject: s\n" D M, false, false },
	{ "bodyless_with_date", "Date: x\n", "Date: x\n" M, true, false },
	/* Both present: no empty line or LF is added either. */
	{ "both_no_separator", "Date: x\nMessage-ID: <y@x>\nbody\n", "Date: x\nMessage-ID: <y@x>\nbody\n",
	  true, true },
	{ "both_no_lf", "Date: x\nMessage-ID: <y@x>", "Date: x\nMessage-ID: <y@x>", true, true },
	{ "both_no_colon_at_end", "Date: x\nMessage-ID: <y@x>\nTrailer", "Date: x\nMessage-ID: <y@x>\nTrailer", true, true },
	{ "empty", "", D M, false, false },
	{ "only_empty_line", "\n", D M "\n", false, false },
	{ "only_empty_line_body", "\nbody\n", D M "\nbody\n", false, false },
	/* No empty line: the section ends at the first line that is not a
	 * field; the fields and an empty line go before it. */
	{ "no_colon_first_line", "hello world\nDate: x\n", D M "\nhello world\nDate: x\n", false,
	  false },
	{ "name_without_colon_first", "Subject\n\n", D M "\nSubject\n\n", false, false },
	{ "name_without_colon_at_end", "Subject: s\nTrailer", "Subject: s\n" D M "\nTrailer", false,
	  false },
	{ "name_wsp_at_end", "Subject: s\nDate  ", "Subject: s\n" D M "\nDate  ", false, false },
	{ "no_separator", "Subject: s\nthis is the body\nmore\n",
	  "Subject: s\n" D M "\nthis is the body\nmore\n", false, false },
	{ "no_separator_name_space", "Subject: s\nDate x: y\n", "Subject: s\n" D M "\nDate x: y\n",
	  false, false },
	{ "empty_name", "Subject: s\n: x\n", "Subject: s\n" D M "\n: x\n", false, false },
	{ "continuation_first", " folded\nDate: x\n", D M "\n folded\nDate: x\n", false, false },
	{ "from_line", "From a@x.test Sun Dec  6 17:05:00 2026\nDate: x\n\n",
	  D M "\nFrom a@x.test Sun Dec  6 17:05:00 2026\nDate: x\n\n", false, false },
	/* CRs (not in the stored form normally): passed as they are; a line
	 * "\r" is not empty, so it ends the section as a body line. */
	{ "cr_in_value", "Subject: a\rb\nDate: x\r\n\r\n", "Subject: a\rb\nDate: x\r\n" M "\n\r\n", true,
	  false },
	{ "cr_line", "Subject: s\n\r\nbody\n", "Subject: s\n" D M "\n\r\nbody\n", false, false },
	{ "cr_in_name", "Da\rte: x\n\n", D M "\nDa\rte: x\n\n", false, false },
	/* 8-bit octets: in values they are content; in a name they end the
	 * section (not ftext). */
	{ "8bit_value", "Subject: J\xc3\xb6rg\n\nb\xff\n", "Subject: J\xc3\xb6rg\n" D M "\nb\xff\n",
	  false, false },
	{ "8bit_name", "Subject: s\nF\xc3\xb6o: x\n\n", "Subject: s\n" D M "\nF\xc3\xb6o: x\n\n", false,
	  false },
	{ "long_value", long_value_in, long_value_out, false, false },
	{ "long_name", long_name_in, long_name_out, false, false },
	{ "short_name", short_name_in, short_name_out, false, false },
};

static void long_cases_build(void)
{
	char *p = long_value_in;
	p += snprintf(p, 64, "Subject: ");
	memset(p, 'x', LONG_VALUE);
	p += LONG_VALUE;
	snprintf(p, 64, "\nTo: b@x.test\n\nbody\n");
	/* same, the fields before the empty line */
	p = long_value_out;
	memcpy(p, long_value_in, strlen(long_value_in) - strlen("\nbody\n"));
	p += strlen(long_value_in) - strlen("\nbody\n");
	snprintf(p, 256, "%s%s\nbody\n", D, M);

	memset(long_name_in, 'a', LONG_NAME);
	snprintf(long_name_in + LONG_NAME, 64, "\n\nbody\n");
	memset(long_name_out, 'a', LONG_NAME);
	snprintf(long_name_out + LONG_NAME, 256, "\n%s%s\nbody\n", D, M);

	memset(short_name_in, 'a', SHORT_NAME);
	snprintf(short_name_in + SHORT_NAME, 64, "\n\nbody\n");
	snprintf(short_name_out, 256, "%s%s\n", D, M);
	memset(short_name_out + strlen(short_name_out), 'a', SHORT_NAME);
	snprintf(short_name_out + strlen(D M "\n") + SHORT_NAME, 64, "\n\nbody\n");
}

struct sink {
	char *data;
	size_t len, cap;
	size_t calls;
};

static void sink_emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;
	assert_true(n > 0);
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->data = realloc(s->data, s->cap);
		assert_non_null(s->data);
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->calls++;
}

static void fill_split(void *ctx, size_t first, size_t step, const char *how)
{
	const struct fill_case *tc = ctx;
	size_t inlen = strlen(tc->in);
	struct sink s = { 0 };
	struct smtp_header_fill f;
	smtp_header_fill_init(&f, DATE_VALUE, MSGID_VALUE);
	size_t off = 0, piece = first;
	for (;;) {
		if (piece > inlen - off)
			piece = inlen - off;
		char *block = malloc(piece ? piece : 1);
		assert_non_null(block);
		memcpy(block, tc->in + off, piece);
		smtp_header_fill_feed(&f, block, piece, sink_emit, &s);
		free(block);
		off += piece;
		if (off == inlen)
			break;
		piece = step ? step : inlen - off;
	}
	smtp_header_fill_finish(&f, sink_emit, &s);
	/* Nothing more after finish. */
	smtp_header_fill_feed(&f, "x", 1, sink_emit, &s);
	smtp_header_fill_finish(&f, sink_emit, &s);
	size_t outlen = strlen(tc->out);
	bool same = s.len == outlen && memcmp(s.data ? s.data : "", tc->out, outlen) == 0;
	if (!same) {
		print_error("%s: %s (first %zu, step %zu): got \"", tc->name, how, first, step);
		test_print_escaped(s.data ? s.data : "", s.len);
		print_error("\", want \"");
		test_print_escaped(tc->out, outlen);
		print_error("\"\n");
	}
	assert_true(same);
	assert_int_equal(f.have_date, tc->have_date);
	assert_int_equal(f.have_msgid, tc->have_msgid);
	assert_true(f.header_done);
	assert_int_equal(f.inserted, outlen - inlen);
	free(s.data);
}

static void test_case(void **state)
{
	const struct fill_case *tc = *state;
	splits_run(strlen(tc->in), fill_split, (void *)tc);
}

/* Pass-through octets are slices of the input, not copies: a message fed
 * whole comes out in a few calls (before the fields, the fields, after). */
static void test_slices(void **state)
{
	static const char in[] = "Subject: s\nTo: b@x.test\n\nline 1\nline 2\nline 3\n";
	struct sink s = { 0 };
	struct smtp_header_fill f;
	smtp_header_fill_init(&f, DATE_VALUE, MSGID_VALUE);
	smtp_header_fill_feed(&f, in, sizeof(in) - 1, sink_emit, &s);
	/* head, "Date: ", value, LF, "Message-ID: ", value, LF, rest */
	assert_int_equal(s.calls, 8);
	smtp_header_fill_feed(&f, in, sizeof(in) - 1, sink_emit, &s);
	assert_int_equal(s.calls, 9);
	smtp_header_fill_finish(&f, sink_emit, &s);
	assert_int_equal(s.calls, 9);
	free(s.data);
}

/* A NULL value is never added. */
static void test_null_values(void **state)
{
	struct sink s = { 0 };
	struct smtp_header_fill f;
	smtp_header_fill_init(&f, NULL, MSGID_VALUE);
	smtp_header_fill_feed(&f, "A: b\n\n", 6, sink_emit, &s);
	smtp_header_fill_finish(&f, sink_emit, &s);
	assert_int_equal(s.len, strlen("A: b\n" M "\n"));
	assert_memory_equal(s.data, "A: b\n" M "\n", s.len);
	free(s.data);
	s = (struct sink){ 0 };
	smtp_header_fill_init(&f, NULL, NULL);
	smtp_header_fill_feed(&f, "A: b\n", 5, sink_emit, &s);
	smtp_header_fill_finish(&f, sink_emit, &s);
	assert_int_equal(s.len, 5);
	assert_int_equal(f.inserted, 0);
	free(s.data);
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test_seed_write(dir, "fill", i, cases[i].name, 0, cases[i].in,
		                    strlen(cases[i].in)) < 0)
			return -1;
	return 0;
}

int main(void)
{
	long_cases_build();
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
	struct CMUnitTest tests[NCASES + 2];
	for (size_t i = 0; i < NCASES; i++)
		tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_case,
		                                .initial_state = &cases[i] };
	tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_slices);
	tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_null_values);
	return cmocka_run_group_tests_name("smtp_header_fill", tests, NULL, NULL);
}
