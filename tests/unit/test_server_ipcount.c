/* Connections per client network (server/ipcount.c): IPv4 counted by /32
 * and IPv6 by /64 by default, and a table whose size follows the live
 * entries however many distinct addresses came and went. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/ipcount.h"

static struct sockaddr_storage v4(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	return ss;
}

/* The i-th distinct IPv6 /64 (2001:db8::/32 and beyond), host part varied
 * too so that only the prefix makes addresses equal. */
static struct sockaddr_storage v6_net(uint32_t i)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	sin6->sin6_family = AF_INET6;
	unsigned char *a = sin6->sin6_addr.s6_addr;
	a[0] = 0x20;
	a[1] = 0x01;
	a[4] = (unsigned char)(i >> 24);
	a[5] = (unsigned char)(i >> 16);
	a[6] = (unsigned char)(i >> 8);
	a[7] = (unsigned char)i;
	a[15] = (unsigned char)(i * 7 + 1);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_ipv6_counted_by_64(void **state)
{
	struct ipcount t;
	ipcount_init(&t, 32, 64);
	struct sockaddr_storage a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"),
	                        other = v6("2001:db8:1:3::1");
	assert_int_equal(ipcount_add(&t, SA(a)), 1);
	/* Another host of the same /64 is the same client. */
	assert_int_equal(ipcount_add(&t, SA(b)), 2);
	assert_int_equal(ipcount_add(&t, SA(other)), 1);
	ipcount_remove(&t, SA(a));
	assert_int_equal(ipcount_add(&t, SA(b)), 2);
	ipcount_remove(&t, SA(b));
	ipcount_remove(&t, SA(b));
	ipcount_remove(&t, SA(other));
	assert_int_equal(t.live, 0);
	ipcount_free(&t);
}

static void test_ipv4_and_mapped(void **state)
{
	struct ipcount t;
	ipcount_init(&t, 32, 64);
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2"),
	                        mapped = v6("::ffff:192.0.2.1");
	assert_int_equal(ipcount_add(&t, SA(a)), 1);
	assert_int_equal(ipcount_add(&t, SA(b)), 1);
	/* An IPv4-mapped address is its IPv4 address, not an IPv6 /64
	 * (which would put every IPv4 client into ::ffff:0:0/64). */
	assert_int_equal(ipcount_add(&t, SA(mapped)), 2);
	ipcount_free(&t);

	/* Prefixes are settings: IPv4 by /24, IPv6 by /128. */
	ipcount_init(&t, 24, 128);
	struct sockaddr_storage c = v4("192.0.2.200"), d = v4("192.0.3.1");
	assert_int_equal(ipcount_add(&t, SA(a)), 1);
	assert_int_equal(ipcount_add(&t, SA(c)), 2);
	assert_int_equal(ipcount_add(&t, SA(d)), 1);
	struct sockaddr_storage e = v6("2001:db8::1"), f = v6("2001:db8::2");
	assert_int_equal(ipcount_add(&t, SA(e)), 1);
	assert_int_equal(ipcount_add(&t, SA(f)), 1);
	ipcount_free(&t);

	/* A prefix that is not a multiple of 8 masks inside a byte. */
	ipcount_init(&t, 30, 60);
	struct sockaddr_storage g = v4("192.0.2.3"), h = v4("192.0.2.4");
	assert_int_equal(ipcount_add(&t, SA(a)), 1);
	assert_int_equal(ipcount_add(&t, SA(g)), 2);
	assert_int_equal(ipcount_add(&t, SA(h)), 1);
	struct sockaddr_storage i = v6("2001:db8:0:f::1"), j = v6("2001:db8:0:10::1");
	assert_int_equal(ipcount_add(&t, SA(i)), 1);
	assert_int_equal(ipcount_add(&t, SA(j)), 1);
	struct sockaddr_storage k = v6("2001:db8:0:1::1");
	assert_int_equal(ipcount_add(&t, SA(k)), 2);
	ipcount_free(&t);
}

