/* The users file (auth/users.h): a strict line-by-line parser over the
 * text in memory; every check is a small function the fuzzer and
 * `rawmail passwd` share. */
#include "auth/users.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/limits.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* crypt(3)'s base-64 alphabet: the octets of a salt and a hash. */
static bool is_crypt64(char c)
{
	return is_alnum(c) || c == '.' || c == '/';
}

const char *auth_user_name_check(const char *name, size_t len)
{
	if (len == 0)
		return "an empty user name";
	if (len > AUTH_USER_NAME_MAX)
		return "a user name longer than 128 octets";
	if (!is_alnum(name[0]) && name[0] != '_')
		return "a user name must start with a letter, a digit or '_'";
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != '+' && c != '@')
			return "a user name may hold only ASCII letters, digits and . _ - + @";
	}
	return NULL;
}

/* n octets of the crypt alphabet at p (n > 0), up to a '$' or the end. */
static size_t crypt64_run(const char *p, size_t len)
{
	size_t n = 0;
	while (n < len && is_crypt64(p[n]))
		n++;
	return n;
}

static const char not_a_hash[] =
	"not a yescrypt ($y$) or SHA-512 ($6$) crypt(3) hash; clear text and other "
	"methods are refused (set the password with rawmail passwd)";

/* yescrypt: "$y$" params "$" salt "$" 43 octets of hash (libxcrypt's
 * crypt-yescrypt.c; params and salt in the crypt alphabet). */
static const char *yescrypt_check(const char *h, size_t len)
{
	size_t i = 3;
	for (int field = 0; field < 2; field++) {
		size_t n = crypt64_run(h + i, len - i);
		if (n == 0 || i + n >= len || h[i + n] != '$')
			return not_a_hash;
		i += n + 1;
	}
	if (len - i != 43 || crypt64_run(h + i, len - i) != 43)
		return not_a_hash;
	return NULL;
}

/* SHA-512: "$6$" ["rounds=N$"] salt (1-16) "$" 86 octets of hash
 * (Drepper's SHA-crypt specification). */
static const char *sha512_check(const char *h, size_t len)
{
	size_t i = 3;
	if (len - i > 7 && !memcmp(h + i, "rounds=", 7)) {
		size_t d = i + 7;
		while (d < len && h[d] >= '0' && h[d] <= '9' && d - i - 7 < 10)
			d++;
		if (d == i + 7 || d >= len || h[d] != '$')
			return not_a_hash;
		i = d + 1;
	}
	size_t n = crypt64_run(h + i, len - i);
	if (n == 0 || n > 16 || i + n >= len || h[i + n] != '$')
		return not_a_hash;
	i += n + 1;
	if (len - i != 86 || crypt64_run(h + i, len - i) != 86)
		return not_a_hash;
	return NULL;
}

const char *auth_hash_check(const char *hash, size_t len)
{
	if (len > AUTH_HASH_MAX)
		return not_a_hash;
	if (len > 3 && !memcmp(hash, "$y$", 3))
		return yescrypt_check(hash, len);
	if (len > 3 && !memcmp(hash, "$6$", 3))
		return sha512_check(hash, len);
	return not_a_hash;
}

/* A domain as a sender pattern: labels of letters, digits and '-',
 * separated by single dots (no literal: a login's address is a name). */
static bool domain_ok(const char *d, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX || d[0] == '.' || d[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.' && d[i + 1] == '.')
			return false;
		if (!is_alnum(d[i]) && d[i] != '-' && d[i] != '.')
			return false;
	}
	return true;
}

/* One sender: "@domain" or "local@domain"; the local part without
 * white space, controls, ',' or ':' (RFC 5321 §4.1.2's dot-string covers
 * real logins' addresses; quoted local parts are not worth the
 * ambiguity here). */
static bool sender_ok(const char *s, size_t len)
{
	if (len == 0 || len > SMTP_PATH_MAX)
		return false;
	const char *at = memrchr(s, '@', len);
	if (!at)
		return false;
	for (const char *p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == ',' || c == ':' || c == '@' || c == '"' ||
		    c == '<' || c == '>')
			return false;
	}
	return domain_ok(at + 1, len - (size_t)(at + 1 - s));
}

/* Calls each(arg, sender, len) for the senders of the field; NULL when
 * all are good, else why. */
static const char *senders_walk(const char *p, size_t len,
                                int (*each)(void *, const char *, size_t), void *arg)
{
	if (len == 0)
		return "an empty senders field (leave out the second ':' for any sender)";
	size_t i = 0, count = 0;
	while (i <= len) {
		size_t j = i;
		while (j < len && p[j] != ',')
			j++;
		if (!sender_ok(p + i, j - i))
			return "a sender that is not an address or an @domain (senders are "
			       "comma-separated)";
		if (++count > AUTH_USER_SENDERS_MAX)
			return "more than 100 senders for one user";
		if (each && each(arg, p + i, j - i) != 0)
			return "out of memory";
		if (j == len)
			break;
		i = j + 1;
		/* A space or tab after a comma is for people. */
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == len)
			return "a senders field ending with a comma";
	}
	return NULL;
}

const char *auth_senders_check(const char *senders, size_t len)
{
	return senders_walk(senders, len, NULL, NULL);
}

