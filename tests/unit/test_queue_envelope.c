/* The env file format (src/queue/envelope.c): round trips, and a table of
 * malformed files, each refused with its line number and what is wrong.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every table input (and
 * the formatted round-trip envelopes) into that directory as seeds for
 * tests/fuzz/fuzz_queue_envelope.c, behind the harness's selector octet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/envelope.h"
#include "testutil.h"

#define HEAD "rawmail-queue 1\nid 0123456789ABCDEF0123AB\ncreated 1700000000\n" \
             "sender alice@example.org\nsize 1234\n" \
             "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" \
             "flags -\norigin send\n"
#define RCPT "rcpt queued 0 0 0 bob@example.net - -\n"
#define GOOD HEAD RCPT "end\n"

struct env_case {
	const char *name;
	const char *in;
	size_t inlen;      /* 0: strlen(in) */
	const char *why;   /* NULL: parses; else a part of the reason */
};

static const struct env_case cases[] = {
	{ "good", GOOD, 0, NULL },
	{ "null-sender", "rawmail-queue 1\nid x\ncreated 0\nsender <>\nsize 0\n"
	  "sha256 0000000000000000000000000000000000000000000000000000000000000000\n"
	  "flags smtputf8,bounce,warned\norigin bounce\n"
	  "rcpt bounced 4294967295 9223372036854775807 1 a%20b%0D%0A%25%00x - r%0Al2\nend\n", 0,
	  "line 9: ADDR: holds an encoded NUL" },
	{ "all-states", HEAD "rcpt delivered 1 0 5 a@b - 250%20ok\nrcpt failed 2 0 6 c@d C@D "
	  "550%205.1.1%20no\nrcpt bounced 3 0 7 e@f - -\nrcpt queued 1 99 7 g@h %2D %2D\nend\n", 0,
	  NULL },
	{ "empty", "", 0, "line 1: file ends where rawmail-queue was expected" },
	{ "truncated-mid-line", HEAD "rcpt queued 0 0 0 bob@exa", 0, "line 9: no line end" },
	{ "truncated-at-line", HEAD RCPT, 0, "line 10: file ends where rcpt or end was expected" },
	{ "truncated-header", "rawmail-queue 1\nid x\n", 0, "line 3: file ends where created" },
	{ "no-rcpt", HEAD "end\n", 0, "line 9: end record where rcpt was expected" },
	{ "after-end", GOOD "rcpt queued 0 0 0 x@y - -\n", 0, "line 11: text after the end" },
	{ "version-2", "rawmail-queue 2\n", 0, "line 1: unsupported version" },
	{ "not-magic", "id x\n", 0, "line 1: id record where rawmail-queue was expected" },
	{ "duplicate-id", "rawmail-queue 1\nid x\nid y\n", 0, "line 3: duplicate id record" },
	{ "duplicate-sender", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsender b\n", 0,
	  "line 6: duplicate sender record" },
	{ "out-of-order", "rawmail-queue 1\nid x\nsize 1\n", 0,
	  "line 3: size record where created was expected" },
	{ "missing-sha256", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nflags -\n", 0,
	  "line 6: flags record where sha256 was expected" },
	{ "unknown-record", HEAD "priority 5\n" RCPT "end\n", 0, "line 9: unknown record \"priority\"" },
	{ "rcpt-before-header", "rawmail-queue 1\n" RCPT, 0, "line 2: rcpt record where id" },
	{ "bad-id", "rawmail-queue 1\nid ../x\n", 0, "line 2: id is not" },
	{ "long-id", "rawmail-queue 1\nid "
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 0, "line 2: id is not" },
	{ "created-negative", "rawmail-queue 1\nid x\ncreated -1\n", 0, "line 3: created is not" },
	{ "created-leading-zero", "rawmail-queue 1\nid x\ncreated 01\n", 0, "line 3: created is not" },
	{ "created-plus", "rawmail-queue 1\nid x\ncreated +1\n", 0, "line 3: created is not" },
	{ "created-overflow", "rawmail-queue 1\nid x\ncreated 9223372036854775808\n", 0,
	  "line 3: created is too large" },
	{ "created-huge", "rawmail-queue 1\nid x\ncreated 99999999999999999999999999\n", 0,
	  "line 3: created is too large" },
	{ "size-hex", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 0x10\n", 0,
	  "line 5: size is not" },
	{ "attempts-overflow", HEAD "rcpt queued 4294967296 0 0 a@b - -\nend\n", 0,
	  "line 9: ATTEMPTS is too large" },
	{ "sha-short", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsha256 abc\n", 0,
	  "line 6: sha256 is not 64" },
	{ "sha-upper", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsha256 "
	  "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n", 0,
	  "line 6: sha256 is not 64 lower-case" },
	{ "flag-unknown", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsha256 "
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nflags urgent\n", 0,
	  "line 7: unknown flag" },
	{ "flag-repeated", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsha256 "
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nflags bounce,bounce\n",
	  0, "line 7: flags repeated" },
	{ "flag-empty-item", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsha256 "
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nflags bounce,\n", 0,
	  "line 7: unknown flag" },
	{ "origin-unknown", "rawmail-queue 1\nid x\ncreated 1\nsender a\nsize 1\nsha256 "
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nflags -\norigin mars\n",
	  0, "line 8: unknown origin" },
	{ "state-unknown", HEAD "rcpt sleeping 0 0 0 a@b - -\nend\n", 0,
	  "line 9: unknown recipient state" },
	{ "rcpt-7-fields", HEAD "rcpt queued 0 0 0 a@b -\nend\n", 0, "line 9: rcpt has 6 fields" },
	{ "rcpt-8-fields", HEAD "rcpt queued 0 0 0 a@b - - x\nend\n", 0,
	  "line 9: rcpt has 8 fields, not 7" },
	{ "rcpt-9-fields", HEAD "rcpt queued 0 0 0 a@b - - x y\nend\n", 0, "line 9: too many fields" },
	{ "double-space", HEAD "rcpt queued  0 0 0 a@b - -\nend\n", 0, "line 9: empty field" },
	{ "trailing-space", HEAD "rcpt queued 0 0 0 a@b - - \nend\n", 0, "line 9: empty field" },
	{ "crlf", "rawmail-queue 1\r\n", 0, "line 1: raw byte 0x0d at column 16" },
	{ "tab", HEAD "rcpt\tqueued 0 0 0 a@b - -\nend\n", 0, "line 9: raw byte 0x09" },
	{ "nul", "rawmail-queue 1\nid x\0y\n", 23, "line 2: NUL byte at column 5" },
	{ "raw-8bit", HEAD "rcpt queued 0 0 0 \xc3\xa9@b - -\nend\n", 0, "line 9: raw byte 0xc3" },
	{ "empty-addr-encoded", HEAD "rcpt queued 0 0 0 %00 - -\nend\n", 0, "encoded NUL" },
	{ "bad-escape-1", HEAD "rcpt queued 0 0 0 a%2 - -\nend\n", 0,
	  "line 9: ADDR: '%' is not followed by two hex digits" },
	{ "bad-escape-2", HEAD "rcpt queued 0 0 0 a%zz - -\nend\n", 0, "line 9: ADDR: '%'" },
	{ "bad-escape-3", HEAD "rcpt queued 0 0 0 a@b - %\nend\n", 0, "line 9: LAST: '%'" },
	{ "bad-escape-sender", "rawmail-queue 1\nid x\ncreated 1\nsender a%G0\n", 0,
	  "line 4: sender: '%'" },
	{ "end-with-field", HEAD RCPT "end now\n", 0, "line 10: end takes no fields" },
	{ "header-two-fields", "rawmail-queue 1\nid x y\n", 0, "line 2: id takes one field" },
	{ "blank-line", HEAD "\n" RCPT "end\n", 0, "line 9: empty field" },
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct env_case *c = &cases[i];
		size_t len = c->inlen ? c->inlen : strlen(c->in);
		struct queue_envelope env;
		char why[256];
		int rc = queue_envelope_parse(c->in, len, &env, why, sizeof(why));
		if (c->why && (rc != -1 || !strstr(why, c->why)))
			fail_msg("%s: rc %d, reason \"%s\", want \"%s\"", c->name, rc, why, c->why);
		if (!c->why && rc != 0)
			fail_msg("%s: refused: %s", c->name, why);
		queue_envelope_free(&env);
	}
}

