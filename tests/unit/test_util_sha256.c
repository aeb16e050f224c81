/* util/sha256: the FIPS 180-4 examples (and NIST's long-message one),
 * any split of the input across updates, and every length from 0 to 300
 * (each padding case: 55, 56, 63, 64 octets in the last block) against
 * OpenSSL's EVP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "util/sha256.h"

static void hex(const unsigned char *d, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const char *in, size_t len, const char *want)
{
	unsigned char d[32];
	char got[65];
	sha256_digest(in, len, d);
	hex(d, got);
	assert_string_equal(got, want);
}

static void test_known_answers(void **state)
{
	(void)state;
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* One million 'a', fed in pieces of 1000. */
	struct sha256 s;
	char a[1000];
	memset(a, 'a', sizeof(a));
	sha256_init(&s);
	for (int i = 0; i < 1000; i++)
		sha256_update(&s, a, sizeof(a));
	unsigned char d[32];
	char got[65];
	sha256_final(&s, d);
	hex(d, got);
	assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_against_openssl(void **state)
{
	(void)state;
	unsigned char in[300];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 131 + 7);
	for (size_t len = 0; len <= sizeof(in); len++) {
		unsigned char want[32], got[32], split[32];
		unsigned n = 0;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		assert_non_null(c);
		assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_DigestUpdate(c, in, len), 1);
		assert_int_equal(EVP_DigestFinal_ex(c, want, &n), 1);
		EVP_MD_CTX_free(c);
		sha256_digest(in, len, got);
		assert_memory_equal(got, want, 32);
		/* The same bytes in three uneven updates. */
		struct sha256 s;
		sha256_init(&s);
		size_t a = len / 3, b = len / 2;
		sha256_update(&s, in, a);
		sha256_update(&s, in + a, b - a);
		sha256_update(&s, in + b, len - b);
		sha256_final(&s, split);
		assert_memory_equal(split, want, 32);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_against_openssl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
