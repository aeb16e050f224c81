/* Unit tests for RFC 5321 §5.1 target ordering, RFC 7505 null MX and the
 * classification of recipient domains (src/dns/mx.c).  Randomness comes
 * from a seeded generator, so every run sees the same orders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns/mx.h"

/* A deterministic generator (Knuth's MMIX LCG); the high bits are used. */
struct lcg {
	uint64_t state;
};

static uint32_t lcg_random(void *arg, uint32_t bound)
{
	struct lcg *g = arg;

	g->state = g->state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((g->state >> 33) % bound);
}

/* Returns bounds far out of range: the caller must still stay in its run. */
static uint32_t bad_random(void *arg, uint32_t bound)
{
	(void)arg;
	return bound + 7;
}

#define REC(p, h) { .preference = (p), .host = (h) }
#define NREC(a) (sizeof(a) / sizeof((a)[0]))

static enum dns_mx_status order(const struct dns_mx_record *r, size_t n, uint64_t seed,
                                struct dns_mx_target *t, size_t cap, struct dns_mx_list *list)
{
	struct lcg g = { seed };

	list->targets = t;
	list->cap = cap;
	return dns_mx_order(DNS_MX_ANSWER_NOERROR, "example.com", r, n, lcg_random, &g, list);
}

static void test_order_by_preference(void **state)
{
	static const struct dns_mx_record r[] = { REC(20, "b.example"), REC(10, "a.example"),
		                                  REC(30, "c.example"), REC(0, "z.example") };
	struct dns_mx_target t[8];
	struct dns_mx_list list;

	(void)state;
	assert_int_equal(order(r, NREC(r), 1, t, 8, &list), DNS_MX_OK);
	assert_int_equal(list.n, 4);
	assert_string_equal(t[0].host, "z.example");
	assert_int_equal(t[0].preference, 0);
	assert_string_equal(t[1].host, "a.example");
	assert_string_equal(t[2].host, "b.example");
	assert_string_equal(t[3].host, "c.example");
	assert_int_equal(t[3].preference, 30);
	assert_false(list.null_ignored);
	assert_false(list.truncated);
}

/* A 3-way tie between a lower and a higher preference: over seeds, every
 * one of the 6 orders of the tie occurs, and the others never move. */
static void test_equal_preferences_permutations(void **state)
{
	static const struct dns_mx_record r[] = { REC(10, "a"), REC(20, "last"), REC(10, "b"),
		                                  REC(5, "first"), REC(10, "c") };
	static const char *const perms[6] = { "abc", "acb", "bac", "bca", "cab", "cba" };
	unsigned seen[6] = { 0 };

	(void)state;
	for (uint64_t seed = 0; seed < 600; seed++) {
		struct dns_mx_target t[8];
		struct dns_mx_list list;
		char got[4];

		assert_int_equal(order(r, NREC(r), seed, t, 8, &list), DNS_MX_OK);
		assert_int_equal(list.n, 5);
		assert_string_equal(t[0].host, "first");
		assert_string_equal(t[4].host, "last");
		for (size_t i = 0; i < 3; i++) {
			assert_int_equal(t[1 + i].preference, 10);
			assert_int_equal(strlen(t[1 + i].host), 1);
			got[i] = t[1 + i].host[0];
		}
		got[3] = '\0';
		for (size_t p = 0; p < 6; p++)
			if (strcmp(got, perms[p]) == 0)
				seen[p]++;
	}
	for (size_t p = 0; p < 6; p++) {
		if (seen[p] == 0)
			fail_msg("order %s never occurred", perms[p]);
		/* roughly uniform: 100 expected each */
		assert_true(seen[p] > 50 && seen[p] < 150);
	}
}

/* A random function that answers out of range cannot move a target out
 * of its run of equal preference. */
static void test_bad_random_stays_in_run(void **state)
{
	static const struct dns_mx_record r[] = { REC(10, "a"), REC(10, "b"), REC(20, "c") };
	struct dns_mx_target t[4];
	struct dns_mx_list list = { .targets = t, .cap = 4 };

	(void)state;
	assert_int_equal(dns_mx_order(DNS_MX_ANSWER_NOERROR, "example.com", r, NREC(r),
	                              bad_random, NULL, &list),
	                 DNS_MX_OK);
	assert_int_equal(list.n, 3);
	assert_int_equal(t[0].preference, 10);
	assert_int_equal(t[1].preference, 10);
	assert_string_equal(t[2].host, "c");
}

