/* Unit tests for the DATA encoder (src/smtp/dot_encode.c).
 *
 * One table of cases: message octets in, the DATA stream out (finish's
 * octets included), the line count and the longest line.  Every case is
 * encoded in one call, split in two at every byte position, byte by byte,
 * and in pieces of 2, 3 and 7 octets, and each way must give the same
 * octets and counters.  Each piece gets an output buffer of exactly the
 * room the header promises (2 * len + 2 octets, on the heap, so the
 * sanitizer build catches a write past it).
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every case's input into
 * that directory as a seed for tests/fuzz/fuzz_smtp_dot_encode.c, behind the
 * harness's selector octet (0: byte-by-byte pieces). */
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

#include "smtp/dot_encode.h"

/* A string literal with its length, so cases may hold NUL octets. */
#define S(lit) lit, sizeof(lit) - 1

struct dot_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *out;
	size_t outlen;
	uint64_t lines;
	uint64_t longest;
};

/* Long lines, filled in main(): a 998-octet line and a 999-octet one (the
 * caller refuses the second, RFC 5322 §2.1.1), and a 100 KB line. */
static char lines_998_999_in[998 + 1 + 999];
static char lines_998_999_out[998 + 2 + 999 + 5];
#define LONG_LINE (100u * 1024u)
static char long_in[LONG_LINE];
static char long_out[LONG_LINE + 5];

static struct dot_case cases[] = {
	/* name, input, output, lines, longest */
	/* RFC 5321 §4.1.1.4: an empty message is just "." CR LF. */
	{ "empty", S(""), S(".\r\n"), 0, 0 },
	{ "one_line_crlf", S("a\r\n"), S("a\r\n.\r\n"), 1, 1 },
	{ "one_line_lf", S("a\n"), S("a\r\n.\r\n"), 1, 1 },
	{ "one_line_cr", S("a\r"), S("a\r\n.\r\n"), 1, 1 },
	{ "no_final_newline", S("hello"), S("hello\r\n.\r\n"), 1, 5 },
	{ "no_final_newline_two_lines", S("a\nbc"), S("a\r\nbc\r\n.\r\n"), 2, 2 },
	/* RFC 5321 §4.5.2: a line starting with "." gets one more. */
	{ "dot", S("."), S("..\r\n.\r\n"), 1, 1 },
	{ "dot_dot", S(".."), S("...\r\n.\r\n"), 1, 2 },
	{ "dot_line", S(".\r\n"), S("..\r\n.\r\n"), 1, 1 },
	{ "dot_text", S(".x\n"), S("..x\r\n.\r\n"), 1, 2 },
	{ "dot_after_lf", S("a\n.b\n"), S("a\r\n..b\r\n.\r\n"), 2, 2 },
	{ "dot_after_crlf", S("a\r\n.b\r\n"), S("a\r\n..b\r\n.\r\n"), 2, 2 },
	{ "dot_after_cr", S("a\r.b\r"), S("a\r\n..b\r\n.\r\n"), 2, 2 },
	{ "dots_every_ending", S(".\n.\r\n.\r."), S("..\r\n..\r\n..\r\n..\r\n.\r\n"), 4, 1 },
	/* Would end DATA early if sent as it is (SMTP smuggling). */
	{ "terminator_inside", S("a\r\n.\r\nMAIL FROM:<x>\r\n"),
	  S("a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"), 3, 13 },
	{ "lf_dot_lf_inside", S("a\n.\nb"), S("a\r\n..\r\nb\r\n.\r\n"), 3, 1 },
	{ "dot_inside_line", S("a.b\n"), S("a.b\r\n.\r\n"), 1, 3 },
	{ "space_dot", S(" .\n"), S(" .\r\n.\r\n"), 1, 2 },
	{ "mixed_endings", S("one\r\ntwo\nthree\rfour"),
	  S("one\r\ntwo\r\nthree\r\nfour\r\n.\r\n"), 4, 5 },
	{ "cr_cr_lf", S("a\r\r\n"), S("a\r\n\r\n.\r\n"), 2, 1 },
	{ "lf_cr", S("a\n\rb"), S("a\r\n\r\nb\r\n.\r\n"), 3, 1 },
	{ "empty_lines", S("\r\n\r\n"), S("\r\n\r\n.\r\n"), 2, 0 },
	{ "bare_lf_only", S("\n"), S("\r\n.\r\n"), 1, 0 },
	{ "bare_cr_only", S("\r"), S("\r\n.\r\n"), 1, 0 },
	{ "lf_then_dot", S("\n."), S("\r\n..\r\n.\r\n"), 2, 1 },
	{ "nul_and_8bit", S("a\0b\xff\n"), S("a\0b\xff\r\n.\r\n"), 1, 4 },
	{ "tab_line", S("\t.\n"), S("\t.\r\n.\r\n"), 1, 2 },
	{ "lines_998_999", lines_998_999_in, sizeof(lines_998_999_in),
	  lines_998_999_out, sizeof(lines_998_999_out), 2, 999 },
	{ "long_line", long_in, sizeof(long_in), long_out, sizeof(long_out), 1, LONG_LINE },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct result {
	char *out;
	size_t outlen;
	struct smtp_dot_encoder e;
};

/* Encodes tc->in as a first piece of `first` octets, then pieces of `step`
 * octets (0: all the rest), then finishes. */
static void encode_pieces(const struct dot_case *tc, size_t first, size_t step, struct result *r)
{
	smtp_dot_encoder_init(&r->e);
	r->out = malloc(2 * tc->inlen + 5);
	assert_non_null(r->out);
	r->outlen = 0;
	size_t pos = 0;
	bool first_piece = true;
	uint64_t longest = 0;
	while (first_piece || pos < tc->inlen) {
		size_t len = first_piece ? first : step ? step : tc->inlen - pos;
		if (len > tc->inlen - pos)
			len = tc->inlen - pos;
		first_piece = false;
		char *piece = malloc(2 * len + 2);
		assert_non_null(piece);
		size_t n = smtp_dot_encode(&r->e, tc->in + pos, len, piece);
		assert_true(n <= 2 * len + 2);
		/* The counters never go back. */
		assert_true(r->e.longest_line >= longest);
		longest = r->e.longest_line;
		memcpy(r->out + r->outlen, piece, n);
		free(piece);
		r->outlen += n;
		pos += len;
	}
	char *last = malloc(5);
	assert_non_null(last);
	size_t n = smtp_dot_encode_finish(&r->e, last);
	assert_true(n == 3 || n == 5);
	memcpy(r->out + r->outlen, last, n);
	free(last);
	r->outlen += n;
}


static void check_result(const struct dot_case *tc, struct result *r, const char *how,
                         size_t first, size_t step)
{
	bool same = r->outlen == tc->outlen && memcmp(r->out, tc->out, tc->outlen) == 0;
	if (!same) {
		print_error("%s: %s (first %zu, step %zu): got \"", tc->name, how, first, step);
		test_print_escaped(r->out, r->outlen);
		print_error("\", want \"");
		test_print_escaped(tc->out, tc->outlen);
		print_error("\"\n");
	}
	assert_true(same);
	assert_int_equal(r->e.lines, tc->lines);
	assert_int_equal(r->e.longest_line, tc->longest);
	free(r->out);
	r->out = NULL;
}


static void dot_split(void *ctx, size_t first, size_t step, const char *how)
{
	const struct dot_case *tc = ctx;
	struct result r;
	encode_pieces(tc, first, step, &r);
	check_result(tc, &r, how, first, step);
}

static void test_case(void **state)
{
	const struct dot_case *tc = *state;
	splits_run(tc->inlen, dot_split, (void *)tc);
}


/* A CR ending one chunk and an LF starting the next are one line ending,
 * and a "." after them is stuffed; an empty chunk between changes nothing. */
static void test_cr_lf_across_chunks(void **state)
{
	(void)state;
	struct smtp_dot_encoder e;
	char out[32];
	size_t n;
	smtp_dot_encoder_init(&e);
	n = smtp_dot_encode(&e, "a\r", 2, out);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "a\r\n", 3);
	assert_int_equal(smtp_dot_encode(&e, "", 0, out), 0);
	n = smtp_dot_encode(&e, "\n.b", 3, out);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "..b", 3);
	assert_int_equal(e.lines, 1);
	n = smtp_dot_encode_finish(&e, out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "\r\n.\r\n", 5);
	assert_int_equal(e.lines, 2);
	assert_int_equal(e.longest_line, 2);
}

