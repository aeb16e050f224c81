/* libFuzzer harness for the terminal and log escaper (src/util/text.c).
 *
 * The first input octet gives the flags; the rest is escaped into a heap
 * block of exactly the promised room (4 * len + 1, so ASan catches a write
 * past it), and the output must be:
 *   - all of the input consumed;
 *   - free of C0 controls (but LF with TEXT_KEEP_NEWLINE) and DEL;
 *   - valid UTF-8 holding no C1 control (U+0080..U+009F);
 *   - a fixed point: escaping it again gives it back (with the same flags,
 *     quotes aside, since an escaped quote's backslash is escaped again).
 * Seeds come from tests/unit/test_util_text.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* Strict UTF-8 (RFC 3629 §4), written independently of text.c. */
static bool utf8_valid_no_c1(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t k;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k > n)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
		if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
			return false;
		i += k;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0] & (TEXT_KEEP_NEWLINE | TEXT_ESCAPE_QUOTES);
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	size_t room = 4 * len + 1;
	char *out = malloc(room);
	CHECK(out);
	CHECK(text_escape(out, room, in, len, flags) == len);
	size_t n = strlen(out);
	const unsigned char *o = (const unsigned char *)out;
	for (size_t i = 0; i < n; i++) {
		CHECK(o[i] >= 0x20 || (o[i] == '\n' && (flags & TEXT_KEEP_NEWLINE)));
		CHECK(o[i] != 0x7f);
	}
	CHECK(utf8_valid_no_c1(o, n));
	unsigned again_flags = flags & TEXT_KEEP_NEWLINE;
	char *again = malloc(4 * n + 1);
	CHECK(again);
	CHECK(text_escape(again, 4 * n + 1, out, n, again_flags) == n);
	CHECK(strcmp(again, out) == 0);
	free(again);
	free(out);
	return 0;
}