static void test_good_fields(void **state)
{
	const char *in = cases[2].in;
	struct queue_envelope env;
	char why[256];
	assert_int_equal(queue_envelope_parse(in, strlen(in), &env, why, sizeof(why)), 0);
	assert_string_equal(env.id, "0123456789ABCDEF0123AB");
	assert_int_equal(env.created, 1700000000);
	assert_string_equal(env.sender, "alice@example.org");
	assert_int_equal(env.size, 1234);
	assert_int_equal(env.sha256[0], 0xe3);
	assert_int_equal(env.sha256[31], 0x55);
	assert_int_equal(env.flags, 0);
	assert_int_equal(env.origin, QUEUE_ORIGIN_SEND);
	assert_int_equal(env.nrcpts, 4);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_string_equal(env.rcpts[0].last, "250 ok");
	assert_null(env.rcpts[0].orcpt);
	assert_int_equal(env.rcpts[0].last_attempt, 5);
	assert_int_equal(env.rcpts[1].state, QUEUE_RCPT_FAILED);
	assert_string_equal(env.rcpts[1].orcpt, "C@D");
	assert_int_equal(env.rcpts[2].state, QUEUE_RCPT_BOUNCED);
	assert_null(env.rcpts[2].last);
	assert_int_equal(env.rcpts[3].next, 99);
	assert_string_equal(env.rcpts[3].orcpt, "-");  /* a literal "-", encoded */
	assert_string_equal(env.rcpts[3].last, "-");
	/* Formatting gives back the same bytes. */
	struct buf b;
	const char *err;
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	assert_int_equal(queue_envelope_format(&env, &b, &err), 0);
	assert_string_equal(b.data, in);
	buf_free(&b);
	queue_envelope_free(&env);
}

