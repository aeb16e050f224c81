/* The outbox's record format (store/outbox.c, issue 12): hostile values
 * round-trip byte for byte, a file cut at any offset or with garbage
 * between records loses only the damaged records (counted), and the file
 * names sort in commit order and refuse temporary and foreign names.
 * With RAWMAIL_SEED_DIR set, writes its files as seeds for
 * tests/fuzz/fuzz_store_outbox.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/outbox.h"
#include "testutil.h"
#include "util/buf.h"

/* What a parse saw: every event's fields, flattened with a separator
 * that no value holds here. */
struct seen {
	size_t n;
	struct buf text;
	size_t stop_after; /* 0: never stop */
};

static void flatten(struct buf *b, const struct outbox_event *ev)
{
	buf_printf(b, "%s|%s|%s|%s|%zu", ev->id, ev->mailbox, ev->path, ev->from, ev->nto);
	for (size_t i = 0; i < ev->nto; i++)
		buf_printf(b, "|%s", ev->to[i]);
	buf_printf(b, "|%s|%s|%llu|%lld\n", ev->client_ip, ev->helo, (unsigned long long)ev->size,
	           (long long)ev->time);
}

static bool on_event(const struct outbox_event *ev, void *arg)
{
	struct seen *s = arg;
	s->n++;
	flatten(&s->text, ev);
	return !(s->stop_after && s->n >= s->stop_after);
}

static const char *const to_hostile[] = {
	"a b@example.org",                   /* a quoted local part's space */
	"\xc3\xa9l\xc3\xa8ve@\xc3\xa9xample.org", /* SMTPUTF8 */
	"x\ny\r\nz@e",                       /* line breaks, through a bug */
	"%41@e",                             /* an escape lookalike */
	"@1 12345678\n@",                    /* a record header lookalike */
	"\x01\x7f\xff\x80\t",
};

static const struct outbox_event ev_hostile = {
	.id = "0123ABCD-_x",
	.mailbox = "\xc3\xa9l\xc3\xa8ve",
	.path = "\xc3\xa9l\xc3\xa8ve/new/1700000000.M1P2Q3.host,S=10,W=11",
	.from = "\"john doe\"@example.com",
	.to = to_hostile,
	.nto = sizeof(to_hostile) / sizeof(to_hostile[0]),
	.client_ip = "2001:db8::1",
	.helo = "my laptop\n@5 00000000\nid x %% \xe2\x98\x83 \x7f",
	.size = UINT64_MAX,
	.time = INT64_MAX,
};

static const struct outbox_event ev_empty = {
	.id = "", .mailbox = "", .path = "", .from = "", .to = NULL, .nto = 0,
	.client_ip = "", .helo = "", .size = 0, .time = 0,
};

static const char *const to_one[] = { "bob@example.org" };
static const struct outbox_event ev_plain = {
	.id = "Q1", .mailbox = "bob", .path = "bob/new/1.M2P3Q4.h,S=5,W=6", .from = "a@b.example",
	.to = to_one, .nto = 1, .client_ip = "127.0.0.1", .helo = "cam.local", .size = 1234,
	.time = 1700000000,
};

static void seed(const char *name, const char *data, size_t len)
{
	static size_t index;
	const char *dir = getenv("RAWMAIL_SEED_DIR");
	if (dir)
		test_seed_write(dir, "outbox", index++, name, 0, data, len);
}

/* A file of the three events, in order. */
static void three(struct buf *b)
{
	buf_init(b, 1 << 20);
	assert_int_equal(outbox_record_append(b, &ev_plain), 0);
	assert_int_equal(outbox_record_append(b, &ev_hostile), 0);
	assert_int_equal(outbox_record_append(b, &ev_empty), 0);
}

