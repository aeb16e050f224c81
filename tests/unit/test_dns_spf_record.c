/* Unit tests for the SPF record parser (src/dns/spf_record.c): a table of
 * records that RFC 7208 §12's grammar allows and refuses, and what a
 * parsed record holds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/spf_record.h"
#include "testutil.h"

static struct spf_record rec;

struct row {
	const char *text;
	bool ok;
	const char *err_has;   /* a word of the reason, for refusals */
};

static const struct row rows[] = {
	{ "v=spf1", true, NULL },
	{ "v=spf1 ", true, NULL },
	{ "V=SPF1 -ALL", true, NULL },
	{ "v=spf1 -all", true, NULL },
	{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", true, NULL },
	{ "v=spf1 a mx a:mail.example.org/28 mx:example.org//64 a/24//64 ?all", true, NULL },
	{ "v=spf1 include:_spf.example.org exists:%{i}.bl.example.org -all", true, NULL },
	{ "v=spf1 redirect=_spf.example.org", true, NULL },
	{ "v=spf1 exp=explain.%{d} -all", true, NULL },
	{ "v=spf1 foo=bar.%{s} -all", true, NULL },         /* unknown modifier: ignored */
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d}", true, NULL },
	{ "v=spf1 a:%{l/}.example.org/24", true, NULL },    /* '/' as a macro delimiter */
	{ "v=spf1 ptr ptr:example.org", true, NULL },
	{ "v=spf1 include:example.org.", true, NULL },
	{ "v=spf1 a:%%.%_.%-.example.org", true, NULL },
	{ "v=spf10", false, "not an SPF record" },
	{ "spf1 -all", false, "not an SPF record" },
	{ "v=spf1  -all", true, NULL },
	{ "v=spf1\t-all", false, "not an SPF record" },
	{ "v=spf1 a\t-all", false, "unknown mechanism" },
	{ "v=spf1 ip5:1.2.3.4", false, "unknown mechanism" },
	{ "v=spf1 -al", false, "unknown mechanism" },
	{ "v=spf1 all:x", false, "no argument" },
	{ "v=spf1 ip4:192.0.2.256", false, "IPv4" },
	{ "v=spf1 ip4:192.0.2.1/33", false, "prefix" },
	{ "v=spf1 ip4:192.0.2.1/024", false, "prefix" },
	{ "v=spf1 ip4:192.0.2.1/", false, "prefix" },
	{ "v=spf1 ip4:2001:db8::1", false, "IPv4" },
	{ "v=spf1 ip6:2001:db8::/129", false, "prefix" },
	{ "v=spf1 ip6:192.0.2.1", false, "IPv6" },
	{ "v=spf1 ip4", false, "address" },
	{ "v=spf1 a/24/64", false, "prefix" },
	{ "v=spf1 a:", false, "empty" },
	{ "v=spf1 include", false, "needs a domain" },
	{ "v=spf1 exists", false, "needs a domain" },
	{ "v=spf1 ptr/24", false, "no prefix" },
	{ "v=spf1 include:example", false, "top-level" },
	{ "v=spf1 include:example.123", false, "top-level" },
	{ "v=spf1 include:example.-com", false, "top-level" },
	{ "v=spf1 a:%{x}.example.org", false, "macro letter" },
	{ "v=spf1 a:%{c}.example.org", false, "macro letter" },  /* c only in exp text */
	{ "v=spf1 a:%{d0}.example.org", false, "count" },
	{ "v=spf1 a:%{d", false, "unterminated" },
	{ "v=spf1 a:50%.example.org", false, "not a macro" },
	{ "v=spf1 redirect=a.example.org redirect=b.example.org", false, "twice" },
	{ "v=spf1 exp=a.example.org exp=b.example.org", false, "twice" },
	{ "v=spf1 redirect=", false, "top-level" },
	{ "v=spf1 1foo=bar", false, "unknown mechanism" },
};

