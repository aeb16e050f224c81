/* Unit tests for the client side's reply parser (src/smtp/reply_parse.c).
 *
 * One table of cases: an input, the replies it holds, and how it ends (more
 * needed, or an error at a given offset).  Every case is fed in one call,
 * split in two at every byte position, byte by byte, and in pieces of 2, 3
 * and 7 octets, and each way must give the same replies, ending at the same
 * offsets: that is what "resumable at any byte" promises.  Each piece is a
 * heap copy of exactly its length, so the sanitizer build catches a read
 * past it.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every case's input into
 * that directory as a seed for tests/fuzz/fuzz_smtp_reply_parse.c, behind the
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

/* Inputs up to this long are split at every position; longer ones at every
 * position near either end and at a stride in between (the edges
 * reach past the 2048-octet line bound), which keeps the 17 KiB cases quick under valgrind. */
#define SPLIT_ALL_MAX 4096
#define SPLIT_EDGE 2100
#define SPLIT_STRIDE 97
#include "splits.h"
#include "testutil.h"

#include "smtp/reply_parse.h"

/* A string literal with its length, so cases may hold NUL octets. */
#define S(lit) lit, sizeof(lit) - 1
#define MORE SMTP_REPLY_NEED_MORE
#define MALFORMED SMTP_REPLY_MALFORMED
#define TOO_LONG SMTP_REPLY_TOO_LONG

#define MAX_REPLIES 3

struct want_reply {
	int code;
	const char *enhanced;
	const char *text;
	size_t nlines;
};

struct reply_case {
	const char *name;
	const char *in;
	size_t inlen;
	struct want_reply replies[MAX_REPLIES];
	size_t nreplies;
	/* How the input ends: MORE (rest octets of an unfinished reply
	 * left), or an error shown by octet number err_at (1-based: the
	 * offset just after it, as *consumed counts). */
	enum smtp_reply_parse_status end;
	size_t at;  /* MORE: octets after the last reply; error: err_at */
};

/* Long inputs, filled in main(). */
#define LINE_OK_TEXT (SMTP_REPLY_PARSE_LINE_MAX - 4)
static char line_ok_in[SMTP_REPLY_PARSE_LINE_MAX + 2];
static char line_ok_text[LINE_OK_TEXT + 1];
static char line_long_in[SMTP_REPLY_PARSE_LINE_MAX + 3];
#define LINES_LINE "250-l\r\n"
static char lines_ok_in[SMTP_REPLY_PARSE_LINES_MAX * 7];
static char lines_ok_text[SMTP_REPLY_PARSE_LINES_MAX * 2];
static char lines_long_in[(SMTP_REPLY_PARSE_LINES_MAX + 1) * 7];
/* Total: 16 continuation lines of 1000 octets of text (1001 with the
 * '\n'), then a last line that fills the text exactly, or goes one over. */
#define TOTAL_LINE_TEXT 1000
#define TOTAL_LINES 16
#define TOTAL_LAST_TEXT (SMTP_REPLY_PARSE_TOTAL_MAX - TOTAL_LINES * (TOTAL_LINE_TEXT + 1))
static char total_ok_in[TOTAL_LINES * (TOTAL_LINE_TEXT + 6) + 4 + TOTAL_LAST_TEXT + 2];
static char total_ok_text[SMTP_REPLY_PARSE_TOTAL_MAX + 1];
/* 17 KiB: 17 continuation lines of 1000, then "250 end". */
static char total_long_in[17 * (TOTAL_LINE_TEXT + 6) + 9];

#define R(code, enh, text, n) { code, enh, text, n }