static void expect(const char *data, size_t len, size_t want_n, size_t want_bad, const char *want)
{
	struct seen s = { 0 };
	buf_init(&s.text, 1 << 20);
	size_t bad = 99;
	size_t n = outbox_parse(data, len, on_event, &s, &bad);
	if (n != want_n || bad != want_bad || s.n != want_n ||
	    strcmp(s.text.data ? s.text.data : "", want) != 0) {
		print_error("input: ");
		test_print_escaped(data, len);
		print_error("\nn=%zu bad=%zu, want n=%zu bad=%zu\ngot:  %s\nwant: %s\n", n, bad, want_n,
		            want_bad, s.text.data ? s.text.data : "", want);
		fail();
	}
	buf_free(&s.text);
}

static char *flat(const struct outbox_event *const *evs, size_t n)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_append(&b, "", 0);
	for (size_t i = 0; i < n; i++)
		flatten(&b, evs[i]);
	return buf_release(&b, NULL);
}

static void test_round_trip(void **state)
{
	struct buf b;
	three(&b);
	seed("three", b.data, b.len);
	const struct outbox_event *all[] = { &ev_plain, &ev_hostile, &ev_empty };
	char *want = flat(all, 3);
	expect(b.data, b.len, 3, 0, want);
	free(want);
	/* No value's octet broke the framing: one header line per record,
	 * every other line a field. */
	size_t headers = 0;
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '@' && (i == 0 || b.data[i - 1] == '\n'))
			headers++;
	assert_int_equal(headers, 3);
	buf_free(&b);
}

static void test_format_readable(void **state)
{
	/* The format Python reads (tests/integration/test_store_outbox.py). */
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(outbox_record_append(&b, &ev_plain), 0);
	const char *body = "id Q1\nmailbox bob\npath bob/new/1.M2P3Q4.h,S=5,W=6\nfrom a@b.example\n"
	                   "to bob@example.org\nip 127.0.0.1\nhelo cam.local\nsize 1234\n"
	                   "time 1700000000\n";
	char head[64];
	const char *nl = memchr(b.data, '\n', b.len);
	assert_non_null(nl);
	snprintf(head, sizeof(head), "@%zu ", strlen(body));
	assert_memory_equal(b.data, head, strlen(head));
	assert_int_equal(nl - b.data, (long)strlen(head) + 8);
	assert_string_equal(nl + 1, body);
	buf_free(&b);
	/* Escapes: upper-case hex, only where needed. */
	buf_init(&b, 4096);
	const char *to[] = { "a b%c\xc3\xa9" };
	struct outbox_event e = ev_empty;
	e.to = to;
	e.nto = 1;
	assert_int_equal(outbox_record_append(&b, &e), 0);
	assert_non_null(strstr(b.data, "\nto a%20b%25c%C3%A9\n"));
	buf_free(&b);
}

/* Cutting a file anywhere loses only the record that was cut (counted
 * once), never a whole one before it, and never crashes. */
static void test_truncation_every_offset(void **state)
{
	struct buf b;
	three(&b);
	size_t ends[3], k = 0;
	{
		struct buf one;
		buf_init(&one, 1 << 20);
		outbox_record_append(&one, &ev_plain);
		ends[k++] = one.len;
		outbox_record_append(&one, &ev_hostile);
		ends[k++] = one.len;
		outbox_record_append(&one, &ev_empty);
		ends[k++] = one.len;
		buf_free(&one);
	}
	const struct outbox_event *all[] = { &ev_plain, &ev_hostile, &ev_empty };
	for (size_t cut = 0; cut <= b.len; cut++) {
		size_t whole = 0;
		while (whole < 3 && ends[whole] <= cut)
			whole++;
		bool partial = whole < 3 && cut > (whole ? ends[whole - 1] : 0);
		char *want = flat(all, whole);
		/* An exact copy, so ASan sees a read past the cut. */
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, b.data, cut);
		expect(copy, cut, whole, partial ? 1 : 0, want);
		free(copy);
		free(want);
	}
	buf_free(&b);
}

/* Every single octet changed in a record (other than to something the
 * CRC cannot see, which a flip never is) makes that record bad, and the
 * others are still read. */
