/* Unit tests for the users file (src/auth/users.c): a table of files
 * that parse (comments, blank lines, CRLF, both hash methods, senders)
 * and of files refused with the line at fault and why (clear text and
 * other crypt methods, names, senders, duplicates, white space, NUL,
 * limits); lookup; the senders a login may use.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the table's files as
 * seeds for tests/fuzz/fuzz_auth_users.c (selector octet 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/users.h"
#include "testutil.h"
#include "util/limits.h"

#define Y "$y$j9T$ZwphsGbdgCrbveSBI7i.y0$XMNF08.oYxrRzoaDN2zx8HSdrqE/QmKRlQVtM7NDeR2"
#define S6 "$6$NVhOZGiqcCt6Zih0$y/xvjog4Zg.h5ag.z.guyWb9mSpJkaHNz5KAiR9us8ULTFVUwB6GJvGM.lnME4YU4ydGm8dmtNxZnsGua7OLO0"
#define S6R "$6$rounds=100000$jh75LrsVHuhXmHaO$u7KumBwGVb/ZJ1A684ZZkkeNvHsc7tWvHZEHT8kHmd3y0dgOMb4JZoy2dAUQuiPpRCGROPFwSqh.Vipl0tYN1/"

struct good {
	const char *name;
	const char *text;
	size_t users;
};

static const struct good goods[] = {
	{ "empty", "", 0 },
	{ "comments", "# users\n\n#alice:secret\n\n", 0 },
	{ "yescrypt", "alice:" Y "\n", 1 },
	{ "sha512", "bob:" S6 "\n", 1 },
	{ "sha512_rounds", "carol:" S6R "\n", 1 },
	{ "no_final_newline", "alice:" Y, 1 },
	{ "crlf", "alice:" Y "\r\nbob:" S6 "\r\n", 2 },
	{ "senders", "alice:" Y ":alice@example.org, @example.net,\tbob@Example.ORG\n", 1 },
	{ "address_login", "cam.1+x@example.org:" Y ":@example.org\n_svc-1:" S6 "\n", 2 },
	{ "several", "# a\nalice:" Y "\n\nbob:" S6 ":bob@example.org\n#end\n", 2 },
};

struct bad {
	const char *name;
	const char *text;
	size_t line;
	const char *why;   /* a part of the reason */
};

static const struct bad bads[] = {
	{ "clear_text", "alice:" Y "\nbob:secret\n", 2, "clear text" },
	{ "empty_hash", "alice:\n", 1, "crypt(3)" },
	{ "locked", "alice:!" Y "\n", 1, "crypt(3)" },
	{ "md5", "alice:$1$abcdefgh$0123456789012345678901\n", 1, "crypt(3)" },
	{ "bcrypt", "alice:$2b$05$abcdefghijklmnopqrstuuE5wHUPpp0dR2mPiWKBnTMJ8Fs6BLmBW\n", 1,
	  "crypt(3)" },
	{ "des", "alice:abJnggxhB/yWI\n", 1, "crypt(3)" },
	{ "yescrypt_short", "alice:$y$j9T$ZwphsGbdgCrbveSBI7i.y0$XMNF08\n", 1, "crypt(3)" },
	{ "yescrypt_no_salt", "alice:$y$j9T$$XMNF08.oYxrRzoaDN2zx8HSdrqE/QmKRlQVtM7NDeR2\n", 1,
	  "crypt(3)" },
	{ "yescrypt_bad_octet",
	  "alice:$y$j9T$ZwphsGbdgCrbveSBI7i.y0$XMNF08.oYxrRzoaDN2zx8HSdrqE/QmKRlQVtM7NDe*2\n", 1,
	  "crypt(3)" },
	{ "sha512_long_salt",
	  "alice:$6$NVhOZGiqcCt6Zih0x$y/xvjog4Zg.h5ag.z.guyWb9mSpJkaHNz5KAiR9us8ULTFVUwB6GJvGM."
	  "lnME4YU4ydGm8dmtNxZnsGua7OLO0\n", 1, "crypt(3)" },
	{ "sha512_rounds_empty", "alice:$6$rounds=$NVhOZGiqcCt6Zih0$y/xvjog4Zg.h5ag.z.guyWb9mSpJkaHNz5KAiR9us8ULTFVUwB6GJvGM.lnME4YU4ydGm8dmtNxZnsGua7OLO0\n", 1, "crypt(3)" },
	{ "no_colon", "# x\nalice\n", 2, "name:hash" },
	{ "empty_name", ":" Y "\n", 1, "empty user name" },
	{ "name_space", "al ice:" Y "\n", 1, "only ASCII" },
	{ "name_utf8", "J\xc3\xb6rg:" Y "\n", 1, "only ASCII" },
	{ "name_dash_first", "-alice:" Y "\n", 1, "start with" },
	{ "name_long",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:" Y "\n", 1, "longer than 128" },
	{ "duplicate", "alice:" Y "\n# again\nalice:" S6 "\n", 3, "given again (first on line 1)" },
	{ "duplicate_case", "alice:" Y "\nAlice:" S6 "\n", 2, "given again" },
	{ "leading_space", " alice:" Y "\n", 1, "white space" },
	{ "trailing_space", "alice:" Y " \n", 1, "white space" },
	{ "blank_spaces", "alice:" Y "\n \n", 2, "white space" },
	{ "senders_empty", "alice:" Y ":\n", 1, "empty senders" },
	{ "senders_trailing_comma", "alice:" Y ":a@example.org,\n", 1, "ending with a comma" },
	{ "senders_not_address", "alice:" Y ":alice\n", 1, "not an address" },
	{ "senders_no_domain", "alice:" Y ":alice@\n", 1, "not an address" },
	{ "senders_dots", "alice:" Y ":@example..org\n", 1, "not an address" },
	{ "senders_space_inside", "alice:" Y ":al ice@example.org\n", 1, "not an address" },
	{ "senders_fourth_field", "alice:" Y ":a@example.org:x\n", 1, "not an address" },
	{ "nul", "alice:" Y "\n#\0\n", 2, "NUL" },
};

static void test_good(void **state)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		struct auth_users u;
		size_t line;
		char why[256] = "";
		int rc = auth_users_parse(goods[i].text, strlen(goods[i].text), &u, &line, why,
		                          sizeof(why));
		if (rc != 0)
			fail_msg("%s: refused at line %zu: %s", goods[i].name, line, why);
		assert_int_equal(u.n, goods[i].users);
		auth_users_free(&u);
	}
}

