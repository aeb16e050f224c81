/* Unit tests for the pure parts of rawmail check (src/check/): the result
 * lines and the JSON document (escaping included), DMARC record parsing
 * and the RFC 9989 tree walk's names, lab zone lines, address ranges and
 * the address a peer's EHLO reply reveals.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the DMARC records and
 * walked domains as seeds for tests/fuzz/fuzz_check_pure.c. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "check/check.h"
#include "testutil.h"

static char *print_text(const struct check_results *r, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	if (json)
		check_results_print_json(r, 42, f);
	else
		check_results_print(r, f);
	fclose(f);
	return buf;
}

static void test_result_lines(void **state)
{
	struct check_results r = { 0 };
	assert_true(check_results_add(&r, CHECK_PASS, "mx", "example.test", NULL, "%s (%u)",
	                              "mx.example.test", 10u));
	assert_true(check_results_add(&r, CHECK_FAIL, "ptr", "192.0.2.1", "publish a PTR",
	                              "no PTR record"));
	assert_true(check_results_add(&r, CHECK_INFO, "zone", "lab", "line one\nline two", "zones"));
	char *out = print_text(&r, false);
	assert_string_equal(out, "pass mx example.test: mx.example.test (10)\n"
	                         "fail ptr 192.0.2.1: no PTR record\n"
	                         "  fix: publish a PTR\n"
	                         "info zone lab: zones\n"
	                         "  fix: line one\n"
	                         "       line two\n");
	free(out);
	assert_int_equal(check_results_count(&r, CHECK_FAIL), 1);
	assert_int_equal(check_results_count(&r, CHECK_WARN), 0);
	check_results_free(&r);
}

static void test_json_document(void **state)
{
	struct check_results r = { 0 };
	check_results_add(&r, CHECK_WARN, "smtp", "h[192.0.2.1]:25", "a\nb",
	                  "greets \"x\" \\ \t\x01\x7f \xc3\xa9");
	char *out = print_text(&r, true);
	assert_string_equal(out,
	                    "{\"results\":[\n{\"status\":\"warn\",\"test\":\"smtp\","
	                    "\"subject\":\"h[192.0.2.1]:25\","
	                    "\"found\":\"greets \\\"x\\\" \\\\ \\t\\u0001\\u007f \xc3\xa9\","
	                    "\"fix\":\"a\\nb\"}],\n"
	                    "\"pass\":0,\"warn\":1,\"fail\":0,\"info\":0,\"complete\":true,"
	                    "\"elapsed_ms\":42}\n");
	free(out);
	check_results_free(&r);
	/* no results: still a document */
	out = print_text(&r, true);
	assert_non_null(strstr(out, "{\"results\":[],"));
	free(out);
}

struct dmarc_case {
	const char *text;
	int rc;
	enum check_dmarc_policy p;
	bool has_sp;
	enum check_dmarc_policy sp;
	bool rua;
	const char *why;  /* a part of the reason, for -1 */
};

static const struct dmarc_case dmarc_cases[] = {
		{ "v=DMARC1; p=reject", 1, CHECK_DMARC_REJECT, false, 0, false, NULL },
		{ "v=DMARC1;p=none;rua=mailto:d@example.test;", 1, CHECK_DMARC_NONE, false, 0, true,
		  NULL },
		{ "v=DMARC1 ; p = Quarantine ; sp=reject ; adkim=s", 1, CHECK_DMARC_QUARANTINE, true,
		  CHECK_DMARC_REJECT, false, NULL },
		{ "v=DMARC1; p=maybe", -1, 0, false, 0, false, "p=maybe" },
		{ "v=DMARC1; rua=mailto:x@y", -1, 0, false, 0, false, "no p=" },
		{ "v=DMARC1; sp=all; p=none", -1, 0, false, 0, false, "sp=all" },
		{ "v=DMARC1; p=none; junk", -1, 0, false, 0, false, "without '='" },
		{ "v=spf1 -all", 0, 0, false, 0, false, NULL },
		{ "p=reject; v=DMARC1", 0, 0, false, 0, false, NULL },
		{ "v=dmarc1; p=reject", 0, 0, false, 0, false, NULL },  /* §4.7: exact */
		{ "", 0, 0, false, 0, false, NULL },
		{ "v=DMARC1", -1, 0, false, 0, false, "no p=" },
};

