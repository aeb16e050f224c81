/* libFuzzer harness for the DATA encoder (src/smtp/dot_encode.c).
 *
 * The first input octet selects how the rest is cut into calls (0: byte by
 * byte; otherwise pseudo-random pieces of 0..n octets).  The rest is
 * encoded in one call and in those pieces, and both must give the same
 * octets and counters.  Then the output itself is checked:
 *   - every line ending is CR LF (no bare CR, no bare LF);
 *   - no line but the final one starts with a single "." (RFC 5321 §4.5.2);
 *   - it ends in exactly one CR LF "." CR LF, and the server's own decoder
 *     (smtp_content_decode in DATA mode) reads it to its end with nothing
 *     left over and nothing bare, giving back the input with each line
 *     ending (CR LF, bare CR, bare LF) turned into LF and an LF added to an
 *     unterminated last line: a true round trip;
 *   - lines and longest_line agree with that decoded form.
 * Each piece's output goes to a heap block of exactly the promised room
 * (2 * len + 2), so ASan catches a write past it.
 * Seeds come from tests/unit/test_smtp_dot_encode.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/content.h"
#include "smtp/dot_encode.h"

#include "pieces.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

struct run {
	char *out;
	size_t outlen;
	struct smtp_dot_encoder e;
};

static void run_init(struct run *r, size_t len)
{
	smtp_dot_encoder_init(&r->e);
	r->out = malloc(2 * len + 5);
	CHECK(r->out != NULL);
	r->outlen = 0;
}

static void run_piece(struct run *r, const char *in, size_t len)
{
	char *piece = malloc(2 * len + 2);
	CHECK(piece != NULL);
	uint64_t lines = r->e.lines;
	uint64_t longest = r->e.longest_line;
	size_t n = smtp_dot_encode(&r->e, in, len, piece);
	CHECK(n <= 2 * len + 2);
	CHECK(r->e.lines >= lines && r->e.longest_line >= longest);
	memcpy(r->out + r->outlen, piece, n);
	r->outlen += n;
	free(piece);
}

static void run_finish(struct run *r)
{
	char *last = malloc(5);
	CHECK(last != NULL);
	size_t n = smtp_dot_encode_finish(&r->e, last);
	CHECK(n == 3 || n == 5);
	memcpy(r->out + r->outlen, last, n);
	r->outlen += n;
	free(last);
}

/* The input as the decoder should give it back: each CR LF, bare CR or bare
 * LF one LF, and an LF after an unterminated last line. */
static size_t normalise(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\r') {
			out[o++] = '\n';
			if (i + 1 < len && in[i + 1] == '\n')
				i++;
			continue;
		}
		out[o++] = in[i];
	}
	if (o && out[o - 1] != '\n')
		out[o++] = '\n';
	return o;
}

static void check_output(const char *out, size_t outlen)
{
	CHECK(outlen >= 3 && memcmp(out + outlen - 3, ".\r\n", 3) == 0);
	CHECK(outlen == 3 || (outlen >= 5 && out[outlen - 5] == '\r' && out[outlen - 4] == '\n'));
	bool line_start = true;
	for (size_t i = 0; i < outlen; i++) {
		if (out[i] == '\r')
			CHECK(i + 1 < outlen && out[i + 1] == '\n');
		if (out[i] == '\n')
			CHECK(i > 0 && out[i - 1] == '\r');
		if (line_start && out[i] == '.' && i != outlen - 3)
			CHECK(i + 1 < outlen && out[i + 1] == '.');
		line_start = out[i] == '\n';
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned pattern = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct run whole;
	run_init(&whole, len);
	run_piece(&whole, in, len);
	run_finish(&whole);

	struct run split;
	run_init(&split, len);
	struct pieces cut;
	pieces_init(&cut, pattern);
	size_t pos = 0;
	do {
		size_t piece = pieces_next(&cut, len - pos);
		run_piece(&split, in + pos, piece);
		pos += piece;
	} while (pos < len);
	run_finish(&split);

	CHECK(whole.outlen == split.outlen);
	CHECK(memcmp(whole.out, split.out, whole.outlen) == 0);
	CHECK(whole.e.lines == split.e.lines);
	CHECK(whole.e.longest_line == split.e.longest_line);

	check_output(whole.out, whole.outlen);

	/* The round trip through the server's decoder. */
	char *want = malloc(len + 2);
	char *got = malloc(whole.outlen);
	CHECK(want != NULL && got != NULL);
	size_t wantlen = normalise(in, len, want);
	struct smtp_content c;
	smtp_content_init_data(&c, SMTP_BARE_REJECT);
	size_t gotlen = SIZE_MAX;
	size_t n = smtp_content_decode(&c, whole.out, whole.outlen, got, &gotlen);
	CHECK(n == whole.outlen);
	CHECK(c.done);
	CHECK(c.bare_count == 0);
	CHECK(gotlen == wantlen);
	CHECK(memcmp(got, want, wantlen) == 0);
	CHECK(whole.e.lines == c.lines);

	/* longest_line: the longest line of the decoded form. */
	uint64_t longest = 0;
	size_t start = 0;
	for (size_t i = 0; i < wantlen; i++) {
		if (want[i] != '\n')
			continue;
		if (i - start > longest)
			longest = i - start;
		start = i + 1;
	}
	CHECK(whole.e.longest_line == longest);

	free(want);
	free(got);
	free(whole.out);
	free(split.out);
	return 0;
}
