/* libFuzzer harness for the aliases file (src/msg/aliases.c): whatever
 * the octets, msg_aliases_parse either refuses the file with a reason or
 * gives entries that hold its promises (lower-case names without spaces,
 * '@' or controls, at least one target each, no target with controls,
 * no name twice); expanding each name, and "root", ends (no recursion
 * without bound) with either a reason or targets without duplicates.
 *
 * Input: a selector octet (bit 0: localhost is local through the
 * callback), then the file.  Seeds come from tests/unit/test_msg_aliases.c
 * (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/aliases.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static bool localhost(void *arg, const char *addr, char *name, size_t namelen)
{
	const char *at = strrchr(addr, '@');
	if (!at || strcasecmp(at + 1, "localhost"))
		return false;
	snprintf(name, namelen, "%.*s", (int)(at - addr), addr);
	return true;
}

static void expand_check(const struct msg_aliases *a, const char *name, bool local)
{
	struct msg_aliases_result r;
	bool oom;
	char why[512];
	if (msg_aliases_expand(a, name, local ? localhost : NULL, NULL, &r, &oom, why,
	                       sizeof(why)) != 0) {
		CHECK(r.n == 0 && r.addrs == NULL && why[0]);
		return;
	}
	CHECK(r.n >= 1 && r.n <= ALIASES_TARGETS_MAX);
	for (size_t i = 0; i < r.n; i++)
		for (size_t j = i + 1; j < r.n; j++)
			CHECK(strcasecmp(r.addrs[i], r.addrs[j]) != 0);
	msg_aliases_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool local = data[0] & 1;
	struct msg_aliases a;
	char err[256];
	if (msg_aliases_parse((const char *)data + 1, size - 1, &a, NULL, NULL, err,
	                      sizeof(err)) != 0) {
		CHECK(err[0]);
		msg_aliases_free(&a);
		return 0;
	}
	for (size_t i = 0; i < a.n; i++) {
		const struct msg_alias *e = &a.v[i];
		CHECK(e->name[0] && e->ntargets >= 1);
		for (const char *c = e->name; *c; c++)
			CHECK((unsigned char)*c > 0x20 && *c != '@' && !(*c >= 'A' && *c <= 'Z'));
		for (size_t t = 0; t < e->ntargets; t++)
			for (const char *c = e->targets[t]; *c; c++)
				CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
		for (size_t j = i + 1; j < a.n; j++)
			CHECK(strcasecmp(e->name, a.v[j].name) != 0);
	}
	/* Expansion of every name is quadratic at worst; bound the work. */
	for (size_t i = 0; i < a.n && i < 64; i++)
		expand_check(&a, a.v[i].name, local);
	expand_check(&a, "root", local);
	msg_aliases_free(&a);
	return 0;
}