/* The record a failing SPF check's fix shows: the address's term goes
 * where it takes effect. */
static void test_spf_record_add(void **state)
{
	(void)state;
	static const struct {
		const char *record, *want;
	} cases[] = {
		{ "v=spf1 -all", "v=spf1 ip4:192.0.2.7 -all" },
		{ "v=spf1 a mx ip4:198.51.100.0/24 ~all", "v=spf1 a mx ip4:198.51.100.0/24 ip4:192.0.2.7 ~all" },
		{ "v=spf1  a   ?ALL", "v=spf1  a ip4:192.0.2.7 ?ALL" },
		{ "v=spf1 a", "v=spf1 a ip4:192.0.2.7" },
		{ "v=spf1 a   ", "v=spf1 a ip4:192.0.2.7" },
		{ "v=spf1 redirect=_spf.example.org", "v=spf1 ip4:192.0.2.7 redirect=_spf.example.org" },
		/* include:all... and a macro named all are not the all term */
		{ "v=spf1 include:allmail.example -all", "v=spf1 include:allmail.example ip4:192.0.2.7 -all" },
		{ "v=spf1 +all", "v=spf1 ip4:192.0.2.7 +all" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[200];
		check_spf_record_add(cases[i].record, "ip4:192.0.2.7", out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
	/* too long for out: cut, never overrun */
	char small[12];
	check_spf_record_add("v=spf1 a mx -all", "ip4:192.0.2.7", small, sizeof(small));
	assert_string_equal(small, "v=spf1 a mx");
}

static void test_dmarc_parse(void **state)
{
	const struct dmarc_case *cases = dmarc_cases;
	for (size_t i = 0; i < sizeof(dmarc_cases) / sizeof(dmarc_cases[0]); i++) {
		struct check_dmarc_record rec = { .p = 9 };
		char why[160] = "";
		int rc = check_dmarc_parse(cases[i].text, &rec, why, sizeof(why));
		if (rc != cases[i].rc)
			fail_msg("case %zu \"%s\": %d, want %d", i, cases[i].text, rc, cases[i].rc);
		if (rc == 1) {
			assert_int_equal(rec.p, cases[i].p);
			assert_int_equal(rec.has_sp, cases[i].has_sp);
			if (rec.has_sp)
				assert_int_equal(rec.sp, cases[i].sp);
			assert_int_equal(rec.has_rua, cases[i].rua);
		}
		if (rc == -1 && !strstr(why, cases[i].why))
			fail_msg("case %zu: why \"%s\" lacks \"%s\"", i, why, cases[i].why);
	}
}

static void test_dmarc_walk(void **state)
{
	char names[8][272];
	size_t n = check_dmarc_walk("a.b.example.test.", names, 8);
	assert_int_equal(n, 4);
	assert_string_equal(names[0], "_dmarc.a.b.example.test");
	assert_string_equal(names[1], "_dmarc.b.example.test");
	assert_string_equal(names[2], "_dmarc.example.test");
	assert_string_equal(names[3], "_dmarc.test");
	/* RFC 9989 §4.10: more than 8 labels: the name, then the 7 shortest */
	n = check_dmarc_walk("1.2.3.4.5.6.7.8.9.10", names, 8);
	assert_int_equal(n, 8);
	assert_string_equal(names[0], "_dmarc.1.2.3.4.5.6.7.8.9.10");
	assert_string_equal(names[1], "_dmarc.4.5.6.7.8.9.10");
	assert_string_equal(names[7], "_dmarc.10");
	assert_int_equal(check_dmarc_walk("", names, 8), 0);
	assert_int_equal(check_dmarc_walk("example.test", names, 1), 1);
}

static void test_zone_lines(void **state)
{
	unsigned char v4[4] = { 192, 168, 1, 100 };
	char out[600] = "";
	assert_true(check_zone_lines(AF_INET, v4, NULL, out, sizeof(out)));
	assert_string_equal(out, "host-192-168-1-100.lab. IN A 192.168.1.100\n"
	                         "100.1.168.192.in-addr.arpa. IN PTR host-192-168-1-100.lab.\n");
	unsigned char v6[16];
	inet_pton(AF_INET6, "2001:db8::1", v6);
	out[0] = '\0';
	assert_true(check_zone_lines(AF_INET6, v6, "example.org.", out, sizeof(out)));
	assert_string_equal(out,
	                    "host-2001-db8--1.example.org. IN AAAA 2001:db8::1\n"
	                    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. "
	                    "IN PTR host-2001-db8--1.example.org.\n");
	/* too small: nothing half-written */
	char small[40] = "";
	assert_false(check_zone_lines(AF_INET, v4, NULL, small, sizeof(small)));
	assert_string_equal(small, "");
}

static void test_ranges_and_revealed(void **state)
{
	unsigned char a[16];
	struct { int family; const char *text; enum check_range want; } cases[] = {
		{ AF_INET, "10.1.2.3", CHECK_RANGE_PRIVATE },
		{ AF_INET, "172.16.0.1", CHECK_RANGE_PRIVATE },
		{ AF_INET, "172.32.0.1", CHECK_RANGE_PUBLIC },
		{ AF_INET, "192.168.1.1", CHECK_RANGE_PRIVATE },
		{ AF_INET, "100.64.0.1", CHECK_RANGE_PRIVATE },
		{ AF_INET, "127.0.0.2", CHECK_RANGE_LOOPBACK },
		{ AF_INET, "203.0.113.7", CHECK_RANGE_PUBLIC },
		{ AF_INET6, "fd00::1", CHECK_RANGE_PRIVATE },
		{ AF_INET6, "::1", CHECK_RANGE_LOOPBACK },
		{ AF_INET6, "fe80::1", CHECK_RANGE_LINKLOCAL },
		{ AF_INET6, "2001:db8::1", CHECK_RANGE_PUBLIC },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		inet_pton(cases[i].family, cases[i].text, a);
		if (check_range_of(cases[i].family, a) != cases[i].want)
			fail_msg("%s", cases[i].text);
	}
	int family = 0;
	assert_true(check_ehlo_revealed("mx.example Hello [203.0.113.7]\nPIPELINING", &family, a));
	assert_int_equal(family, AF_INET);
	assert_memory_equal(a, ((unsigned char[]){ 203, 0, 113, 7 }), 4);
	assert_true(check_ehlo_revealed("mx Hello x [IPv6:2001:db8::7]", &family, a));
	assert_int_equal(family, AF_INET6);
	assert_false(check_ehlo_revealed("mx.example\n[203.0.113.7]", &family, a));
	assert_false(check_ehlo_revealed("mx.example Hello [not.an.ip]", &family, a));
	assert_false(check_ehlo_revealed("mx.example Hello [203.0.113.7", &family, a));
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	static const char *const domains[] = { "a.b.example.test.", "1.2.3.4.5.6.7.8.9.10", "x" };
	for (size_t i = 0; seed_dir && *seed_dir && i < sizeof(dmarc_cases) / sizeof(dmarc_cases[0]);
	     i++)
		if (test_seed_write(seed_dir, "dmarc", i, "record", 0, dmarc_cases[i].text,
		                    strlen(dmarc_cases[i].text)) < 0)
			return 1;
	for (size_t i = 0; seed_dir && *seed_dir && i < sizeof(domains) / sizeof(domains[0]); i++)
		if (test_seed_write(seed_dir, "walk", i, "domain", 0, domains[i], strlen(domains[i])) < 0)
			return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_lines),
		cmocka_unit_test(test_json_document),
		cmocka_unit_test(test_dmarc_parse),
		cmocka_unit_test(test_spf_record_add),
		cmocka_unit_test(test_dmarc_walk),
		cmocka_unit_test(test_zone_lines),
		cmocka_unit_test(test_ranges_and_revealed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
