/* Unit tests for the terminal and log escaper (src/util/text.c, issue 8
 * item 14).  One table: octets in, flags, text out.  Valid UTF-8 (Latin,
 * CJK, emoji) is kept; C0, DEL, C1 in both forms and every kind of broken
 * UTF-8 (overlong, surrogate, past U+10FFFF, truncated, lone continuation,
 * F5..FF) is escaped.  Every case also runs with exactly the promised
 * room (4 * len + 1, on the heap for the sanitizer) and, for truncation,
 * with every smaller size: the output is then a prefix of the full one
 * that ends on a unit boundary.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every case's input into
 * that directory as a seed for tests/fuzz/fuzz_util_text.c, behind the
 * harness's selector octet (the flags). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "util/text.h"

#define S(lit) lit, sizeof(lit) - 1

struct text_case {
	const char *name;
	const char *in;
	size_t inlen;
	unsigned flags;
	const char *out;
};

#define NL TEXT_KEEP_NEWLINE
#define Q TEXT_ESCAPE_QUOTES

static const struct text_case cases[] = {
	{ "empty", S(""), 0, "" },
	{ "ascii", S("250 2.0.0 Ok: queued"), 0, "250 2.0.0 Ok: queued" },
	/* C0 controls and DEL */
	{ "esc_csi", S("\x1b[2J"), 0, "\\x1b[2J" },
	{ "bel_bs", S("a\x07\x08z"), 0, "a\\x07\\x08z" },
	{ "tab", S("a\tb"), 0, "a\\x09b" },
	{ "cr", S("a\rb"), NL, "a\\x0db" },
	{ "nul", S("a\0b"), 0, "a\\x00b" },
	{ "del", S("a\x7f"), 0, "a\\x7f" },
	{ "lf_escaped", S("a\nb"), 0, "a\\x0ab" },
	{ "lf_kept", S("a\nb"), NL, "a\nb" },
	/* C1: raw octets (never valid UTF-8) and U+0080..U+009F in UTF-8 */
	{ "c1_raw_csi", S("\x9b" "31m"), 0, "\\x9b31m" },
	{ "c1_raw_range", S("\x80\x85\x9f"), 0, "\\x80\\x85\\x9f" },
	{ "c1_utf8_csi", S("\xc2\x9b" "31m"), 0, "\\u009b31m" },
	{ "c1_utf8_first_last", S("\xc2\x80\xc2\x9f"), 0, "\\u0080\\u009f" },
	{ "nbsp_kept", S("\xc2\xa0"), 0, "\xc2\xa0" },
	/* valid UTF-8 is kept */
	{ "latin", S("caf\xc3\xa9"), 0, "caf\xc3\xa9" },
	{ "cjk", S("\xe9\x82\xae\xe4\xbb\xb6"), 0, "\xe9\x82\xae\xe4\xbb\xb6" },
	{ "emoji", S("\xf0\x9f\x93\xa8"), 0, "\xf0\x9f\x93\xa8" },
	{ "max_code_point", S("\xf4\x8f\xbf\xbf"), 0, "\xf4\x8f\xbf\xbf" },
	{ "bidi_override_kept", S("\xe2\x80\xae"), 0, "\xe2\x80\xae" },
	/* broken UTF-8: each bad octet escaped, the next starts afresh */
	{ "overlong_slash", S("\xc0\xaf"), 0, "\\xc0\\xaf" },
	{ "overlong_c1_nul", S("\xc1\x80"), 0, "\\xc1\\x80" },
	{ "overlong_3", S("\xe0\x80\xaf"), 0, "\\xe0\\x80\\xaf" },
	{ "overlong_4", S("\xf0\x80\x80\xaf"), 0, "\\xf0\\x80\\x80\\xaf" },
	{ "surrogate_high", S("\xed\xa0\x80"), 0, "\\xed\\xa0\\x80" },
	{ "surrogate_low", S("\xed\xbf\xbf"), 0, "\\xed\\xbf\\xbf" },
	{ "past_10ffff", S("\xf4\x90\x80\x80"), 0, "\\xf4\\x90\\x80\\x80" },
	{ "f5_ff", S("\xf5\xff"), 0, "\\xf5\\xff" },
	{ "truncated_2_at_end", S("a\xc3"), 0, "a\\xc3" },
	{ "truncated_3_then_ascii", S("\xe9\x82" "x"), 0, "\\xe9\\x82x" },
	{ "truncated_then_valid", S("\xe9\xc3\xa9"), 0, "\\xe9\xc3\xa9" },
	{ "lone_continuation", S("\xa9"), 0, "\\xa9" },
	{ "latin1_e_acute", S("caf\xe9"), 0, "caf\\xe9" },
	/* quotes for a quoted log value */
	{ "quotes_kept", S("say \"hi\" \\o/"), 0, "say \"hi\" \\o/" },
	{ "quotes_escaped", S("say \"hi\" \\o/"), Q, "say \\\"hi\\\" \\\\o/" },
	{ "mixed", S("550 \x1b]0;pwn\x07\xc2\x9b\x9b\xc3\xa9\n"), NL,
	  "550 \\x1b]0;pwn\\x07\\u009b\\x9b\xc3\xa9\n" },
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct text_case *c = &cases[i];
		size_t room = 4 * c->inlen + 1;
		char *dst = malloc(room);
		assert_non_null(dst);
		size_t used = text_escape(dst, room, c->in, c->inlen, c->flags);
		if (used != c->inlen || strcmp(dst, c->out) != 0)
			print_error("case %s\n", c->name);
		assert_int_equal(used, c->inlen);
		assert_string_equal(dst, c->out);
		free(dst);
	}
}

