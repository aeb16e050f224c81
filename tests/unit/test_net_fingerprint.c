/* Unit tests for certificate fingerprints (src/net/fingerprint.c): the pin
 * syntax users write (a table of accepted and refused texts), the text
 * rawmail prints, and the two digests of a fixed certificate.
 *
 * Each parser input is copied to a heap buffer of exactly its length, so
 * the sanitizer build catches a read past the terminating NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "net/fingerprint.h"

#define HEX_LOWER "c48fab8f2e293cc543f4a0810c7f70ed3fe37926917ed92844a7356b5415b450"
#define HEX_UPPER "C48FAB8F2E293CC543F4A0810C7F70ED3FE37926917ED92844A7356B5415B450"
#define HEX_MIXED "C48fAB8f2E293cC543F4a0810C7F70ed3fe37926917ED92844A7356B5415B450"
/* HEX_LOWER without its last digit, and without its first */
#define HEX_63 "c48fab8f2e293cc543f4a0810c7f70ed3fe37926917ed92844a7356b5415b45"
#define HEX_63_TAIL "48fab8f2e293cc543f4a0810c7f70ed3fe37926917ed92844a7356b5415b450"
/* as `openssl x509 -noout -fingerprint -sha256` prints it, after "=" */
#define HEX_COLONS                                                                   \
	"C4:8F:AB:8F:2E:29:3C:C5:43:F4:A0:81:0C:7F:70:ED:3F:E3:79:26:91:7E:D9:28:44:A7:" \
	"35:6B:54:15:B4:50"

struct parse_case {
	const char *name;
	const char *text;
	bool ok;           /* accepted; then the octets are HEX_LOWER's */
};

static const struct parse_case parse_cases[] = {
	{ "lower", "SHA256:" HEX_LOWER, true },
	{ "upper", "SHA256:" HEX_UPPER, true },
	{ "mixed_digits", "SHA256:" HEX_MIXED, true },
	{ "prefix_lower", "sha256:" HEX_LOWER, true },
	{ "prefix_mixed", "Sha256:" HEX_UPPER, true },
	{ "colons_upper", "SHA256:" HEX_COLONS, true },
	{ "colons_prefix_lower", "sha256:" HEX_COLONS, true },

	{ "empty", "", false },
	{ "prefix_only", "SHA256:", false },
	{ "no_prefix", HEX_LOWER, false },
	{ "no_prefix_colons", HEX_COLONS, false },
	{ "openssl_label", "sha256 Fingerprint=" HEX_COLONS, false },
	{ "prefix_without_colon", "SHA256" HEX_LOWER, false },
	{ "other_algorithm", "SHA1:" HEX_LOWER, false },
	{ "sha_dash_256", "SHA-256:" HEX_LOWER, false },
	{ "space_after_prefix", "SHA256: " HEX_LOWER, false },
	{ "leading_space", " SHA256:" HEX_LOWER, false },
	{ "trailing_newline", "SHA256:" HEX_LOWER "\n", false },
	{ "trailing_space", "SHA256:" HEX_LOWER " ", false },
	{ "63_digits", "SHA256:" HEX_63, false },
	{ "65_digits", "SHA256:" HEX_LOWER "0", false },
	{ "66_digits", "SHA256:" HEX_LOWER "00", false },
	{ "not_hex_last", "SHA256:" HEX_63 "g", false },
	{ "not_hex_first", "SHA256:x" HEX_63_TAIL, false },
	{ "sign", "SHA256:+" HEX_63_TAIL, false },
	{ "colon_trailing", "SHA256:" HEX_COLONS ":", false },
	{ "colon_leading", "SHA256::" HEX_COLONS, false },
	{ "colon_missing_one",
	  "SHA256:C48F:AB:8F:2E:29:3C:C5:43:F4:A0:81:0C:7F:70:ED:3F:E3:79:26:91:7E:D9:28:44:A7:"
	  "35:6B:54:15:B4:50",
	  false },
	/* right length, colons in the wrong places */
	{ "colon_shifted",
	  "SHA256:C:48F:AB:8F:2E:29:3C:C5:43:F4:A0:81:0C:7F:70:ED:3F:E3:79:26:91:7E:D9:28:44:A7:"
	  "35:6B:54:15:B4:50",
	  false },
	{ "dash_separator",
	  "SHA256:C4-8F-AB-8F-2E-29-3C-C5-43-F4-A0-81-0C-7F-70-ED-3F-E3-79-26-91-7E-D9-28-44-A7-"
	  "35-6B-54-15-B4-50",
	  false },
	/* 32 pairs, but half of them glued: not one of the two spellings */
	{ "mixed_spellings",
	  "SHA256:C48F:AB8F:2E29:3CC5:43F4:A081:0C7F:70ED:3FE3:7926:917E:D928:44A7:356B:54:15:B4:50",
	  false },
};

static void decode_hex(const char *hex, unsigned char out[TLS_FINGERPRINT_LEN])
{
	for (size_t i = 0; i < TLS_FINGERPRINT_LEN; i++) {
		char pair[3] = { hex[2 * i], hex[2 * i + 1], '\0' };
		out[i] = (unsigned char)strtoul(pair, NULL, 16);
	}
}

