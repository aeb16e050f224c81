/* libFuzzer harness for the queue's env file format (src/queue/envelope.c),
 * read as a runner reads env/ID from disk: never trusted.  The first octet
 * is the seed selector of tests/unit/testutil.h (unused); the rest is the
 * file, copied to an exact-size heap block so ASan sees any over-read.
 * An input that parses must format, and the formatted text must parse to
 * an equal envelope and format to the same bytes again.
 * Seeds come from tests/unit/test_queue_envelope.c (RAWMAIL_SEED_DIR). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	char *copy = malloc(len ? len : 1);
	memcpy(copy, data + 1, len);
	struct queue_envelope a, b;
	char why[256];
	if (queue_envelope_parse(copy, len, &a, why, sizeof(why)) != 0) {
		CHECK(strncmp(why, "line ", 5) == 0);
		queue_envelope_free(&a);
		free(copy);
		return 0;
	}
	struct buf t1, t2;
	const char *err;
	buf_init(&t1, QUEUE_ENV_FILE_MAX);
	buf_init(&t2, QUEUE_ENV_FILE_MAX);
	CHECK(queue_envelope_format(&a, &t1, &err) == 0);
	CHECK(queue_envelope_parse(t1.data, t1.len, &b, why, sizeof(why)) == 0);
	CHECK(queue_envelope_equal(&a, &b));
	CHECK(queue_envelope_format(&b, &t2, &err) == 0);
	CHECK(t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0);
	buf_free(&t1);
	buf_free(&t2);
	queue_envelope_free(&a);
	queue_envelope_free(&b);
	free(copy);
	return 0;
}
