/* Accepted destinations, relay refusal and mailbox names (server/policy.c),
 * through the real address parser. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/config.h"
#include "server/policy.h"

struct fixture {
	struct serve_config cfg;
	struct policy policy;
	struct sockaddr_in local;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	config_init(&f->cfg);
	assert_true(config_set(&f->cfg, CONFIG_FLAG, "listen", "127.0.0.1:2525", err, sizeof(err)));
	assert_true(config_set(&f->cfg, CONFIG_FLAG, "listen", "[::1]:2525", err, sizeof(err)));
	assert_true(config_set(&f->cfg, CONFIG_FLAG, "domain", "example.test", err, sizeof(err)));
	assert_true(config_set(&f->cfg, CONFIG_FLAG, "hostname", "mx.test", err, sizeof(err)));
	assert_true(config_finish(&f->cfg, err, sizeof(err)));
	assert_true(policy_init(&f->policy, &f->cfg, err, sizeof(err)));
	f->local.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &f->local.sin_addr);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	policy_free(&f->policy);
	config_free(&f->cfg);
	free(f);
	return 0;
}

struct rcpt_case {
	const char *path;
	const char *mailbox; /* NULL: refused */
	int code;
	const char *enhanced;
};

static const struct rcpt_case cases[] = {
	{ "<user@example.test>", "user", 0, NULL },
	{ "<User@EXAMPLE.test>", "user", 0, NULL },
	{ "<user+tag@example.test>", "user", 0, NULL },
	{ "<user@mx.test>", "user", 0, NULL },
	{ "<user@localhost>", "user", 0, NULL },
	{ "<user@[127.0.0.1]>", "user", 0, NULL },
	{ "<user@127.0.0.1>", "user", 0, NULL },
	{ "<user@[IPv6:::1]>", "user", 0, NULL },
	{ "<user@[ipv6:0:0:0:0:0:0:0:1]>", "user", 0, NULL },
	{ "<user@[IPv6:::ffff:127.0.0.1]>", "user", 0, NULL },
	{ "<postmaster>", "postmaster", 0, NULL },
	{ "<PostMaster@example.test>", "postmaster", 0, NULL },
	{ "<@other.test,@x.test:user@example.test>", "user", 0, NULL },
	/* relaying, in every classic form */
	{ "<user@other.test>", NULL, 554, "5.7.1" },
	{ "<postmaster@other.test>", NULL, 554, "5.7.1" },
	{ "<user@[127.0.0.2]>", NULL, 554, "5.7.1" },
	{ "<user@[IPv6:::2]>", NULL, 554, "5.7.1" },
	{ "<user%other.test@[127.0.0.1]>", NULL, 554, "5.7.1" },
	{ "<other.test!user@[127.0.0.1]>", NULL, 554, "5.7.1" },
	{ "<\"user@other.test\"@[127.0.0.1]>", NULL, 554, "5.7.1" },
	{ "<@[127.0.0.1]:user@other.test>", NULL, 554, "5.7.1" },
	{ "<user@example.test.other.test>", NULL, 554, "5.7.1" },
	/* unsafe mailbox names */
	{ "<\".hidden\"@example.test>", NULL, 553, "5.1.3" },
	{ "<\"a/b\"@example.test>", NULL, 553, "5.1.3" },
	{ "<\"..\"@example.test>", NULL, 553, "5.1.3" },
	{ "<+tag@example.test>", "+tag", 0, NULL },
};

static void test_recipients(void **state)
{
	struct fixture *f = *state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcpt_case *c = &cases[i];
		struct smtp_address a;
		size_t used;
		enum smtp_address_status st =
			smtp_address_parse(c->path, strlen(c->path),
			                   SMTP_ADDR_POSTMASTER_OK | SMTP_ADDR_BARE_IP, &a, &used);
		if (st != SMTP_ADDR_OK)
			fail_msg("case %zu %s: parse failed (%d)", i, c->path, st);
		struct smtp_reply r = { 0 };
		char *mb = policy_recipient(&f->policy, (const struct sockaddr *)&f->local, &a, &r);
		if (c->mailbox) {
			if (!mb)
				fail_msg("case %zu %s: refused %d %s", i, c->path, r.code, r.text);
			assert_string_equal(mb, c->mailbox);
		} else {
			if (mb)
				fail_msg("case %zu %s: accepted as %s", i, c->path, mb);
			assert_int_equal(r.code, c->code);
			assert_string_equal(r.enhanced, c->enhanced);
		}
		free(mb);
	}
}

