/* The per-client failure delay (auth/delay.c): the schedule 1, 2, 4, 8,
 * 16, 16 s; keys apart; forgetting 15 minutes after the last failure and
 * at a success; the bound on keys with the oldest evicted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/delay.h"

static void key_of(uint8_t key[AUTH_WIRE_KEY_LEN], unsigned n)
{
	memset(key, 0, AUTH_WIRE_KEY_LEN);
	key[0] = 4;
	key[1] = 10;
	key[2] = (uint8_t)(n >> 16);
	key[3] = (uint8_t)(n >> 8);
	key[4] = (uint8_t)n;
}

static void test_schedule(void **state)
{
	struct auth_delay *d = auth_delay_new(AUTH_DELAY_KEYS_MAX, 0);
	assert_non_null(d);
	uint8_t k[AUTH_WIRE_KEY_LEN];
	key_of(k, 1);
	const unsigned want[] = { 1, 2, 4, 8, 16, 16, 16 };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(auth_delay_failure(d, 1000 + (int64_t)i, k), want[i]);
	/* Many more stay at the cap (no overflow of the count). */
	for (int i = 0; i < 100000; i++)
		assert_int_equal(auth_delay_failure(d, 1010, k), 16);
	assert_int_equal(auth_delay_count(d, 1010), 1);
	auth_delay_free(d);
}

static void test_keys_apart(void **state)
{
	struct auth_delay *d = auth_delay_new(16, 0);
	uint8_t a[AUTH_WIRE_KEY_LEN], b[AUTH_WIRE_KEY_LEN];
	key_of(a, 1);
	key_of(b, 2);
	assert_int_equal(auth_delay_failure(d, 10, a), 1);
	assert_int_equal(auth_delay_failure(d, 10, a), 2);
	assert_int_equal(auth_delay_failure(d, 10, a), 4);
	assert_int_equal(auth_delay_failure(d, 10, b), 1);
	assert_int_equal(auth_delay_failure(d, 11, a), 8);
	assert_int_equal(auth_delay_failure(d, 11, b), 2);
	auth_delay_free(d);
}

static void test_forgotten_after_last_failure(void **state)
{
	struct auth_delay *d = auth_delay_new(16, 0);
	uint8_t k[AUTH_WIRE_KEY_LEN];
	key_of(k, 1);
	assert_int_equal(auth_delay_failure(d, 0, k), 1);
	assert_int_equal(auth_delay_failure(d, 600, k), 2);
	/* 15 minutes after the first failure but not the last: remembered. */
	assert_int_equal(auth_delay_failure(d, 900 + 599, k), 4);
	assert_int_equal(auth_delay_count(d, 1499 + AUTH_DELAY_FORGET_S - 1), 1);
	assert_int_equal(auth_delay_count(d, 1499 + AUTH_DELAY_FORGET_S), 0);
	assert_int_equal(auth_delay_failure(d, 1499 + AUTH_DELAY_FORGET_S, k), 1);
	auth_delay_free(d);
}

static void test_success_clears(void **state)
{
	struct auth_delay *d = auth_delay_new(16, 0);
	uint8_t a[AUTH_WIRE_KEY_LEN], b[AUTH_WIRE_KEY_LEN];
	key_of(a, 1);
	key_of(b, 2);
	assert_int_equal(auth_delay_failure(d, 5, a), 1);
	assert_int_equal(auth_delay_failure(d, 5, a), 2);
	assert_int_equal(auth_delay_failure(d, 5, b), 1);
	auth_delay_success(d, a);
	assert_int_equal(auth_delay_count(d, 5), 1);
	assert_int_equal(auth_delay_failure(d, 6, a), 1);
	/* Only a's: b still counts. */
	assert_int_equal(auth_delay_failure(d, 6, b), 2);
	/* A success from a key never seen changes nothing. */
	uint8_t c[AUTH_WIRE_KEY_LEN];
	key_of(c, 3);
	auth_delay_success(d, c);
	assert_int_equal(auth_delay_count(d, 6), 2);
	auth_delay_free(d);
}

static void test_bounded_evicts_oldest(void **state)
{
	const size_t max = 1000;
	struct auth_delay *d = auth_delay_new(max, 42);
	uint8_t k[AUTH_WIRE_KEY_LEN];
	/* Key 0 fails twice early; then max - 1 more keys arrive. */
	key_of(k, 0);
	assert_int_equal(auth_delay_failure(d, 0, k), 1);
	assert_int_equal(auth_delay_failure(d, 1, k), 2);
	for (unsigned i = 1; i < max; i++) {
		key_of(k, i);
		assert_int_equal(auth_delay_failure(d, 2, k), 1);
	}
	assert_int_equal(auth_delay_count(d, 2), max);
	/* Key 1 fails again: now the newest, it must survive eviction. */
	key_of(k, 1);
	assert_int_equal(auth_delay_failure(d, 2 , k), 2);
	/* A new key evicts the oldest last failure: key 0. */
	key_of(k, 100000);
	assert_int_equal(auth_delay_failure(d, 3 , k), 1);
	assert_int_equal(auth_delay_count(d, 3), max);
	key_of(k, 0);
	/* Forgotten by eviction: a first failure again (evicting key 2). */
	assert_int_equal(auth_delay_failure(d, 4 , k), 1);
	key_of(k, 1);
	assert_int_equal(auth_delay_failure(d, 4 , k), 4);
	key_of(k, 2);
	assert_int_equal(auth_delay_failure(d, 5 , k), 1);
	/* A flood of new networks never grows the table. */
	for (unsigned i = 200000; i < 200000 + 5000; i++) {
		key_of(k, i);
		auth_delay_failure(d, 10 , k);
	}
	assert_int_equal(auth_delay_count(d, 10), max);
	auth_delay_free(d);
}

static void test_clock_going_back(void **state)
{
	struct auth_delay *d = auth_delay_new(4, 0);
	uint8_t a[AUTH_WIRE_KEY_LEN], b[AUTH_WIRE_KEY_LEN];
	key_of(a, 1);
	key_of(b, 2);
	assert_int_equal(auth_delay_failure(d, 100, a), 1);
	assert_int_equal(auth_delay_failure(d, 50, b), 1);
	/* b is not dropped before a, nor a forgotten early. */
	assert_int_equal(auth_delay_count(d, 100 + AUTH_DELAY_FORGET_S - 1), 2);
	assert_int_equal(auth_delay_count(d, 100 + AUTH_DELAY_FORGET_S), 0);
	auth_delay_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_keys_apart),
		cmocka_unit_test(test_forgotten_after_last_failure),
		cmocka_unit_test(test_success_clears),
		cmocka_unit_test(test_bounded_evicts_oldest),
		cmocka_unit_test(test_clock_going_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
