/* libFuzzer harness for DMARC records and the tree walk's names
 * (src/check/dmarc.c): arbitrary text never crashes the parser or reads
 * past it, a record that parses names a known policy, and the walk gives
 * at most 8 names, each "_dmarc." followed by a suffix of the domain.
 * The first octet is the seed's selector (tests/unit/testutil.h) and is
 * skipped; seeds come from tests/unit/test_check_pure.c
 * (RAWMAIL_SEED_DIR): its DMARC records and walked domains. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check/check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* NUL-terminated copy of exactly size + 1 octets (ASan sees a read past it) */
	if (size == 0)
		return 0;
	data++;
	size--;
	char *m = malloc(size + 1);
	if (!m)
		return 0;
	memcpy(m, data, size);
	m[size] = '\0';
	struct check_dmarc_record rec;
	char why[160];
	int rc = check_dmarc_parse(m, &rec, why, sizeof(why));
	CHECK(rc >= -1 && rc <= 1);
	if (rc == 1)
		CHECK((unsigned)rec.p <= CHECK_DMARC_REJECT && (!rec.has_sp ||
		      (unsigned)rec.sp <= CHECK_DMARC_REJECT));
	if (rc == -1)
		CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	char names[8][272];
	size_t n = check_dmarc_walk(m, names, 8);
	CHECK(n <= 8);
	size_t len = strlen(m);
	while (len && m[len - 1] == '.')
		len--;
	for (size_t i = 0; i < n; i++) {
		CHECK(!strncmp(names[i], "_dmarc.", 7));
		size_t sl = strlen(names[i] + 7);
		CHECK(sl <= len && !memcmp(names[i] + 7, m + len - sl, sl));
	}
	free(m);
	return 0;
}