static void test_table(void **state)
{
	char err[256];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err[0] = '\0';
		bool ok = spf_record_parse(rows[i].text, strlen(rows[i].text), &rec, err, sizeof(err));
		if (ok != rows[i].ok || (!ok && !strstr(err, rows[i].err_has)))
			fail_msg("'%s': got %s (%s)", rows[i].text, ok ? "ok" : "error", err);
	}
}

static void test_terms(void **state)
{
	char err[256];
	const char *t = "v=spf1 -ip4:192.0.2.0/24 ~a:mail.%{d}/28//64 mx//48 +include:x.example "
	                "?all redirect=r.example";
	assert_true(spf_record_parse(t, strlen(t), &rec, err, sizeof(err)));
	assert_int_equal(rec.n, 5);
	assert_int_equal(rec.terms[0].mech, SPF_MECH_IP4);
	assert_int_equal(rec.terms[0].qualifier, SPF_QUAL_FAIL);
	assert_int_equal(rec.terms[0].cidr4, 24);
	assert_memory_equal(rec.terms[0].addr, "\xc0\x00\x02\x00", 4);
	assert_string_equal(rec.terms[0].text, "-ip4:192.0.2.0/24");
	assert_int_equal(rec.terms[1].mech, SPF_MECH_A);
	assert_int_equal(rec.terms[1].qualifier, SPF_QUAL_SOFTFAIL);
	assert_string_equal(rec.terms[1].domain, "mail.%{d}");
	assert_int_equal(rec.terms[1].cidr4, 28);
	assert_int_equal(rec.terms[1].cidr6, 64);
	assert_int_equal(rec.terms[2].mech, SPF_MECH_MX);
	assert_null(rec.terms[2].domain);
	assert_int_equal(rec.terms[2].cidr4, 32);
	assert_int_equal(rec.terms[2].cidr6, 48);
	assert_int_equal(rec.terms[3].mech, SPF_MECH_INCLUDE);
	assert_int_equal(rec.terms[3].qualifier, SPF_QUAL_PASS);
	assert_string_equal(rec.terms[3].domain, "x.example");
	assert_int_equal(rec.terms[4].mech, SPF_MECH_ALL);
	assert_true(rec.has_all);
	assert_string_equal(rec.redirect, "r.example");
	assert_null(rec.exp);
}

static void test_is_spf(void **state)
{
	assert_true(spf_record_is_spf("v=spf1", 6));
	assert_true(spf_record_is_spf("v=spf1 -all", 11));
	assert_false(spf_record_is_spf("v=spf10 -all", 12));
	assert_false(spf_record_is_spf("v=spf", 5));
	assert_false(spf_record_is_spf("google-site-verification=x", 26));
}

static void test_bounds(void **state)
{
	char err[256], big[DNS_TXT_RECORD_MAX + 10];
	size_t o = (size_t)snprintf(big, sizeof(big), "v=spf1");
	for (int i = 0; i <= SPF_TERMS_MAX; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, " a");
	assert_false(spf_record_parse(big, o, &rec, err, sizeof(err)));
	assert_non_null(strstr(err, "terms"));
	assert_false(spf_record_parse("v=spf1 a\0b", 10, &rec, err, sizeof(err)));
	memset(big, 'a', sizeof(big));
	memcpy(big, "v=spf1 a:", 9);
	memcpy(big + 300, ".org", 4);
	assert_false(spf_record_parse(big, 304, &rec, err, sizeof(err)));
}

int main(void)
{
	/* RAWMAIL_SEED_DIR: every table row as a seed for
	 * tests/fuzz/fuzz_dns_spf_record.c. */
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	for (size_t i = 0; seed_dir && i < sizeof(rows) / sizeof(rows[0]); i++)
		if (test_seed_write(seed_dir, "spf", i, "row", 0, rows[i].text, strlen(rows[i].text)))
			return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_terms),
		cmocka_unit_test(test_is_spf),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
