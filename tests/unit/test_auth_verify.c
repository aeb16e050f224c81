/* Unit tests for password checks (src/auth/verify.c) with hashes made
 * here by libxcrypt (yescrypt and SHA-512 settings from crypt_gensalt_rn):
 * the right password passes, a wrong one, a prefix, one with a NUL or
 * too long, and an unknown user fail; a file without users still fails
 * unknown names; new settings are yescrypt and differ each time. */
#include <crypt.h>
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
#include "auth/verify.h"
#include "util/limits.h"

/* A users file of alice (yescrypt) and bob (SHA-512, few rounds: fast). */
static void users_make(struct auth_users *u, const char *alice_pw, const char *bob_pw)
{
	char ysetting[128], ssetting[128], yhash[AUTH_HASH_MAX + 1], shash[AUTH_HASH_MAX + 1];
	assert_non_null(crypt_gensalt_rn("$y$", 0, NULL, 0, ysetting, sizeof(ysetting)));
	assert_non_null(crypt_gensalt_rn("$6$", 1000, NULL, 0, ssetting, sizeof(ssetting)));
	assert_int_equal(auth_hash_make(alice_pw, ysetting, yhash, sizeof(yhash)), 0);
	assert_int_equal(auth_hash_make(bob_pw, ssetting, shash, sizeof(shash)), 0);
	assert_memory_equal(yhash, "$y$", 3);
	assert_memory_equal(shash, "$6$rounds=1000$", 15);
	char text[1024];
	int n = snprintf(text, sizeof(text), "# test\nalice:%s\nbob:%s:@example.org\n", yhash, shash);
	size_t line;
	char why[256];
	if (auth_users_parse(text, (size_t)n, u, &line, why, sizeof(why)) != 0)
		fail_msg("line %zu: %s", line, why);
}

static enum auth_verify_result check(const struct auth_users *u, const char *name,
                                     const char *pw)
{
	return auth_verify(u, name, pw, strlen(pw));
}

static void test_verify(void **state)
{
	struct auth_users u;
	users_make(&u, "correct horse", "b\xc3\xb6" "b's p\xc3\xa4" "ss");
	assert_int_equal(check(&u, "alice", "correct horse"), AUTH_VERIFY_OK);
	assert_int_equal(check(&u, "bob", "b\xc3\xb6" "b's p\xc3\xa4" "ss"), AUTH_VERIFY_OK);
	assert_int_equal(check(&u, "alice", "correct horsE"), AUTH_VERIFY_FAIL);
	assert_int_equal(check(&u, "alice", "correct hors"), AUTH_VERIFY_FAIL);
	assert_int_equal(check(&u, "alice", "correct horse "), AUTH_VERIFY_FAIL);
	assert_int_equal(check(&u, "alice", ""), AUTH_VERIFY_FAIL);
	/* Another user's password, another user's name, an unknown one. */
	assert_int_equal(check(&u, "bob", "correct horse"), AUTH_VERIFY_FAIL);
	assert_int_equal(check(&u, "Alice", "correct horse"), AUTH_VERIFY_FAIL);
	assert_int_equal(check(&u, "carol", "correct horse"), AUTH_VERIFY_FAIL);
	assert_int_equal(auth_verify(&u, NULL, "correct horse", 13), AUTH_VERIFY_FAIL);
	/* Not NUL-terminated (from SASL): only len octets count. */
	assert_int_equal(auth_verify(&u, "alice", "correct horse!!", 13), AUTH_VERIFY_OK);
	/* A NUL inside: crypt would stop there; refused instead. */
	assert_int_equal(auth_verify(&u, "alice", "correct horse\0x", 15), AUTH_VERIFY_FAIL);
	auth_users_free(&u);
}

static void test_long(void **state)
{
	char pw[AUTH_PASSWORD_MAX + 2];
	memset(pw, 'p', sizeof(pw));
	pw[AUTH_PASSWORD_MAX] = '\0';
	struct auth_users u;
	users_make(&u, pw, "x");
	assert_int_equal(auth_verify(&u, "alice", pw, AUTH_PASSWORD_MAX), AUTH_VERIFY_OK);
	pw[AUTH_PASSWORD_MAX] = 'p';
	assert_int_equal(auth_verify(&u, "alice", pw, AUTH_PASSWORD_MAX + 1), AUTH_VERIFY_FAIL);
	auth_users_free(&u);
}

/* No users at all: the built-in setting is used, nothing passes. */
static void test_empty_file(void **state)
{
	struct auth_users u = { 0 };
	assert_int_equal(check(&u, "alice", "x"), AUTH_VERIFY_FAIL);
	assert_int_equal(check(&u, "", ""), AUTH_VERIFY_FAIL);
}

static void test_setting_new(void **state)
{
	char a[128], b[128];
	assert_int_equal(auth_setting_new(a, sizeof(a)), 0);
	assert_int_equal(auth_setting_new(b, sizeof(b)), 0);
	assert_memory_equal(a, "$y$", 3);
	assert_string_not_equal(a, b);
	char h[AUTH_HASH_MAX + 1];
	assert_int_equal(auth_hash_make("pw", a, h, sizeof(h)), 0);
	assert_null(auth_hash_check(h, strlen(h)));
	/* A setting crypt does not know fails, not a hash of it. */
	assert_int_equal(auth_hash_make("pw", "$9$nope", h, sizeof(h)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_setting_new),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
