/* Unit tests for the loop signs in a header section (src/msg/loop.c):
 * Received: counted in the header section only, names without case,
 * folded fields, LF and CRLF; Delivered-To: compared without case and
 * surrounding white space, in the header section only.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the messages below as
 * seeds for tests/fuzz/fuzz_msg_loop.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/loop.h"

static size_t received(const char *s)
{
	return msg_loop_received_count(s, strlen(s));
}

static bool delivered_to(const char *s, const char *addr)
{
	return msg_loop_delivered_to(s, strlen(s), addr);
}

static void test_received_count(void **state)
{
	assert_int_equal(received(""), 0);
	assert_int_equal(received("Subject: x\r\n\r\nReceived: in the body\r\n"), 0);
	assert_int_equal(received("Received: a\r\n\tfolded; b\r\nreceived: c\r\nRECEIVED:d\r\n"
	                          "X-Received: no\r\nReceivedx: no\r\n\r\nReceived: body\r\n"),
	                 3);
	assert_int_equal(received("Received: a\nReceived: b\n\nReceived: c\n"), 2);
	/* No empty line: the whole text is a header section. */
	assert_int_equal(received("Received: a\r\nReceived: b"), 2);
	/* A line without a colon is no field, and does not end the section. */
	assert_int_equal(received("garbage line\r\nReceived: a\r\n\r\n"), 1);
}

static void test_delivered_to(void **state)
{
	const char *m = "Return-Path: <a@b.test>\r\nDelivered-To: Root@Host.Example\r\n"
	                "delivered-to:\r\n  bob@host.example  \r\nSubject: x\r\n\r\n"
	                "Delivered-To: carol@host.example\r\n";
	assert_true(delivered_to(m, "root@host.example"));
	assert_true(delivered_to(m, "bob@host.example"));   /* folded */
	assert_false(delivered_to(m, "carol@host.example"));   /* in the body */
	assert_false(delivered_to(m, "root@host.exampl"));
	assert_false(delivered_to(m, "oot@host.example"));
	assert_false(delivered_to("Subject: none\r\n\r\n", "root@host.example"));
	assert_true(delivered_to("Delivered-To: root@h\n\n", "root@h"));
}

static const char *const seeds[] = {
	"Received: a\r\n\tfolded; b\r\nreceived: c\r\n\r\nReceived: body\r\n",
	"Delivered-To: Root@Host.Example\r\ndelivered-to:\r\n  bob@host.example  \r\n\r\n",
	"garbage line\r\nReceived: a\r\n\r\n",
	"Delivered-To: root@h\n\n",
};

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/loop-%zu", dir, i);
		FILE *f = fopen(path, "wb");
		if (!f)
			return -1;
		fwrite(seeds[i], 1, strlen(seeds[i]), f);
		if (fclose(f) != 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_received_count),
		cmocka_unit_test(test_delivered_to),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