static struct reply_case cases[] = {
	{ "single_line", S("250 ok\r\n"), { R(250, "", "ok", 1) }, 1, MORE, 0 },
	{ "single_line_enhanced", S("250 2.1.0 Sender ok\r\n"),
	  { R(250, "2.1.0", "2.1.0 Sender ok", 1) }, 1, MORE, 0 },
	{ "greeting", S("220 mx.example.com ESMTP ready\r\n"),
	  { R(220, "", "mx.example.com ESMTP ready", 1) }, 1, MORE, 0 },
	/* RFC 5321 §4.2: "DDD" alone is a complete reply. */
	{ "code_alone", S("250\r\n"), { R(250, "", "", 1) }, 1, MORE, 0 },
	{ "code_alone_lf", S("354\n"), { R(354, "", "", 1) }, 1, MORE, 0 },
	{ "code_space_empty", S("250 \r\n"), { R(250, "", "", 1) }, 1, MORE, 0 },
	{ "dash_then_space", S("250-\r\n250 \r\n"), { R(250, "", "\n", 2) }, 1, MORE, 0 },
	{ "dash_then_code_alone", S("250-a\r\n250\r\n"), { R(250, "", "a\n", 2) }, 1, MORE, 0 },
	{ "ehlo", S("250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n"
	            "250-8BITMIME\r\n250 STARTTLS\r\n"),
	  { R(250, "", "mx.example.com Hello\nPIPELINING\nSIZE 26214400\n8BITMIME\nSTARTTLS", 5) },
	  1, MORE, 0 },
	/* Gmail-style: the enhanced code on every line (RFC 2034 §4). */
	{ "gmail_550", S("550-5.7.1 [192.0.2.1] The IP you're using to send mail is not\r\n"
	                 "550-5.7.1 authorized to send email directly to our servers.\r\n"
	                 "550-5.7.1 Please use the SMTP relay at your service provider\r\n"
	                 "550 5.7.1 instead.  For more information, go to x - gsmtp\r\n"),
	  { R(550, "5.7.1", "5.7.1 [192.0.2.1] The IP you're using to send mail is not\n"
	                    "5.7.1 authorized to send email directly to our servers.\n"
	                    "5.7.1 Please use the SMTP relay at your service provider\n"
	                    "5.7.1 instead.  For more information, go to x - gsmtp", 4) },
	  1, MORE, 0 },
	{ "gmail_421", S("421-4.7.0 Try again later, closing connection.\r\n"
	                 "421 4.7.0 (EHLO) x - gsmtp\r\n"),
	  { R(421, "4.7.0", "4.7.0 Try again later, closing connection.\n4.7.0 (EHLO) x - gsmtp", 2) },
	  1, MORE, 0 },
	{ "code_mismatch_last", S("250-a\r\n251 b\r\n"), {{ 0 }}, 0, MALFORMED, 10 },
	{ "code_mismatch_first_digit", S("550-a\r\n450 b\r\n"), {{ 0 }}, 0, MALFORMED, 8 },
	{ "code_mismatch_short", S("250-a\r\n25 b\r\n"), {{ 0 }}, 0, MALFORMED, 10 },
	/* Pipelining (RFC 2920): replies arrive back to back. */
	{ "pipelined_two", S("250 2.1.0 ok\r\n250 2.1.5 ok\r\n"),
	  { R(250, "2.1.0", "2.1.0 ok", 1), R(250, "2.1.5", "2.1.5 ok", 1) }, 2, MORE, 0 },
	{ "pipelined_three_partial", S("250 a\r\n550-5.1.1 no\r\n550 5.1.1 such\r\n354 go\r\n250 2.0"),
	  { R(250, "", "a", 1), R(550, "5.1.1", "5.1.1 no\n5.1.1 such", 2), R(354, "", "go", 1) },
	  3, MORE, 7 },
	{ "pipelined_then_garbage", S("250 ok\r\nxyz"), { R(250, "", "ok", 1) }, 1, MALFORMED, 9 },
	{ "bare_lf", S("250-a\n250 b\n"), { R(250, "", "a\nb", 2) }, 1, MORE, 0 },
	{ "mixed_endings", S("250-a\r\n250-b\n250 c\r\n"), { R(250, "", "a\nb\nc", 3) }, 1, MORE, 0 },
	/* A bare CR is content, shown as '?'. */
	{ "bare_cr_in_text", S("250 a\rb\r\n"), { R(250, "", "a?b", 1) }, 1, MORE, 0 },
	{ "cr_cr_lf", S("250 a\r\r\n"), { R(250, "", "a?", 1) }, 1, MORE, 0 },
	{ "missing_final_crlf", S("250 ok"), {{ 0 }}, 0, MORE, 6 },
	{ "missing_final_lf", S("250 ok\r"), {{ 0 }}, 0, MORE, 7 },
	{ "missing_last_line", S("250-ok\r\n"), {{ 0 }}, 0, MORE, 8 },
	{ "empty_input", S(""), {{ 0 }}, 0, MORE, 0 },
	{ "line_2048", line_ok_in, sizeof(line_ok_in), { R(250, "", line_ok_text, 1) }, 1, MORE, 0 },
	{ "line_2049", line_long_in, sizeof(line_long_in), {{ 0 }}, 0, TOO_LONG,
	  SMTP_REPLY_PARSE_LINE_MAX + 1 },
	{ "lines_100", lines_ok_in, sizeof(lines_ok_in),
	  { R(250, "", lines_ok_text, SMTP_REPLY_PARSE_LINES_MAX) }, 1, MORE, 0 },
	/* The 100th line's "-" announces a 101st. */
	{ "lines_101", lines_long_in, sizeof(lines_long_in), {{ 0 }}, 0, TOO_LONG,
	  (SMTP_REPLY_PARSE_LINES_MAX - 1) * 7 + 4 },
	{ "total_16k", total_ok_in, sizeof(total_ok_in),
	  { R(250, "", total_ok_text, TOTAL_LINES + 1) }, 1, MORE, 0 },
	{ "total_17k", total_long_in, sizeof(total_long_in), {{ 0 }}, 0, TOO_LONG,
	  TOTAL_LINES * (TOTAL_LINE_TEXT + 6) + 4 + TOTAL_LAST_TEXT + 1 },
	{ "garbage_http", S("HTTP/1.1 400 Bad Request\r\n"), {{ 0 }}, 0, MALFORMED, 1 },
	{ "garbage_empty_line", S("\r\n"), {{ 0 }}, 0, MALFORMED, 1 },
	{ "nul_in_text", S("250 a\0b\r\n"), {{ 0 }}, 0, MALFORMED, 6 },
	{ "nul_in_code", S("2\0""50 a\r\n"), {{ 0 }}, 0, MALFORMED, 2 },
	{ "nul_after_cr", S("250 a\r\0"), {{ 0 }}, 0, MALFORMED, 7 },
	{ "code_199", S("199 x\r\n"), {{ 0 }}, 0, MALFORMED, 1 },
	{ "code_600", S("600 x\r\n"), {{ 0 }}, 0, MALFORMED, 1 },
	{ "code_2x0", S("2x0 x\r\n"), {{ 0 }}, 0, MALFORMED, 2 },
	{ "code_two_digits", S("25 x\r\n"), {{ 0 }}, 0, MALFORMED, 3 },
	{ "code_four_digits", S("2500 x\r\n"), {{ 0 }}, 0, MALFORMED, 4 },
	{ "fourth_tab", S("250\tx\r\n"), {{ 0 }}, 0, MALFORMED, 4 },
	{ "fourth_cr_then_text", S("250\rx\r\n"), {{ 0 }}, 0, MALFORMED, 5 },
	{ "code_599", S("599 x\r\n"), { R(599, "", "x", 1) }, 1, MORE, 0 },
	{ "code_200", S("200 x\r\n"), { R(200, "", "x", 1) }, 1, MORE, 0 },
	/* Enhanced codes (RFC 3463 §2, RFC 2034 §4). */
	{ "enh_end_of_line", S("250 2.0.0\r\n"), { R(250, "2.0.0", "2.0.0", 1) }, 1, MORE, 0 },
	{ "enh_long_parts", S("452 4.123.456 x\r\n"), { R(452, "4.123.456", "4.123.456 x", 1) },
	  1, MORE, 0 },
	{ "enh_class_mismatch", S("250 5.1.1 x\r\n"), { R(250, "", "5.1.1 x", 1) }, 1, MORE, 0 },
	{ "enh_class_3", S("354 3.0.0 go\r\n"), { R(354, "", "3.0.0 go", 1) }, 1, MORE, 0 },
	{ "enh_four_digits", S("550 5.1000.1 x\r\n"), { R(550, "", "5.1000.1 x", 1) }, 1, MORE, 0 },
	{ "enh_detail_four_digits", S("550 5.1.1000 x\r\n"), { R(550, "", "5.1.1000 x", 1) },
	  1, MORE, 0 },
	{ "enh_missing_detail", S("550 5.1. x\r\n"), { R(550, "", "5.1. x", 1) }, 1, MORE, 0 },
	{ "enh_two_parts", S("550 5.1 x\r\n"), { R(550, "", "5.1 x", 1) }, 1, MORE, 0 },
	{ "enh_leading_junk", S("550 (5.1.1) x\r\n"), { R(550, "", "(5.1.1) x", 1) }, 1, MORE, 0 },
	{ "enh_leading_space", S("550  5.1.1 x\r\n"), { R(550, "", " 5.1.1 x", 1) }, 1, MORE, 0 },
	{ "enh_trailing_junk", S("550 5.1.1x\r\n"), { R(550, "", "5.1.1x", 1) }, 1, MORE, 0 },
	{ "enh_trailing_tab", S("550 5.1.1\tx\r\n"), { R(550, "", "5.1.1\tx", 1) }, 1, MORE, 0 },
	{ "enh_multi_line_end", S("550-5.1.1\r\n550 more\r\n"), { R(550, "5.1.1", "5.1.1\nmore", 2) },
	  1, MORE, 0 },
	/* Only the first line's text is looked at. */
	{ "enh_second_line_only", S("550-no\r\n550 5.1.1 x\r\n"), { R(550, "", "no\n5.1.1 x", 2) },
	  1, MORE, 0 },
	/* Text: TAB kept, other control octets and DEL shown as '?'. */
	{ "text_tab", S("250 a\tb\r\n"), { R(250, "", "a\tb", 1) }, 1, MORE, 0 },
	{ "text_controls", S("250 a\x01\x1b[31m\x7f" "b\r\n"), { R(250, "", "a??[31m?b", 1) },
	  1, MORE, 0 },
	{ "text_8bit", S("250 caf\xc3\xa9\r\n"), { R(250, "", "caf\xc3\xa9", 1) }, 1, MORE, 0 },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct got_reply {
	int code;
	char enhanced[16];
	char *text;
	size_t nlines;
	size_t end;  /* offset just after the reply */
};

struct result {
	struct got_reply replies[MAX_REPLIES];
	size_t nreplies;
	enum smtp_reply_parse_status end;
	size_t at;
};

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

/* What every DONE promises, whatever the input. */
static void check_reply_shape(const struct smtp_server_reply *out)
{
	assert_in_range(out->code, 200, 599);
	assert_in_range(out->nlines, 1, SMTP_REPLY_PARSE_LINES_MAX);
	size_t len = strlen(out->text);
	assert_true(len <= SMTP_REPLY_PARSE_TOTAL_MAX);
	assert_int_equal(count_char(out->text, '\n'), out->nlines - 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)out->text[i];
		assert_true(ch == '\t' || ch == '\n' || (ch >= 0x20 && ch != 0x7f));
	}
	assert_true(memchr(out->enhanced, '\0', sizeof(out->enhanced)) != NULL);
	size_t elen = strlen(out->enhanced);
	if (elen)
		assert_memory_equal(out->text, out->enhanced, elen);
}

