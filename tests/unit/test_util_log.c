/* Unit tests for log_quote (src/util/log.c): a log value from the network
 * can neither forge a field or a line nor act on the terminal that shows
 * the log (issue 8 item 14: C1 controls, raw or in UTF-8, and broken
 * UTF-8 were copied as they came).  And log_defer: kept lines are written
 * together, in order, when asked (issue 13). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

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

static int kicks;

static void count_kick(void *arg)
{
	kicks++;
	assert_ptr_equal(arg, &kicks);
}

/* stderr becomes a pipe; returns what was written to it so far. */
static size_t drain_pipe(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

static void test_defer_writes_lines_together(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	log_set_nonblocking();           /* and the read end: */
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	log_init("test", LOG_INFO);
	char buf[4096];

	log_defer(count_kick, &kicks);
	log_event(LOG_INFO, "one", "n=%d", 1);
	log_event(LOG_INFO, "two", "n=%d", 2);
	assert_int_equal(kicks, 1);                  /* once, for the first kept line */
	assert_int_equal(drain_pipe(p[0], buf, sizeof(buf)), 0);   /* nothing written yet */
	log_write_pending();
	assert_true(drain_pipe(p[0], buf, sizeof(buf)) > 0);
	char *one = strstr(buf, "event=one n=1\n"), *two = strstr(buf, "event=two n=2\n");
	assert_non_null(one);
	assert_non_null(two);
	assert_true(one < two);
	log_event(LOG_INFO, "three", NULL);
	assert_int_equal(kicks, 2);                  /* kicked again after a write */
	log_defer(NULL, NULL);      /* what was kept is written, and each line from here on */
	drain_pipe(p[0], buf, sizeof(buf));
	assert_non_null(strstr(buf, "event=three"));
	log_event(LOG_INFO, "four", NULL);
	drain_pipe(p[0], buf, sizeof(buf));
	assert_non_null(strstr(buf, "event=four"));
	assert_int_equal(kicks, 2);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_table),
		cmocka_unit_test(test_defer_writes_lines_together),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