/* Issue 8: after millions of distinct addresses had come and gone the
 * table kept a slot for each.  Its size must follow the live entries,
 * with tombstones cleaned, and without a rehash on every operation. */
static void test_size_follows_live_entries(void **state)
{
	enum { TOTAL = 1000000, WINDOW = 100 };
	struct ipcount t;
	ipcount_init(&t, 32, 64);
	size_t max_cap = 0;
	for (uint32_t i = 0; i < TOTAL; i++) {
		struct sockaddr_storage a = v6_net(i);
		assert_int_equal(ipcount_add(&t, SA(a)), 1);
		if (i >= WINDOW) {
			struct sockaddr_storage old = v6_net(i - WINDOW);
			ipcount_remove(&t, SA(old));
		}
		if (t.cap > max_cap)
			max_cap = t.cap;
	}
	assert_int_equal(t.live, WINDOW);
	/* 100 live entries fit in 256 slots at a load under 1/2. */
	assert_true(max_cap <= 512);
	/* A rehash clears ~cap/4 tombstones at least: far fewer rehashes
	 * than operations. */
	assert_true(t.rehashes < TOTAL / 16);
	for (uint32_t i = TOTAL - WINDOW; i < TOTAL; i++) {
		struct sockaddr_storage a = v6_net(i);
		ipcount_remove(&t, SA(a));
	}
	assert_int_equal(t.live, 0);
	assert_true(t.cap <= 64);

	/* A burst of 100,000 live clients, then all gone: the table grows
	 * with them and shrinks back. */
	for (uint32_t i = 0; i < 100000; i++) {
		struct sockaddr_storage a = v6_net(i);
		assert_int_equal(ipcount_add(&t, SA(a)), 1);
	}
	assert_true(t.cap >= 200000 && t.cap <= 524288);
	unsigned long before = t.rehashes;
	for (uint32_t i = 0; i < 100000; i++) {
		struct sockaddr_storage a = v6_net(i);
		ipcount_remove(&t, SA(a));
	}
	assert_true(t.cap <= 64);
	/* Shrinking halves at least each time: a few rehashes, not one per
	 * removal. */
	assert_true(t.rehashes - before < 20);
	ipcount_free(&t);
}

/* One address coming and going at a size boundary must not rehash each
 * time (the grow and shrink thresholds are far apart). */
static void test_no_rehash_storm_at_boundary(void **state)
{
	struct ipcount t;
	ipcount_init(&t, 32, 64);
	uint32_t n = 0;
	/* Fill until the table has just grown. */
	size_t cap = 0;
	do {
		cap = t.cap;
		struct sockaddr_storage a = v6_net(n++);
		ipcount_add(&t, SA(a));
	} while (t.cap == cap || cap == 0);
	unsigned long before = t.rehashes;
	for (int round = 0; round < 10000; round++) {
		struct sockaddr_storage a = v6_net(n - 1);
		ipcount_remove(&t, SA(a));
		ipcount_add(&t, SA(a));
		/* And a new address each round, gone again at once (what the
		 * accept path's look-up used to do). */
		struct sockaddr_storage b = v6_net(5000000 + (uint32_t)round);
		ipcount_add(&t, SA(b));
		ipcount_remove(&t, SA(b));
	}
	/* Amortised O(1): the slots moved by rehashing stay within a small
	 * multiple of the 40,000 operations (a storm would rehash the whole
	 * table on every one of them). */
	assert_true((t.rehashes - before) * t.cap <= 4 * 40000);
	assert_true(t.cap <= 4 * cap);
	assert_int_equal(t.live, n);
	ipcount_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv6_counted_by_64),
		cmocka_unit_test(test_ipv4_and_mapped),
		cmocka_unit_test(test_size_follows_live_entries),
		cmocka_unit_test(test_no_rehash_storm_at_boundary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