/* The worst case: every octet an escape; exactly 4 * len + 1 fits. */
static void test_worst_case_room(void **state)
{
	char in[64], *dst = malloc(4 * sizeof(in) + 1);
	assert_non_null(dst);
	memset(in, 0x9b, sizeof(in));
	assert_int_equal(text_escape(dst, 4 * sizeof(in) + 1, in, sizeof(in), 0), sizeof(in));
	assert_int_equal(strlen(dst), 4 * sizeof(in));
	free(dst);
}

/* A short dst: a prefix of the full output, cut between units, never
 * inside an escape or a UTF-8 character; consumed tells how far it got. */
static void test_truncation_on_unit_boundary(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct text_case *c = &cases[i];
		size_t full = strlen(c->out);
		for (size_t room = 1; room <= full; room++) {
			char *dst = malloc(room);
			assert_non_null(dst);
			size_t used = text_escape(dst, room, c->in, c->inlen, c->flags);
			size_t n = strlen(dst);
			assert_true(n < room);
			assert_memory_equal(dst, c->out, n);
			assert_true(used < c->inlen);
			/* The rest, escaped on its own, completes the output. */
			char rest[512];
			text_escape(rest, sizeof(rest), c->in + used, c->inlen - used, c->flags);
			assert_string_equal(rest, c->out + n);
			free(dst);
		}
	}
}

/* Every octet value in every position of a short string: the output is
 * valid UTF-8 with no C0 (but a kept LF), DEL or C1 in either form. */
static void test_output_always_safe(void **state)
{
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++) {
			const char in[4] = { (char)a, (char)b, (char)0xbf, 'x' };
			char out[4 * sizeof(in) + 1];
			text_escape(out, sizeof(out), in, sizeof(in), NL);
			const unsigned char *p = (const unsigned char *)out;
			for (size_t i = 0; p[i]; i++) {
				assert_true(p[i] >= 0x20 || p[i] == '\n');
				assert_true(p[i] != 0x7f);
				if (p[i] == 0xc2)
					assert_true(p[i + 1] >= 0xa0);
			}
			/* Escaping again changes nothing but backslashes' meaning:
			 * the output has nothing left to escape. */
			char again[4 * sizeof(out) + 1];
			text_escape(again, sizeof(again), out, strlen(out), NL);
			assert_string_equal(again, out);
		}
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	for (size_t i = 0; seed_dir && *seed_dir && i < sizeof(cases) / sizeof(cases[0]); i++)
		if (test_seed_write(seed_dir, "text", i, cases[i].name, (unsigned char)cases[i].flags,
		                    cases[i].in, cases[i].inlen) < 0)
			return 1;

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_worst_case_room),
		cmocka_unit_test(test_truncation_on_unit_boundary),
		cmocka_unit_test(test_output_always_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