/* Feeds tc->in as a first piece of `first` octets, then pieces of `step`
 * octets (0: all the rest), calling again after each DONE until the piece
 * is used up, as a client with pipelined replies would. */
static void feed_pieces(const struct reply_case *tc, size_t first, size_t step, struct result *r)
{
	struct smtp_reply_parser *p = malloc(sizeof(*p));
	assert_non_null(p);
	smtp_reply_parser_init(p);
	memset(r, 0, sizeof(*r));
	r->end = MORE;
	size_t pos = 0;
	bool first_piece = true;
	while (first_piece || pos < tc->inlen) {
		size_t len = first_piece ? first : step ? step : tc->inlen - pos;
		if (len > tc->inlen - pos)
			len = tc->inlen - pos;
		first_piece = false;
		char *piece = malloc(len ? len : 1);
		assert_non_null(piece);
		if (len)
			memcpy(piece, tc->in + pos, len);
		size_t off = 0;
		for (;;) {
			struct smtp_server_reply out;
			size_t n = SIZE_MAX;
			enum smtp_reply_parse_status st =
				smtp_reply_parser_feed(p, piece + off, len - off, &n, &out);
			assert_true(n <= len - off);
			off += n;
			if (st == SMTP_REPLY_DONE) {
				assert_true(n > 0);
				check_reply_shape(&out);
				assert_true(r->nreplies < MAX_REPLIES);
				struct got_reply *g = &r->replies[r->nreplies++];
				g->code = out.code;
				memcpy(g->enhanced, out.enhanced, sizeof(g->enhanced));
				g->text = strdup(out.text);
				assert_non_null(g->text);
				g->nlines = out.nlines;
				g->end = pos + off;
				if (off == len)
					break;
				continue;
			}
			if (st == MORE) {
				assert_int_equal(off, len);
				break;
			}
			/* An error: it stays. */
			assert_true(n > 0);
			r->end = st;
			r->at = pos + off;
			assert_int_equal(smtp_reply_parser_feed(p, "250 ok\r\n", 8, &n, &out), st);
			assert_int_equal(n, 0);
			free(piece);
			free(p);
			return;
		}
		free(piece);
		pos += len;
	}
	r->at = tc->inlen - (r->nreplies ? r->replies[r->nreplies - 1].end : 0);
	free(p);
}

