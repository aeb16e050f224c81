/* Unit tests for the DATA / BDAT content decoder (src/smtp/content.c).
 *
 * One table of cases; every case is decoded in one call, split in two at
 * every byte position, in pieces of 1, 2, 3 and 7 octets, and in place, and
 * each way must give the same octets and counters: that is what "resumable
 * at any byte" promises.  Each piece gets an output buffer of exactly its
 * own length (on the heap, so the sanitizer build catches a write past it).
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every case's input into
 * that directory as a seed for tests/fuzz/fuzz_smtp_content.c, prefixed by the
 * harness's selector octet (bit 0: BDAT, bit 1: SMTP_BARE_REJECT, other
 * bits 0: byte-by-byte pieces). */
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

#include "smtp/content.h"

enum content_mode { DATA, BDAT };

#define NORM SMTP_BARE_NORMALIZE
#define REJ SMTP_BARE_REJECT
/* A string literal with its length, so cases may hold NUL octets. */
#define S(lit) lit, sizeof(lit) - 1

struct content_case {
	const char *name;
	enum content_mode mode;
	enum smtp_bare_policy policy;
	const char *in;
	size_t inlen;
	const char *out;
	size_t outlen;
	size_t rest;       /* input octets left unconsumed (DATA after its end) */
	bool done;
	uint64_t bare;     /* bare_count after the input (and finish) */
};

/* A 100 KB line with no line break: stored intact (RFC 5321 §4.5.3.1 asks
 * receivers not to limit line length; the message size limit is the
 * caller's).  Filled in main(). */
#define LONG_LINE (100u * 1024u)
static char long_in[LONG_LINE + 5];
static char long_out[LONG_LINE + 1];

