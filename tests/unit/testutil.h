/* Helpers shared by the table-driven parser tests: printing bytes in a
 * failure message, and writing a table input as a fuzzer seed (the unit
 * tests seed tests/fuzz/fuzz_<test>.c when RAWMAIL_SEED_DIR is set).
 * Header-only: included by tests, never by rawmail. */
#ifndef RAWMAIL_TESTS_TESTUTIL_H
#define RAWMAIL_TESTS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Prints up to 80 octets through cmocka's print_error, escaping CR, LF
 * and other control octets so a failing case shows what it held. */
static inline void test_print_escaped(const char *p, size_t len)
{
	for (size_t i = 0; i < len && i < 80; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\r')
			print_error("\\r");
		else if (ch == '\n')
			print_error("\\n");
		else if (ch < 0x20 || ch >= 0x7f)
			print_error("\\x%02x", ch);
		else
			print_error("%c", ch);
	}
	if (len > 80)
		print_error("... (%zu octets)", len);
}

/* Writes DIR/PREFIX-INDEX-NAME holding the harness's selector octet, then
 * data.  0 on success, -1 after saying why on stderr. */
static inline int test_seed_write(const char *dir, const char *prefix, size_t index,
                                  const char *name, unsigned char selector, const char *data,
                                  size_t len)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s-%02zu-%s", dir, prefix, index, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "seed path too long: %s\n", dir);
		return -1;
	}
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	bool ok = fputc(selector, f) != EOF && fwrite(data, 1, len, f) == len;
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

#endif
