/* Unit tests for the bounded buffer (src/util/buf.c): the maximum holds,
 * a refused append leaves the buffer as it was, and an unbounded buffer
 * (max SIZE_MAX) works: max + 1 once wrapped to 0 and gave a 1-octet
 * allocation that the next append overflowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

static void test_max_holds(void **state)
{
	struct buf b;
	buf_init(&b, 5);
	assert_int_equal(buf_append_str(&b, "abc"), 0);
	assert_int_equal(buf_append_str(&b, "def"), -1);
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	assert_int_equal(buf_append_str(&b, "de"), 0);
	assert_string_equal(b.data, "abcde");
	assert_int_equal(buf_printf(&b, "%s", "x"), -1);
	assert_string_equal(b.data, "abcde");
	buf_free(&b);
}

static void test_unbounded(void **state)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	char chunk[1000];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(buf_printf(&b, "%d", 42), 0);
	assert_string_equal(b.data + 100000, "42");
	buf_free(&b);
}

static void test_release(void **state)
{
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_append_str(&b, "hello"), 0);
	size_t len = 0;
	char *p = buf_release(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal(p, "hello");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
	assert_int_equal(buf_append_str(&b, "again"), 0);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_holds),
		cmocka_unit_test(test_unbounded),
		cmocka_unit_test(test_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
