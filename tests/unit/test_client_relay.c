/* Unit tests for the --relay / --route / [routes] values
 * (src/client/relay.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client/relay.h"
#include "testutil.h"

struct host_case {
	const char *text;
	bool ok;
	const char *host;
	bool literal;
	int family;
	unsigned port;
	bool implicit_tls;
};

static const struct host_case relay_cases[] = {
	{ "smtp.example.net", true, "smtp.example.net", false, 0, 587, false },
	{ "SMTP.Example.NET.", true, "smtp.example.net", false, 0, 587, false },
	{ "smtp.example.net:2525", true, "smtp.example.net", false, 0, 2525, false },
	{ "smtps://smtp.example.net", true, "smtp.example.net", false, 0, 465, true },
	{ "SMTPS://smtp.example.net:4650", true, "smtp.example.net", false, 0, 4650, true },
	{ "smtp://smtp.example.net", true, "smtp.example.net", false, 0, 587, false },
	{ "192.0.2.1", true, "192.0.2.1", true, AF_INET, 587, false },
	{ "192.0.2.1:25", true, "192.0.2.1", true, AF_INET, 25, false },
	{ "[192.0.2.1]:26", true, "192.0.2.1", true, AF_INET, 26, false },
	{ "[::1]", true, "::1", true, AF_INET6, 587, false },
	{ "[::1]:2526", true, "::1", true, AF_INET6, 2526, false },
	{ "[IPv6:2001:db8::1]:25", true, "2001:db8::1", true, AF_INET6, 25, false },
	{ "2001:db8::1", true, "2001:db8::1", true, AF_INET6, 587, false },
	{ "smtps://[::1]", true, "::1", true, AF_INET6, 465, true },
	{ "", false, NULL, false, 0, 0, false },
	{ "smtp.example.net:", false, NULL, false, 0, 0, false },
	{ "smtp.example.net:0", false, NULL, false, 0, 0, false },
	{ "smtp.example.net:65536", false, NULL, false, 0, 0, false },
	{ "smtp.example.net:25x", false, NULL, false, 0, 0, false },
	{ "https://smtp.example.net", false, NULL, false, 0, 0, false },
	{ "smtp example.net", false, NULL, false, 0, 0, false },
	{ "[::1", false, NULL, false, 0, 0, false },
	{ "[::1]x", false, NULL, false, 0, 0, false },
	{ "[nothing]", false, NULL, false, 0, 0, false },
	{ "[IPv6:192.0.2.1]", false, NULL, false, 0, 0, false },
	{ "a..b", false, NULL, false, 0, 0, false },
	/* found by fuzz_client_relay: one root dot only */
	{ "smtp.example..", false, NULL, false, 0, 0, false },
	{ ".", false, NULL, false, 0, 0, false },
	{ "192.0.2.1.:26", true, "192.0.2.1", true, AF_INET, 26, false },
	{ "smtps://", false, NULL, false, 0, 0, false },
};

static void test_relay_host_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(relay_cases) / sizeof(relay_cases[0]); i++) {
		const struct host_case *c = &relay_cases[i];
		struct client_relay_host h;
		char err[256] = "";
		bool ok = client_relay_host_parse(c->text, &h, err, sizeof(err));
		if (ok != c->ok)
			fail_msg("'%s': expected %s, got %s (%s)", c->text, c->ok ? "ok" : "error",
			         ok ? "ok" : "error", err);
		if (!ok) {
			assert_true(err[0] != '\0');
			continue;
		}
		assert_string_equal(h.host, c->host);
		assert_int_equal(h.literal, c->literal);
		if (c->literal)
			assert_int_equal(h.family, c->family);
		assert_int_equal(h.port, c->port);
		assert_int_equal(h.implicit_tls, c->implicit_tls);
	}
}

