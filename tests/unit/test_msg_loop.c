/* Unit tests for the loop signs in a header section (src/msg/loop.c):
 * Received: counted in the header section only, names without case,
 * folded fields, LF and CRLF; Delivered-To: compared without case and
 * surrounding white space, in the header section only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_received_count),
		cmocka_unit_test(test_delivered_to),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