/* The same host twice is tried once, at its lowest preference; names
 * compare case-insensitively, with or without the trailing dot. */
static void test_duplicates(void **state)
{
	static const struct dns_mx_record r[] = {
		REC(10, "a.example"), REC(10, "A.EXAMPLE."), REC(20, "b.example"),
		REC(5, "b.example."), REC(10, "a.example"),  REC(30, "c.example"),
	};
	struct dns_mx_target t[8];
	struct dns_mx_list list;

	(void)state;
	assert_int_equal(order(r, NREC(r), 3, t, 8, &list), DNS_MX_OK);
	assert_int_equal(list.n, 3);
	assert_string_equal(t[0].host, "b.example.");
	assert_int_equal(t[0].preference, 5);
	assert_string_equal(t[1].host, "a.example");
	assert_int_equal(t[1].preference, 10);
	assert_string_equal(t[2].host, "c.example");
}

/* RFC 7505 §3: "MX 0 ." alone is a null MX, whether the resolver spells
 * the root "." or "". */
static void test_null_mx_alone(void **state)
{
	static const struct dns_mx_record dot[] = { REC(0, ".") };
	static const struct dns_mx_record empty[] = { REC(0, "") };
	static const struct dns_mx_record pref10[] = { REC(10, ".") };
	static const struct dns_mx_record two[] = { REC(0, "."), REC(0, "") };
	struct dns_mx_target t[4];
	struct dns_mx_list list;

	(void)state;
	assert_int_equal(order(dot, 1, 1, t, 4, &list), DNS_MX_NULL);
	assert_int_equal(list.n, 0);
	assert_int_equal(order(empty, 1, 1, t, 4, &list), DNS_MX_NULL);
	assert_int_equal(list.n, 0);
	/* no host to try at any preference */
	assert_int_equal(order(pref10, 1, 1, t, 4, &list), DNS_MX_NULL);
	assert_int_equal(order(two, 2, 1, t, 4, &list), DNS_MX_NULL);
	assert_int_equal(list.n, 0);
}

/* RFC 7505 §3 forbids a null MX beside other MX records; when a domain
 * has both, the null record is ignored and the others are used. */
static void test_null_mx_mixed(void **state)
{
	static const struct dns_mx_record r[] = { REC(0, "."), REC(10, "mx.example"),
		                                  REC(20, "") };
	struct dns_mx_target t[4];
	struct dns_mx_list list;

	(void)state;
	assert_int_equal(order(r, NREC(r), 1, t, 4, &list), DNS_MX_OK);
	assert_int_equal(list.n, 1);
	assert_string_equal(t[0].host, "mx.example");
	assert_true(list.null_ignored);
}

/* RFC 5321 §5.1: the implicit MX only after NOERROR with no MX record;
 * never after NXDOMAIN or a failure, even if records were passed. */
static void test_implicit_and_failures(void **state)
{
	static const struct dns_mx_record r[] = { REC(10, "mx.example") };
	struct dns_mx_target t[4];
	struct dns_mx_list list = { .targets = t, .cap = 4 };
	const char *domain = "example.com";

	(void)state;
	assert_int_equal(dns_mx_order(DNS_MX_ANSWER_NOERROR, domain, NULL, 0, lcg_random,
	                              &(struct lcg){ 1 }, &list),
	                 DNS_MX_IMPLICIT);
	assert_int_equal(list.n, 1);
	assert_ptr_equal(t[0].host, domain);
	assert_int_equal(t[0].preference, 0);

	assert_int_equal(dns_mx_order(DNS_MX_ANSWER_NXDOMAIN, domain, NULL, 0, lcg_random,
	                              &(struct lcg){ 1 }, &list),
	                 DNS_MX_NXDOMAIN);
	assert_int_equal(list.n, 0);
	assert_int_equal(dns_mx_order(DNS_MX_ANSWER_TEMPFAIL, domain, NULL, 0, lcg_random,
	                              &(struct lcg){ 1 }, &list),
	                 DNS_MX_TEMPFAIL);
	assert_int_equal(list.n, 0);
	assert_int_equal(dns_mx_order(DNS_MX_ANSWER_TEMPFAIL, domain, r, 1, lcg_random,
	                              &(struct lcg){ 1 }, &list),
	                 DNS_MX_TEMPFAIL);
	assert_int_equal(list.n, 0);
	assert_int_equal(dns_mx_order(DNS_MX_ANSWER_NXDOMAIN, domain, r, 1, lcg_random,
	                              &(struct lcg){ 1 }, &list),
	                 DNS_MX_NXDOMAIN);
	assert_int_equal(list.n, 0);
}

