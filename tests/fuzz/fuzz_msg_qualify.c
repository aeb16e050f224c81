/* libFuzzer harness for Postfix's append_at_myorigin on header address
 * fields (src/msg/header_qualify.c): arbitrary bytes never crash it or
 * read past the input; the output is the input with only "@o.example"
 * inserted (removing every inserted copy gives the input back, when the
 * input does not hold that text itself); an unreadable value comes out
 * unchanged; and a value read once is read again with nothing left to
 * change (qualifying is idempotent).  Seeds come from
 * tests/unit/test_msg_qualify.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/address_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const char domain[] = "o.example";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size octets: ASan catches a read past it. */
	char *v = malloc(size ? size : 1);
	if (!v)
		return 0;
	memcpy(v, data, size);
	struct buf out, again;
	buf_init(&out, 16 * size + 64);
	buf_init(&again, 16 * size + 64);
	int rc = msg_address_list_qualify(v, size, domain, &out);
	CHECK(rc == MSG_QUALIFY_SAME || rc == MSG_QUALIFY_CHANGED ||
	      rc == MSG_QUALIFY_UNREADABLE);
	const char *o = out.data ? out.data : "";
	if (rc != MSG_QUALIFY_CHANGED) {
		CHECK(out.len == size && memcmp(o, v, size) == 0);
	} else {
		CHECK(out.len > size);
		if (!memmem(v, size, "@o.example", 10)) {
			/* Every inserted "@o.example" taken out: the input. */
			size_t i = 0, j = 0;
			while (i < out.len) {
				if (out.len - i >= 10 && !memcmp(o + i, "@o.example", 10)) {
					i += 10;
					continue;
				}
				CHECK(j < size && o[i] == v[j]);
				i++;
				j++;
			}
			CHECK(j == size);
		}
		CHECK(msg_address_list_qualify(o, out.len, domain, &again) == MSG_QUALIFY_SAME);
		CHECK(again.len == out.len && memcmp(again.data, o, out.len) == 0);
	}
	buf_free(&out);
	buf_free(&again);
	free(v);
	return 0;
}
