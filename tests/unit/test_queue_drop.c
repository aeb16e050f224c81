/* The maildrop's drop file (src/queue/maildrop.c): written by a user who
 * may be hostile, read by the queue's owner.  What the format gives the
 * parser takes back, and everything a user must not decide is refused or
 * reset.  With RAWMAIL_SEED_DIR set, the drop files built here are written
 * as seeds for tests/fuzz/fuzz_queue_drop.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/maildrop.h"
#include "testutil.h"

static const char message[] = "Subject: hi\nFrom: a@example.test\n\nhello\n.\nbye\n";

/* A drop file as the sendmail entry writes it, from sender to rcpts
 * (NULL-terminated). */
static void drop_build(struct buf *out, const char *sender, const char *const *rcpts,
                       const char *msg, size_t len)
{
	struct queue_envelope env = { 0 };
	const char *why = NULL;
	memcpy(env.id, "06B156C2D0CACFA9BA3C52", 23);
	env.created = 1765000000;
	env.origin = QUEUE_ORIGIN_SENDMAIL;
	assert_int_equal(queue_envelope_set_sender(&env, sender), 0);
	for (size_t i = 0; rcpts[i]; i++)
		assert_int_equal(queue_envelope_add_rcpt(&env, rcpts[i], NULL), 0);
	buf_init(out, QUEUE_MAILDROP_FILE_MAX);
	assert_int_equal(queue_drop_format(&env, msg, len, out, &why), 0);
	queue_envelope_free(&env);
}

static int parse(const struct buf *b, struct queue_envelope *env, size_t *off, char *why,
                 size_t whylen)
{
	/* An exact-size copy, so ASan sees a read past the end. */
	char *copy = malloc(b->len ? b->len : 1);
	memcpy(copy, b->data, b->len);
	int rc = queue_drop_parse(copy, b->len, env, off, why, whylen);
	free(copy);
	return rc;
}

static void test_round_trip(void **state)
{
	const char *rcpts[] = { "root", "bob@example.org", "x@[127.0.0.1]", "y@[IPv6:::1]",
		                "ü@bücher.example", NULL };
	struct buf b;
	drop_build(&b, "alice@example.test", rcpts, message, strlen(message));
	struct queue_envelope env;
	size_t off = 0;
	char why[256] = "";
	if (parse(&b, &env, &off, why, sizeof(why)) != 0)
		fail_msg("refused: %s", why);
	assert_string_equal(env.sender, "alice@example.test");
	assert_int_equal(env.nrcpts, 5);
	assert_string_equal(env.rcpts[0].addr, "root");
	assert_string_equal(env.rcpts[4].addr, "ü@bücher.example");
	assert_int_equal(env.flags, QUEUE_FLAG_SMTPUTF8);
	assert_int_equal(env.origin, QUEUE_ORIGIN_SENDMAIL);
	assert_string_equal(env.id, "");
	assert_int_equal(env.created, 0);
	assert_int_equal(b.len - off, strlen(message));
	assert_memory_equal(b.data + off, message, strlen(message));
	queue_envelope_free(&env);
	buf_free(&b);
}

static void test_null_sender(void **state)
{
	const char *rcpts[] = { "bob@example.org", NULL };
	struct buf b;
	drop_build(&b, "", rcpts, message, strlen(message));
	struct queue_envelope env;
	size_t off;
	char why[256] = "";
	assert_int_equal(parse(&b, &env, &off, why, sizeof(why)), 0);
	assert_string_equal(env.sender, "");
	assert_int_equal(env.flags, 0);
	queue_envelope_free(&env);
	buf_free(&b);
}

/* Replaces the first occurrence of from with to in b's envelope part. */
static void edit(struct buf *b, const char *from, const char *to)
{
	char *p = memmem(b->data, b->len, from, strlen(from));
	assert_non_null(p);
	size_t at = (size_t)(p - b->data), fl = strlen(from), tl = strlen(to);
	struct buf n;
	buf_init(&n, QUEUE_MAILDROP_FILE_MAX);
	assert_int_equal(buf_append(&n, b->data, at), 0);
	assert_int_equal(buf_append(&n, to, tl), 0);
	assert_int_equal(buf_append(&n, b->data + at + fl, b->len - at - fl), 0);
	buf_free(b);
	*b = n;
}

static void test_state_reset(void **state)
{
	/* A user may not say "already delivered", "this is a bounce" (which
	 * would never be bounced) or "try again in a year". */
	const char *rcpts[] = { "bob@example.org", NULL };
	struct buf b;
	drop_build(&b, "a@example.test", rcpts, message, strlen(message));
	edit(&b, "rcpt queued 0 0 0 ", "rcpt delivered 7 99999999999 5 ");
	edit(&b, "flags -", "flags bounce,warned");
	edit(&b, "origin sendmail", "origin bounce");
	struct queue_envelope env;
	size_t off;
	char why[256] = "";
	if (parse(&b, &env, &off, why, sizeof(why)) != 0)
		fail_msg("refused: %s", why);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_QUEUED);
	assert_int_equal(env.rcpts[0].attempts, 0);
	assert_int_equal(env.rcpts[0].next, 0);
	assert_int_equal(env.rcpts[0].last_attempt, 0);
	assert_null(env.rcpts[0].last);
	assert_int_equal(env.flags, 0);
	assert_int_equal(env.origin, QUEUE_ORIGIN_SENDMAIL);
	queue_envelope_free(&env);
	buf_free(&b);
}