/* More hosts than room: the most preferred are kept, in order. */
static void test_truncated(void **state)
{
	static const struct dns_mx_record r[] = { REC(30, "c"), REC(10, "a"), REC(40, "d"),
		                                  REC(20, "b") };
	struct dns_mx_target t[2];
	struct dns_mx_list list;

	(void)state;
	assert_int_equal(order(r, NREC(r), 1, t, 2, &list), DNS_MX_OK);
	assert_int_equal(list.n, 2);
	assert_string_equal(t[0].host, "a");
	assert_string_equal(t[1].host, "b");
	assert_true(list.truncated);
}

/* Issue 8 item 16, RFC 5321 §5.1: 40 MX hosts of equal preference and
 * room for 16.  The cut must come after the randomisation: over many
 * seeds each of the 40 is chosen (about 16/40 of the time), not only the
 * first 16 of the answer.  More preferred hosts are always kept, first;
 * less preferred ones never displace an equal-preference one. */
#define WIDE 40
#define WIDE_CAP 16
#define WIDE_RUNS 2000
static void test_truncated_after_randomising(void **state)
{
	static char names[WIDE + 3][16];
	struct dns_mx_record r[WIDE + 3];
	size_t n = 0;
	r[n++] = (struct dns_mx_record)REC(20, "late.example");
	for (size_t i = 0; i < WIDE; i++) {
		snprintf(names[i], sizeof(names[i]), "mx%02zu.example", i);
		r[n++] = (struct dns_mx_record)REC(10, names[i]);
	}
	r[n++] = (struct dns_mx_record)REC(5, "first.example");
	/* also at 5, listed at 30 first: kept once, at 5 */
	r[n++] = (struct dns_mx_record)REC(30, "Second.example.");
	struct dns_mx_record all[WIDE + 4];
	memcpy(all, r, sizeof(r));
	all[n++] = (struct dns_mx_record)REC(5, "second.example");
	unsigned chosen[WIDE] = { 0 };
	(void)state;
	for (uint64_t seed = 1; seed <= WIDE_RUNS; seed++) {
		struct dns_mx_target t[WIDE_CAP];
		struct dns_mx_list list;
		assert_int_equal(order(all, n, seed, t, WIDE_CAP, &list), DNS_MX_OK);
		assert_int_equal(list.n, WIDE_CAP);
		assert_true(list.truncated);
		assert_int_equal(t[0].preference, 5);
		assert_int_equal(t[1].preference, 5);
		assert_true(strcasecmp(t[0].host, "first.example") == 0 ||
		            strcasecmp(t[1].host, "first.example") == 0);
		bool seen[WIDE] = { false };
		for (size_t i = 2; i < WIDE_CAP; i++) {
			assert_int_equal(t[i].preference, 10);
			unsigned k = (unsigned)((t[i].host[2] - '0') * 10 + (t[i].host[3] - '0'));
			assert_true(k < WIDE);
			assert_false(seen[k]);   /* each host once */
			seen[k] = true;
			chosen[k]++;
		}
	}
	/* 14 of the 40 equal ones per run: 700 expected each. */
	for (size_t k = 0; k < WIDE; k++) {
		if (chosen[k] < 500 || chosen[k] > 900)
			fail_msg("mx%02zu chosen %u times in %d runs (700 expected)", k, chosen[k],
			         WIDE_RUNS);
	}
}

/* The most records the caller gives (DNS_MX_RECORDS_MAX), each host
 * listed twice, in two preferences: the most preferred 16 are taken, each
 * host once.  (Also shows the quadratic work stays small: this runs in
 * milliseconds.) */
static void test_records_max(void **state)
{
	static char names[DNS_MX_RECORDS_MAX / 2][16];
	static struct dns_mx_record r[DNS_MX_RECORDS_MAX];
	for (size_t i = 0; i < DNS_MX_RECORDS_MAX / 2; i++) {
		snprintf(names[i], sizeof(names[i]), "h%03zu.example", i);
		r[i] = (struct dns_mx_record)REC(i % 2 ? 20 : 10, names[i]);
		r[DNS_MX_RECORDS_MAX / 2 + i] = (struct dns_mx_record)REC(30, names[i]);
	}
	struct dns_mx_target t[WIDE_CAP];
	struct dns_mx_list list;
	(void)state;
	assert_int_equal(order(r, DNS_MX_RECORDS_MAX, 7, t, WIDE_CAP, &list), DNS_MX_OK);
	assert_int_equal(list.n, WIDE_CAP);
	assert_true(list.truncated);
	for (size_t i = 0; i < WIDE_CAP; i++) {
		assert_int_equal(t[i].preference, 10);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(t[i].host, t[j].host);
	}
}