static struct content_case cases[] = {
	/* name, mode, policy, input, output, rest, done, bare */
	{ "empty_input", DATA, REJ, S(""), S(""), 0, false, 0 },
	/* RFC 5321 §4.1.1.4: the start counts as after a CR LF, so "." CR LF
	 * right away is an empty message. */
	{ "dot_only", DATA, REJ, S(".\r\n"), S(""), 0, true, 0 },
	{ "dot_only_then_command", DATA, REJ, S(".\r\nQUIT\r\n"), S(""), 6, true, 0 },
	{ "one_line", DATA, REJ, S("hello\r\n.\r\n"), S("hello\n"), 0, true, 0 },
	{ "empty_lines", DATA, REJ, S("\r\n\r\n.\r\n"), S("\n\n"), 0, true, 0 },
	/* RFC 5321 §4.5.2: a leading "." is removed where a client stuffs. */
	{ "dot_stuffed_first_line", DATA, REJ, S("..hidden\r\n.\r\n"), S(".hidden\n"), 0, true, 0 },
	{ "dot_stuffed_lines", DATA, REJ, S("a\r\n..\r\n...\r\n.x\r\n.\r\n"),
	  S("a\n.\n..\nx\n"), 0, true, 0 },
	{ "double_dot_only", DATA, REJ, S("..\r\n.\r\n"), S(".\n"), 0, true, 0 },
	{ "dot_text_first_line", DATA, REJ, S(".a\r\n.\r\n"), S("a\n"), 0, true, 0 },
	/* After a bare LF no SMTP line starts: a "." there is content. */
	{ "dot_after_bare_lf", DATA, REJ, S("a\n.b\r\n.\r\n"), S("a\n.b\n"), 0, true, 1 },
	{ "dotdot_after_bare_lf", DATA, REJ, S("a\n..\r\n.\r\n"), S("a\n..\n"), 0, true, 1 },
	{ "bare_lf_lines", DATA, REJ, S("a\nb\n\r\n.\r\n"), S("a\nb\n\n"), 0, true, 2 },
	{ "bare_lf_lines_normalize", DATA, NORM, S("a\nb\n\r\n.\r\n"), S("a\nb\n\n"), 0, true, 0 },
	{ "lf_dot_crlf_at_start", DATA, REJ, S("\n.\r\n"), S("\n.\n"), 0, false, 1 },
	{ "dot_lf_at_start", DATA, REJ, S(".\n.\r\n.\r\n"), S("\n.\n"), 0, true, 1 },
	/* SMTP smuggling: none of these ends DATA (see content.c). */
	{ "smuggle_lf_dot_lf", DATA, REJ, S("a\n.\nb\r\n.\r\n"), S("a\n.\nb\n"), 0, true, 2 },
	{ "smuggle_lf_dot_lf_normalize", DATA, NORM, S("a\n.\nb\r\n.\r\n"), S("a\n.\nb\n"), 0, true, 0 },
	{ "smuggle_lf_dot_crlf", DATA, REJ, S("a\n.\r\nb\r\n.\r\n"), S("a\n.\nb\n"), 0, true, 1 },
	{ "smuggle_cr_dot_cr", DATA, REJ, S("a\r.\rb\r\n.\r\n"), S("a\n.\nb\n"), 0, true, 2 },
	{ "smuggle_cr_dot_cr_normalize", DATA, NORM, S("a\r.\rb\r\n.\r\n"), S("a\n.\nb\n"), 0, true, 0 },
	{ "smuggle_crlf_dot_cr_crlf", DATA, REJ, S("a\r\n.\r\r\nb\r\n.\r\n"), S("a\n\n\nb\n"), 0, true, 1 },
	/* After "\r\n.\r\r\n" a line starts after a real CR LF: ".\r\n" ends. */
	{ "smuggle_crlf_dot_cr_crlf_end", DATA, REJ, S("a\r\n.\r\r\n.\r\nX"), S("a\n\n\n"), 1, true, 1 },
	{ "smuggle_crlf_dot_lf", DATA, REJ, S("a\r\n.\nb\r\n.\r\n"), S("a\n\nb\n"), 0, true, 1 },
	{ "smuggle_crlf_dot_lf_normalize", DATA, NORM, S("a\r\n.\nb\r\n.\r\n"), S("a\n\nb\n"), 0, true, 0 },
	{ "smuggle_crlf_dot_cr_text", DATA, REJ, S("a\r\n.\rb\r\n.\r\n"), S("a\n\nb\n"), 0, true, 1 },
	{ "smuggle_crlf_dot_cr_dot", DATA, REJ, S("a\r\n.\r.\r\n.\r\n"), S("a\n\n.\n"), 0, true, 1 },
	{ "smuggle_crlf_dot_cr_cr", DATA, REJ, S("a\r\n.\r\rb\r\n.\r\n"), S("a\n\n\nb\n"), 0, true, 2 },
	{ "smuggle_crlf_dot_cr_nul", DATA, REJ, S("a\r\n.\r\0\r\n.\r\n"), S("a\n\n\0\n"), 0, true, 1 },
	{ "smuggle_full_payload", DATA, REJ,
	  S("Subject: hi\r\n\r\nbody\n.\nMAIL FROM:<a@evil>\r\nRCPT TO:<v@x>\r\n"
	    "DATA\r\nforged\r\n.\r\nQUIT\r\n"),
	  S("Subject: hi\n\nbody\n.\nMAIL FROM:<a@evil>\nRCPT TO:<v@x>\nDATA\nforged\n"),
	  6, true, 2 },
	/* Input ending in held state; finish() is called afterwards. */
	{ "cr_at_end_of_input", DATA, REJ, S("abc\r"), S("abc\n"), 0, false, 1 },
	{ "crlf_at_end_of_input", DATA, REJ, S("abc\r\n"), S("abc\n"), 0, false, 0 },
	{ "crlf_dot_at_end_of_input", DATA, REJ, S("abc\r\n."), S("abc\n"), 0, false, 0 },
	{ "crlf_dot_cr_at_end_of_input", DATA, REJ, S("abc\r\n.\r"), S("abc\n"), 0, false, 0 },
	{ "nul_octets", DATA, REJ, S("a\0b\r\n\0\r\n.\r\n"), S("a\0b\n\0\n"), 0, true, 0 },
	/* A NUL after the end belongs to the next command, not the message. */
	{ "nul_after_end", DATA, REJ, S("a\r\n.\r\n\0"), S("a\n"), 1, true, 0 },
	{ "nul_after_stuffing_dot", DATA, REJ, S("\r\n.\0\r\n.\r\n"), S("\n\0\n"), 0, true, 0 },
	{ "data_after_terminator", DATA, REJ, S("a\r\n.\r\nMAIL FROM:<x>\r\n"), S("a\n"), 15, true, 0 },
	{ "terminator_twice", DATA, REJ, S("a\r\n.\r\n.\r\n"), S("a\n"), 3, true, 0 },
	{ "long_line", DATA, REJ, long_in, sizeof(long_in), long_out, sizeof(long_out), 0, true, 0 },
	{ "long_line_unterminated", DATA, REJ, long_in, LONG_LINE, long_out, LONG_LINE, 0, false, 0 },