struct refusal {
	const char *name;
	const char *sender;
	const char *rcpt;
	const char *from, *to;   /* an edit of the file, or NULL */
	long cut;                /* octets cut off the end, or 0 */
	const char *why;         /* start of the reason */
};

static const struct refusal refusals[] = {
	{ "sender-crlf", "a@b.test\r\nRCPT TO:<x@y.test>", "bob@example.org", NULL, NULL, 0,
	  "the sender" },
	{ "sender-bracketed", "<a@b.test>", "bob@example.org", NULL, NULL, 0, "the sender" },
	{ "sender-local", "root", "bob@example.org", NULL, NULL, 0, "the sender" },
	{ "rcpt-crlf", "a@b.test", "bob@example.org\r\nDATA", NULL, NULL, 0, "recipient 1" },
	{ "rcpt-general-literal", "a@b.test", "x@[tag:content]", NULL, NULL, 0, "recipient 1" },
	{ "rcpt-option", "a@b.test", "-oQ/tmp", NULL, NULL, 0, "recipient 1" },
	{ "rcpt-source-route", "a@b.test", "<@relay.test:x@y.test>", NULL, NULL, 0,
	  "recipient 1" },
	{ "cut-message", "a@b.test", "bob@example.org", NULL, NULL, 3, "message of" },
	{ "cut-envelope", "a@b.test", "bob@example.org", NULL, NULL, 60, "no envelope" },
	{ "other-message", "a@b.test", "bob@example.org", "hello", "hellO", 0, "the message's" },
	{ "bad-envelope", "a@b.test", "bob@example.org", "rawmail-queue 1", "rawmail-queue 9", 0,
	  "envelope" },
	{ "no-end", "a@b.test", "bob@example.org", "\nend\n", "\nens\n", 0, "no envelope" },
};

static void test_refusals(void **state)
{
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *r = &refusals[i];
		const char *rcpts[] = { r->rcpt, NULL };
		struct buf b;
		drop_build(&b, r->sender, rcpts, message, strlen(message));
		if (r->from)
			edit(&b, r->from, r->to);
		if (r->cut)
			b.len -= (size_t)r->cut;
		struct queue_envelope env;
		size_t off;
		char why[256] = "";
		if (parse(&b, &env, &off, why, sizeof(why)) != -1)
			fail_msg("%s: accepted", r->name);
		if (strncmp(why, r->why, strlen(r->why)) != 0)
			fail_msg("%s: reason \"%s\", expected \"%s...\"", r->name, why, r->why);
		queue_envelope_free(&env);
		buf_free(&b);
	}
}

static void test_no_recipient(void **state)
{
	const char *rcpts[] = { "bob@example.org", NULL };
	struct buf b;
	drop_build(&b, "a@b.test", rcpts, message, strlen(message));
	char *p = memmem(b.data, b.len, "rcpt ", 5);
	char *e = memchr(p, '\n', b.len - (size_t)(p - b.data));
	memmove(p, e + 1, b.len - (size_t)(e + 1 - b.data));
	b.len -= (size_t)(e + 1 - p);
	struct queue_envelope env;
	size_t off;
	char why[256] = "";
	assert_int_equal(parse(&b, &env, &off, why, sizeof(why)), -1);
	queue_envelope_free(&env);
	buf_free(&b);
}

static void test_every_prefix_refused(void **state)
{
	const char *rcpts[] = { "bob@example.org", NULL };
	struct buf b;
	drop_build(&b, "a@b.test", rcpts, message, strlen(message));
	for (size_t k = 0; k < b.len; k++) {
		struct buf p = { 0 };
		buf_init(&p, QUEUE_MAILDROP_FILE_MAX);
		assert_int_equal(buf_append(&p, b.data, k), 0);
		struct queue_envelope env;
		size_t off;
		char why[256];
		if (parse(&p, &env, &off, why, sizeof(why)) != -1)
			fail_msg("a prefix of %zu octets parsed", k);
		queue_envelope_free(&env);
		buf_free(&p);
	}
	buf_free(&b);
}

static int write_seeds(const char *dir)
{
	const char *rcpts[] = { "root", "bob@example.org", "x@[127.0.0.1]", NULL };
	struct buf b;
	drop_build(&b, "alice@example.test", rcpts, message, strlen(message));
	int rc = test_seed_write(dir, "drop", 0, "good", 0, b.data, b.len);
	buf_free(&b);
	return rc;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_state_reset),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_no_recipient),
		cmocka_unit_test(test_every_prefix_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