/* Internationalised domains in their A-label form (issue 8 item 19):
 * RFC 5890 A-labels for DNS and the envelope; UTS #46 non-transitional
 * mapping (case folded, "ß" kept as itself), NFC first. */
static void test_domain_to_ascii(void **state)
{
	static const struct {
		const char *in;
		const char *out;   /* NULL: refused */
	} cases[] = {
		{ "example.com", "example.com" },
		{ "EXAMPLE.Com", "example.com" },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
		{ "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
		{ "B\xc3\x9c" "CHER.Example", "xn--bcher-kva.example" },
		/* u + combining diaeresis (NFD) is the same name */
		{ "bu\xcc\x88" "cher.example", "xn--bcher-kva.example" },
		{ "\xc3\x9f.example", "xn--zca.example" },
		{ "\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
		  "xn--r8jz45g.xn--zckzah" },
		{ "b\xfc" "cher.example", NULL },              /* Latin-1, not UTF-8 */
		{ "a\xe2\x80\x8b" "b.example", "ab.example" }, /* UTS #46 ignores U+200B */
		{ "\xc3\xbc\xc2\x85.example", NULL },           /* a C1 control */
		{ "\xc3\xbc..example", NULL },                  /* an empty label */
		{ "\xe2\x98\x83.example", NULL },    /* a symbol: IDNA2008 disallows it */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[300], err[200] = "";
		bool ok = dns_domain_to_ascii(cases[i].in, out, sizeof(out), err, sizeof(err));
		if (ok != (cases[i].out != NULL) || (ok && strcmp(out, cases[i].out) != 0))
			fail_msg("case %zu: %s -> %s (%s)", i, cases[i].in, ok ? out : "refused", err);
		if (!ok)
			assert_true(err[0] != '\0');
	}
	/* Too long for the caller's room: refused, never cut. */
	char small[8], err[200];
	assert_false(dns_domain_to_ascii("b\xc3\xbc" "cher.example", small, sizeof(small), err,
	                                 sizeof(err)));
	assert_false(dns_domain_to_ascii("example.com", small, sizeof(small), err, sizeof(err)));
}

#define K_NAME DNS_DESTINATION_NAME
#define K_V4 DNS_DESTINATION_IPV4
#define K_V6 DNS_DESTINATION_IPV6
#define K_BAD DNS_DESTINATION_INVALID

struct literal_case {
	const char *in;
	enum dns_destination_kind kind;
	bool unbracketed;
	const char *ip;  /* the address, as inet_pton reads it, for IPV4/IPV6 */
};

static const struct literal_case literal_cases[] = {
	{ "[192.0.2.1]", K_V4, false, "192.0.2.1" },
	{ "[0.0.0.0]", K_V4, false, "0.0.0.0" },
	{ "[255.255.255.255]", K_V4, false, "255.255.255.255" },
	{ "[10.0.0.10]", K_V4, false, "10.0.0.10" },
	{ "192.0.2.1", K_V4, true, "192.0.2.1" },
	{ "[IPv6:2001:db8::1]", K_V6, false, "2001:db8::1" },
	{ "[ipv6:2001:DB8::1]", K_V6, false, "2001:db8::1" },
	{ "[IPV6:2001:db8:0:0:0:0:0:1]", K_V6, false, "2001:db8::1" },
	{ "[IPv6:::1]", K_V6, false, "::1" },
	{ "[IPv6:2001:db8::192.0.2.1]", K_V6, false, "2001:db8::c000:201" },
	{ "2001:db8::1", K_V6, true, "2001:db8::1" },
	{ "::1", K_V6, true, "::1" },
	/* IPv4-mapped: the IPv4 address, one spelling for one address */
	{ "[IPv6:::ffff:192.0.2.1]", K_V4, false, "192.0.2.1" },
	{ "[IPv6:::FFFF:c000:0201]", K_V4, false, "192.0.2.1" },
	{ "::ffff:192.0.2.1", K_V4, true, "192.0.2.1" },
	/* names */
	{ "example.com", K_NAME, false, NULL },
	{ "EXAMPLE.com", K_NAME, false, NULL },
	{ "1.2.3.example", K_NAME, false, NULL },
	{ "localhost", K_NAME, false, NULL },
	/* invalid literals */
	{ "[256.0.0.1]", K_BAD, false, NULL },
	{ "[01.2.3.4]", K_BAD, false, NULL },
	{ "[192.168.001.1]", K_BAD, false, NULL },
	{ "[192.0.2.00]", K_BAD, false, NULL },
	{ "[1.2.3]", K_BAD, false, NULL },
	{ "[1.2.3.4.5]", K_BAD, false, NULL },
	{ "[1.2.3.1000]", K_BAD, false, NULL },
	{ "[ 192.0.2.1]", K_BAD, false, NULL },
	{ "[192.0.2.1 ]", K_BAD, false, NULL },
	{ "[192.0.2.1", K_BAD, false, NULL },
	{ "192.0.2.1]", K_BAD, false, NULL },
	{ "[]", K_BAD, false, NULL },
	{ "[", K_BAD, false, NULL },
	{ "[IPv6:]", K_BAD, false, NULL },
	{ "[IPv6:192.0.2.1]", K_BAD, false, NULL },
	{ "[IPv6:2001:db8::g]", K_BAD, false, NULL },
	{ "[IPv6:fe80::1%eth0]", K_BAD, false, NULL },
	{ "[IPv6:1:2:3:4:5:6:7:8:9]", K_BAD, false, NULL },
	{ "[IPv6:[::1]]", K_BAD, false, NULL },
	{ "[IPv6 :::1]", K_BAD, false, NULL },
	/* IPv6 without its tag is General-address-literal syntax */
	{ "[2001:db8::1]", K_BAD, false, NULL },
	/* General-address-literal: no registered tag but IPv6 */
	{ "[x-foo:bar]", K_BAD, false, NULL },
	{ "[IPv7:::1]", K_BAD, false, NULL },
	/* unbracketed: all-numeric or with ':' must be an address */
	{ "01.2.3.4", K_BAD, false, NULL },
	{ "1.2.3", K_BAD, false, NULL },
	{ "192.0.2.1.", K_BAD, false, NULL },
	{ "2001:db8::zz", K_BAD, false, NULL },
	{ "IPv6:::1", K_BAD, false, NULL },
	{ "exa[mple.com", K_BAD, false, NULL },
	{ "", K_BAD, false, NULL },
};

static void test_literal_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof literal_cases / sizeof literal_cases[0]; i++) {
		const struct literal_case *c = &literal_cases[i];
		struct dns_destination d;
		unsigned char want[16];
		enum dns_destination_kind kind = dns_destination_classify(c->in, &d);

		if (kind != c->kind || d.kind != c->kind)
			fail_msg("\"%s\": kind %d, want %d", c->in, (int)kind, (int)c->kind);
		if (d.unbracketed != c->unbracketed)
			fail_msg("\"%s\": unbracketed %d", c->in, (int)d.unbracketed);
		if (c->kind == K_V4) {
			assert_int_equal(inet_pton(AF_INET, c->ip, want), 1);
			assert_memory_equal(d.ip, want, 4);
		} else if (c->kind == K_V6) {
			assert_int_equal(inet_pton(AF_INET6, c->ip, want), 1);
			assert_memory_equal(d.ip, want, 16);
		}
	}
}

