/* Unit tests for Postfix's append_at_myorigin on header address fields
 * (src/msg/header_qualify.c): a table of field bodies as written and as
 * they must come out with the origin "o.example", and what cannot be read
 * safely left as written.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the inputs below as
 * seeds for tests/fuzz/fuzz_msg_qualify.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/address_list.h"

struct qualify_case {
	const char *in;
	const char *out;   /* NULL: unchanged */
	int result;
};

#define SAME(s) { s, NULL, MSG_QUALIFY_SAME }
#define BAD(s) { s, NULL, MSG_QUALIFY_UNREADABLE }
#define CHANGED(s, t) { s, t, MSG_QUALIFY_CHANGED }

static const struct qualify_case cases[] = {
	/* cron and mailx */
	CHANGED(" root (Cron Daemon)\r\n", " root@o.example (Cron Daemon)\r\n"),
	CHANGED(" root\r\n", " root@o.example\r\n"),
	CHANGED("root", "root@o.example"),
	CHANGED(" bob, carol@x.test,dave\n", " bob@o.example, carol@x.test,dave@o.example\n"),
	/* display names, angle addresses, quoted strings */
	CHANGED(" \"Doe, John\" <jdoe>\r\n", " \"Doe, John\" <jdoe@o.example>\r\n"),
	CHANGED(" John Doe <jdoe >", " John Doe <jdoe@o.example >"),
	CHANGED(" =?UTF-8?Q?J=C3=B6rg?= <jorg>", " =?UTF-8?Q?J=C3=B6rg?= <jorg@o.example>"),
	CHANGED(" \"john doe\"", " \"john doe\"@o.example"),
	CHANGED(" <\"a\\\"b\">", " <\"a\\\"b\"@o.example>"),
	CHANGED(" first.last (x)", " first.last@o.example (x)"),
	CHANGED(" a.", " a.@o.example"),
	/* comments with parentheses and backslashes */
	CHANGED(" root (a (nested) \\) comment)", " root@o.example (a (nested) \\) comment)"),
	CHANGED(" (lead) root", " (lead) root@o.example"),
	SAME(" a@b.test (x\\(y)"),
	/* groups and empty lists */
	SAME(" undisclosed-recipients:;"),
	SAME(" undisclosed-recipients: ;\r\n"),
	CHANGED(" team: a, b@x.test, <c>;", " team: a@o.example, b@x.test, <c@o.example>;"),
	CHANGED(" team: a", " team: a@o.example"),
	SAME(""),
	SAME(" \r\n"),
	SAME(" , ,"),
	SAME(" <>"),
	/* already qualified, domain literals, route addresses */
	SAME(" a@b.test, \"A B\" <ab@c.test>"),
	SAME(" user@[192.0.2.1], <u@[IPv6:::1]>"),
	SAME(" <@r1.test,@r2.test:u@x.test>"),
	CHANGED(" <@r1.test,@r2.test:u>", " <@r1.test,@r2.test:u@o.example>"),
	SAME(" root@localhost"),
	/* folded fields */
	CHANGED(" a,\r\n b (B),\r\n\t\"C\" <c>\r\n", " a@o.example,\r\n b@o.example (B),\r\n\t\"C\" <c@o.example>\r\n"),
	CHANGED(" Cron\r\n Daemon <root>\n", " Cron\r\n Daemon <root@o.example>\n"),
	/* non-ASCII (RFC 6532) */
	CHANGED(" J\xc3\xb6rg <j\xc3\xb6rg>", " J\xc3\xb6rg <j\xc3\xb6rg@o.example>"),
	CHANGED(" \xc3\xbcser", " \xc3\xbcser@o.example"),
	/* not readable safely: left as written */
	BAD(" John Doe"),
	BAD(" a, John Doe, b"),
	BAD(" \"unterminated"),
	BAD(" root (unterminated"),
	BAD(" <root"),
	BAD(" <root> trailing"),
	BAD(" a; b"),
	BAD(" g1: g2: a;;"),
	BAD(" [192.0.2.1]"),
	BAD(" <a b>"),
	BAD(" a\x01"),
	BAD(" a>"),
	BAD(" <@r1.test>"),
};

static void test_qualify_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct qualify_case *c = &cases[i];
		struct buf out;
		buf_init(&out, 4096);
		int rc = msg_address_list_qualify(c->in, strlen(c->in), "o.example", &out);
		const char *want = c->out ? c->out : c->in;
		if (rc != c->result || out.len != strlen(want) ||
		    memcmp(out.data ? out.data : "", want, out.len) != 0)
			fail_msg("case %zu [%s]: got %d [%.*s], want %d [%s]", i, c->in, rc,
			         (int)out.len, out.data ? out.data : "", c->result, want);
		buf_free(&out);
	}
}

static void test_qualify_no_domain(void **state)
{
	struct buf out;
	buf_init(&out, 100);
	assert_int_equal(msg_address_list_qualify(" root", 5, NULL, &out), MSG_QUALIFY_SAME);
	assert_int_equal(msg_address_list_qualify(" root", 5, "", &out), MSG_QUALIFY_SAME);
	assert_string_equal(out.data, " root root");
	buf_free(&out);
}

static void test_qualify_full(void **state)
{
	/* The maximum reached: -1 and out as before, never a part. */
	struct buf out;
	buf_init(&out, 10);
	assert_int_equal(buf_append(&out, "To:", 3), 0);
	assert_int_equal(msg_address_list_qualify(" root", 5, "o.example", &out), -1);
	assert_int_equal(out.len, 3);
	assert_int_equal(msg_address_list_qualify(" John Doe x", 11, "o.example", &out), -1);
	assert_int_equal(out.len, 3);
	buf_free(&out);
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/qualify-%zu", dir, i);
		FILE *f = fopen(path, "wb");
		if (!f)
			return -1;
		fwrite(cases[i].in, 1, strlen(cases[i].in), f);
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
		cmocka_unit_test(test_qualify_table),
		cmocka_unit_test(test_qualify_no_domain),
		cmocka_unit_test(test_qualify_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