static void test_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct auth_users u;
		size_t line = 99;
		char why[256] = "";
		/* The table's strings may hold a NUL: measure to the last '\n'. */
		size_t len = strlen(bads[i].text);
		if (!strcmp(bads[i].name, "nul"))
			len += 2;
		int rc = auth_users_parse(bads[i].text, len, &u, &line, why, sizeof(why));
		if (rc != -1)
			fail_msg("%s: accepted", bads[i].name);
		if (line != bads[i].line || !strstr(why, bads[i].why))
			fail_msg("%s: line %zu (want %zu): %s (want \"%s\")", bads[i].name, line,
			         bads[i].line, why, bads[i].why);
		assert_int_equal(u.n, 0);
		assert_null(u.v);
	}
}

static void test_fields(void **state)
{
	const char *text = "# people\n"
	                   "alice:" Y ":alice@example.org, @Example.NET\r\n"
	                   "bob:" S6 "\n";
	struct auth_users u;
	size_t line;
	char why[256];
	assert_int_equal(auth_users_parse(text, strlen(text), &u, &line, why, sizeof(why)), 0);
	const struct auth_user *a = auth_users_find(&u, "alice");
	assert_non_null(a);
	assert_string_equal(a->hash, Y);
	assert_int_equal(a->line, 2);
	assert_int_equal(a->nsenders, 2);
	assert_string_equal(a->senders[0], "alice@example.org");
	assert_string_equal(a->senders[1], "@Example.NET");
	/* The line's span, for passwd: without its "\r\n". */
	assert_int_equal(a->offset, 9);
	assert_memory_equal(text + a->offset + a->len, "\r\n", 2);
	assert_memory_equal(text + a->offset, "alice:", 6);
	/* Lookup is exact: a login is case-sensitive. */
	assert_null(auth_users_find(&u, "Alice"));
	assert_null(auth_users_find(&u, "alic"));
	const struct auth_user *b = auth_users_find(&u, "bob");
	assert_non_null(b);
	assert_int_equal(b->nsenders, 0);

	assert_true(auth_user_sender_allowed(a, "alice@example.org"));
	assert_true(auth_user_sender_allowed(a, "ALICE@EXAMPLE.ORG"));
	assert_true(auth_user_sender_allowed(a, "anyone@example.net"));
	assert_false(auth_user_sender_allowed(a, "bob@example.org"));
	assert_false(auth_user_sender_allowed(a, "anyone@sub.example.net"));
	assert_false(auth_user_sender_allowed(a, "example.net"));
	assert_true(auth_user_sender_allowed(b, "anyone@anywhere.example"));
	auth_users_free(&u);
}

