/* The txn id map: inserts, finds, removes and pops through growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "store/txnmap.h"

#define N 5000

static void test_insert_find_remove(void **state)
{
	struct txnmap m;
	struct txnmap_node *nodes = calloc(N, sizeof(*nodes));
	txnmap_init(&m);
	assert_null(txnmap_find(&m, 1));
	assert_null(txnmap_pop(&m));
	for (size_t i = 0; i < N; i++) {
		nodes[i].id = i + 1;
		assert_int_equal(txnmap_insert(&m, &nodes[i]), 0);
	}
	assert_int_equal(m.count, N);
	for (size_t i = 0; i < N; i++)
		assert_ptr_equal(txnmap_find(&m, i + 1), &nodes[i]);
	assert_null(txnmap_find(&m, N + 1));
	assert_null(txnmap_find(&m, 0));
	/* Remove the even ones. */
	for (size_t i = 1; i < N; i += 2)
		txnmap_remove(&m, &nodes[i]);
	assert_int_equal(m.count, N / 2);
	for (size_t i = 0; i < N; i++) {
		if (i % 2)
			assert_null(txnmap_find(&m, i + 1));
		else
			assert_ptr_equal(txnmap_find(&m, i + 1), &nodes[i]);
	}
	/* Pop the rest, with an insert in the middle of popping. */
	size_t popped = 0;
	struct txnmap_node *n;
	bool reinserted = false;
	while ((n = txnmap_pop(&m)) != NULL) {
		assert_true(n->id % 2 == 1 || n == &nodes[1]);
		popped++;
		if (!reinserted && popped == 100) {
			reinserted = true;
			assert_int_equal(txnmap_insert(&m, &nodes[1]), 0);
		}
	}
	assert_int_equal(popped, N / 2 + 1);
	assert_int_equal(m.count, 0);
	txnmap_free(&m);
	free(nodes);
}

static void test_large_ids(void **state)
{
	struct txnmap m;
	struct txnmap_node a = { .id = UINT64_MAX }, b = { .id = UINT64_C(1) << 32 }, c = { .id = 0 };
	txnmap_init(&m);
	assert_int_equal(txnmap_insert(&m, &a), 0);
	assert_int_equal(txnmap_insert(&m, &b), 0);
	assert_int_equal(txnmap_insert(&m, &c), 0);
	assert_ptr_equal(txnmap_find(&m, UINT64_MAX), &a);
	assert_ptr_equal(txnmap_find(&m, UINT64_C(1) << 32), &b);
	assert_ptr_equal(txnmap_find(&m, 0), &c);
	txnmap_remove(&m, &b);
	assert_null(txnmap_find(&m, UINT64_C(1) << 32));
	txnmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_large_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
