/* The store's memory budget (store/memory.c): totals, the largest node,
 * the over-budget test at its edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/memory.h"

static void test_totals_and_largest(void **state)
{
	struct store_memory b;
	struct store_memory_node n[4] = { { 0 } };
	store_memory_init(&b, 1000000);
	assert_null(store_memory_largest(&b));
	store_memory_set(&b, &n[0], 1000);
	store_memory_set(&b, &n[1], 200000);
	store_memory_set(&b, &n[2], 40000);
	assert_int_equal(b.total, 241000);
	assert_ptr_equal(store_memory_largest(&b), &n[1]);
	/* Growing moves a node to its new class. */
	store_memory_set(&b, &n[2], 300000);
	assert_int_equal(b.total, 501000);
	assert_ptr_equal(store_memory_largest(&b), &n[2]);
	/* 0 takes it out; setting the same size twice changes nothing. */
	store_memory_set(&b, &n[2], 0);
	store_memory_set(&b, &n[2], 0);
	store_memory_set(&b, &n[1], 200000);
	assert_int_equal(b.total, 201000);
	assert_ptr_equal(store_memory_largest(&b), &n[1]);
	store_memory_set(&b, &n[1], 0);
	assert_ptr_equal(store_memory_largest(&b), &n[0]);
	store_memory_set(&b, &n[0], 0);
	assert_int_equal(b.total, 0);
	assert_null(store_memory_largest(&b));
}

static void test_many_in_one_class(void **state)
{
	struct store_memory b;
	struct store_memory_node n[50] = { { 0 } };
	store_memory_init(&b, 100);
	for (int i = 0; i < 50; i++)
		store_memory_set(&b, &n[i], 100 + (size_t)i);
	/* Removing from the middle, the head and the tail of one list. */
	store_memory_set(&b, &n[25], 0);
	store_memory_set(&b, &n[49], 0);
	store_memory_set(&b, &n[0], 0);
	size_t left = 0;
	for (int i = 0; i < 50; i++)
		left += n[i].bytes;
	assert_int_equal(b.total, left);
	int count = 0;
	for (struct store_memory_node *p = store_memory_largest(&b); p; p = p->next)
		count++;
	assert_int_equal(count, 47);
}

static void test_over(void **state)
{
	struct store_memory b;
	struct store_memory_node n = { 0 };
	store_memory_init(&b, 1000);
	assert_false(store_memory_over(&b, 1000));
	assert_true(store_memory_over(&b, 1001));
	assert_true(store_memory_over(&b, SIZE_MAX));
	store_memory_set(&b, &n, 600);
	assert_false(store_memory_over(&b, 400));
	assert_true(store_memory_over(&b, 401));
	assert_true(store_memory_over(&b, SIZE_MAX - 100));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals_and_largest),
		cmocka_unit_test(test_many_in_one_class),
		cmocka_unit_test(test_over),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
