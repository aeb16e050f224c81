/* libFuzzer harness for the users file (src/auth/users.c): whatever the
 * octets, auth_users_parse either refuses the file with a reason (and
 * leaves nothing) or gives users that hold its promises: names that pass
 * auth_user_name_check, no two equal without case, hashes of yescrypt or
 * SHA-512 only (never clear text), each line's span inside the text and
 * starting with its name, senders each an address or @domain; and
 * lookup finds each user by its name.
 *
 * Input: a selector octet (ignored; kept for the seed format), then the
 * file.  Seeds come from tests/unit/test_auth_users.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/users.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	struct auth_users u;
	size_t line;
	char why[256] = "";
	if (auth_users_parse(text, len, &u, &line, why, sizeof(why)) != 0) {
		CHECK(why[0] && u.n == 0 && u.v == NULL);
		return 0;
	}
	CHECK(line == 0 && u.n <= AUTH_USERS_MAX);
	for (size_t i = 0; i < u.n; i++) {
		const struct auth_user *e = &u.v[i];
		size_t nlen = strlen(e->name);
		CHECK(!auth_user_name_check(e->name, nlen));
		CHECK(!auth_hash_check(e->hash, strlen(e->hash)));
		CHECK(!memcmp(e->hash, "$y$", 3) || !memcmp(e->hash, "$6$", 3));
		CHECK(e->offset + e->len <= len && e->len > nlen);
		CHECK(!memcmp(text + e->offset, e->name, nlen) && text[e->offset + nlen] == ':');
		CHECK(e->offset == 0 || text[e->offset - 1] == '\n');
		CHECK(e->nsenders <= AUTH_USER_SENDERS_MAX);
		/* The senders as the auth process's answer carries them. */
		static char text[AUTH_USERS_LINE_MAX * 2];
		size_t tlen = 0;
		for (size_t s = 0; s < e->nsenders; s++)
			tlen += (size_t)snprintf(text + tlen, sizeof(text) - tlen, "%s%s",
			                         s ? "," : "", e->senders[s]);
		CHECK(tlen < sizeof(text));
		for (size_t s = 0; s < e->nsenders; s++) {
			const char *sender = e->senders[s];
			CHECK(!auth_senders_check(sender, strlen(sender)));
			/* Each sender given is allowed ("x@domain" for an @domain). */
			char addr[SMTP_PATH_MAX + 2];
			snprintf(addr, sizeof(addr), "%s%s", sender[0] == '@' ? "x" : "", sender);
			CHECK(auth_user_sender_allowed(e, addr));
			CHECK(auth_senders_text_allowed(text, addr));
		}
		CHECK(auth_users_find(&u, e->name) == e);
		for (size_t j = i + 1; j < u.n; j++)
			CHECK(strcasecmp(e->name, u.v[j].name) != 0);
	}
	auth_users_free(&u);
	return 0;
}
