/* libFuzzer harness for the maildrop's drop file (src/queue/maildrop.c),
 * read as an importer reads what a user wrote: never trusted.  The first
 * octet is the seed selector of tests/unit/testutil.h (unused); the rest
 * is the file, copied to an exact-size heap block so ASan sees any
 * over-read.  A file that parses must say nothing a user may not decide
 * (states, flags, origin, id), its message must be the rest of the file,
 * and its envelope must format again.
 * Seeds come from tests/unit/test_queue_drop.c (RAWMAIL_SEED_DIR). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/maildrop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	char *copy = malloc(len ? len : 1);
	memcpy(copy, data + 1, len);
	struct queue_envelope env;
	size_t off = 0;
	char why[256];
	if (queue_drop_parse(copy, len, &env, &off, why, sizeof(why)) != 0) {
		CHECK(why[0] != '\0');
		queue_envelope_free(&env);
		free(copy);
		return 0;
	}
	CHECK(off <= len && env.size == len - off);
	CHECK(env.nrcpts > 0);
	CHECK(env.id[0] == '\0' && env.created == 0);
	CHECK(env.origin == QUEUE_ORIGIN_SENDMAIL);
	CHECK((env.flags & ~(unsigned)QUEUE_FLAG_SMTPUTF8) == 0);
	for (size_t i = 0; i < env.nrcpts; i++) {
		CHECK(env.rcpts[i].state == QUEUE_RCPT_QUEUED && env.rcpts[i].attempts == 0);
		CHECK(env.rcpts[i].next == 0 && env.rcpts[i].last == NULL);
		CHECK(!strpbrk(env.rcpts[i].addr, "\r\n "));
	}
	CHECK(!strpbrk(env.sender, "\r\n "));
	struct buf t;
	const char *err;
	buf_init(&t, QUEUE_MAILDROP_FILE_MAX);
	memcpy(env.id, "x", 2);
	CHECK(queue_drop_format(&env, copy + off, len - off, &t, &err) == 0);
	buf_free(&t);
	queue_envelope_free(&env);
	free(copy);
	return 0;
}
