/* Unit tests for the trusted networks (src/server/networks.c): a table of
 * values accepted (with how they print) or refused (with a word the
 * message must hold), and a table of client addresses matched against a
 * set of networks.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the values of the first
 * table as seeds for tests/fuzz/fuzz_server_networks.c (after its
 * selector octet, unused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "testutil.h"

#include "server/networks.h"
#include "util/limits.h"

struct parse_case {
	const char *text;
	const char *as;    /* accepted: how networks_format prints it; NULL: refused */
	const char *why;   /* refused: a part of the message */
};

static const struct parse_case parse_cases[] = {
	{ "192.0.2.0/24", "192.0.2.0/24", NULL },
	{ "10.0.0.0/8", "10.0.0.0/8", NULL },
	{ "192.0.2.7", "192.0.2.7/32", NULL },
	{ "192.0.2.7/32", "192.0.2.7/32", NULL },
	{ "128.0.0.0/1", "128.0.0.0/1", NULL },
	{ "2001:db8::/32", "2001:db8::/32", NULL },
	{ "2001:DB8::/32", "2001:db8::/32", NULL },
	{ "2001:0db8:0000::/32", "2001:db8::/32", NULL },
	{ "[2001:db8::]/32", "2001:db8::/32", NULL },
	{ "[::1]", "::1/128", NULL },
	{ "[::1]/128", "::1/128", NULL },
	{ "[192.0.2.0]/24", "192.0.2.0/24", NULL },
	{ "::1", "::1/128", NULL },
	{ "fe80::/10", "fe80::/10", NULL },
	{ "2001:db8:8000::/33", "2001:db8:8000::/33", NULL },
	{ "2001:db8::1/128", "2001:db8::1/128", NULL },
	{ "8000::/1", "8000::/1", NULL },
	/* IPv4-mapped: the IPv4 network */
	{ "::ffff:192.0.2.0/120", "192.0.2.0/24", NULL },
	{ "::ffff:192.0.2.7", "192.0.2.7/32", NULL },
	{ "[::ffff:10.0.0.0]/104", "10.0.0.0/8", NULL },
	/* SP/HTAB around the value */
	{ "  192.0.2.0/24\t", "192.0.2.0/24", NULL },
	/* refused */
	{ "192.168.1.5/24", NULL, "has host bits set; did you mean 192.168.1.0/24?" },
	{ "2001:db8::1/32", NULL, "did you mean 2001:db8::/32?" },
	{ "2001:db8:ffff::/33", NULL, "did you mean 2001:db8:8000::/33?" },
	{ "::ffff:10.0.0.0/80", NULL, "did you mean ::/80?" },
	{ "1.2.3.4/33", NULL, "prefix /33 is longer than an IPv4 address" },
	{ "::/129", NULL, "prefix /129 is longer than an IPv6 address" },
	{ "0.0.0.0/0", NULL, "/0" },
	{ "::/0", NULL, "/0" },
	{ "::ffff:0.0.0.0/96", NULL, "/0" },
	{ "1.2.3", NULL, "not an IP address" },
	{ "1.2.3.4.5", NULL, "not an IP address" },
	{ "256.0.0.0/8", NULL, "not an IP address" },
	{ "010.0.0.0/8", NULL, "leading zero" },
	{ "10.0.0.01", NULL, "leading zero" },
	{ "10.0.0.0", "10.0.0.0/32", NULL },
	{ "10.0.0.0/08", NULL, "must be a number from 1 to 32" },
	{ "10.0.0.0/", NULL, "must be a number" },
	{ "10.0.0.0/x", NULL, "must be a number" },
	{ "10.0.0.0/-8", NULL, "must be a number" },
	{ "10.0.0.0/1000", NULL, "must be a number" },
	{ "10.0.0.0/8/8", NULL, "must be a number" },
	{ "10.0.0.0 /8", NULL, "not an IP address" },
	{ "10.0.0.0/ 8", NULL, "must be a number" },
	{ "10.0.0.0/8 junk", NULL, "must be a number" },
	{ "", NULL, "empty" },
	{ "   ", NULL, "empty" },
	{ "/24", NULL, "not an IP address" },
	{ "localhost", NULL, "not an IP address" },
	{ "fe80::1%eth0", NULL, "not an IP address" },
	{ "[2001:db8::/32]", NULL, "not an IP address" },
	{ "[2001:db8::", NULL, "not an IP address" },
	{ "2001:db8:::/32", NULL, "not an IP address" },
	{ "1.2.3.4\n", NULL, "not an IP address" },
};

static void test_parse_table(void **state)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct networks n = { 0 };
		char err[256] = "";
		bool ok = networks_add(&n, c->text, err, sizeof(err));
		if (c->as) {
			if (!ok)
				fail_msg("\"%s\": refused (%s), want %s", c->text, err, c->as);
			assert_int_equal(n.count, 1);
			char buf[NETWORKS_TEXT_MAX];
			networks_format(&n.entries[0], buf, sizeof(buf));
			if (strcmp(buf, c->as) != 0)
				fail_msg("\"%s\": read as %s, want %s", c->text, buf, c->as);
		} else {
			if (ok)
				fail_msg("\"%s\": accepted, want refused (%s)", c->text, c->why);
			assert_int_equal(n.count, 0);
			/* The message names the value and says why. */
			if (!strstr(err, "trusted network \"") || !strstr(err, c->why))
				fail_msg("\"%s\": message \"%s\" lacks \"%s\"", c->text, err, c->why);
		}
		networks_free(&n);
	}
}

