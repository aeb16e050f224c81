/* libFuzzer harness for the RFC 5321 path parser (src/smtp/address.c).
 *
 * Every input is parsed with several flag combinations; an accepted address
 * must satisfy the struct's invariants, and formatting it then parsing the
 * result inside "<>" with the same flags must give the same address.  The
 * seed corpus comes from the unit test's table:
 *   RAWMAIL_SEED_DIR=dir build/tests/test_smtp_address */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned flag_sets[] = {
	0,
	SMTP_ADDR_NULL_OK,
	SMTP_ADDR_UTF8,
	SMTP_ADDR_BARE_IP,
	SMTP_ADDR_NO_BRACKETS,
	SMTP_ADDR_POSTMASTER_OK,
	SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_BARE_IP | SMTP_ADDR_POSTMASTER_OK,
	SMTP_ADDR_NULL_OK | SMTP_ADDR_UTF8 | SMTP_ADDR_BARE_IP | SMTP_ADDR_NO_BRACKETS |
		SMTP_ADDR_POSTMASTER_OK,
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* no control octet: the parser takes printable ASCII and UTF-8 only */
static bool all_printable_or_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 32 || c == 127)
			return false;
	}
	return true;
}

static bool has_non_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

static void check_address(const uint8_t *data, size_t size, unsigned flags,
                          const struct smtp_address *a, size_t consumed)
{
	check(consumed > 0 && consumed <= size);
	check(a->local_len <= SMTP_LOCAL_PART_MAX);
	check(strlen(a->local) == a->local_len);
	check(all_printable_or_utf8(a->local, a->local_len));
	check(memchr(a->domain, '\0', sizeof(a->domain)) != NULL);
	size_t dlen = strlen(a->domain);
	check(dlen <= SMTP_DOMAIN_MAX);
	check(all_printable_or_utf8(a->domain, dlen));
	/* RFC 5321 §4.5.3.1.3: the path, brackets counted, fits 256 octets */
	check(consumed + (data[0] == '<' ? 0 : 2) <= SMTP_PATH_MAX);
	check((a->kind == SMTP_DOMAIN_NONE) == (dlen == 0));
	check(!a->utf8 || (flags & SMTP_ADDR_UTF8));
	check(a->utf8 == (has_non_ascii(a->local, a->local_len) || has_non_ascii(a->domain, dlen)));
	check(!a->bare_ip || (flags & SMTP_ADDR_BARE_IP));
	if (a->kind == SMTP_DOMAIN_NONE) {
		/* the null path, or Postmaster */
		check(a->local_len == 0 || (a->local_len == 10 && !a->local_quoted));
		check(a->local_len != 0 || (flags & SMTP_ADDR_NULL_OK));
		check(a->local_len == 0 || (flags & SMTP_ADDR_POSTMASTER_OK));
	}
	if (!(flags & SMTP_ADDR_NO_BRACKETS))
		check(data[0] == '<' && data[consumed - 1] == '>');

	/* format, then parse again: same address */
	char text[SMTP_PATH_MAX * 2 + 2];
	int n = smtp_address_format(a, text + 1, sizeof(text) - 2);
	check(n >= 0 && (size_t)n == strlen(text + 1));
	text[0] = '<';
	text[n + 1] = '>';
	struct smtp_address b;
	size_t consumed2 = 0;
	enum smtp_address_status st = smtp_address_parse(text, (size_t)n + 2, flags, &b,
	                                                 &consumed2);
	check(st == SMTP_ADDR_OK);
	check(consumed2 == (size_t)n + 2);
	check(b.local_len == a->local_len && memcmp(b.local, a->local, a->local_len) == 0);
	check(strcmp(b.domain, a->domain) == 0);
	check(b.kind == a->kind);
	check(memcmp(b.ip, a->ip, sizeof(a->ip)) == 0);
	check(b.utf8 == a->utf8);
	check(!b.had_source_route && !b.bare_ip);

	/* a formatted address is canonical: formatting it again changes nothing */
	char again[SMTP_PATH_MAX * 2];
	int m = smtp_address_format(&b, again, sizeof(again));
	check(m == n && memcmp(again, text + 1, (size_t)n) == 0);

	/* too small a buffer fails cleanly */
	if (n > 0) {
		char small[SMTP_PATH_MAX * 2];
		check(smtp_address_format(a, small, (size_t)n) == -1 && small[0] == '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct smtp_address a;
		size_t consumed = SIZE_MAX;
		enum smtp_address_status st = smtp_address_parse((const char *)data, size,
		                                                 flag_sets[i], &a, &consumed);

		check(smtp_address_status_text(st) != NULL);
		if (st != SMTP_ADDR_OK) {
			check(consumed == 0);
			continue;
		}
		check_address(data, size, flag_sets[i], &a, consumed);
	}
	return 0;
}