	/* BDAT (RFC 3030): raw octets, no dots, no end marker. */
	{ "bdat_empty", BDAT, REJ, S(""), S(""), 0, false, 0 },
	{ "bdat_crlf", BDAT, REJ, S("a\r\nb\r\n"), S("a\nb\n"), 0, false, 0 },
	{ "bdat_dots_untouched", BDAT, REJ, S(".\r\n..\r\n\r\n.\r\n"), S(".\n..\n\n.\n"), 0, false, 0 },
	{ "bdat_bare_cr_at_end", BDAT, REJ, S("a\r"), S("a\n"), 0, false, 1 },
	{ "bdat_bare_cr_at_end_normalize", BDAT, NORM, S("a\r"), S("a\n"), 0, false, 0 },
	{ "bdat_bare_lf", BDAT, REJ, S("a\nb"), S("a\nb"), 0, false, 1 },
	{ "bdat_cr_cr_lf", BDAT, REJ, S("a\r\r\n"), S("a\n\n"), 0, false, 1 },
	{ "bdat_lf_dot_lf", BDAT, REJ, S("\n.\n"), S("\n.\n"), 0, false, 2 },
	{ "bdat_crlf_dot_cr_crlf", BDAT, REJ, S("\r\n.\r\r\n"), S("\n.\n\n"), 0, false, 1 },
	{ "bdat_nul_octets", BDAT, REJ, S("\0\0\r\n"), S("\0\0\n"), 0, false, 0 },
	{ "bdat_long_line", BDAT, REJ, long_in, LONG_LINE, long_out, LONG_LINE, 0, false, 0 },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct result {
	char *out;
	size_t outlen;
	size_t consumed;
	size_t finish_len;
	struct smtp_content c;
};

static void content_init(struct smtp_content *c, const struct content_case *tc)
{
	if (tc->mode == DATA)
		smtp_content_init_data(c, tc->policy);
	else
		smtp_content_init_bdat(c, tc->policy);
}

/* Decodes tc->in as a first piece of `first` octets, then pieces of `step`
 * octets (0: all the rest), checking what every call promises.  Unless the
 * DATA ended, finish() is called at the end, as a BDAT LAST would. */
static void decode_pieces(const struct content_case *tc, size_t first, size_t step,
                          struct result *r)
{
	content_init(&r->c, tc);
	r->out = malloc(tc->inlen + 1);
	assert_non_null(r->out);
	r->outlen = 0;
	r->consumed = 0;
	size_t pos = 0;
	bool first_piece = true;
	while (first_piece || pos < tc->inlen) {
		size_t len = first_piece ? first : step ? step : tc->inlen - pos;
		if (len > tc->inlen - pos)
			len = tc->inlen - pos;
		first_piece = false;
		char *piece = malloc(len);
		assert_true(piece != NULL || len == 0);
		size_t outlen = SIZE_MAX;
		bool was_done = r->c.done;
		size_t n = smtp_content_decode(&r->c, tc->in + pos, len, piece, &outlen);
		assert_true(n <= len);
		assert_true(outlen <= n);
		if (was_done)
			assert_int_equal(n, 0);
		if (tc->mode == BDAT)
			assert_int_equal(n, len);
		else if (n < len)
			assert_true(r->c.done);
		if (outlen)
			memcpy(r->out + r->outlen, piece, outlen);
		free(piece);
		r->outlen += outlen;
		r->consumed += n;
		pos += len;
	}
	char last[1];
	r->finish_len = smtp_content_finish(&r->c, last);
	assert_true(r->finish_len <= 1);
	if (r->finish_len)
		r->out[r->outlen++] = last[0];
}

/* Decodes a copy of the input in place (out == in) in one call. */
static void decode_in_place(const struct content_case *tc, struct result *r)
{
	content_init(&r->c, tc);
	r->out = malloc(tc->inlen + 1);
	assert_non_null(r->out);
	if (tc->inlen)
		memcpy(r->out, tc->in, tc->inlen);
	r->consumed = smtp_content_decode(&r->c, r->out, tc->inlen, r->out, &r->outlen);
	char last[1];
	r->finish_len = smtp_content_finish(&r->c, last);
	if (r->finish_len)
		r->out[r->outlen++] = last[0];
}

static size_t count_lf(const char *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}


static void check_result(const struct content_case *tc, struct result *r, const char *how,
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
	assert_int_equal(r->consumed, tc->inlen - tc->rest);
	assert_int_equal(r->c.done, tc->done);
	assert_int_equal(r->c.bare_count, tc->bare);
	assert_int_equal(r->c.stored_size, r->outlen);
	assert_int_equal(r->c.lines, count_lf(r->out, r->outlen));
	assert_int_equal(r->c.nul_seen, memchr(r->out, '\0', r->outlen) != NULL);
	/* Everything is written by the time DATA ends. */
	if (r->c.done)
		assert_int_equal(r->finish_len, 0);
	free(r->out);
	r->out = NULL;
}


static void content_split(void *ctx, size_t first, size_t step, const char *how)
{
	const struct content_case *tc = ctx;
	struct result r;
	decode_pieces(tc, first, step, &r);
	check_result(tc, &r, how, first, step);
}

static void test_case(void **state)
{
	const struct content_case *tc = *state;
	splits_run(tc->inlen, content_split, (void *)tc);
	struct result r;
	decode_in_place(tc, &r);
	check_result(tc, &r, "in place", tc->inlen, 0);
}


/* BDAT chunks as a session sees them: a CR LF split over chunks pairs up,
 * an empty chunk changes nothing, a CR ending the last chunk is bare. */
static void test_bdat_chunks(void **state)
{
	(void)state;
	static const char *const chunks[] = { "one\r", "\ntwo\r", "", "\r\nthree\r" };
	struct smtp_content c;
	char out[64];
	size_t len = 0;
	smtp_content_init_bdat(&c, SMTP_BARE_REJECT);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		size_t outlen;
		size_t n = smtp_content_decode(&c, chunks[i], strlen(chunks[i]), out + len, &outlen);
		assert_int_equal(n, strlen(chunks[i]));
		len += outlen;
	}
	assert_int_equal(c.bare_count, 1);  /* the CR before the empty chunk */
	len += smtp_content_finish(&c, out + len);
	assert_int_equal(c.bare_count, 2);  /* and the CR ending the message */
	assert_int_equal(len, strlen("one\ntwo\n\nthree\n"));
	assert_memory_equal(out, "one\ntwo\n\nthree\n", len);
	assert_int_equal(c.stored_size, len);
	assert_int_equal(c.lines, 4);
	assert_false(c.done);
}