static void user_free(struct auth_user *e)
{
	for (size_t i = 0; i < e->nsenders; i++)
		free(e->senders[i]);
	free(e->senders);
	free(e->name);
	free(e->hash);
}

void auth_users_free(struct auth_users *u)
{
	for (size_t i = 0; i < u->n; i++)
		user_free(&u->v[i]);
	free(u->v);
	u->v = NULL;
	u->n = 0;
}

const struct auth_user *auth_users_find(const struct auth_users *u, const char *name)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i].name, name))
			return &u->v[i];
	return NULL;
}

static int sender_add(void *arg, const char *s, size_t len)
{
	struct auth_user *e = arg;
	char **v = realloc(e->senders, (e->nsenders + 1) * sizeof(*v));
	if (!v)
		return -1;
	e->senders = v;
	if (!(v[e->nsenders] = strndup(s, len)))
		return -1;
	e->nsenders++;
	return 0;
}

#define FAIL(msg) do { snprintf(why, whylen, "%s", (msg)); goto fail; } while (0)

/* One line that is not blank or a comment: 0 added, -1 why. */
static int parse_line(struct auth_users *u, const char *p, size_t len, size_t line,
                      size_t offset, char *why, size_t whylen)
{
	struct auth_user e = { .line = line, .offset = offset, .len = len };
	const char *c1 = memchr(p, ':', len);
	const char *err;
	if (p[0] == ' ' || p[0] == '\t' || p[len - 1] == ' ' || p[len - 1] == '\t')
		FAIL("white space around a line");
	if (!c1)
		FAIL("not 'name:hash' or 'name:hash:senders'");
	size_t nlen = (size_t)(c1 - p);
	if ((err = auth_user_name_check(p, nlen)))
		FAIL(err);
	const char *h = c1 + 1;
	size_t rest = len - nlen - 1;
	const char *c2 = memchr(h, ':', rest);
	size_t hlen = c2 ? (size_t)(c2 - h) : rest;
	if ((err = auth_hash_check(h, hlen)))
		FAIL(err);
	if (u->n >= AUTH_USERS_MAX)
		FAIL("more than 10000 users");
	for (size_t i = 0; i < u->n; i++)
		if (strlen(u->v[i].name) == nlen && !strncasecmp(u->v[i].name, p, nlen)) {
			snprintf(why, whylen, "user %.*s given again (first on line %zu)", (int)nlen, p,
			         u->v[i].line);
			goto fail;
		}
	if (!(e.name = strndup(p, nlen)) || !(e.hash = strndup(h, hlen)))
		FAIL("out of memory");
	if (c2) {
		const char *s = c2 + 1;
		if ((err = senders_walk(s, len - (size_t)(s - p), sender_add, &e)))
			FAIL(err);
	}
	struct auth_user *v = realloc(u->v, (u->n + 1) * sizeof(*v));
	if (!v)
		FAIL("out of memory");
	u->v = v;
	u->v[u->n++] = e;
	return 0;
fail:
	user_free(&e);
	return -1;
}

int auth_users_parse(const char *text, size_t len, struct auth_users *out, size_t *line,
                     char *why, size_t whylen)
{
	out->v = NULL;
	out->n = 0;
	*line = 0;
	if (len > AUTH_USERS_FILE_MAX) {
		snprintf(why, whylen, "larger than %u octets", AUTH_USERS_FILE_MAX);
		return -1;
	}
	size_t i = 0, n = 0;
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t llen = end - i;
		n++;
		*line = n;
		if (memchr(text + i, '\0', llen)) {
			snprintf(why, whylen, "a NUL octet");
			goto fail;
		}
		if (llen > AUTH_USERS_LINE_MAX) {
			snprintf(why, whylen, "a line longer than %u octets", AUTH_USERS_LINE_MAX);
			goto fail;
		}
		if (llen > 0 && text[i + llen - 1] == '\r')
			llen--;
		if (llen > 0 && text[i] != '#' &&
		    parse_line(out, text + i, llen, n, i, why, whylen) != 0)
			goto fail;
		i = end + 1;
	}
	*line = 0;
	return 0;
fail:
	/* Nothing of a refused file is used. */
	auth_users_free(out);
	return -1;
}

/* One pattern of a senders field against an address: an "@domain" matches
 * the address's domain, anything else the whole address, without case. */
static bool sender_matches(const char *s, size_t len, const char *addr, const char *at)
{
	const char *whole = s[0] == '@' ? at : addr;
	return whole && strlen(whole) == len && !strncasecmp(s, whole, len);
}

bool auth_user_sender_allowed(const struct auth_user *user, const char *addr)
{
	if (user->nsenders == 0)
		return true;
	const char *at = strrchr(addr, '@');
	for (size_t i = 0; i < user->nsenders; i++) {
		const char *s = user->senders[i];
		if (sender_matches(s, strlen(s), addr, at))
			return true;
	}
	return false;
}

bool auth_senders_text_allowed(const char *senders_text, const char *addr)
{
	if (!senders_text || !*senders_text)
		return true;
	const char *at = strrchr(addr, '@');
	const char *p = senders_text;
	for (;;) {
		/* A space or tab after a comma is for people (senders_walk). */
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strcspn(p, ",");
		if (len && sender_matches(p, len, addr, at))
			return true;
		if (!p[len])
			return false;
		p += len + 1;
	}
}
