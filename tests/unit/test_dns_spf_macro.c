/* Unit tests for SPF macro expansion and prefix matching
 * (src/dns/spf_macro.c): RFC 7208 §7.4's examples, then the edges. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/spf_macro.h"

static struct spf_macro_ctx ctx_v4(void)
{
	struct spf_macro_ctx c = {
		.sender = "strong-bad@email.example.com",
		.domain = "email.example.com",
		.helo = "mx.example.org",
		.family = AF_INET,
	};
	inet_pton(AF_INET, "192.0.2.3", c.ip);
	return c;
}

static void expect(const struct spf_macro_ctx *c, const char *ms, bool domain, const char *want)
{
	char out[600], err[256] = "";
	if (!spf_macro_expand(ms, c, domain, out, sizeof(out), err, sizeof(err)))
		fail_msg("'%s': %s", ms, err);
	if (strcmp(out, want))
		fail_msg("'%s' gave '%s', not '%s'", ms, out, want);
}

/* RFC 7208 §7.4 */
static void test_rfc_examples(void **state)
{
	struct spf_macro_ctx c = ctx_v4();
	static const char *const rows[][2] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		expect(&c, rows[i][0], false, rows[i][1]);
	c.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::cb01", c.ip);
	expect(&c, "%{ir}.%{v}._spf.%{d2}", false,
	       "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	expect(&c, "%{c}", false, "2001:db8::cb01");
}

static void test_other_letters(void **state)
{
	struct spf_macro_ctx c = ctx_v4();
	expect(&c, "%{h}", false, "mx.example.org");
	expect(&c, "%{p}", false, "unknown");       /* §7.3: no validated name */
	c.validated = "mail.example.com";
	expect(&c, "%{p2}", false, "example.com");
	expect(&c, "%%%_%-", false, "% %20");
	expect(&c, "%{S}", false, "strong-bad%40email.example.com");   /* §7.3 URL escape */
	c.sender = "@email.example.com";                                 /* §4.3 */
	expect(&c, "%{l}", false, "postmaster");
	expect(&c, "%{d5}", false, "email.example.com");
	expect(&c, "%{d2}.example.org.", true, "example.com.example.org");
}

static void test_domain_truncated(void **state)
{
	struct spf_macro_ctx c = ctx_v4();
	char sender[400], out[600], err[256];
	/* A 60-octet local-part label, five times: far over 253. */
	size_t o = 0;
	for (int i = 0; i < 5; i++) {
		memset(sender + o, 'a' + i, 60);
		o += 60;
		sender[o++] = i < 4 ? '.' : '@';
	}
	memcpy(sender + o, "x.org", 6);
	c.sender = sender;
	assert_true(spf_macro_expand("%{l}.%{d}", &c, true, out, sizeof(out), err, sizeof(err)));
	assert_true(strlen(out) <= 253);
	assert_int_equal(out[0], 'c');   /* the two leftmost labels went */
	assert_non_null(strstr(out, ".email.example.com"));
	assert_false(spf_macro_expand("%{s}", &c, false, out, 20, err, sizeof(err)));
}

static void test_cidr(void **state)
{
	unsigned char ip[16], net[16];
	inet_pton(AF_INET, "192.0.2.100", ip);
	inet_pton(AF_INET, "192.0.2.64", net);
	assert_true(spf_cidr_match(AF_INET, ip, AF_INET, net, 26));
	assert_false(spf_cidr_match(AF_INET, ip, AF_INET, net, 27));
	assert_true(spf_cidr_match(AF_INET, ip, AF_INET, net, 0));
	assert_false(spf_cidr_match(AF_INET, ip, AF_INET, net, 32));
	assert_false(spf_cidr_match(AF_INET, ip, AF_INET6, net, 0));
	assert_false(spf_cidr_match(AF_INET, ip, AF_INET, net, 33));
	inet_pton(AF_INET6, "2001:db8:1::5", ip);
	inet_pton(AF_INET6, "2001:db8::", net);
	assert_true(spf_cidr_match(AF_INET6, ip, AF_INET6, net, 32));
	assert_true(spf_cidr_match(AF_INET6, ip, AF_INET6, net, 47));
	assert_false(spf_cidr_match(AF_INET6, ip, AF_INET6, net, 48));
	assert_false(spf_cidr_match(AF_INET6, ip, AF_INET6, net, 129));
}

static void test_mapped(void **state)
{
	unsigned char ip[16];
	int family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.1", ip);
	spf_ip_normalise(&family, ip);
	assert_int_equal(family, AF_INET);
	assert_memory_equal(ip, "\xc0\x00\x02\x01", 4);
	family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", ip);
	spf_ip_normalise(&family, ip);
	assert_int_equal(family, AF_INET6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_other_letters),
		cmocka_unit_test(test_domain_truncated),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_mapped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
