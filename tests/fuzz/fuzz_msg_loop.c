/* libFuzzer harness for the loop signs in a header section
 * (src/msg/loop.c): arbitrary bytes never crash them or read past the
 * input, the Received: count is bounded by the number of lines, and an
 * address that a Delivered-To: field was found for is found again in a
 * header section made of that field alone.  Seeds come from
 * tests/unit/test_msg_loop.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size octets: ASan catches a read past it. */
	char *m = malloc(size ? size : 1);
	if (!m)
		return 0;
	memcpy(m, data, size);
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += m[i] == '\n';
	CHECK(msg_loop_received_count(m, size) <= lines);
	/* The first line's value as an address to look for. */
	const char *nl = memchr(m, '\n', size);
	size_t alen = nl ? (size_t)(nl - m) : size;
	if (alen > 0 && alen < 200 && !memchr(m, '\0', alen) && !memchr(m, '\r', alen) &&
	    m[0] != ' ' && m[0] != '\t' && m[alen - 1] != ' ' && m[alen - 1] != '\t') {
		char addr[256], field[300];
		snprintf(addr, sizeof(addr), "%.*s", (int)alen, m);
		(void)msg_loop_delivered_to(m, size, addr);
		int n = snprintf(field, sizeof(field), "Delivered-To: %s\r\n\r\n", addr);
		CHECK(msg_loop_delivered_to(field, (size_t)n, addr));
	}
	free(m);
	return 0;
}
