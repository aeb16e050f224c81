/* The users file of authenticated submission (issue 10): who may log in,
 * with which password hash, and optionally which senders each may use.
 *
 *     # comment (a line whose first octet is '#')
 *     alice:$y$j9T$...$...
 *     camera@example.org:$6$rounds=100000$...$...:@example.org
 *     bob:$y$j9T$...$...:bob@example.org,bob.smith@example.org
 *
 * One user per line, "name:hash" or "name:hash:senders"; blank lines and
 * comments are kept for people.  Strict: any other line refuses the
 * whole file with its line number (a users file half understood would
 * lock out or let in the wrong people).
 *
 * - name: 1 to AUTH_USER_NAME_MAX octets of ASCII letters, digits and
 *   . _ - + @ (an address may be a login), starting with a letter, digit
 *   or '_'.  No UTF-8: RFC 4616 allows UTF-8 names, but comparing them
 *   needs SASLprep (RFC 4013) normalisation, which nothing here does;
 *   ASCII is compared octet for octet.  Lookup is exact (case-sensitive,
 *   as a Unix login); two names that differ only in case are refused as
 *   a duplicate, so no login is ambiguous to a person.
 * - hash: a crypt(3) string of yescrypt ("$y$") or SHA-512 ("$6$"), the
 *   two libxcrypt methods worth having (Debian's default and the
 *   portable one).  Anything else -- clear text, DES, MD5, bcrypt, an
 *   empty or locked ("!", "*") field -- is an error: the file never holds
 *   a password, nor a hash cheap enough to crack.
 * - senders: comma-separated addresses (local@domain) or "@domain"s,
 *   compared without case; spaces after a comma are allowed.  Without
 *   the field a login may use any sender (issue 10).
 *
 * A final '\r' before the newline is allowed (a file edited on Windows);
 * leading or trailing white space, NUL octets and an empty senders field
 * are errors.  Bounded by AUTH_* in util/limits.h.  Pure (the caller
 * reads the file), unit-tested and fuzzed (tests/fuzz/fuzz_auth_users.c). */
#ifndef RAWMAIL_AUTH_USERS_H
#define RAWMAIL_AUTH_USERS_H

#include <stdbool.h>
#include <stddef.h>

struct auth_user {
	char *name;
	char *hash;           /* "$y$..." or "$6$..." */
	char **senders;       /* as written, lower case not forced */
	size_t nsenders;      /* 0: no senders field, any sender */
	size_t line;          /* 1-based */
	size_t offset, len;   /* the line in the text, without "\r\n" (for passwd) */
};

struct auth_users {
	struct auth_user *v;
	size_t n;
};

/* Parses len octets into *out (freed with auth_users_free; empty after
 * an error).  0, or -1 with *line the line at fault (0: the whole file, as
 * too large or out of memory) and why. */
int auth_users_parse(const char *text, size_t len, struct auth_users *out, size_t *line,
                     char *why, size_t whylen);
void auth_users_free(struct auth_users *u);

/* The user named exactly name, or NULL. */
const struct auth_user *auth_users_find(const struct auth_users *u, const char *name);

/* Checks one field, as the parser does (for `rawmail passwd`'s
 * arguments).  NULL when good, else why. */
const char *auth_user_name_check(const char *name, size_t len);
const char *auth_hash_check(const char *hash, size_t len);
const char *auth_senders_check(const char *senders, size_t len);

/* Whether the user may use the sender address (no senders field: any;
 * else an address given, or an "@domain" of its domain, without case). */
bool auth_user_sender_allowed(const struct auth_user *user, const char *addr);

/* The same rule on a senders field as text (the auth process's answer
 * carries it so: auth/wire.h): NULL or "" is any sender; else the
 * comma-separated patterns, a space or tab after a comma allowed. */
bool auth_senders_text_allowed(const char *senders_text, const char *addr);

#endif
