/* libFuzzer harness for the DATA / BDAT content decoder (src/smtp/content.c).
 *
 * The first input octet selects: bit 0 BDAT (else DATA), bit 1
 * SMTP_BARE_REJECT (else NORMALIZE), bits 2-7 how the rest is cut into
 * reads (0: byte by byte; otherwise pseudo-random pieces of 0..n octets).
 * The rest is decoded in one call and in those pieces, and both must agree
 * with each other and with a plain reference decoder that sees the whole
 * input at once.  Every piece's output goes to the tail of a heap buffer,
 * with exactly the piece's length of room before the end of the block, so
 * writing past the promised room is caught by ASan (without a malloc per
 * piece, which made 100 KB inputs decoded byte by byte slow).
 * Seeds come from tests/unit/test_smtp_content.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/content.h"

#include "pieces.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

struct run {
	char *out;
	size_t outlen;
	size_t consumed;
	char *scratch;     /* len octets: each piece decodes into its tail */
	size_t scratch_len;
	struct smtp_content c;
};

static void run_init(struct run *r, bool dot_mode, enum smtp_bare_policy policy, size_t len)
{
	if (dot_mode)
		smtp_content_init_data(&r->c, policy);
	else
		smtp_content_init_bdat(&r->c, policy);
	r->out = malloc(len + 1);
	r->scratch = malloc(len + 1);
	CHECK(r->out != NULL && r->scratch != NULL);
	r->scratch_len = len + 1;
	r->outlen = 0;
	r->consumed = 0;
}

/* One decode call on in[0..len) with room for exactly len octets. */
static void run_piece(struct run *r, const char *in, size_t len)
{
	CHECK(len < r->scratch_len);
	char *piece = r->scratch + r->scratch_len - len;
	bool was_done = r->c.done;
	uint64_t stored = r->c.stored_size;
	size_t outlen = SIZE_MAX;
	size_t n = smtp_content_decode(&r->c, in, len, piece, &outlen);
	CHECK(n <= len);
	CHECK(outlen <= n);
	CHECK(r->c.stored_size == stored + outlen);
	/* At most one decoded octet waits between calls (content.c). */
	CHECK(r->c.npend <= 1);
	if (was_done)
		CHECK(n == 0);
	if (!r->c.dot_mode)
		CHECK(n == len);
	else if (n < len)
		CHECK(r->c.done);
	if (outlen)
		memcpy(r->out + r->outlen, piece, outlen);
	r->outlen += outlen;
	r->consumed += n;
}

static void run_finish(struct run *r)
{
	char *last = r->scratch + r->scratch_len - 1;
	size_t n = smtp_content_finish(&r->c, last);
	CHECK(n <= 1);
	if (r->c.done)
		CHECK(n == 0);
	if (n)
		r->out[r->outlen++] = last[0];
	free(r->scratch);
	r->scratch = NULL;
}

/* The rules of content.h written plainly, with lookahead over the whole
 * input.  Held state at the end of an unfinished DATA ("." or "." CR at a
 * line start) writes nothing; a CR at the very end is bare, as after
 * smtp_content_finish. */
struct reference {
	size_t outlen;
	size_t consumed;
	uint64_t bare;
	bool done;
};

static void reference_decode(const char *in, size_t len, bool dot_mode, char *out,
                             struct reference *ref)
{
	size_t i = 0;
	bool line_start = dot_mode;
	memset(ref, 0, sizeof(*ref));
	while (i < len) {
		if (line_start && in[i] == '.') {
			if (i + 1 == len || (i + 2 == len && in[i + 1] == '\r')) {
				i = len;
				break;
			}
			if (in[i + 1] == '\r' && in[i + 2] == '\n') {
				ref->done = true;
				i += 3;
				break;
			}
			i++;  /* a stuffed dot: removed */
			line_start = false;
			continue;
		}
		line_start = false;
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
			out[ref->outlen++] = '\n';
			i += 2;
			line_start = dot_mode;
			continue;
		}
		if (in[i] == '\r' || in[i] == '\n')
			ref->bare++;
		out[ref->outlen++] = in[i] == '\r' ? '\n' : in[i];
		i++;
	}
	ref->consumed = i;
}

static size_t count_lf(const char *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t sel = data[0];
	bool dot_mode = !(sel & 1);
	enum smtp_bare_policy policy = (sel & 2) ? SMTP_BARE_REJECT : SMTP_BARE_NORMALIZE;
	unsigned pattern = sel >> 2;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct run whole;
	run_init(&whole, dot_mode, policy, len);
	run_piece(&whole, in, len);
	run_finish(&whole);

	struct run split;
	run_init(&split, dot_mode, policy, len);
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
	CHECK(whole.consumed == split.consumed);
	CHECK(whole.c.done == split.c.done);
	CHECK(whole.c.bare_count == split.c.bare_count);
	CHECK(whole.c.stored_size == split.c.stored_size);
	CHECK(whole.c.lines == split.c.lines);
	CHECK(whole.c.nul_seen == split.c.nul_seen);

	CHECK(whole.outlen <= len);
	CHECK(whole.consumed <= len);
	CHECK(whole.c.stored_size == whole.outlen);
	CHECK(whole.c.lines == count_lf(whole.out, whole.outlen));
	CHECK(whole.c.nul_seen == (memchr(whole.out, '\0', whole.outlen) != NULL));
	/* A NUL is never dropped (not even after a stuffing dot) and never
	 * seen past the end of DATA: the server refuses exactly the messages
	 * whose content held one (554 5.6.0). */
	CHECK(whole.c.nul_seen == (memchr(in, '\0', whole.consumed) != NULL));
	if (!dot_mode) {
		CHECK(!whole.c.done);
		CHECK(whole.consumed == len);
	} else if (whole.c.done) {
		/* RFC 5321 §4.1.1.4: only CR LF "." CR LF ends DATA, the first
		 * CR LF being the start of the stream for an empty message. */
		size_t n = whole.consumed;
		CHECK((n == 3 && memcmp(in, ".\r\n", 3) == 0) ||
		      (n >= 5 && memcmp(in + n - 5, "\r\n.\r\n", 5) == 0));
	} else {
		CHECK(whole.consumed == len);
	}

	char *ref_out = malloc(len + 1);
	CHECK(ref_out != NULL);
	struct reference ref;
	reference_decode(in, len, dot_mode, ref_out, &ref);
	CHECK(ref.outlen == whole.outlen);
	CHECK(memcmp(ref_out, whole.out, ref.outlen) == 0);
	CHECK(ref.consumed == whole.consumed);
	CHECK(ref.done == whole.c.done);
	CHECK(whole.c.bare_count == (policy == SMTP_BARE_REJECT ? ref.bare : 0));

	free(ref_out);
	free(whole.out);
	free(split.out);
	return 0;
}