/* Hostile addresses and replies survive format -> parse unchanged. */
static const char *const hostile[] = {
	"a b@example.org",
	"\"x\r\nRCPT TO:<evil@example.org>\"@example.org",
	"100%@example.org",
	"%41@example.org",
	"<>",
	"-",
	"\xc3\xa9l\xc3\xa8ve@\xe4\xbe\x8b\xe5\xad\x90.test",
	"\x01\x7f\x80\xff@x",
	"end",
	"rcpt queued 0 0 0 a@b - -",
};

static void test_hostile_round_trip(void **state)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct queue_envelope a = { 0 }, b;
		memcpy(a.id, "id-1_x", 7);
		a.created = 1;
		a.size = 3;
		a.flags = QUEUE_FLAG_SMTPUTF8 | QUEUE_FLAG_WARNED;
		a.origin = QUEUE_ORIGIN_LOCAL;
		assert_int_equal(queue_envelope_set_sender(&a, hostile[i]), 0);
		assert_int_equal(queue_envelope_add_rcpt(&a, hostile[i], hostile[i]), 0);
		assert_int_equal(queue_envelope_add_rcpt(&a, "plain@x", NULL), 0);
		assert_int_equal(queue_rcpt_set_last(&a.rcpts[0], hostile[i]), 0);
		assert_int_equal(queue_rcpt_set_last(&a.rcpts[1],
		                 "mx.example [192.0.2.1]: 451-4.7.1 greylisted\n451 4.7.1 try later"),
		                 0);
		struct buf t;
		const char *err;
		char why[256];
		buf_init(&t, QUEUE_ENV_FILE_MAX);
		assert_int_equal(queue_envelope_format(&a, &t, &err), 0);
		if (queue_envelope_parse(t.data, t.len, &b, why, sizeof(why)) != 0)
			fail_msg("case %zu: %s\n%s", i, why, t.data);
		assert_true(queue_envelope_equal(&a, &b));
		/* One record per line whatever the fields hold. */
		size_t lines = 0;
		for (size_t k = 0; k < t.len; k++)
			lines += t.data[k] == '\n';
		assert_int_equal(lines, 11);
		buf_free(&t);
		queue_envelope_free(&a);
		queue_envelope_free(&b);
	}
}

