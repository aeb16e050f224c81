/* libFuzzer harness for the SPF record parser (src/dns/spf_record.c).
 *
 * The first octet is ignored (the seed writer's selector); the rest is
 * a TXT record's text.  On success: at most SPF_TERMS_MAX
 * terms, every prefix length in range, every domain-spec (and redirect,
 * exp) passes spf_macro_string_ok as a domain-spec, every term's text is
 * a piece of the input; parsing the same text again gives the same
 * result; every domain-spec expands (spf_macro_expand, with a fixed
 * sender, IPv6 address and domain) to a name of at most 253 octets, or
 * fails with a reason.  Either way nothing reads or writes out of bounds (ASan).
 * Seeds: the rows of tests/unit/test_dns_spf_record.c. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/spf_macro.h"
#include "dns/spf_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static struct spf_record rec, again;

static void spec_check(const char *s)
{
	static const struct spf_macro_ctx ctx = {
		.sender = "Strong-Bad.x@email.example.com",
		.domain = "email.example.com",
		.helo = "mx.example.org",
		.family = 10,   /* AF_INET6: the longest %{i} */
		.ip = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xcb, 0x01 },
	};
	char err[256], out[300];
	if (!s)
		return;
	CHECK(spf_macro_string_ok(s, strlen(s), true, false, err, sizeof(err)));
	if (spf_macro_expand(s, &ctx, true, out, sizeof(out), err, sizeof(err)))
		CHECK(strlen(out) > 0 && strlen(out) <= 253);
	else
		CHECK(err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size == 0)
		return 0;
	data++;
	size--;
	const char *text = (const char *)data;
	bool ok = spf_record_parse(text, size, &rec, err, sizeof(err));
	CHECK(memchr(err, '\0', sizeof(err)) != NULL || ok);
	if (!ok)
		return 0;
	CHECK(rec.n <= SPF_TERMS_MAX);
	for (size_t i = 0; i < rec.n; i++) {
		const struct spf_term *t = &rec.terms[i];
		CHECK(t->cidr4 <= 32 && t->cidr6 <= 128);
		CHECK(t->text && strlen(t->text) <= size && memmem(data, size, t->text, strlen(t->text)));
		spec_check(t->domain);
		if (t->mech == SPF_MECH_INCLUDE || t->mech == SPF_MECH_EXISTS)
			CHECK(t->domain != NULL);
	}
	spec_check(rec.redirect);
	spec_check(rec.exp);
	CHECK(spf_record_parse(text, size, &again, err, sizeof(err)));
	CHECK(again.n == rec.n);
	return 0;
}
