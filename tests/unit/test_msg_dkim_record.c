/* Unit tests for the DKIM key record parser (src/msg/dkim_record.c):
 * RFC 6376 §3.2 tag-lists and §3.6.1 key records, good and bad, each
 * refusal with the words that say why.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the records below as
 * seeds for tests/fuzz/fuzz_msg_dkim_record.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/dkim.h"

#define ED_P "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static const struct record_case {
	const char *txt;
	int rc;
	const char *err;  /* a part of the message, for refusals */
} record_cases[] = {
	{ "v=DKIM1; k=ed25519; p=" ED_P, 0, NULL },
	{ "v=DKIM1; k=ed25519; p=" ED_P ";", 0, NULL },
	{ " v = DKIM1 ;\r\n\tk=ed25519 ; p = 11qYAYKxCrfVS/7TyWQHOg7h cvPapiMlrwIaaPcHURo= ; ", 0,
	  NULL },
	{ "k=ed25519; p=" ED_P "; n=a note; x_1=unknown tags are ignored", 0, NULL },
	{ "v=DKIM1; k=ed25519; h=sha1:sha256; s=email; t=y:s; p=" ED_P, 0, NULL },
	{ "v=DKIM1; p=", 0, NULL },  /* revoked */
	{ "", -1, "empty" },
	{ "  ", -1, "empty" },
	{ ";", -1, "letter" },
	{ "v=DKIM1;; p=" ED_P, -1, "letter" },
	{ "k=ed25519; v=DKIM1; p=" ED_P, -1, "first" },
	{ "v=DKIM2; k=ed25519; p=" ED_P, -1, "DKIM1" },
	{ "v=DKIM1; k=dsa; p=" ED_P, -1, "key type" },
	{ "v=DKIM1; k=ed25519", -1, "no p=" },
	{ "v=DKIM1; k=ed25519; k=rsa; p=" ED_P, -1, "twice" },
	{ "v=DKIM1; k=ed25519; p=" ED_P "; p=" ED_P, -1, "twice" },
	{ "v=DKIM1; k=ed25519; h=sha1; p=" ED_P, -1, "sha256" },
	{ "v=DKIM1; k=ed25519; s=tlsrpt; p=" ED_P, -1, "email" },
	{ "v=DKIM1; k=ed25519; p=AAAA", -1, "32 octets" },
	{ "v=DKIM1; k=rsa; p=AAAA", -1, "too short" },
	{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", -1, "base64" },
	{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", -1, "canonical" },
	{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIa=PcHURo=", -1, "base64" },
	{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcH!Ro=", -1, "base64" },
	{ "v=DKIM1; k=ed25519 p=" ED_P, -1, "key type" },
	{ "v DKIM1", -1, "'='" },
	{ "1v=DKIM1", -1, "letter" },
	{ "v=DKIM1; n=caf\xc3\xa9; p=", -1, "invalid character" },
};

static void test_record_parse(void **state)
{
	for (size_t i = 0; i < sizeof(record_cases) / sizeof(record_cases[0]); i++) {
		const struct record_case *c = &record_cases[i];
		struct dkim_record r;
		char err[256] = "";
		int rc = dkim_record_parse(c->txt, strlen(c->txt), &r, err, sizeof(err));
		if (rc != c->rc || (c->err && !strstr(err, c->err)))
			fail_msg("case %zu '%s': rc %d, err '%s'", i, c->txt, rc, err);
		if (rc == 0 && c->txt[strlen(c->txt) - 1] != '=')
			assert_false(r.revoked);
	}
	struct dkim_record r;
	char err[256];
	const char *t = "v=DKIM1; k=ed25519; t=y; p= 11qYAYKxCrfVS/7TyWQHOg7h\tcvPapiMlrwIaaPcHURo=";
	assert_int_equal(dkim_record_parse(t, strlen(t), &r, err, sizeof(err)), 0);
	assert_int_equal(r.k, DKIM_ALG_ED25519_SHA256);
	assert_true(r.testing);
	assert_false(r.strict);
	assert_string_equal(r.p, ED_P);
	t = "v=DKIM1; p=";
	assert_int_equal(dkim_record_parse(t, strlen(t), &r, err, sizeof(err)), 0);
	assert_true(r.revoked);
	assert_int_equal(r.k, DKIM_ALG_RSA_SHA256);
}

/* keygen's and check's zone line: strings of at most 255 octets. */
static void test_record_zone_line(void **state)
{
	(void)state;
	char text[301];
	memset(text, 'A', 300);
	text[300] = '\0';
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(dkim_record_zone_line("example.org", "s1", text, &out), 0);
	char want[400];
	snprintf(want, sizeof(want), "s1._domainkey.example.org. IN TXT ( \"%.255s\" \"%.45s\" )",
	         text, text);
	assert_string_equal(out.data, want);
	buf_reset(&out);
	assert_int_equal(dkim_record_zone_line("example.org", "s1", "v=DKIM1; p=", &out), 0);
	assert_string_equal(out.data, "s1._domainkey.example.org. IN TXT ( \"v=DKIM1; p=\" )");
	buf_free(&out);
	/* a buffer too small: -1, not a cut line */
	buf_init(&out, 20);
	assert_int_equal(dkim_record_zone_line("example.org", "s1", text, &out), -1);
	buf_free(&out);
}

/* Seeds for the fuzz harness: each record of the table, one file each. */
static void seeds_write(const char *dir)
{
	for (size_t i = 0; i < sizeof(record_cases) / sizeof(record_cases[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/record-%02zu", dir, i);
		FILE *f = fopen(path, "wb");
		if (!f)
			continue;
		fwrite(record_cases[i].txt, 1, strlen(record_cases[i].txt), f);
		fclose(f);
	}
}

int main(void)
{
	const char *seeds = getenv("RAWMAIL_SEED_DIR");
	if (seeds)
		seeds_write(seeds);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_record_zone_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
