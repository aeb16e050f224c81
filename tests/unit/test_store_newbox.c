/* Limits on new Maildirs (store/newbox.c) and the smtp process's memory of
 * mailboxes that exist (store/known.c): pure, the time is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "store/known.h"
#include "store/newbox.h"

static void key4(uint8_t key[NEWBOX_KEY_LEN], const char *ip)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	newbox_client_key((struct sockaddr *)&sin, key);
}

static void key6(uint8_t key[NEWBOX_KEY_LEN], const char *ip)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	newbox_client_key((struct sockaddr *)&sin6, key);
}

static enum store_mailbox_answer ask(struct newbox *nb, int64_t now, const uint8_t *key,
                                     const char *name)
{
	return newbox_decide(nb, now, key, name, strlen(name));
}

static void test_per_client_and_total(void **state)
{
	struct newbox nb;
	newbox_init(&nb, 3, 5);
	uint8_t a[NEWBOX_KEY_LEN], b[NEWBOX_KEY_LEN], c[NEWBOX_KEY_LEN];
	key4(a, "192.0.2.1");
	key4(b, "192.0.2.2");
	key4(c, "192.0.2.3");
	assert_int_equal(ask(&nb, 100, a, "a1"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 100, a, "a2"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 101, a, "a3"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 101, a, "a4"), STORE_MAILBOX_LIMIT_CLIENT);
	/* Asking again for one granted: not counted twice, by anyone. */
	assert_int_equal(ask(&nb, 102, a, "a2"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 102, b, "a3"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 103, b, "b1"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 103, b, "b2"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 104, c, "c1"), STORE_MAILBOX_LIMIT_TOTAL);
	/* Names compare whole: a prefix is another mailbox. */
	assert_int_equal(ask(&nb, 104, a, "a"), STORE_MAILBOX_LIMIT_CLIENT);
	/* An hour after the first three, their grants are forgotten. */
	assert_int_equal(ask(&nb, 100 + NEWBOX_WINDOW_S - 1, c, "c1"), STORE_MAILBOX_LIMIT_TOTAL);
	assert_int_equal(ask(&nb, 100 + NEWBOX_WINDOW_S, c, "c1"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 101 + NEWBOX_WINDOW_S, a, "a4"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 101 + NEWBOX_WINDOW_S, a, "a5"), STORE_MAILBOX_GRANTED);
	assert_int_equal(ask(&nb, 101 + NEWBOX_WINDOW_S, a, "a6"), STORE_MAILBOX_LIMIT_TOTAL);
	newbox_free(&nb);
}

static void test_zero_and_many(void **state)
{
	struct newbox nb;
	uint8_t a[NEWBOX_KEY_LEN];
	key4(a, "192.0.2.1");
	newbox_init(&nb, 0, 200);
	assert_int_equal(ask(&nb, 1, a, "x"), STORE_MAILBOX_LIMIT_CLIENT);
	newbox_free(&nb);
	newbox_init(&nb, 20, 0);
	assert_int_equal(ask(&nb, 1, a, "x"), STORE_MAILBOX_LIMIT_TOTAL);
	newbox_free(&nb);
	/* Many grants over many windows: the array stays bounded and correct. */
	newbox_init(&nb, 1000, 1000);
	char name[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		assert_int_equal(ask(&nb, (int64_t)i * 10, a, name), STORE_MAILBOX_GRANTED);
	}
	assert_true(nb.count <= NEWBOX_WINDOW_S / 10 + 1);
	assert_true(nb.cap <= 4 * 1000);
	newbox_free(&nb);
}

static void test_client_key(void **state)
{
	uint8_t a[NEWBOX_KEY_LEN], b[NEWBOX_KEY_LEN];
	char text[64];
	key4(a, "192.0.2.1");
	key6(b, "::ffff:192.0.2.1");
	assert_memory_equal(a, b, NEWBOX_KEY_LEN);
	assert_string_equal(newbox_key_text(a, text, sizeof(text)), "192.0.2.1");
	/* One /64 is one client; another /64 another. */
	key6(a, "2001:db8:1:2::1");
	key6(b, "2001:db8:1:2:ffff:ffff:ffff:ffff");
	assert_memory_equal(a, b, NEWBOX_KEY_LEN);
	assert_string_equal(newbox_key_text(a, text, sizeof(text)), "2001:db8:1:2::/64");
	key6(b, "2001:db8:1:3::1");
	assert_memory_not_equal(a, b, NEWBOX_KEY_LEN);
	key4(b, "0.0.0.0");
	assert_memory_not_equal(a, b, NEWBOX_KEY_LEN);
}

static void test_known(void **state)
{
	struct known k;
	known_init(&k);
	assert_false(known_has(&k, "bob", 0));
	known_add(&k, "bob", 0);
	known_add(&k, "bob", 0);
	assert_int_equal(k.count, 1);
	assert_true(known_has(&k, "bob", KNOWN_TTL_S - 1));
	assert_false(known_has(&k, "bo", 1));
	assert_false(known_has(&k, "bob", KNOWN_TTL_S));
	assert_int_equal(k.count, 0);
	/* Adding refreshes. */
	known_add(&k, "ann", 0);
	known_add(&k, "ann", 100);
	assert_true(known_has(&k, "ann", KNOWN_TTL_S + 50));
	/* Full: forgotten, never more than KNOWN_MAX. */
	char name[32];
	for (int i = 0; i < KNOWN_MAX + 10; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		known_add(&k, name, 200);
		assert_true(k.count <= KNOWN_MAX);
	}
	assert_true(known_has(&k, name, 200));
	known_free(&k);
	assert_int_equal(k.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_client_and_total),
		cmocka_unit_test(test_zero_and_many),
		cmocka_unit_test(test_client_key),
		cmocka_unit_test(test_known),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