static void test_damage_every_octet(void **state)
{
	struct buf b;
	three(&b);
	struct buf one;
	buf_init(&one, 1 << 20);
	outbox_record_append(&one, &ev_plain);
	size_t first_end = one.len;
	buf_free(&one);
	const struct outbox_event *rest[] = { &ev_hostile, &ev_empty };
	char *want = flat(rest, 2);
	for (size_t i = 0; i < first_end; i++) {
		char *copy = malloc(b.len);
		memcpy(copy, b.data, b.len);
		copy[i] ^= 0x01;
		struct seen s = { 0 };
		buf_init(&s.text, 1 << 20);
		size_t bad;
		size_t n = outbox_parse(copy, b.len, on_event, &s, &bad);
		if (n != 2 || bad != 1 || strcmp(s.text.data, want) != 0) {
			print_error("flip at %zu: n=%zu bad=%zu\n", i, n, bad);
			fail();
		}
		buf_free(&s.text);
		free(copy);
	}
	free(want);
	buf_free(&b);
}

static void test_garbage_between(void **state)
{
	struct buf a, b;
	buf_init(&a, 4096);
	buf_init(&b, 1 << 20);
	outbox_record_append(&a, &ev_plain);
	const char *junk[] = {
		"garbage\n",
		"@\n",
		"@12 zzzzzzzz\n",
		"@0 00000000\n",
		"@99999999999 00000000\n",
		"\n\n@",
		"@05 00000000\nabcde",
		"\0\0\0\n",
	};
	size_t junk_len[] = { 8, 2, 13, 12, 22, 3, 19, 4 };
	for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
		buf_reset(&b);
		buf_append(&b, a.data, a.len);
		buf_append(&b, junk[j], junk_len[j]);
		/* Each junk starts a line or ends without one: the next record
		 * starts a line either way. */
		if (junk[j][junk_len[j] - 1] != '\n')
			buf_append(&b, "\n", 1);
		buf_append(&b, a.data, a.len);
		seed("junk", b.data, b.len);
		const struct outbox_event *two[] = { &ev_plain, &ev_plain };
		char *want = flat(two, 2);
		struct seen s = { 0 };
		buf_init(&s.text, 1 << 20);
		size_t bad = 0;
		size_t n = outbox_parse(b.data, b.len, on_event, &s, &bad);
		if (n != 2 || bad < 1 || strcmp(s.text.data, want) != 0) {
			print_error("junk %zu: n=%zu bad=%zu\n", j, n, bad);
			fail();
		}
		buf_free(&s.text);
		free(want);
	}
	/* Garbage first: the record after it is still found. */
	buf_reset(&b);
	buf_append(&b, "xx\n", 3);
	buf_append(&b, a.data, a.len);
	const struct outbox_event *one[] = { &ev_plain };
	char *want = flat(one, 1);
	expect(b.data, b.len, 1, 1, want);
	free(want);
	expect("", 0, 0, 0, "");
	buf_free(&a);
	buf_free(&b);
}