/* The limits: a line, the file, the number of users and of senders. */
static void test_limits(void **state)
{
	struct auth_users u;
	size_t line;
	char why[256];
	size_t big = AUTH_USERS_FILE_MAX + 1;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, '\n', big);
	assert_int_equal(auth_users_parse(text, big, &u, &line, why, sizeof(why)), -1);
	assert_int_equal(line, 0);
	assert_non_null(strstr(why, "larger than"));
	/* A comment line one octet too long. */
	memset(text, '#', AUTH_USERS_LINE_MAX + 1);
	text[AUTH_USERS_LINE_MAX + 1] = '\n';
	assert_int_equal(auth_users_parse(text, AUTH_USERS_LINE_MAX + 2, &u, &line, why,
	                                  sizeof(why)), -1);
	assert_int_equal(line, 1);
	assert_int_equal(auth_users_parse(text + 1, AUTH_USERS_LINE_MAX + 1, &u, &line, why,
	                                  sizeof(why)), 0);
	/* AUTH_USERS_MAX users, then one more. */
	size_t len = 0;
	for (int i = 0; i <= AUTH_USERS_MAX && len + 128 < big; i++)
		len += (size_t)snprintf(text + len, big - len, "u%d:%s\n", i, Y);
	assert_int_equal(auth_users_parse(text, len, &u, &line, why, sizeof(why)), -1);
	assert_int_equal(line, AUTH_USERS_MAX + 1);
	assert_non_null(strstr(why, "more than"));
	/* AUTH_USER_SENDERS_MAX senders, then one more. */
	len = (size_t)snprintf(text, big, "alice:%s:", Y);
	for (int i = 0; i < AUTH_USER_SENDERS_MAX; i++)
		len += (size_t)snprintf(text + len, big - len, "%sa%d@example.org", i ? "," : "", i);
	assert_int_equal(auth_users_parse(text, len, &u, &line, why, sizeof(why)), 0);
	assert_int_equal(u.v[0].nsenders, AUTH_USER_SENDERS_MAX);
	auth_users_free(&u);
	len += (size_t)snprintf(text + len, big - len, ",one@more.example");
	assert_int_equal(auth_users_parse(text, len, &u, &line, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "more than 100 senders"));
	free(text);
}


/* The senders rule on the text the auth process answers with: the same
 * verdicts as on the parsed user, with or without spaces after commas. */
static void test_senders_text(void **state)
{
	const char *text = "alice@example.org, @Example.NET,\tx@y.example";
	assert_true(auth_senders_text_allowed(text, "alice@example.org"));
	assert_true(auth_senders_text_allowed(text, "ALICE@EXAMPLE.ORG"));
	assert_true(auth_senders_text_allowed(text, "anyone@example.net"));
	assert_true(auth_senders_text_allowed(text, "X@Y.example"));
	assert_false(auth_senders_text_allowed(text, "bob@example.org"));
	assert_false(auth_senders_text_allowed(text, "anyone@sub.example.net"));
	assert_false(auth_senders_text_allowed(text, "example.net"));
	assert_false(auth_senders_text_allowed(text, "alice@example.or"));
	assert_false(auth_senders_text_allowed(text, "lice@example.org"));
	assert_false(auth_senders_text_allowed(text, ""));
	assert_false(auth_senders_text_allowed("@example.net", "@example.net.evil"));
	/* No field: any sender, the null reverse-path too. */
	assert_true(auth_senders_text_allowed(NULL, "anyone@anywhere.example"));
	assert_true(auth_senders_text_allowed("", "anyone@anywhere.example"));
	assert_true(auth_senders_text_allowed("", ""));

	/* Agrees with auth_user_sender_allowed on a parsed line. */
	const char *file = "alice:" Y ":alice@example.org, @Example.NET,\tx@y.example\n";
	struct auth_users u;
	size_t line;
	char why[256];
	assert_int_equal(auth_users_parse(file, strlen(file), &u, &line, why, sizeof(why)), 0);
	const struct auth_user *a = auth_users_find(&u, "alice");
	const char *addrs[] = { "alice@example.org", "a@example.net", "x@y.example", "b@example.org",
	                        "x@y.example.org", "@example.net", "" };
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		assert_int_equal(auth_user_sender_allowed(a, addrs[i]),
		                 auth_senders_text_allowed(text, addrs[i]));
	auth_users_free(&u);
}

/* The field checks passwd uses on its arguments. */
static void test_checks(void **state)
{
	assert_null(auth_user_name_check("alice", 5));
	assert_non_null(auth_user_name_check("alice:x", 7));
	assert_non_null(auth_user_name_check("", 0));
	assert_null(auth_hash_check(Y, strlen(Y)));
	assert_null(auth_hash_check(S6R, strlen(S6R)));
	assert_non_null(auth_hash_check("secret", 6));
	assert_null(auth_senders_check("@example.org", 12));
	assert_non_null(auth_senders_check("", 0));
	assert_non_null(auth_senders_check("a@b:c", 5));
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++)
		if (test_seed_write(dir, "good", i, goods[i].name, 0, goods[i].text,
		                    strlen(goods[i].text)) != 0)
			return -1;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		if (test_seed_write(dir, "bad", i, bads[i].name, 0, bads[i].text,
		                    strlen(bads[i].text)) != 0)
			return -1;
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_senders_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