static void test_mailbox_restriction(void **state)
{
	struct fixture *f = *state;
	char err[256];
	assert_true(config_set(&f->cfg, CONFIG_FLAG, "mailbox", "alice, bob", err, sizeof(err)));
	struct smtp_address a;
	size_t used;
	struct smtp_reply r;
	assert_int_equal(smtp_address_parse("<Bob+x@example.test>", 20, 0, &a, &used), SMTP_ADDR_OK);
	char *mb = policy_recipient(&f->policy, NULL, &a, &r);
	assert_string_equal(mb, "bob");
	free(mb);
	assert_int_equal(smtp_address_parse("<carol@example.test>", 20, 0, &a, &used), SMTP_ADDR_OK);
	assert_null(policy_recipient(&f->policy, NULL, &a, &r));
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.1.1");
	/* postmaster exists whatever the list says (RFC 5321 §4.5.1) */
	assert_int_equal(smtp_address_parse("<postmaster@example.test>", 25, 0, &a, &used),
	                 SMTP_ADDR_OK);
	mb = policy_recipient(&f->policy, NULL, &a, &r);
	assert_string_equal(mb, "postmaster");
	free(mb);
}

static void test_wildcard_takes_connection_address(void **state)
{
	struct serve_config cfg;
	struct policy p;
	char err[256];
	config_init(&cfg);
	assert_true(config_set(&cfg, CONFIG_FLAG, "listen", "0.0.0.0:25", err, sizeof(err)));
	assert_true(config_finish(&cfg, err, sizeof(err)));
	assert_true(policy_init(&p, &cfg, err, sizeof(err)));
	/* 127.0.0.1 is an interface address; 127.0.0.9 only the connection's. */
	struct sockaddr_in local = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.9", &local.sin_addr);
	struct smtp_address a;
	size_t used;
	struct smtp_reply r;
	assert_int_equal(smtp_address_parse("<u@[127.0.0.1]>", 15, 0, &a, &used), SMTP_ADDR_OK);
	char *mb = policy_recipient(&p, (const struct sockaddr *)&local, &a, &r);
	assert_non_null(mb);
	free(mb);
	assert_int_equal(smtp_address_parse("<u@[127.0.0.9]>", 15, 0, &a, &used), SMTP_ADDR_OK);
	mb = policy_recipient(&p, (const struct sockaddr *)&local, &a, &r);
	assert_non_null(mb);
	free(mb);
	assert_int_equal(smtp_address_parse("<u@[127.0.0.8]>", 15, 0, &a, &used), SMTP_ADDR_OK);
	assert_null(policy_recipient(&p, (const struct sockaddr *)&local, &a, &r));
	policy_free(&p);
	config_free(&cfg);
}

static void test_mailbox_names(void **state)
{
	static const struct {
		const char *local;
		const char *want;
	} names[] = {
		{ "Alice", "alice" },     { "a.b", "a.b" },      { "a+b+c", "a" },
		{ "j\xc3\xb6rg", "j\xc3\xb6rg" }, { ".a", NULL }, { "a/b", NULL },
		{ "a\\b", NULL },         { "a\x01", NULL },     { "", NULL },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *got = policy_mailbox_name(names[i].local, strlen(names[i].local));
		if (names[i].want) {
			assert_non_null(got);
			assert_string_equal(got, names[i].want);
		} else {
			assert_null(got);
		}
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_restriction, setup, teardown),
		cmocka_unit_test(test_wildcard_takes_connection_address),
		cmocka_unit_test(test_mailbox_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
