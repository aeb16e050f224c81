/* libFuzzer harness for the client side's reply parser
 * (src/smtp/reply_parse.c).
 *
 * The first input octet selects how the rest is cut into reads (0: byte by
 * byte; otherwise pseudo-random pieces of 0..n octets).  The rest is fed
 * all at once (calling again after each DONE, as with pipelined replies)
 * and in those pieces; both must give the same sequence of replies, each
 * ending at the same offset, and the same error at the same offset.  Every
 * reply must keep the header's promises: code 200..599, lines and text
 * within their bounds, text NUL-terminated with no CR, NUL or control
 * octet but TAB and the '\n' between lines, enhanced code well formed and
 * at the start of the text.  The whole run also checks each reply against
 * its own octets of input, read plainly: every line starts with the same
 * code, "-" on all lines but the last, and the text is the lines' rest
 * joined with '\n'.  Each piece is a heap copy of exactly its
 * length, so ASan catches a read past it.
 * Seeds come from tests/unit/test_smtp_reply_parse.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/reply_parse.h"

#include "pieces.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

struct record {
	int code;
	size_t nlines;
	size_t end;        /* offset just after the reply */
	char enhanced[16];
	size_t text_off;   /* into the run's text pool */
	size_t text_len;
};

struct run {
	struct smtp_reply_parser *p;
	struct record *rec;    /* the whole run records; the split run compares */
	size_t nrec;
	size_t maxrec;
	char *pool;
	size_t poollen;
	const struct run *want;  /* NULL for the whole run */
	const char *in;          /* the whole input (whole run only) */
	enum smtp_reply_parse_status end;
	size_t err_at;
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 3463 §2 with the class equal to the code's first digit. */
static void check_enhanced(const struct smtp_server_reply *out)
{
	const char *e = out->enhanced;
	CHECK(memchr(e, '\0', sizeof(out->enhanced)) != NULL);
	size_t len = strlen(e);
	if (len == 0)
		return;
	CHECK(e[0] == '0' + out->code / 100 && (e[0] == '2' || e[0] == '4' || e[0] == '5'));
	CHECK(e[1] == '.');
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (is_digit(e[i]))
			i++;
		CHECK(i > start && i - start <= 3);
		if (part == 0)
			CHECK(e[i++] == '.');
	}
	CHECK(i == len);
	CHECK(memcmp(out->text, e, len) == 0);
	char after = out->text[len];
	CHECK(after == ' ' || after == '\n' || after == '\0');
}

static void check_reply(const struct smtp_server_reply *out)
{
	CHECK(out->code >= 200 && out->code <= 599);
	CHECK(out->nlines >= 1 && out->nlines <= SMTP_REPLY_PARSE_LINES_MAX);
	const char *nul = memchr(out->text, '\0', SMTP_REPLY_PARSE_TOTAL_MAX + 1);
	CHECK(nul != NULL);
	size_t len = (size_t)(nul - out->text);
	size_t lf = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)out->text[i];
		CHECK(ch != '\r');
		CHECK(ch == '\t' || ch == '\n' || (ch >= 0x20 && ch != 0x7f));
		lf += ch == '\n';
	}
	CHECK(lf == out->nlines - 1);
	check_enhanced(out);
}