/* The terminator split as "\r\n.\r" + "\n", with the next command in the
 * same read: only the LF is consumed, and later calls consume nothing. */
static void test_data_end_split(void **state)
{
	(void)state;
	struct smtp_content c;
	char out[16];
	size_t outlen;
	smtp_content_init_data(&c, SMTP_BARE_REJECT);
	assert_int_equal(smtp_content_decode(&c, "a\r\n.\r", 5, out, &outlen), 5);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "a\n", 2);
	assert_false(c.done);
	assert_int_equal(smtp_content_decode(&c, "\nQUIT\r\n", 7, out, &outlen), 1);
	assert_int_equal(outlen, 0);
	assert_true(c.done);
	assert_int_equal(smtp_content_decode(&c, "QUIT\r\n", 6, out, &outlen), 0);
	assert_int_equal(outlen, 0);
	assert_int_equal(smtp_content_finish(&c, out), 0);
	assert_int_equal(c.stored_size, 2);
	assert_int_equal(c.lines, 1);
	assert_int_equal(c.bare_count, 0);
}

/* "\r\n.\r" in one read and "X" in the next: the held CR is bare, and this
 * call may write only one octet for its one input octet, so "X" waits for
 * the next call (or finish); nothing is lost and room is never exceeded. */
static void test_data_pending_octet(void **state)
{
	(void)state;
	struct smtp_content c;
	char out[16];
	size_t outlen;
	smtp_content_init_data(&c, SMTP_BARE_REJECT);
	assert_int_equal(smtp_content_decode(&c, "\r\n.\r", 4, out, &outlen), 4);
	assert_int_equal(outlen, 1);
	assert_int_equal(smtp_content_decode(&c, "X", 1, out, &outlen), 1);
	assert_int_equal(outlen, 1);
	assert_int_equal(out[0], '\n');
	assert_int_equal(c.bare_count, 1);
	assert_int_equal(smtp_content_decode(&c, "\r\n.\r\n", 5, out, &outlen), 5);
	assert_true(c.done);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "X\n", 2);
	assert_int_equal(c.stored_size, 4);
	assert_int_equal(c.lines, 3);
}

/* Writes each case's input, behind the fuzzer's selector octet, to dir. */
static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct content_case *tc = &cases[i];
		if (test_seed_write(dir, "content", i, tc->name, (unsigned char)((tc->mode == BDAT ? 1u : 0u) | (tc->policy == REJ ? 2u : 0u)), tc->in, tc->inlen) < 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	memset(long_in, 'x', LONG_LINE);
	memcpy(long_in + LONG_LINE, "\r\n.\r\n", 5);
	memset(long_out, 'x', LONG_LINE);
	long_out[LONG_LINE] = '\n';

	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;

	struct CMUnitTest tests[NCASES + 3];
	for (size_t i = 0; i < NCASES; i++) {
		tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_case,
		                                .initial_state = &cases[i] };
	}
	tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_bdat_chunks);
	tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_data_end_split);
	tests[NCASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_data_pending_octet);
	return cmocka_run_group_tests_name("smtp_content", tests, NULL, NULL);
}
