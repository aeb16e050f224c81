/* libFuzzer harness for submission's missing Date and Message-ID
 * (src/smtp/header_fill.c).  The first input octet selects how the rest
 * is cut into pieces (tests/fuzz/pieces.h: 0 byte by byte, else
 * pseudo-random pieces of 0..n octets, empty ones too); each piece is
 * copied to a heap block of exactly its length, so a read past it is
 * caught.  Checks: fed whole and fed in pieces give the same octets and
 * results; the output is the input with one insertion at one place, and
 * that insertion is exactly the fields the filter says were missing (with
 * the LF or the empty line the rules add); a message with both fields
 * comes out unchanged.  Seeds come from tests/unit/test_smtp_header_fill.c
 * (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/header_fill.h"

#include "pieces.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

#define DATE_VALUE "Sun, 06 Dec 2026 17:05:00 +0000"
#define MSGID_VALUE "<fuzz@mx.example>"
#define D "Date: " DATE_VALUE "\n"
#define M "Message-ID: " MSGID_VALUE "\n"

struct sink {
	char *data;
	size_t len, cap;
};

static void sink_emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;
	CHECK(n > 0);
	CHECK(s->len + n <= s->cap);
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

static void sink_init(struct sink *s, size_t size)
{
	s->cap = size + sizeof(D) + sizeof(M) + 2;
	s->data = malloc(s->cap);
	CHECK(s->data != NULL);
	s->len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned pattern = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct sink whole, split;
	sink_init(&whole, len);
	sink_init(&split, len);

	struct smtp_header_fill fw, fs;
	smtp_header_fill_init(&fw, DATE_VALUE, MSGID_VALUE);
	char *copy = malloc(len ? len : 1);
	CHECK(copy != NULL);
	memcpy(copy, in, len);
	smtp_header_fill_feed(&fw, copy, len, sink_emit, &whole);
	smtp_header_fill_finish(&fw, sink_emit, &whole);
	free(copy);

	smtp_header_fill_init(&fs, DATE_VALUE, MSGID_VALUE);
	struct pieces p;
	pieces_init(&p, pattern);
	size_t off = 0;
	while (off < len) {
		size_t n = pieces_next(&p, len - off);
		char *block = malloc(n ? n : 1);
		CHECK(block != NULL);
		memcpy(block, in + off, n);
		smtp_header_fill_feed(&fs, block, n, sink_emit, &split);
		free(block);
		off += n;
	}
	smtp_header_fill_finish(&fs, sink_emit, &split);

	/* Whole and split agree. */
	CHECK(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0);
	CHECK(fw.have_date == fs.have_date && fw.have_msgid == fs.have_msgid);
	CHECK(fw.header_done && fw.inserted == fs.inserted);
	CHECK(whole.len == len + fw.inserted);

	if (fw.have_date && fw.have_msgid)
		CHECK(fw.inserted == 0);
	/* The output is the input with one insertion at one place: the missing
	 * fields, after an LF (a last line without one) or before an empty
	 * line (a section without its separator).  The insertion starts at
	 * most at the common prefix of output and input. */
	char fields[sizeof(D) + sizeof(M)];
	size_t flen = 0;
	if (!fw.have_date) {
		memcpy(fields + flen, D, sizeof(D) - 1);
		flen += sizeof(D) - 1;
	}
	if (!fw.have_msgid) {
		memcpy(fields + flen, M, sizeof(M) - 1);
		flen += sizeof(M) - 1;
	}
	char ins[sizeof(fields) + 1];
	size_t ilen = fw.inserted;
	CHECK(ilen == flen || ilen == flen + 1);
	size_t pre = 0;
	while (pre < len && whole.data[pre] == in[pre])
		pre++;
	bool found = false;
	for (int form = 0; form < 2 && !found; form++) {
		if (ilen == flen) {
			if (form)
				break;
			memcpy(ins, fields, flen);
		} else if (form == 0) {
			ins[0] = '\n';
			memcpy(ins + 1, fields, flen);
		} else {
			memcpy(ins, fields, flen);
			ins[flen] = '\n';
		}
		for (size_t k = 0; k <= pre && !found; k++)
			found = memcmp(whole.data + k, ins, ilen) == 0 &&
			        memcmp(whole.data + k + ilen, in + k, len - k) == 0;
	}
	CHECK(found);

	free(whole.data);
	free(split.data);
	return 0;
}