static void test_parse_table(void **state)
{
	(void)state;
	unsigned char want[TLS_FINGERPRINT_LEN];
	decode_hex(HEX_LOWER, want);
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t len = strlen(c->text);
		char *text = malloc(len + 1);
		assert_non_null(text);
		memcpy(text, c->text, len + 1);
		unsigned char out[TLS_FINGERPRINT_LEN];
		memset(out, 0xa5, sizeof(out));
		bool ok = tls_fingerprint_parse(text, out);
		free(text);
		if (ok != c->ok) {
			print_error("case %s: %s, wanted %s\n", c->name, ok ? "accepted" : "refused",
			            c->ok ? "accepted" : "refused");
			fail();
		}
		if (c->ok) {
			assert_memory_equal(out, want, sizeof(want));
		} else {
			/* a refused text leaves the caller's buffer alone */
			unsigned char untouched[TLS_FINGERPRINT_LEN];
			memset(untouched, 0xa5, sizeof(untouched));
			assert_memory_equal(out, untouched, sizeof(out));
		}
	}
}

static void test_parse_null(void **state)
{
	(void)state;
	unsigned char out[TLS_FINGERPRINT_LEN];
	assert_false(tls_fingerprint_parse(NULL, out));
}

static void test_format(void **state)
{
	(void)state;
	unsigned char fp[TLS_FINGERPRINT_LEN];
	char text[TLS_FINGERPRINT_TEXT_SIZE];
	decode_hex(HEX_LOWER, fp);
	tls_fingerprint_format(fp, text);
	assert_string_equal(text, "SHA256:" HEX_LOWER);
	assert_int_equal(strlen(text), TLS_FINGERPRINT_TEXT_SIZE - 1);
}

/* Whatever rawmail prints, a user can paste back as a pin. */
static void test_format_parse_round_trip(void **state)
{
	(void)state;
	for (int pattern = 0; pattern < 4; pattern++) {
		unsigned char fp[TLS_FINGERPRINT_LEN], back[TLS_FINGERPRINT_LEN];
		for (size_t i = 0; i < sizeof(fp); i++)
			fp[i] = pattern == 0   ? 0x00
			        : pattern == 1 ? 0xff
			        : pattern == 2 ? (unsigned char)i
			                       : (unsigned char)(0xf0 - 7 * i);
		char text[TLS_FINGERPRINT_TEXT_SIZE];
		tls_fingerprint_format(fp, text);
		assert_true(tls_fingerprint_parse(text, back));
		assert_memory_equal(fp, back, sizeof(fp));
	}
}

/* A self-signed EC certificate, and its digests as the openssl command line
 * computes them:
 *   openssl x509 -in c.pem -outform DER | sha256sum
 *   openssl x509 -in c.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum */
static const char cert_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBrTCCAVOgAwIBAgIUEom3FxQ/CqzSYy2XmMXO53Lca9EwCgYIKoZIzj0EAwIw\n"
	"HDEaMBgGA1UEAwwRdW5pdC5leGFtcGxlLnRlc3QwIBcNMjYxMTIzMTU0NjQ5WhgP\n"
	"MjEyNjEwMzAxNTQ2NDlaMBwxGjAYBgNVBAMMEXVuaXQuZXhhbXBsZS50ZXN0MFkw\n"
	"EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEk2FvHdmm7QdsEJPqZxjURmhChr+tuKTc\n"
	"L/7JeJi6RuGa8GB8eEGFsYJ6Tdpws8cC3Rd1ty0waC1TPGOYRHid2qNxMG8wHQYD\n"
	"VR0OBBYEFAkNJmAvv5fnSi2FeAVjxbSmiiBoMB8GA1UdIwQYMBaAFAkNJmAvv5fn\n"
	"Si2FeAVjxbSmiiBoMA8GA1UdEwEB/wQFMAMBAf8wHAYDVR0RBBUwE4IRdW5pdC5l\n"
	"eGFtcGxlLnRlc3QwCgYIKoZIzj0EAwIDSAAwRQIgN2+NgyjZKcANbDyBrlZG8/PG\n"
	"D7zCB3V5zpwlAAEtt8oCIQCO1aTwUpclB1ShXX3juA7jHlLtcumNt63CYQ5CV2gI\n"
	"6A==\n"
	"-----END CERTIFICATE-----\n";
#define CERT_DER_SHA256 HEX_LOWER
#define CERT_SPKI_SHA256 "08788fc99d55002b4778374732120faa2017c912ca9e419a4cef7a801e16f156"

static X509 *load_cert(void)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, (int)sizeof(cert_pem) - 1);
	assert_non_null(bio);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static void test_digests(void **state)
{
	(void)state;
	X509 *x = load_cert();
	unsigned char got[TLS_FINGERPRINT_LEN], want[TLS_FINGERPRINT_LEN];
	char text[TLS_FINGERPRINT_TEXT_SIZE];

	assert_true(tls_fingerprint_cert(x, got));
	tls_fingerprint_format(got, text);
	assert_string_equal(text, "SHA256:" CERT_DER_SHA256);
	/* the openssl command line's spelling names the same certificate */
	assert_true(tls_fingerprint_parse("SHA256:" HEX_COLONS, want));
	assert_memory_equal(got, want, sizeof(got));

	assert_true(tls_fingerprint_spki(x, got));
	tls_fingerprint_format(got, text);
	assert_string_equal(text, "SHA256:" CERT_SPKI_SHA256);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_null),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_digests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