/* The reply in[start..end) read plainly, line by line, against out. */
static void check_against_input(const char *in, size_t start, size_t end,
                                const struct smtp_server_reply *out)
{
	char code[3] = { (char)('0' + out->code / 100), (char)('0' + out->code / 10 % 10),
	                 (char)('0' + out->code % 10) };
	const char *t = out->text;
	size_t nlines = 0;
	size_t i = start;
	CHECK(end > start && in[end - 1] == '\n');
	while (i < end) {
		const char *lf = memchr(in + i, '\n', end - i);
		CHECK(lf != NULL);
		size_t stop = (size_t)(lf - in);
		size_t next = stop + 1;
		if (stop > i && in[stop - 1] == '\r')
			stop--;
		bool last = next == end;
		nlines++;
		CHECK(stop - i >= 3 && memcmp(in + i, code, 3) == 0);
		CHECK(stop - i <= SMTP_REPLY_PARSE_LINE_MAX);
		if (stop - i == 3) {
			CHECK(last);
		} else {
			CHECK(in[i + 3] == (last ? ' ' : '-'));
		}
		for (size_t k = i + 4; k < stop; k++) {
			unsigned char ch = (unsigned char)in[k];
			CHECK(ch != '\0');
			char want = (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
			CHECK(*t++ == want);
		}
		CHECK(*t++ == (last ? '\0' : '\n'));
		i = next;
	}
	CHECK(nlines == out->nlines);
}

static void run_init(struct run *r, size_t len, const struct run *want)
{
	memset(r, 0, sizeof(*r));
	r->p = malloc(sizeof(*r->p));
	CHECK(r->p != NULL);
	smtp_reply_parser_init(r->p);
	r->want = want;
	r->end = SMTP_REPLY_NEED_MORE;
	if (!want) {
		/* The shortest reply is "250\n": at most len / 4 of them, and
		 * their texts together are shorter than the input. */
		r->maxrec = len / 4 + 1;
		r->rec = malloc(r->maxrec * sizeof(*r->rec));
		r->pool = malloc(len + 1);
		CHECK(r->rec != NULL && r->pool != NULL);
	}
}

static void run_free(struct run *r)
{
	free(r->p);
	free(r->rec);
	free(r->pool);
}

static void run_reply(struct run *r, const struct smtp_server_reply *out, size_t end)
{
	check_reply(out);
	size_t tlen = strlen(out->text);
	if (r->want) {
		CHECK(r->nrec < r->want->nrec);
		const struct record *w = &r->want->rec[r->nrec];
		CHECK(w->code == out->code);
		CHECK(w->nlines == out->nlines);
		CHECK(w->end == end);
		CHECK(strcmp(w->enhanced, out->enhanced) == 0);
		CHECK(w->text_len == tlen);
		CHECK(memcmp(r->want->pool + w->text_off, out->text, tlen) == 0);
		r->nrec++;
		return;
	}
	CHECK(r->nrec < r->maxrec);
	CHECK(r->poollen + tlen <= end);
	check_against_input(r->in, r->nrec ? r->rec[r->nrec - 1].end : 0, end, out);
	struct record *rec = &r->rec[r->nrec++];
	rec->code = out->code;
	rec->nlines = out->nlines;
	rec->end = end;
	memcpy(rec->enhanced, out->enhanced, sizeof(rec->enhanced));
	rec->text_off = r->poollen;
	rec->text_len = tlen;
	memcpy(r->pool + r->poollen, out->text, tlen);
	r->poollen += tlen;
}

/* Feeds one read; returns false once the parser is in error. */
static bool run_piece(struct run *r, const char *in, size_t len, size_t pos)
{
	char *piece = malloc(len ? len : 1);
	CHECK(piece != NULL);
	if (len)
		memcpy(piece, in, len);
	size_t off = 0;
	bool ok = true;
	for (;;) {
		struct smtp_server_reply out;
		size_t n = SIZE_MAX;
		enum smtp_reply_parse_status st =
			smtp_reply_parser_feed(r->p, piece + off, len - off, &n, &out);
		CHECK(n <= len - off);
		off += n;
		if (st == SMTP_REPLY_DONE) {
			CHECK(n > 0);
			run_reply(r, &out, pos + off);
			if (off == len)
				break;
			continue;
		}
		if (st == SMTP_REPLY_NEED_MORE) {
			CHECK(off == len);
			break;
		}
		CHECK(st == SMTP_REPLY_MALFORMED || st == SMTP_REPLY_TOO_LONG);
		CHECK(n > 0);
		r->end = st;
		r->err_at = pos + off;
		/* The error stays. */
		CHECK(smtp_reply_parser_feed(r->p, "250 ok\r\n", 8, &n, &out) == st);
		CHECK(n == 0);
		ok = false;
		break;
	}
	free(piece);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned pattern = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct run whole;
	run_init(&whole, len, NULL);
	whole.in = in;
	run_piece(&whole, in, len, 0);

	struct run split;
	run_init(&split, len, &whole);
	struct pieces cut;
	pieces_init(&cut, pattern);
	size_t pos = 0;
	do {
		size_t piece = pieces_next(&cut, len - pos);
		if (!run_piece(&split, in + pos, piece, pos))
			break;
		pos += piece;
	} while (pos < len);

	CHECK(split.nrec == whole.nrec);
	CHECK(split.end == whole.end);
	CHECK(split.err_at == whole.err_at);
	if (whole.end != SMTP_REPLY_NEED_MORE)
		CHECK(whole.err_at >= 1 && whole.err_at <= len);
	/* A NUL always ends in MALFORMED, at the NUL or before it. */
	const char *nul = memchr(in, '\0', len);
	if (nul)
		CHECK(whole.end != SMTP_REPLY_NEED_MORE && whole.err_at <= (size_t)(nul - in) + 1);

	run_free(&whole);
	run_free(&split);
	return 0;
}
