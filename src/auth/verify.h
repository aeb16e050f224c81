/* Checking a password against the users file (issue 10).  The auth
 * process, the only one that reads the file, will call this for the smtp
 * process's AUTH (the network-facing process never sees a hash:
 * ../shared/DESIGN.md "Processes and privileges").
 *
 * crypt_r(3) of libxcrypt recomputes the hash with the stored setting;
 * the result is compared with the stored string in constant time.  An
 * unknown user costs the same hash computation (against another user's
 * setting, or a built-in yescrypt one), so the time taken does not tell
 * which names exist.  Every copy of the password and crypt's working
 * memory is wiped (explicit_bzero) before returning. */
#ifndef RAWMAIL_AUTH_VERIFY_H
#define RAWMAIL_AUTH_VERIFY_H

#include <stddef.h>

#include "auth/users.h"

enum auth_verify_result {
	AUTH_VERIFY_OK = 0,     /* the user exists and the password is theirs */
	AUTH_VERIFY_FAIL = 1,   /* unknown user or wrong password (not told apart) */
	AUTH_VERIFY_ERROR = -1, /* out of memory, or crypt refused the setting: temporary */
};

/* The password is len octets (it may come from SASL, not NUL-terminated);
 * one longer than AUTH_PASSWORD_MAX or holding a NUL octet fails, after
 * the same work. */
enum auth_verify_result auth_verify(const struct auth_users *u, const char *name,
                                    const char *password, size_t len);

/* The hash of password for a crypt setting (a full hash or a
 * crypt_gensalt_rn prefix) into out.  0, or -1 (errno).  Used by
 * auth_verify and `rawmail passwd`. */
int auth_hash_make(const char *password, const char *setting, char *out, size_t outlen);

/* A new yescrypt setting with libxcrypt's default cost and a random salt
 * from the kernel, into out.  0, or -1. */
int auth_setting_new(char *out, size_t outlen);

#endif