static void test_message_text(void **state)
{
	struct networks n = { 0 };
	char err[256];
	assert_false(networks_add(&n, "192.168.1.5/24", err, sizeof(err)));
	assert_string_equal(err, "trusted network \"192.168.1.5/24\": has host bits set; "
	                         "did you mean 192.168.1.0/24?");
	/* Control octets in the value are escaped, a long value is cut. */
	assert_false(networks_add(&n, "1.2.3.4\x1b[2J", err, sizeof(err)));
	assert_non_null(strstr(err, "\"1.2.3.4\\x1b[2J\""));
	char long_value[1000];
	memset(long_value, 'a', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	assert_false(networks_add(&n, long_value, err, sizeof(err)));
	assert_non_null(strstr(err, "aaa...\": not an IP address"));
	assert_true(strlen(err) < sizeof(err) - 1); /* whole: the value was cut, not the message */
	/* A short err buffer is cut, not overrun. */
	char small[8];
	assert_false(networks_add(&n, "x", small, sizeof(small)));
	assert_int_equal(strlen(small), 7);
	assert_int_equal(n.count, 0);
}

static struct sockaddr_storage sa_of(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return ss;
}

struct match_case {
	const char *client;
	bool in;
};

static void test_match(void **state)
{
	static const char *const nets[] = {
		"192.0.2.0/24", "10.1.2.3", "172.16.0.0/12", "2001:db8:8000::/33",
		"::1", "::ffff:198.51.100.0/120",
	};
	static const struct match_case cases[] = {
		{ "192.0.2.0", true },       { "192.0.2.255", true },
		{ "192.0.3.0", false },      { "192.0.1.255", false },
		{ "10.1.2.3", true },        { "10.1.2.4", false },
		{ "172.16.0.1", true },      { "172.31.255.255", true },
		{ "172.32.0.0", false },     { "172.15.255.255", false },
		{ "198.51.100.9", true },    { "198.51.101.9", false },
		/* IPv4 clients on an IPv6 socket */
		{ "::ffff:192.0.2.9", true }, { "::ffff:10.1.2.3", true },
		{ "::ffff:10.1.2.4", false }, { "::ffff:198.51.100.1", true },
		/* the /33: the bit after the /32 decides */
		{ "2001:db8:8000::1", true }, { "2001:db8:ffff:ffff::1", true },
		{ "2001:db8:7fff::1", false }, { "2001:db9:8000::", false },
		{ "::1", true },             { "::2", false },
		/* IPv4-compatible (not mapped) is IPv6 */
		{ "::192.0.2.1", false },
		{ "127.0.0.1", false },
	};
	struct networks n = { 0 };
	char err[256];
	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
		assert_true(networks_add(&n, nets[i], err, sizeof(err)));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss = sa_of(cases[i].client);
		if (networks_match(&n, (struct sockaddr *)&ss) != cases[i].in)
			fail_msg("%s: match %d, want %d", cases[i].client, !cases[i].in, cases[i].in);
	}
	/* Other families never match. */
	struct sockaddr_storage un;
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	assert_false(networks_match(&n, (struct sockaddr *)&un));
	networks_free(&n);
	/* Nothing matches an empty list. */
	struct sockaddr_storage ss = sa_of("192.0.2.1");
	assert_false(networks_match(&n, (struct sockaddr *)&ss));
}

/* Whole prefixes: /32 and /128 are one address; /1 is half the space. */
static void test_match_edges(void **state)
{
	struct networks n = { 0 };
	char err[256];
	assert_true(networks_add(&n, "255.255.255.255/32", err, sizeof(err)));
	assert_true(networks_add(&n, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128", err, sizeof(err)));
	assert_true(networks_add(&n, "0.0.0.0/1", err, sizeof(err)));
	struct sockaddr_storage a = sa_of("255.255.255.255"), b = sa_of("255.255.255.254"),
	                        c = sa_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
	                        d = sa_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	                        e = sa_of("127.255.255.255"), f = sa_of("128.0.0.0");
	assert_true(networks_match(&n, (struct sockaddr *)&a));
	assert_false(networks_match(&n, (struct sockaddr *)&b));
	assert_true(networks_match(&n, (struct sockaddr *)&c));
	assert_false(networks_match(&n, (struct sockaddr *)&d));
	assert_true(networks_match(&n, (struct sockaddr *)&e));
	assert_false(networks_match(&n, (struct sockaddr *)&f));
	networks_free(&n);
}

/* A network given twice is kept once; NETWORKS_MAX are accepted, one more
 * is refused with a message and leaves the list as it was. */
static void test_limit(void **state)
{
	struct networks n = { 0 };
	char err[256], text[64];
	assert_true(networks_add(&n, "10.0.0.0/8", err, sizeof(err)));
	assert_true(networks_add(&n, "[10.0.0.0]/8", err, sizeof(err)));
	assert_true(networks_add(&n, "::ffff:10.0.0.0/104", err, sizeof(err)));
	assert_int_equal(n.count, 1);
	for (unsigned i = 1; i < NETWORKS_MAX; i++) {
		snprintf(text, sizeof(text), "192.0.%u.%u", i / 256, i % 256);
		assert_true(networks_add(&n, text, err, sizeof(err)));
	}
	assert_int_equal(n.count, NETWORKS_MAX);
	assert_false(networks_add(&n, "198.51.100.0/24", err, sizeof(err)));
	assert_non_null(strstr(err, "more than 256 trusted networks"));
	assert_int_equal(n.count, NETWORKS_MAX);
	/* one already there is still fine */
	assert_true(networks_add(&n, "10.0.0.0/8", err, sizeof(err)));
	networks_free(&n);
	assert_int_equal(n.count, 0);
	assert_null(n.entries);
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		if (test_seed_write(dir, "networks", i, "value", 0, parse_cases[i].text,
		                    strlen(parse_cases[i].text)) < 0)
			return -1;
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_message_text),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_match_edges),
		cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests_name("server_networks", tests, NULL, NULL);
}