/* A body the writer would never make, under a correct CRC: refused. */
static void test_strict_body(void **state)
{
	static const char *const bodies[] = {
		/* a field missing */
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 1\n",
		/* out of order */
		"mailbox b\nid Q\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		/* twice */
		"id Q\nid Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		/* an unknown field */
		"id Q\nmailbox b\npath p\nfrom \nx y\nip \nhelo \nsize 1\ntime 2\n",
		/* a raw space in a value */
		"id Q\nmailbox b c\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		/* lower-case, short, needless, NUL escapes */
		"id Q\nmailbox %c3\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		"id Q\nmailbox %C\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		"id Q\nmailbox %41\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		"id Q\nmailbox %00\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
		/* numbers: leading zero, empty, over the range, sign */
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 01\ntime 2\n",
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize \ntime 2\n",
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 18446744073709551616\ntime 2\n",
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 1\ntime 9223372036854775808\n",
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 1\ntime -1\n",
		/* no final LF, a line without a space */
		"id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 1\ntime 2",
		"id Q\nmailbox\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		/* Frame it with a correct header through a record of the same
		 * length: take the CRC the writer computes for it. */
		size_t len = strlen(bodies[i]);
		char rec[512];
		/* crc32 as Python's zlib.crc32; computed here bitwise. */
		uint32_t c = 0xffffffffu;
		for (size_t k = 0; k < len; k++) {
			c ^= (uint8_t)bodies[i][k];
			for (int j = 0; j < 8; j++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		}
		int n = snprintf(rec, sizeof(rec), "@%zu %08x\n%s", len, c ^ 0xffffffffu, bodies[i]);
		seed("strict", rec, (size_t)n);
		expect(rec, (size_t)n, 0, 1, "");
	}
	/* And the valid neighbour of those, to show the framing is right. */
	const char *good = "id Q\nmailbox b\npath p\nfrom \nip \nhelo \nsize 1\ntime 2\n";
	uint32_t c = 0xffffffffu;
	for (size_t k = 0; good[k]; k++) {
		c ^= (uint8_t)good[k];
		for (int j = 0; j < 8; j++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	char rec[512];
	int n = snprintf(rec, sizeof(rec), "@%zu %08x\n%s", strlen(good), c ^ 0xffffffffu, good);
	expect(rec, (size_t)n, 1, 0, "Q|b|p||0|||1|2\n");
}

static void test_stop_early(void **state)
{
	struct buf b;
	three(&b);
	struct seen s = { .stop_after = 1 };
	buf_init(&s.text, 1 << 20);
	size_t bad;
	assert_int_equal(outbox_parse(b.data, b.len, on_event, &s, &bad), 1);
	assert_int_equal(s.n, 1);
	buf_free(&s.text);
	buf_free(&b);
}

static void test_append_bounded(void **state)
{
	struct buf b;
	buf_init(&b, 40);
	assert_int_equal(outbox_record_append(&b, &ev_plain), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_names(void **state)
{
	char a[OUTBOX_NAME_MAX], b[OUTBOX_NAME_MAX], t[OUTBOX_NAME_MAX];
	outbox_name_format(a, 0x17e0000000000001ull, 4321, false);
	assert_string_equal(a, "17e0000000000001-4321");
	assert_true(outbox_name_ok(a));
	outbox_name_format(t, 0x17e0000000000001ull, 4321, true);
	assert_string_equal(t, "17e0000000000001-4321.tmp");
	assert_false(outbox_name_ok(t));
	assert_int_equal(outbox_tmp_pid(t), 4321);
	assert_int_equal(outbox_tmp_pid(a), 0);
	/* Later commits sort later whatever the pids. */
	outbox_name_format(b, 0x17e0000000000002ull, 7, false);
	assert_true(strcmp(a, b) < 0);
	outbox_name_format(b, 0x0000000000000001ull, 2147483647, false);
	assert_true(outbox_name_ok(b));
	assert_true(strcmp(b, a) < 0);
	static const char *const bad[] = {
		"", ".", "..", "17e0000000000001", "17e0000000000001-", "17E0000000000001-1",
		"17e000000000001-1", "17e00000000000011-1", "17e0000000000001-01", "17e0000000000001-1x",
		"17e0000000000001-12345678901", ".17e0000000000001-1", "17e0000000000001_1",
		"17e0000000000001-1.tmp", "17e0000000000001-1/", "17e0000000000001-0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (outbox_name_ok(bad[i])) {
			print_error("accepted: %s\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(outbox_tmp_pid("17e0000000000001-1x.tmp"), 0);
	assert_int_equal(outbox_tmp_pid(".tmp"), 0);
	assert_int_equal(outbox_tmp_pid("x.tmp"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format_readable),
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_damage_every_octet),
		cmocka_unit_test(test_garbage_between),
		cmocka_unit_test(test_strict_body),
		cmocka_unit_test(test_stop_early),
		cmocka_unit_test(test_append_bounded),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
