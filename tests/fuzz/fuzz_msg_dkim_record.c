/* libFuzzer harness for the DKIM key record parser (src/msg/dkim_record.c)
 * and the relaxed body canonicalisation (src/msg/dkim_canon.c): arbitrary
 * bytes never crash them or read past the input; a record that parses has
 * a p= of base64 only, which parses again the same in a record rawmail
 * would publish; a canonical body is empty or CRLF-ended lines without
 * trailing white space or trailing empty lines, and canonicalising it
 * again changes nothing.  Seeds come from tests/unit/test_msg_dkim.c
 * (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void record_check(const char *m, size_t size)
{
	struct dkim_record r;
	char err[256];
	if (dkim_record_parse(m, size, &r, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	size_t n = strlen(r.p);
	CHECK(n % 4 == 0 && n <= DKIM_RECORD_P_MAX);
	CHECK(strspn(r.p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == n);
	CHECK(r.revoked == (n == 0));
	char again[DKIM_RECORD_P_MAX + 64];
	int len = snprintf(again, sizeof(again), "v=DKIM1; k=%s; p=%s",
	                   r.k == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa", r.p);
	struct dkim_record r2;
	CHECK(dkim_record_parse(again, (size_t)len, &r2, err, sizeof(err)) == 0);
	CHECK(r2.k == r.k && strcmp(r2.p, r.p) == 0);
}

static void body_check(const char *m, size_t size)
{
	struct buf b, b2;
	buf_init(&b, 2 * size + 16);
	buf_init(&b2, 2 * size + 16);
	CHECK(dkim_canon_body_relaxed(m, size, &b) == 0);
	if (b.len > 0) {
		CHECK(b.len >= 3 && memcmp(b.data + b.len - 2, "\r\n", 2) == 0);
		CHECK(!(b.len >= 4 && memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0));
		for (size_t i = 0; i < b.len; i++) {
			if (b.data[i] == '\n')
				CHECK(i > 0 && b.data[i - 1] == '\r');
			if (b.data[i] == '\r' && i + 1 < b.len && b.data[i + 1] == '\n')
				CHECK(i == 0 || (b.data[i - 1] != ' ' && b.data[i - 1] != '\t'));
		}
	}
	CHECK(dkim_canon_body_relaxed(b.data ? b.data : "", b.len, &b2) == 0);
	CHECK(b2.len == b.len && (b.len == 0 || memcmp(b.data, b2.data, b.len) == 0));
	buf_free(&b);
	buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size octets: ASan catches a read past it. */
	char *m = malloc(size ? size : 1);
	if (!m)
		return 0;
	memcpy(m, data, size);
	record_check(m, size);
	body_check(m, size);
	free(m);
	return 0;
}