static void check_result(const struct reply_case *tc, struct result *r, const char *how,
                         size_t first, size_t step)
{
	if (r->nreplies != tc->nreplies || r->end != tc->end || r->at != tc->at)
		print_error("%s: %s (first %zu, step %zu): %zu replies, end %d at %zu\n", tc->name,
		            how, first, step, r->nreplies, (int)r->end, r->at);
	assert_int_equal(r->nreplies, tc->nreplies);
	assert_int_equal(r->end, tc->end);
	assert_int_equal(r->at, tc->at);
	for (size_t i = 0; i < r->nreplies; i++) {
		const struct want_reply *w = &tc->replies[i];
		struct got_reply *g = &r->replies[i];
		assert_int_equal(g->code, w->code);
		assert_string_equal(g->enhanced, w->enhanced);
		assert_string_equal(g->text, w->text);
		assert_int_equal(g->nlines, w->nlines);
		if (i > 0)
			assert_true(g->end > r->replies[i - 1].end);
		free(g->text);
		g->text = NULL;
	}
}


struct reply_split {
	const struct reply_case *tc;
	/* Offsets of the replies as the one call saw them: every split must
	 * end each reply at the same octet. */
	size_t ends[MAX_REPLIES];
	bool have_ends;
};

static void reply_split(void *ctx, size_t first, size_t step, const char *how)
{
	struct reply_split *rs = ctx;
	const struct reply_case *tc = rs->tc;
	struct result r;
	feed_pieces(tc, first, step, &r);
	if (!rs->have_ends) {
		for (size_t i = 0; i < r.nreplies; i++)
			rs->ends[i] = r.replies[i].end;
		rs->have_ends = true;
	} else {
		for (size_t i = 0; i < r.nreplies && i < tc->nreplies; i++)
			assert_int_equal(r.replies[i].end, rs->ends[i]);
	}
	check_result(tc, &r, how, first, step);
}