static void test_route_parse(void **state)
{
	(void)state;
	struct client_relay_route r;
	char err[256];
	assert_true(client_relay_route_parse("Lab.Test=192.168.1.100", &r, err, sizeof(err)));
	assert_string_equal(r.domain, "lab.test");
	assert_string_equal(r.to.host, "192.168.1.100");
	assert_true(r.to.literal);
	assert_int_equal(r.to.port, 25);
	assert_false(r.to.implicit_tls);

	assert_true(client_relay_route_parse("lab.test.=mx.lab.test:2525", &r, err, sizeof(err)));
	assert_string_equal(r.domain, "lab.test");
	assert_string_equal(r.to.host, "mx.lab.test");
	assert_false(r.to.literal);
	assert_int_equal(r.to.port, 2525);

	assert_true(client_relay_route_parse("v6.test=[::1]:2525", &r, err, sizeof(err)));
	assert_int_equal(r.to.family, AF_INET6);
	assert_int_equal(r.to.port, 2525);

	static const char *const bad[] = {
		"lab.test", "=192.0.2.1", "lab.test=", "*.lab.test=192.0.2.1", "lab.test..=192.0.2.1",
		"lab.test=smtps://192.0.2.1", "lab test=192.0.2.1", "lab.test=192.0.2.1:0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (client_relay_route_parse(bad[i], &r, err, sizeof(err)))
			fail_msg("'%s' accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
}

static void test_route_find(void **state)
{
	(void)state;
	struct client_relay_route routes[2];
	char err[256];
	assert_true(client_relay_route_make("lab.test", "192.0.2.1", &routes[0], err, sizeof(err)));
	assert_true(client_relay_route_make("example.org", "[::1]", &routes[1], err, sizeof(err)));
	assert_ptr_equal(client_relay_route_find(routes, 2, "LAB.test"), &routes[0]);
	assert_ptr_equal(client_relay_route_find(routes, 2, "lab.test."), &routes[0]);
	assert_ptr_equal(client_relay_route_find(routes, 2, "example.org"), &routes[1]);
	/* Exact domains only: neither subdomains nor parents. */
	assert_null(client_relay_route_find(routes, 2, "sub.lab.test"));
	assert_null(client_relay_route_find(routes, 2, "test"));
	assert_null(client_relay_route_find(routes, 2, "xlab.test"));
	assert_null(client_relay_route_find(routes, 0, "lab.test"));
}

static void test_loopback(void **state)
{
	(void)state;
	unsigned char a[16] = { 0 };
	inet_pton(AF_INET, "127.0.0.1", a);
	assert_true(client_relay_is_loopback(AF_INET, a));
	inet_pton(AF_INET, "127.0.0.2", a);
	assert_false(client_relay_is_loopback(AF_INET, a));
	inet_pton(AF_INET6, "::1", a);
	assert_true(client_relay_is_loopback(AF_INET6, a));
	inet_pton(AF_INET6, "::2", a);
	assert_false(client_relay_is_loopback(AF_INET6, a));
}

static void test_format(void **state)
{
	(void)state;
	struct client_relay_host h;
	char err[256], out[300];
	assert_true(client_relay_host_parse("smtps://[::1]", &h, err, sizeof(err)));
	client_relay_host_format(&h, out, sizeof(out));
	assert_string_equal(out, "smtps://[::1]:465");
	assert_true(client_relay_host_parse("smtp.example.net", &h, err, sizeof(err)));
	client_relay_host_format(&h, out, sizeof(out));
	assert_string_equal(out, "smtp.example.net:587");
}

/* RAWMAIL_SEED_DIR: every table input as a seed for
 * tests/fuzz/fuzz_client_relay.c (selector 0: relay, 1: route). */
static int seeds_write(const char *dir)
{
	static const char *const routes[] = {
		"lab.test=192.168.1.100", "lab.test.=mx.lab.test:2525", "v6.test=[::1]:2525",
		"*.lab.test=192.0.2.1", "lab.test=smtps://192.0.2.1",
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(relay_cases) / sizeof(relay_cases[0]); i++)
		if (test_seed_write(dir, "relay", n++, "case", 0, relay_cases[i].text,
		                    strlen(relay_cases[i].text)) != 0)
			return 1;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (test_seed_write(dir, "route", n++, "case", 1, routes[i], strlen(routes[i])) != 0)
			return 1;
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && seeds_write(seed_dir) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_host_parse),
		cmocka_unit_test(test_route_parse),
		cmocka_unit_test(test_route_find),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
