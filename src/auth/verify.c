/* Password checks (auth/verify.h) through libxcrypt's crypt_r. */
#include "auth/verify.h"

#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/limits.h"

/* The setting an unknown user's password is hashed with when the file
 * has no user to borrow one from: yescrypt at libxcrypt's default cost
 * (what `rawmail passwd` writes), a fixed salt.  Its result is never
 * compared with anything that could match. */
static const char dummy_setting[] = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$";

int auth_hash_make(const char *password, const char *setting, char *out, size_t outlen)
{
	/* struct crypt_data is ~32 KiB: off the stack, wiped after. */
	struct crypt_data *data = calloc(1, sizeof(*data));
	if (!data)
		return -1;
	int rc = -1;
	const char *h = crypt_r(password, setting, data);
	/* libxcrypt's failure token starts with '*' (or NULL). */
	if (!h || h[0] == '*') {
		errno = EINVAL;
	} else if (strlen(h) >= outlen) {
		errno = ENAMETOOLONG;
	} else {
		memcpy(out, h, strlen(h) + 1);
		rc = 0;
	}
	explicit_bzero(data, sizeof(*data));
	free(data);
	return rc;
}

int auth_setting_new(char *out, size_t outlen)
{
	/* A NULL rbytes asks libxcrypt for the kernel's random bytes. */
	return crypt_gensalt_rn("$y$", 0, NULL, 0, out, (int)outlen) ? 0 : -1;
}

/* Equal without an early exit: the time depends on len only. */
static bool equal_constant_time(const char *a, const char *b, size_t len)
{
	volatile unsigned char diff = 0;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

enum auth_verify_result auth_verify(const struct auth_users *u, const char *name,
                                    const char *password, size_t len)
{
	const struct auth_user *user = name ? auth_users_find(u, name) : NULL;
	/* Unknown: hash with a real user's setting, so it costs as much. */
	const char *stored = user ? user->hash : u->n ? u->v[0].hash : dummy_setting;
	bool usable = len <= AUTH_PASSWORD_MAX && !memchr(password, '\0', len);
	char copy[AUTH_PASSWORD_MAX + 1];
	size_t n = usable ? len : 0;
	memcpy(copy, password, n);
	copy[n] = '\0';
	char out[AUTH_HASH_MAX + 1];
	int rc = auth_hash_make(copy, stored, out, sizeof(out));
	explicit_bzero(copy, sizeof(copy));
	if (rc != 0) {
		explicit_bzero(out, sizeof(out));
		return AUTH_VERIFY_ERROR;
	}
	size_t slen = strlen(stored);
	bool same = strlen(out) == slen && equal_constant_time(out, stored, slen);
	explicit_bzero(out, sizeof(out));
	return user && usable && same ? AUTH_VERIFY_OK : AUTH_VERIFY_FAIL;
}
