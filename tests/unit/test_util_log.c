/* Unit tests for log_quote (src/util/log.c): a log value from the network
 * can neither forge a field or a line nor act on the terminal that shows
 * the log (issue 8 item 14: C1 controls, raw or in UTF-8, and broken
 * UTF-8 were copied as they came). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/log.h"

#define S(lit) lit, sizeof(lit) - 1

struct quote_case {
	const char *in;
	size_t inlen;
	size_t dstlen;
	const char *out;
};

static const struct quote_case cases[] = {
	{ S("client.test"), 64, "client.test" },
	{ S(""), 64, "\"\"" },
	{ S("a b"), 64, "\"a b\"" },
	{ S("k=v"), 64, "\"k=v\"" },
	{ S("say \"x\\\""), 64, "\"say \\\"x\\\\\\\"\"" },
	{ S("a\r\nlevel=error"), 64, "\"a\\x0d\\x0alevel=error\"" },
	{ S("\x1b[2J\x7f"), 64, "\"\\x1b[2J\\x7f\"" },
	{ S("\x9b" "31m"), 64, "\"\\x9b31m\"" },
	{ S("\xc2\x9b" "31m"), 64, "\"\\u009b31m\"" },
	{ S("\xc0\xaf\xed\xa0\x80"), 64, "\"\\xc0\\xaf\\xed\\xa0\\x80\"" },
	{ S("b\xc3\xbc" "cher"), 64, "\"b\xc3\xbc" "cher\"" },
	{ S("\xe9\x82\xae\xe4\xbb\xb6"), 64, "\"\xe9\x82\xae\xe4\xbb\xb6\"" },
	/* truncation: plain, and quoted between units */
	{ S("abcdefghijkl"), 8, "abcd..." },
	{ S("a b c d e f"), 10, "\"a b ...\"" },
	{ S("\x01\x02\x03"), 12, "\"\\x01...\"" },
	{ S("\xe9\x82\xae\xe4\xbb\xb6"), 11, "\"\xe9\x82\xae...\"" },
};

static void test_quote_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dst[128];
		assert_true(cases[i].dstlen <= sizeof(dst));
		const char *r = log_quote(dst, cases[i].dstlen, cases[i].in, cases[i].inlen);
		if (strcmp(r, cases[i].out) != 0)
			print_error("case %zu\n", i);
		assert_string_equal(r, cases[i].out);
		assert_true(strlen(r) < cases[i].dstlen);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