/* RFC 5321 §4.5.3.1.2: at most 255 octets. */
static void test_literal_bounds(void **state)
{
	char name[300];
	struct dns_destination d;

	(void)state;
	assert_int_equal(dns_destination_classify(NULL, &d), K_BAD);
	memset(name, 'a', sizeof name);
	name[255] = '\0';
	assert_int_equal(dns_destination_classify(name, &d), K_NAME);
	name[255] = 'a';
	name[256] = '\0';
	assert_int_equal(dns_destination_classify(name, &d), K_BAD);
	/* a long bracketed literal is refused, not copied */
	name[0] = '[';
	memcpy(name + 1, "IPv6:", 5);
	memset(name + 6, '1', 200);
	name[206] = ']';
	name[207] = '\0';
	assert_int_equal(dns_destination_classify(name, &d), K_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_by_preference),
		cmocka_unit_test(test_equal_preferences_permutations),
		cmocka_unit_test(test_bad_random_stays_in_run),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_null_mx_alone),
		cmocka_unit_test(test_null_mx_mixed),
		cmocka_unit_test(test_implicit_and_failures),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_truncated_after_randomising),
		cmocka_unit_test(test_records_max),
		cmocka_unit_test(test_domain_to_ascii),
		cmocka_unit_test(test_literal_table),
		cmocka_unit_test(test_literal_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