static void test_limits(void **state)
{
	struct queue_envelope a = { 0 }, b;
	struct buf t;
	const char *err;
	char why[256];
	memcpy(a.id, "x", 2);
	assert_int_equal(queue_envelope_set_sender(&a, ""), 0);
	buf_init(&t, QUEUE_ENV_FILE_MAX);
	/* No recipients: refused by the formatter, nothing appended. */
	assert_int_equal(queue_envelope_format(&a, &t, &err), -1);
	assert_int_equal(t.len, 0);
	/* The longest address and a reply over the cap: written, and read back
	 * with the reply cut at QUEUE_ENV_LAST_MAX. */
	char *addr = malloc(QUEUE_ENV_ADDR_MAX + 2);
	memset(addr, '%', QUEUE_ENV_ADDR_MAX + 1);
	addr[QUEUE_ENV_ADDR_MAX] = '\0';
	assert_int_equal(queue_envelope_add_rcpt(&a, addr, addr), 0);
	char *last = malloc(QUEUE_ENV_LAST_MAX + 100);
	memset(last, '\n', QUEUE_ENV_LAST_MAX + 99);
	last[QUEUE_ENV_LAST_MAX + 99] = '\0';
	assert_int_equal(queue_rcpt_set_last(&a.rcpts[0], last), 0);
	assert_int_equal(queue_envelope_format(&a, &t, &err), 0);
	assert_int_equal(queue_envelope_parse(t.data, t.len, &b, why, sizeof(why)), 0);
	assert_int_equal(strlen(b.rcpts[0].last), QUEUE_ENV_LAST_MAX);
	assert_string_equal(b.rcpts[0].addr, addr);
	queue_envelope_free(&b);
	/* An address one octet over: refused by both sides. */
	memset(addr, 'a', QUEUE_ENV_ADDR_MAX + 1);
	addr[QUEUE_ENV_ADDR_MAX + 1] = '\0';
	free(a.rcpts[0].addr);
	a.rcpts[0].addr = strdup(addr);
	buf_reset(&t);
	assert_int_equal(queue_envelope_format(&a, &t, &err), -1);
	struct buf big;
	buf_init(&big, QUEUE_ENV_FILE_MAX);
	assert_int_equal(buf_printf(&big, HEAD "rcpt queued 0 0 0 %s - -\nend\n", addr), 0);
	assert_int_equal(queue_envelope_parse(big.data, big.len, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "line 9: ADDR is longer than 2048 octets"));
	queue_envelope_free(&b);
	/* A line over 64 KiB, and a huge line without an end. */
	buf_reset(&big);
	assert_int_equal(buf_append_str(&big, HEAD "rcpt queued 0 0 0 a@b - "), 0);
	for (size_t k = 0; k < QUEUE_ENV_LINE_MAX; k++)
		assert_int_equal(buf_append(&big, "x", 1), 0);
	assert_int_equal(queue_envelope_parse(big.data, big.len, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "line 9: line longer than 65536"));
	queue_envelope_free(&b);
	assert_int_equal(buf_append_str(&big, "\nend\n"), 0);
	assert_int_equal(queue_envelope_parse(big.data, big.len, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "line 9: line longer than 65536"));
	queue_envelope_free(&b);
	/* 10,000 recipients parse; 10,001 do not. */
	buf_reset(&big);
	assert_int_equal(buf_append_str(&big, HEAD), 0);
	for (int k = 0; k < QUEUE_ENV_RCPTS_MAX; k++)
		assert_int_equal(buf_printf(&big, "rcpt queued 0 0 0 u%d@example.org - -\n", k), 0);
	size_t at = big.len;
	assert_int_equal(buf_append_str(&big, "end\n"), 0);
	assert_int_equal(queue_envelope_parse(big.data, big.len, &b, why, sizeof(why)), 0);
	assert_int_equal(b.nrcpts, QUEUE_ENV_RCPTS_MAX);
	queue_envelope_free(&b);
	big.len = at;
	assert_int_equal(buf_append_str(&big, "rcpt queued 0 0 0 one@more - -\nend\n"), 0);
	assert_int_equal(queue_envelope_parse(big.data, big.len, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "line 10009: more than 10000 rcpt records"));
	queue_envelope_free(&b);
	buf_free(&big);
	buf_free(&t);
	free(addr);
	free(last);
	queue_envelope_free(&a);
}

static void test_every_prefix_refused(void **state)
{
	/* A file cut anywhere (but after its end) is refused, never a
	 * smaller envelope. */
	const char *in = cases[2].in;
	size_t len = strlen(in);
	for (size_t k = 0; k < len; k++) {
		struct queue_envelope env;
		char why[256];
		if (queue_envelope_parse(in, k, &env, why, sizeof(why)) != -1)
			fail_msg("prefix of %zu octets parsed", k);
		queue_envelope_free(&env);
	}
}

static void test_wants_smtputf8(void **state)
{
	struct queue_envelope a = { 0 };
	assert_int_equal(queue_envelope_set_sender(&a, "a@example.test"), 0);
	assert_int_equal(queue_envelope_add_rcpt(&a, "b@example.test", "ü@example.test"), 0);
	assert_false(queue_envelope_wants_smtputf8(&a));   /* an ORCPT is no address sent */
	assert_int_equal(queue_envelope_add_rcpt(&a, "ü@bücher.example", NULL), 0);
	assert_true(queue_envelope_wants_smtputf8(&a));
	queue_envelope_free(&a);
	assert_int_equal(queue_envelope_set_sender(&a, "ü@example.test"), 0);
	assert_true(queue_envelope_wants_smtputf8(&a));
	queue_envelope_free(&a);
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].inlen ? cases[i].inlen : strlen(cases[i].in);
		if (test_seed_write(dir, "env", i, cases[i].name, 0, cases[i].in, len) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct queue_envelope a = { 0 };
		struct buf t;
		const char *err;
		memcpy(a.id, "x", 2);
		buf_init(&t, QUEUE_ENV_FILE_MAX);
		if (queue_envelope_set_sender(&a, hostile[i]) < 0 ||
		    queue_envelope_add_rcpt(&a, hostile[i], hostile[i]) < 0 ||
		    queue_rcpt_set_last(&a.rcpts[0], hostile[i]) < 0 ||
		    queue_envelope_format(&a, &t, &err) < 0 ||
		    test_seed_write(dir, "hostile", i, "rt", 0, t.data, t.len) < 0)
			return -1;
		buf_free(&t);
		queue_envelope_free(&a);
	}
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_good_fields),
		cmocka_unit_test(test_hostile_round_trip),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_every_prefix_refused),
		cmocka_unit_test(test_wants_smtputf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
