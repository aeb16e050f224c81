/* Unit tests for DKIM (src/msg/dkim*.c): relaxed canonicalisation
 * (RFC 6376 §3.4.5's example and edge cases: LF input, empty bodies,
 * trailing white space), the RFC 8463 Appendix A ed25519-sha256 example
 * (its key, message, bh= and b=), the field rawmail signs (h= with From
 * over-signed, lines within 78 columns) and key loading (sizes, types,
 * errors naming the file).  The key record parser: test_msg_dkim_record.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "msg/dkim.h"
#include "msg/dkim_internal.h"

static char *canon_header(const char *f, bool crlf)
{
	static char out[1024];
	struct buf b;
	buf_init(&b, sizeof(out) - 1);
	assert_int_equal(dkim_canon_header_relaxed(f, strlen(f), crlf, &b), 0);
	memcpy(out, b.data ? b.data : "", b.len + 1);
	buf_free(&b);
	return out;
}

static char *canon_body(const char *s)
{
	static char out[1024];
	struct buf b;
	buf_init(&b, sizeof(out) - 1);
	assert_int_equal(dkim_canon_body_relaxed(s, strlen(s), &b), 0);
	memcpy(out, b.data ? b.data : "", b.len + 1);
	buf_free(&b);
	return out;
}

/* RFC 6376 §3.4.5, relaxed/relaxed. */
static void test_rfc6376_example(void **state)
{
	assert_string_equal(canon_header("A: X\r\n", true), "a:X\r\n");
	assert_string_equal(canon_header("B : Y\t\r\n\tZ  \r\n", true), "b:Y Z\r\n");
	assert_string_equal(canon_body(" C \r\nD \t E\r\n\r\n\r\n"), " C\r\nD E\r\n");
}

static void test_canon_header(void **state)
{
	/* LF folding, names lower case, no white space around the colon. */
	assert_string_equal(canon_header("SUBJECT :  Hello \n   World\t \n", true),
	                    "subject:Hello World\r\n");
	assert_string_equal(canon_header("To:\r\n bob@x.test\r\n", true), "to:bob@x.test\r\n");
	assert_string_equal(canon_header("X-Empty:\r\n", true), "x-empty:\r\n");
	/* The signature field itself: no CRLF (RFC 6376 §3.7). */
	assert_string_equal(canon_header("DKIM-Signature: v=1;\r\n b=", false),
	                    "dkim-signature:v=1; b=");
	/* 8-bit octets are kept as they are. */
	assert_string_equal(canon_header("Subject: \xc3\xa9t\xc3\xa9\r\n", true),
	                    "subject:\xc3\xa9t\xc3\xa9\r\n");
}

static void test_canon_body(void **state)
{
	/* RFC 6376 §3.4.4: an empty body, and one of empty lines, is empty
	 * (CRLF is added only to a non-empty body). */
	assert_string_equal(canon_body(""), "");
	assert_string_equal(canon_body("\r\n"), "");
	assert_string_equal(canon_body("\r\n \r\n\t\r\n"), "");
	/* LF input gives CRLF; a last line without line end gets one. */
	assert_string_equal(canon_body("a\nb\n\n"), "a\r\nb\r\n");
	assert_string_equal(canon_body("a\r\nb"), "a\r\nb\r\n");
	/* Inner empty lines stay; trailing white space goes. */
	assert_string_equal(canon_body("a \r\n\r\n b\t\r\n"), "a\r\n\r\n b\r\n");
	assert_string_equal(canon_body("\xe9t\xe9  x\r\n"), "\xe9t\xe9 x\r\n");
	/* A CR that ends no line is data. */
	assert_string_equal(canon_body("a\rb\r\n"), "a\rb\r\n");
}

static void test_body_offset(void **state)
{
	assert_int_equal(dkim_body_offset("A: b\r\n\r\nx", 9), 8);
	assert_int_equal(dkim_body_offset("A: b\n\nx", 7), 6);
	assert_int_equal(dkim_body_offset("A: b\r\n", 6), 6);
	assert_int_equal(dkim_body_offset("\r\nx", 3), 2);
}

/* RFC 8463 Appendix A: the RFC 8032 §7.1 test 1 key. */
static const char rfc8463_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
	"-----END PRIVATE KEY-----\n";
static const char rfc8463_msg[] =
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";

static struct dkim_key *key_from(const char *pem)
{
	struct dkim_key *k = NULL;
	char err[256];
	assert_int_equal(dkim_key_parse(pem, strlen(pem), "test", &k, err, sizeof(err)), 0);
	return k;
}