static void test_case(void **state)
{
	struct reply_split rs = { .tc = *state };
	splits_run(rs.tc->inlen, reply_split, &rs);
}

/* A reply missing its line end waits for it; a later read completes it. */
static void test_resume_after_need_more(void **state)
{
	(void)state;
	static struct smtp_reply_parser p;
	struct smtp_server_reply out;
	size_t n;
	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parser_feed(&p, "250 o", 5, &n, &out), MORE);
	assert_int_equal(n, 5);
	assert_int_equal(smtp_reply_parser_feed(&p, "", 0, &n, &out), MORE);
	assert_int_equal(n, 0);
	assert_int_equal(smtp_reply_parser_feed(&p, "k\r", 2, &n, &out), MORE);
	assert_int_equal(smtp_reply_parser_feed(&p, "\n250 next", 9, &n, &out), SMTP_REPLY_DONE);
	assert_int_equal(n, 1);
	assert_int_equal(out.code, 250);
	assert_string_equal(out.text, "ok");
	assert_int_equal(out.nlines, 1);
	/* The parser starts over for the next reply. */
	assert_int_equal(smtp_reply_parser_feed(&p, "550 5.1.1 no\n", 13, &n, &out), SMTP_REPLY_DONE);
	assert_int_equal(n, 13);
	assert_int_equal(out.code, 550);
	assert_string_equal(out.enhanced, "5.1.1");
	assert_string_equal(out.text, "5.1.1 no");
}