/* The line being written counts towards longest_line before it ends, so a
 * caller can refuse an over-long line without buffering it (exit 65). */
static void test_longest_counts_open_line(void **state)
{
	(void)state;
	static char in[1000];
	static char out[2 * sizeof(in) + 2];
	struct smtp_dot_encoder e;
	memset(in, 'x', sizeof(in));
	smtp_dot_encoder_init(&e);
	assert_int_equal(smtp_dot_encode(&e, in, 998, out), 998);
	assert_int_equal(e.longest_line, 998);
	assert_int_equal(smtp_dot_encode(&e, in, 1, out), 1);
	assert_int_equal(e.longest_line, 999);
	assert_int_equal(e.lines, 0);
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct dot_case *tc = &cases[i];
		if (test_seed_write(dir, "dot_encode", i, tc->name, 0, tc->in, tc->inlen) < 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	memset(lines_998_999_in, 'x', sizeof(lines_998_999_in));
	lines_998_999_in[998] = '\n';
	memset(lines_998_999_out, 'x', sizeof(lines_998_999_out));
	memcpy(lines_998_999_out + 998, "\r\n", 2);
	memcpy(lines_998_999_out + 998 + 2 + 999, "\r\n.\r\n", 5);
	memset(long_in, 'y', sizeof(long_in));
	memset(long_out, 'y', sizeof(long_out));
	memcpy(long_out + LONG_LINE, "\r\n.\r\n", 5);

	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;

	struct CMUnitTest tests[NCASES + 2];
	for (size_t i = 0; i < NCASES; i++) {
		tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_case,
		                                .initial_state = &cases[i] };
	}
	tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_cr_lf_across_chunks);
	tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_longest_counts_open_line);
	return cmocka_run_group_tests_name("smtp_dot_encode", tests, NULL, NULL);
}