static void test_rfc8463_example(void **state)
{
	struct dkim_key *k = key_from(rfc8463_pem);
	assert_int_equal(dkim_key_alg(k), DKIM_ALG_ED25519_SHA256);
	assert_string_equal(dkim_key_type_name(k), "ed25519");
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(dkim_key_public_b64(k, &b), 0);
	assert_string_equal(b.data, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");

	/* bh= of the relaxed body. */
	struct buf body;
	buf_init(&body, 4096);
	size_t off = dkim_body_offset(rfc8463_msg, strlen(rfc8463_msg));
	assert_int_equal(dkim_canon_body_relaxed(rfc8463_msg + off, strlen(rfc8463_msg) - off, &body), 0);
	unsigned char h[32];
	unsigned hl = 0;
	assert_int_equal(EVP_Digest(body.data, body.len, h, &hl, EVP_sha256(), NULL), 1);
	buf_free(&body);

	/* The example's own field, b= empty; its h= list over-signs three
	 * names (§5.4.2: the ones not present add nothing). */
	static const char field[] =
		"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
		" d=football.example.com; i=@football.example.com;\r\n"
		" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
		" subject : date : message-id : from : subject : date;\r\n"
		" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
		" b=";
	const char *names[] = { "from", "to", "subject", "date", "message-id",
	                        "from", "subject", "date" };
	char err[256];
	buf_reset(&b);
	assert_int_equal(dkim_signature_compute(k, rfc8463_msg, strlen(rfc8463_msg), names, 8,
	                                        field, strlen(field), &b, err, sizeof(err)),
	                 0);
	assert_string_equal(b.data, "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus"
	                            "Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");
	/* and the body hash written in that field. */
	struct buf bh;
	buf_init(&bh, 100);
	assert_int_equal(dkim_b64_append(&bh, h, hl), 0);
	assert_string_equal(bh.data, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
	buf_free(&bh);
	buf_free(&b);
	dkim_key_free(k);
}

static void test_sign_field(void **state)
{
	struct dkim_key *k = key_from(rfc8463_pem);
	const char *m = "From: a@example.test\r\nTo: b@example.net\r\nX-Other: no\r\n"
	                "Subject: a subject that is long enough to matter somewhat\r\n"
	                "References: <1@x> <2@x>\r\nReferences: <3@x>\r\n\r\nbody\r\n";
	struct buf out;
	buf_init(&out, 8192);
	char err[256];
	assert_int_equal(dkim_sign(k, "example.test", "sel", 1700000000, m, strlen(m), &out, err,
	                           sizeof(err)),
	                 0);
	const char *f = out.data;
	assert_true(strncmp(f, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;", 57) == 0);
	/* The field unfolded: h= has From twice (over-signed), References
	 * twice, nothing not present. */
	char flat[8192];
	size_t n = 0;
	for (size_t i = 0; i < out.len; i++)
		if (f[i] != '\r' && f[i] != '\n')
			flat[n++] = f[i];
	flat[n] = '\0';
	assert_non_null(strstr(flat, " d=example.test; s=sel; t=1700000000; "));
	assert_non_null(strstr(flat, "h=from:from:to:subject:references:references; "));
	assert_null(strstr(flat, "x-other"));
	/* Lines of at most 78 characters, CRLF ended, continuation lines
	 * folded with white space. */
	size_t col = 0;
	for (size_t i = 0; i < out.len; i++) {
		if (f[i] == '\r') {
			assert_int_equal(f[i + 1], '\n');
			assert_true(col <= 78);
			i++;
			col = 0;
			if (i + 1 < out.len)
				assert_true(f[i + 1] == ' ');
			continue;
		}
		col++;
	}
	assert_int_equal(f[out.len - 1], '\n');
	/* ed25519 is deterministic: the same input signs the same. */
	struct buf again;
	buf_init(&again, 8192);
	assert_int_equal(dkim_sign(k, "example.test", "sel", 1700000000, m, strlen(m), &again, err,
	                           sizeof(err)),
	                 0);
	assert_string_equal(again.data, out.data);
	/* LF input signs as its CRLF form does (same canonical bytes). */
	const char *lf = "From: a@example.test\nTo: b@example.net\nX-Other: no\n"
	                 "Subject: a subject that is long enough to matter somewhat\n"
	                 "References: <1@x> <2@x>\nReferences: <3@x>\n\nbody\n";
	buf_reset(&again);
	assert_int_equal(dkim_sign(k, "example.test", "sel", 1700000000, lf, strlen(lf), &again, err,
	                           sizeof(err)),
	                 0);
	assert_string_equal(again.data, out.data);
	buf_free(&again);

	/* Refusals. */
	buf_reset(&out);
	assert_int_equal(dkim_sign(k, "example.test", "sel", 1, "To: b@x\r\n\r\n", 11, &out, err,
	                           sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "no From"));
	assert_int_equal(dkim_sign(k, "exa;mple.test", "sel", 1, m, strlen(m), &out, err, sizeof(err)), -1);
	assert_int_equal(dkim_sign(k, "example.test", "s l", 1, m, strlen(m), &out, err, sizeof(err)), -1);
	assert_int_equal(dkim_sign(k, "example.test", "", 1, m, strlen(m), &out, err, sizeof(err)), -1);
	buf_free(&out);
	dkim_key_free(k);
}

/* A key of this type written as PEM to a temporary file. */
static void key_file(const char *path, const char *type, size_t bits)
{
	EVP_PKEY *p = bits ? EVP_PKEY_Q_keygen(NULL, NULL, type, bits)
	                   : EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(p);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, p, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	EVP_PKEY_free(p);
}

static void test_key_load(void **state)
{
	char path[] = "/tmp/test_msg_dkim.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct dkim_key *k = NULL;
	char err[512];

	key_file(path, "RSA", 2048);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), 0);
	assert_int_equal(dkim_key_alg(k), DKIM_ALG_RSA_SHA256);
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(dkim_key_public_b64(k, &b), 0);
	/* SubjectPublicKeyInfo of RSA 2048: 294 octets, 392 characters. */
	assert_int_equal(b.len, 392);
	struct dkim_record r;
	char txt[600];
	snprintf(txt, sizeof(txt), "v=DKIM1; k=rsa; p=%s", b.data);
	assert_int_equal(dkim_record_parse(txt, strlen(txt), &r, err, sizeof(err)), 0);
	assert_string_equal(r.p, b.data);
	buf_free(&b);
	dkim_key_free(k);

	/* Readable by others: taken, with a warning that says what to do. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), 1);
	assert_non_null(k);
	assert_non_null(strstr(err, "read by others (mode 0644): chmod 600"));
	dkim_key_free(k);

	key_file(path, "RSA", 1024);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), 1);
	assert_non_null(k);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "1024 bits"));
	dkim_key_free(k);

	key_file(path, "RSA", 512);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), -1);
	assert_null(k);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "too small"));

	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ec);
	FILE *f = fopen(path, "w");
	assert_int_equal(PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(ec);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "RSA or Ed25519"));

	f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "not a PEM private key"));

	unlink(path);
	assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));

	/* A generated key reads back from its own PEM. */
	assert_int_equal(dkim_key_generate(DKIM_ALG_ED25519_SHA256, &k, err, sizeof(err)), 0);
	struct buf pem, p1, p2;
	buf_init(&pem, 8192);
	buf_init(&p1, 1024);
	buf_init(&p2, 1024);
	assert_int_equal(dkim_key_pem(k, &pem), 0);
	struct dkim_key *k2 = NULL;
	assert_int_equal(dkim_key_parse(pem.data, pem.len, "pem", &k2, err, sizeof(err)), 0);
	assert_int_equal(dkim_key_public_b64(k, &p1), 0);
	assert_int_equal(dkim_key_public_b64(k2, &p2), 0);
	assert_string_equal(p1.data, p2.data);
	buf_free(&pem);
	buf_free(&p1);
	buf_free(&p2);
	dkim_key_free(k);
	dkim_key_free(k2);
}

/* The From a signature is for: counted fields, the first one's addresses,
 * folding, CR LF or LF, a From only in the body not counted. */
static void test_from_find(void **state)
{
	static const struct {
		const char *msg;
		size_t fields, addresses;
		const char *address;
	} cases[] = {
		{ "From: Alice <alice@Example.org>\r\nTo: b@x.test\r\n\r\nbody\r\n", 1, 1,
		  "alice@Example.org" },
		{ "Subject: s\nFrom:\n  a@x.test\n\nbody\n", 1, 1, "a@x.test" },
		{ "from : a@x.test, b@y.test\r\n\r\n", 1, 2, "a@x.test" },
		{ "From: a@x.test\r\nFrom: b@y.test\r\n\r\n", 2, 1, "a@x.test" },
		{ "To: b@x.test\r\n\r\nFrom: a@x.test\r\n", 0, 0, "" },
		{ "From: not an address\r\n\r\n", 1, 0, "" },
		{ "", 0, 0, "" },
		{ "From: a@x.test", 1, 1, "a@x.test" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dkim_from f;
		dkim_from_find(cases[i].msg, strlen(cases[i].msg), &f);
		assert_int_equal(f.fields, cases[i].fields);
		assert_int_equal(f.addresses, cases[i].addresses);
		assert_string_equal(f.address, cases[i].address);
	}
	assert_true(dkim_domain_covers("example.org", "example.org"));
	assert_true(dkim_domain_covers("example.org", "Mail.EXAMPLE.org"));
	assert_false(dkim_domain_covers("example.org", "badexample.org"));
	assert_false(dkim_domain_covers("mail.example.org", "example.org"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6376_example), cmocka_unit_test(test_canon_header),
		cmocka_unit_test(test_canon_body),      cmocka_unit_test(test_body_offset),
		cmocka_unit_test(test_rfc8463_example), cmocka_unit_test(test_sign_field),
		cmocka_unit_test(test_key_load),        cmocka_unit_test(test_from_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