/* Writes each case's input, behind the fuzzer's selector octet, to dir. */
static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct reply_case *tc = &cases[i];
		if (test_seed_write(dir, "reply_parse", i, tc->name, 0, tc->in, tc->inlen) < 0)
			return -1;
	}
	return 0;
}

/* "250-" TEXT_LINE "\r\n" times n into p; returns the octets written. */
static size_t fill_lines(char *p, size_t n, char **text)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(p + o, "250-", 4);
		memset(p + o + 4, 'x', TOTAL_LINE_TEXT);
		memcpy(p + o + 4 + TOTAL_LINE_TEXT, "\r\n", 2);
		o += TOTAL_LINE_TEXT + 6;
		if (text) {
			memset(*text, 'x', TOTAL_LINE_TEXT);
			(*text)[TOTAL_LINE_TEXT] = '\n';
			*text += TOTAL_LINE_TEXT + 1;
		}
	}
	return o;
}

static void fill_long_cases(void)
{
	/* 2048 octets ("250 " and 2044 of text), then 2049. */
	memcpy(line_ok_in, "250 ", 4);
	memset(line_ok_in + 4, 'x', LINE_OK_TEXT);
	memcpy(line_ok_in + 4 + LINE_OK_TEXT, "\r\n", 2);
	memset(line_ok_text, 'x', LINE_OK_TEXT);
	memcpy(line_long_in, "250 ", 4);
	memset(line_long_in + 4, 'x', LINE_OK_TEXT + 1);
	memcpy(line_long_in + 5 + LINE_OK_TEXT, "\r\n", 2);

	char *l = lines_ok_in;
	char *t = lines_ok_text;
	for (size_t i = 0; i < SMTP_REPLY_PARSE_LINES_MAX; i++) {
		memcpy(l, LINES_LINE, 7);
		memcpy(t, "l\n", 2);
		l += 7;
		t += 2;
	}
	l[-4] = ' ';        /* the 100th line is the last */
	t[-1] = '\0';
	l = lines_long_in;
	for (size_t i = 0; i <= SMTP_REPLY_PARSE_LINES_MAX; i++, l += 7)
		memcpy(l, LINES_LINE, 7);
	l[-4] = ' ';

	t = total_ok_text;
	size_t o = fill_lines(total_ok_in, TOTAL_LINES, &t);
	memcpy(total_ok_in + o, "250 ", 4);
	memset(total_ok_in + o + 4, 'y', TOTAL_LAST_TEXT);
	memcpy(total_ok_in + o + 4 + TOTAL_LAST_TEXT, "\r\n", 2);
	memset(t, 'y', TOTAL_LAST_TEXT);
	t[TOTAL_LAST_TEXT] = '\0';
	o = fill_lines(total_long_in, 17, NULL);
	memcpy(total_long_in + o, "250 end\r\n", 9);
}

int main(void)
{
	fill_long_cases();

	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;

	struct CMUnitTest tests[NCASES + 1];
	for (size_t i = 0; i < NCASES; i++) {
		tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_case,
		                                .initial_state = &cases[i] };
	}
	tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_resume_after_need_more);
	return cmocka_run_group_tests_name("smtp_reply_parse", tests, NULL, NULL);
}
