/* The store's wire format: round trips of every frame, and the malformed
 * frames a peer could send (each one a protocol error, never a crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/frame.h"
#include "util/buf.h"

static const struct store_recipient rcpts3[] = {
	{ "alice+tag@example.org", "alice" },
	{ "bob@[192.0.2.1]", "bob" },
	{ "\xc3\xa9l\xc3\xa8ve@example.org", "\xc3\xa9l\xc3\xa8ve" },
};

static void encode_begin(struct buf *b, const char *qid, const char *sender,
                         const struct store_recipient *r, size_t n, const char *received)
{
	buf_init(b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(b, 42, qid, sender, r, n, received, NULL, NULL, NULL), 0);
}

/* Decodes a whole frame as the store would. */
static enum frame_status decode_begin(const struct buf *b, struct frame_begin *fb)
{
	enum frame_type type;
	size_t len;
	const char *why;
	enum frame_status st = frame_header_decode((const uint8_t *)b->data, b->len, FRAME_FROM_CLIENT,
	                                           &type, &len, &why);
	if (st != FRAME_OK)
		return st;
	assert_int_equal(type, FRAME_BEGIN);
	assert_int_equal(len, b->len - FRAME_HEADER_LEN);
	return frame_decode_begin((const uint8_t *)b->data + FRAME_HEADER_LEN, len, fb, &why);
}

static void assert_str(struct frame_str s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static void test_begin_round_trip(void **state)
{
	struct buf b;
	const char *received = "Received: from a (b [192.0.2.9])\n\tby mx; Sat, 23 Nov 2024\n";
	encode_begin(&b, "0123abcdXYZ-_", "sender@example.com", rcpts3, 3, received);
	struct frame_begin fb;
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_int_equal(fb.txn, 42);
	assert_str(fb.qid, "0123abcdXYZ-_");
	assert_str(fb.sender, "sender@example.com");
	assert_str(fb.received, received);
	assert_int_equal(fb.nrcpts, 3);
	size_t pos = 0;
	for (size_t i = 0; i < 3; i++) {
		struct frame_str a, m;
		frame_begin_rcpt(&fb, &pos, &a, &m);
		assert_str(a, rcpts3[i].address);
		assert_str(m, rcpts3[i].mailbox);
	}
	assert_int_equal(pos, fb.rcpts_len);
	assert_null(frame_begin_check(&fb));
	buf_free(&b);
}

static void test_begin_null_sender_empty_received(void **state)
{
	struct buf b;
	encode_begin(&b, "q1", "", rcpts3, 1, "");
	struct frame_begin fb;
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_int_equal(fb.sender.len, 0);
	assert_int_equal(fb.received.len, 0);
	assert_null(frame_begin_check(&fb));
	buf_free(&b);
}

static void test_begin_encode_refuses(void **state)
{
	struct buf b;
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	char longqid[FRAME_QID_MAX + 2];
	memset(longqid, 'q', sizeof(longqid) - 1);
	longqid[sizeof(longqid) - 1] = '\0';
	char *longaddr = malloc(FRAME_ADDRESS_MAX + 2);
	memset(longaddr, 'a', FRAME_ADDRESS_MAX + 1);
	longaddr[FRAME_ADDRESS_MAX + 1] = '\0';
	struct store_recipient bad_addr[] = { { longaddr, "box" } };
	struct store_recipient empty_box[] = { { "a@b", "" } };
	struct store_recipient null_addr[] = { { NULL, "box" } };

	assert_int_equal(frame_encode_begin(&b, 1, "q", "s", rcpts3, 0, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "q", "s", rcpts3, FRAME_RCPTS_MAX + 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "", "s", rcpts3, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, longqid, "s", rcpts3, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "q", longaddr, rcpts3, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "q", "s", bad_addr, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "q", "s", empty_box, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "q", "s", null_addr, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(frame_encode_begin(&b, 1, "q", NULL, rcpts3, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(b.len, 0);
	/* A refused encode leaves what was there before. */
	assert_int_equal(buf_append(&b, "xy", 2), 0);
	assert_int_equal(frame_encode_begin(&b, 1, "", "s", rcpts3, 1, "", NULL, NULL, NULL), -1);
	assert_int_equal(b.len, 2);
	free(longaddr);
	buf_free(&b);
}

static void test_fixed_frames_round_trip(void **state)
{
	uint8_t f[FRAME_RESULT_LEN];
	enum frame_type type;
	size_t len;
	uint64_t txn, v;
	enum store_result r;
	const char *why;

	frame_encode_txn(f, FRAME_COMMIT, UINT64_C(0x0102030405060708));
	assert_int_equal(frame_header_decode(f, FRAME_TXN_LEN, FRAME_FROM_CLIENT, &type, &len, &why),
	                 FRAME_OK);
	assert_int_equal(type, FRAME_COMMIT);
	assert_int_equal(frame_decode_txn(f + FRAME_HEADER_LEN, len, &txn, &why), FRAME_OK);
	assert_true(txn == UINT64_C(0x0102030405060708));

	frame_encode_txn(f, FRAME_ABORT, 7);
	assert_int_equal(frame_header_decode(f, FRAME_TXN_LEN, FRAME_FROM_CLIENT, &type, &len, &why),
	                 FRAME_OK);
	assert_int_equal(type, FRAME_ABORT);

	for (int i = STORE_OK; i <= STORE_NOSPACE; i++) {
		frame_encode_result(f, 99, (enum store_result)i);
		assert_int_equal(frame_header_decode(f, FRAME_RESULT_LEN, FRAME_FROM_STORE, &type, &len,
		                                     &why), FRAME_OK);
		assert_int_equal(type, FRAME_RESULT);
		assert_int_equal(frame_decode_result(f + FRAME_HEADER_LEN, len, &txn, &r, &why), FRAME_OK);
		assert_int_equal(txn, 99);
		assert_int_equal(r, i);
	}

	frame_encode_space(f, UINT64_MAX - 1);
	assert_int_equal(frame_header_decode(f, FRAME_SPACE_LEN, FRAME_FROM_STORE, &type, &len, &why),
	                 FRAME_OK);
	assert_int_equal(type, FRAME_SPACE);
	assert_int_equal(frame_decode_space(f + FRAME_HEADER_LEN, len, &v, &why), FRAME_OK);
	assert_true(v == UINT64_MAX - 1);
}

static void test_data_round_trip(void **state)
{
	uint8_t f[FRAME_DATA_HEADER_LEN + 5];
	frame_encode_data_header(f, 5, 5);
	memcpy(f + FRAME_DATA_HEADER_LEN, "hello", 5);
	enum frame_type type;
	size_t len;
	const char *why, *data;
	size_t data_len;
	uint64_t txn;
	assert_int_equal(frame_header_decode(f, sizeof(f), FRAME_FROM_CLIENT, &type, &len, &why),
	                 FRAME_OK);
	assert_int_equal(type, FRAME_DATA);
	assert_int_equal(len, 13);
	assert_int_equal(frame_decode_data(f + FRAME_HEADER_LEN, len, &txn, &data, &data_len, &why),
	                 FRAME_OK);
	assert_int_equal(txn, 5);
	assert_int_equal(data_len, 5);
	assert_memory_equal(data, "hello", 5);
}

static void header(uint8_t *p, uint32_t len, uint8_t type)
{
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[4] = type;
}

static void test_header_malformed(void **state)
{
	static const struct {
		uint32_t len;
		uint8_t type;
		unsigned allowed;
	} bad[] = {
		{ 8, 0, FRAME_FROM_CLIENT },                   /* no type 0 */
		{ 8, 9, FRAME_FROM_CLIENT | FRAME_FROM_STORE },/* unknown type */
		{ 9, FRAME_ANSWER, FRAME_FROM_CLIENT },         /* store's frame from the client */
		{ 30, FRAME_ASK, FRAME_FROM_STORE },            /* client's frame from the store */
		{ 8 + FRAME_KEY_LEN + 2, FRAME_ASK, FRAME_FROM_CLIENT }, /* empty mailbox */
		{ FRAME_ASK_MAX + 1, FRAME_ASK, FRAME_FROM_CLIENT },
		{ 8, FRAME_ANSWER, FRAME_FROM_STORE },
		{ 8, 255, FRAME_FROM_CLIENT },
		{ 9, FRAME_RESULT, FRAME_FROM_CLIENT },         /* store's frame from the client */
		{ 8, FRAME_SPACE, FRAME_FROM_CLIENT },
		{ 8, FRAME_COMMIT, FRAME_FROM_STORE },          /* client's frame from the store */
		{ 30, FRAME_BEGIN, FRAME_FROM_STORE },
		{ 9, FRAME_COMMIT, FRAME_FROM_CLIENT },         /* fixed lengths */
		{ 7, FRAME_ABORT, FRAME_FROM_CLIENT },
		{ 8, FRAME_RESULT, FRAME_FROM_STORE },
		{ 10, FRAME_RESULT, FRAME_FROM_STORE },
		{ 0, FRAME_SPACE, FRAME_FROM_STORE },
		{ 8, FRAME_DATA, FRAME_FROM_CLIENT },           /* empty DATA */
		{ 8 + FRAME_DATA_MAX + 1, FRAME_DATA, FRAME_FROM_CLIENT },
		{ 26, FRAME_BEGIN, FRAME_FROM_CLIENT },         /* shorter than any BEGIN */
		{ FRAME_BEGIN_MAX + 1, FRAME_BEGIN, FRAME_FROM_CLIENT },
		{ UINT32_MAX, FRAME_BEGIN, FRAME_FROM_CLIENT },
		{ UINT32_MAX, FRAME_DATA, FRAME_FROM_CLIENT },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t h[FRAME_HEADER_LEN];
		enum frame_type type;
		size_t len;
		const char *why = NULL;
		header(h, bad[i].len, bad[i].type);
		assert_int_equal(frame_header_decode(h, sizeof(h), bad[i].allowed, &type, &len, &why),
		                 FRAME_ERROR);
		assert_non_null(why);
	}
	/* Not enough octets for a header yet. */
	uint8_t h[FRAME_HEADER_LEN];
	enum frame_type type;
	size_t len;
	header(h, 8, FRAME_COMMIT);
	for (size_t n = 0; n < FRAME_HEADER_LEN; n++)
		assert_int_equal(frame_header_decode(h, n, FRAME_FROM_CLIENT, &type, &len, NULL),
		                 FRAME_NEED_MORE);
	/* Largest legal ones. */
	header(h, 8 + FRAME_DATA_MAX, FRAME_DATA);
	assert_int_equal(frame_header_decode(h, 5, FRAME_FROM_CLIENT, &type, &len, NULL), FRAME_OK);
	header(h, FRAME_BEGIN_MAX, FRAME_BEGIN);
	assert_int_equal(frame_header_decode(h, 5, FRAME_FROM_CLIENT, &type, &len, NULL), FRAME_OK);
}

static void test_begin_truncated_everywhere(void **state)
{
	struct buf b;
	encode_begin(&b, "qid1", "s@x", rcpts3, 3, "Received: x\n");
	const uint8_t *body = (const uint8_t *)b.data + FRAME_HEADER_LEN;
	size_t len = b.len - FRAME_HEADER_LEN;
	struct frame_begin fb;
	const char *why;
	/* Every shorter body is malformed, and so is one with an extra octet. */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(frame_decode_begin(body, n, &fb, &why), FRAME_ERROR);
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, body, len);
	longer[len] = 0;
	assert_int_equal(frame_decode_begin(longer, len + 1, &fb, &why), FRAME_ERROR);
	free(longer);
	assert_int_equal(frame_decode_begin(body, len, &fb, &why), FRAME_OK);
	buf_free(&b);
}

/* Offsets inside the body of a BEGIN from encode_begin(.., "q", "s", 1 rcpt "a"/"m", "r\n"):
 *  0 txn(8) 8 qidlen(2) 10 'q' 11 senderlen(2) 13 's' 14 n(4) 18 alen(2) 20 'a'
 * 21 mlen(2) 23 'm' 24 rlen(4) 28 'r' 29 '\n' 30 signerlen(2)  (32 octets) */
static void test_begin_fields_malformed(void **state)
{
	static const struct store_recipient one[] = { { "a", "m" } };
	static const struct {
		size_t off;
		uint8_t val;
	} pokes[] = {
		{ 9, 0 },     /* empty qid */
		{ 9, 200 },   /* qid length past the body */
		{ 10, 0 },    /* NUL in qid */
		{ 13, 0 },    /* NUL in sender */
		{ 17, 0 },    /* zero recipients */
		{ 17, 2 },    /* more recipients than present */
		{ 14, 1 },    /* recipient count over FRAME_RCPTS_MAX */
		{ 19, 0 },    /* empty address */
		{ 20, 0 },    /* NUL in address */
		{ 23, 0 },    /* NUL in mailbox */
		{ 27, 3 },    /* received longer than the body */
		{ 27, 1 },    /* received shorter: trailing octet */
		{ 24, 1 },    /* received length over FRAME_RECEIVED_MAX */
		{ 28, 0 },    /* NUL in received */
		{ 31, 1 },    /* signer longer than the body */
		{ 30, 0x20 }, /* signer length over FRAME_SIGNER_MAX */
		{ 33, 1 },    /* client address longer than the body */
		{ 32, 1 },    /* client address length over FRAME_CLIENT_IP_MAX */
		{ 35, 1 },    /* helo longer than the body */
		{ 34, 0x10 }, /* helo length over FRAME_HELO_MAX */
	};
	struct buf b;
	encode_begin(&b, "q", "s", one, 1, "r\n");
	size_t len = b.len - FRAME_HEADER_LEN;
	assert_int_equal(len, 36);
	uint8_t body[36];
	struct frame_begin fb;
	const char *why;
	memcpy(body, b.data + FRAME_HEADER_LEN, len);
	assert_int_equal(frame_decode_begin(body, len, &fb, &why), FRAME_OK);
	for (size_t i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
		memcpy(body, b.data + FRAME_HEADER_LEN, len);
		body[pokes[i].off] = pokes[i].val;
		why = NULL;
		assert_int_equal(frame_decode_begin(body, len, &fb, &why), FRAME_ERROR);
		assert_non_null(why);
	}
	buf_free(&b);
}

static void test_result_malformed(void **state)
{
	uint8_t f[FRAME_RESULT_LEN];
	uint64_t txn;
	enum store_result r;
	const char *why;
	frame_encode_result(f, 1, STORE_OK);
	f[FRAME_RESULT_LEN - 1] = 3;
	assert_int_equal(frame_decode_result(f + FRAME_HEADER_LEN, 9, &txn, &r, &why), FRAME_ERROR);
	f[FRAME_RESULT_LEN - 1] = 255;
	assert_int_equal(frame_decode_result(f + FRAME_HEADER_LEN, 9, &txn, &r, &why), FRAME_ERROR);
	assert_int_equal(frame_decode_result(f + FRAME_HEADER_LEN, 8, &txn, &r, &why), FRAME_ERROR);
	assert_int_equal(frame_decode_txn(f + FRAME_HEADER_LEN, 9, &txn, &why), FRAME_ERROR);
	assert_int_equal(frame_decode_space(f + FRAME_HEADER_LEN, 9, &txn, &why), FRAME_ERROR);
	const char *data;
	size_t dl;
	assert_int_equal(frame_decode_data(f + FRAME_HEADER_LEN, 8, &txn, &data, &dl, &why), FRAME_ERROR);
}

/* ASK and ANSWER (issue 8, item 4: the mailbox question at RCPT). */
static void test_ask_answer(void **state)
{
	struct buf b;
	buf_init(&b, 4096);
	uint8_t key[FRAME_KEY_LEN];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7);
	assert_int_equal(frame_encode_ask(&b, 77, key, "bob"), 0);
	enum frame_type type;
	size_t len;
	const char *why = NULL;
	assert_int_equal(frame_header_decode((uint8_t *)b.data, b.len, FRAME_FROM_CLIENT, &type, &len,
	                                     &why),
	                 FRAME_OK);
	assert_int_equal(type, FRAME_ASK);
	assert_int_equal(len, b.len - FRAME_HEADER_LEN);
	uint64_t q;
	const uint8_t *k;
	struct frame_str mb;
	const uint8_t *body = (uint8_t *)b.data + FRAME_HEADER_LEN;
	assert_int_equal(frame_decode_ask(body, len, &q, &k, &mb, &why), FRAME_OK);
	assert_int_equal(q, 77);
	assert_memory_equal(k, key, sizeof(key));
	assert_int_equal(mb.len, 3);
	assert_memory_equal(mb.p, "bob", 3);
	/* Truncated anywhere, or with a trailing octet: malformed. */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(frame_decode_ask(body, n, &q, &k, &mb, &why), FRAME_ERROR);
	buf_append(&b, "x", 1);
	assert_int_equal(frame_decode_ask(body, len + 1, &q, &k, &mb, &why), FRAME_ERROR);
	/* What the format cannot carry is refused at encoding. */
	buf_reset(&b);
	char longname[FRAME_MAILBOX_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(frame_encode_ask(&b, 1, key, ""), -1);
	assert_int_equal(frame_encode_ask(&b, 1, key, longname), -1);
	longname[FRAME_MAILBOX_MAX] = '\0';
	assert_int_equal(frame_encode_ask(&b, 1, key, longname), 0);
	buf_free(&b);

	uint8_t f[FRAME_ANSWER_LEN];
	enum store_mailbox_answer a;
	frame_encode_answer(f, 78, STORE_MAILBOX_LIMIT_TOTAL);
	assert_int_equal(frame_header_decode(f, sizeof(f), FRAME_FROM_STORE, &type, &len, &why),
	                 FRAME_OK);
	assert_int_equal(type, FRAME_ANSWER);
	assert_int_equal(frame_decode_answer(f + FRAME_HEADER_LEN, len, &q, &a, &why), FRAME_OK);
	assert_int_equal(q, 78);
	assert_int_equal(a, STORE_MAILBOX_LIMIT_TOTAL);
	f[FRAME_ANSWER_LEN - 1] = STORE_MAILBOX_ERROR + 1;
	assert_int_equal(frame_decode_answer(f + FRAME_HEADER_LEN, 9, &q, &a, &why), FRAME_ERROR);
	assert_int_equal(frame_decode_answer(f + FRAME_HEADER_LEN, 8, &q, &a, &why), FRAME_ERROR);
}

/* Well-formed frames whose content the store must still refuse. */
static void test_begin_check(void **state)
{
	static const struct {
		const char *qid, *sender, *address, *mailbox, *received;
		bool ok;
	} cases[] = {
		{ "Q1", "s@x", "a@x", "alice", "R: x\n", true },
		{ "Q1", "", "a+tag@x", "alice", "", true },
		{ "Q1", "\"a b\"@x", "a@x", "a b", "R: x\n\ty\n", true },
		{ "Q1", "s@x", "a@x", "\xc3\xa9l\xc3\xa8ve", "R: x\n", true },
		{ "Q1", "s@x", "a@x", "a..b", "R: x\n", true },
		{ "Q1", "s@x", "a@x", "a/b", "R: x\n", false },
		{ "Q1", "s@x", "a@x", "/etc", "R: x\n", false },
		{ "Q1", "s@x", "a@x", "..", "R: x\n", false },
		{ "Q1", "s@x", "a@x", ".", "R: x\n", false },
		{ "Q1", "s@x", "a@x", ".hidden", "R: x\n", false },
		{ "Q1", "s@x", "a@x", "a\nb", "R: x\n", false },
		{ "Q1", "s@x", "a@x", "a\x7f", "R: x\n", false },
		{ "Q1", "s@x", "a@x", "a\tb", "R: x\n", false },
		{ "Q.1", "s@x", "a@x", "a", "R: x\n", false },
		{ "Q/1", "s@x", "a@x", "a", "R: x\n", false },
		{ "Q:1", "s@x", "a@x", "a", "R: x\n", false },
		{ "Q,1", "s@x", "a@x", "a", "R: x\n", false },
		{ "Q1", "s@x\nBcc: v@x", "a@x", "a", "R: x\n", false },
		{ "Q1", "s@x", "a@x\r", "a", "R: x\n", false },
		{ "Q1", "s@x", "a@x", "a", "R: x", false },
		{ "Q1", "s@x", "a@x", "a", "R: x\r\n", false },
		{ "Q1", "s@x", "a@x", "a", "R: \x01x\n", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_recipient r = { cases[i].address, cases[i].mailbox };
		struct buf b;
		encode_begin(&b, cases[i].qid, cases[i].sender, &r, 1, cases[i].received);
		struct frame_begin fb;
		assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
		const char *why = frame_begin_check(&fb);
		if (cases[i].ok)
			assert_null(why);
		else
			assert_non_null(why);
		buf_free(&b);
	}
	/* One bad mailbox among good ones is enough. */
	struct store_recipient mixed[] = { { "a@x", "a" }, { "b@x", "../b" }, { "c@x", "c" } };
	struct buf b;
	encode_begin(&b, "Q1", "s", mixed, 3, "");
	struct frame_begin fb;
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_string_equal(frame_begin_check(&fb), "mailbox name unsafe");
	buf_free(&b);
}

/* Issue 10: a NULL mailbox is a relayed recipient, sent as "" and
 * accepted by the check; an empty (non-NULL) name is still refused. */
static void test_begin_relay_recipient(void **state)
{
	struct store_recipient mixed[] = { { "a@x", "alice" }, { "far@example.net", NULL } };
	struct buf b;
	encode_begin(&b, "Q1", "s@x", mixed, 2, "R: x\n");
	struct frame_begin fb;
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	size_t pos = 0;
	struct frame_str a, m;
	frame_begin_rcpt(&fb, &pos, &a, &m);
	assert_str(m, "alice");
	frame_begin_rcpt(&fb, &pos, &a, &m);
	assert_str(a, "far@example.net");
	assert_int_equal(m.len, 0);
	assert_null(frame_begin_check(&fb));
	buf_free(&b);

	struct store_recipient only[] = { { "far@example.net", NULL } };
	encode_begin(&b, "Q2", "", only, 1, "");
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_null(frame_begin_check(&fb));
	buf_free(&b);

	/* A relayed address is still checked: it becomes an envelope line. */
	struct store_recipient bad[] = { { "far@x\nrcpt", NULL } };
	encode_begin(&b, "Q3", "", bad, 1, "");
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_non_null(frame_begin_check(&fb));
	buf_free(&b);
}

/* Issue 11: the signer (a login's senders field, for DKIM) travels in
 * BEGIN; absent it decodes empty, over FRAME_SIGNER_MAX it does not
 * encode, a control octet fails the check. */
static void test_begin_signer(void **state)
{
	struct store_recipient only[] = { { "far@example.net", NULL } };
	struct buf b;
	struct frame_begin fb;
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 7, "S1", "a@example.test", only, 1, "R: x\n",
	                                    "@example.test, bob@example.org", NULL, NULL), 0);
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_str(fb.signer, "@example.test, bob@example.org");
	assert_null(frame_begin_check(&fb));
	buf_free(&b);

	encode_begin(&b, "S2", "", only, 1, "");
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_int_equal(fb.signer.len, 0);
	buf_free(&b);

	char *big = malloc(FRAME_SIGNER_MAX + 2);
	memset(big, 'a', FRAME_SIGNER_MAX + 1);
	big[FRAME_SIGNER_MAX + 1] = '\0';
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 8, "S3", "", only, 1, "", big, NULL, NULL), -1);
	big[FRAME_SIGNER_MAX] = '\0';
	assert_int_equal(frame_encode_begin(&b, 8, "S3", "", only, 1, "", big, NULL, NULL), 0);
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_int_equal(fb.signer.len, FRAME_SIGNER_MAX);
	buf_free(&b);
	free(big);

	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 9, "S4", "", only, 1, "", "@x\r\nX: y", NULL, NULL), 0);
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_string_equal(frame_begin_check(&fb), "signer holds a control octet");
	buf_free(&b);
}

static void test_mailbox_safe(void **state)
{
	assert_true(frame_mailbox_safe("alice", 5));
	assert_false(frame_mailbox_safe("", 0));
	assert_false(frame_mailbox_safe("a/", 2));
	assert_false(frame_mailbox_safe(".", 1));
	char longname[FRAME_MAILBOX_MAX + 1];
	memset(longname, 'x', sizeof(longname));
	assert_true(frame_mailbox_safe(longname, FRAME_MAILBOX_MAX));
	assert_false(frame_mailbox_safe(longname, FRAME_MAILBOX_MAX + 1));
}

/* With RAWMAIL_SEED_DIR set: a few valid frame streams as seeds for
 * tests/fuzz/fuzz_store_frame.c (first byte 0: read as the store does). */
static void write_seeds(const char *dir)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_append(&b, "\0", 1);
	if (frame_encode_begin(&b, 42, "0123abcdXYZ-_", "sender@example.com", rcpts3, 3,
	                       "Received: from a (b [192.0.2.9])\n\tby mx; Sat, 23 Nov 2024\n",
	                       "@example.com", NULL, NULL) != 0)
		return;
	uint8_t hdr[FRAME_DATA_HEADER_LEN], txn[FRAME_TXN_LEN];
	frame_encode_data_header(hdr, 42, 5);
	buf_append(&b, hdr, sizeof(hdr));
	buf_append(&b, "hello", 5);
	frame_encode_txn(txn, FRAME_COMMIT, 42);
	buf_append(&b, txn, sizeof(txn));
	char path[4096];
	snprintf(path, sizeof(path), "%s/frame-client", dir);
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(b.data, 1, b.len, f);
		fclose(f);
	}
	uint8_t res[FRAME_RESULT_LEN], space[FRAME_SPACE_LEN];
	frame_encode_result(res, 42, STORE_OK);
	frame_encode_space(space, 123456);
	snprintf(path, sizeof(path), "%s/frame-store", dir);
	f = fopen(path, "wb");
	if (f) {
		fputc(1, f);
		fwrite(res, 1, sizeof(res), f);
		fwrite(space, 1, sizeof(space), f);
		fclose(f);
	}
	buf_free(&b);
}

/* The client's address and HELO (issue 12, for the outbox's events): any
 * octet but NUL in a HELO, cut at FRAME_HELO_MAX; an address that is not
 * one fails the message (frame_begin_check), a too long one the frame. */
static void test_begin_client(void **state)
{
	static const struct store_recipient only[] = { { "a@example.test", "a" } };
	struct buf b;
	struct frame_begin fb;
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	const char *helo = "my laptop \x01\x7f\xc3\xa9\r\n";
	assert_int_equal(frame_encode_begin(&b, 7, "C1", "", only, 1, "", NULL, "2001:db8::1", helo),
	                 0);
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_str(fb.client_ip, "2001:db8::1");
	assert_str(fb.helo, helo);
	assert_null(frame_begin_check(&fb));
	buf_free(&b);

	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 7, "C1", "", only, 1, "", NULL, "192.0.2.1", NULL), 0);
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_str(fb.client_ip, "192.0.2.1");
	assert_str(fb.helo, "");
	assert_null(frame_begin_check(&fb));
	buf_free(&b);

	static const char *const not_ip[] = { "localhost", "192.0.2.1 ", "[192.0.2.1]",
		                              "fe80::1%eth0", "01.2.3.4", "1.2.3.4\n" };
	for (size_t i = 0; i < sizeof(not_ip) / sizeof(not_ip[0]); i++) {
		buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
		assert_int_equal(frame_encode_begin(&b, 7, "C1", "", only, 1, "", NULL, not_ip[i], ""),
		                 0);
		assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
		assert_string_equal(frame_begin_check(&fb), "client address not an IP address");
		buf_free(&b);
	}

	char longip[FRAME_CLIENT_IP_MAX + 2];
	memset(longip, '1', sizeof(longip) - 1);
	longip[sizeof(longip) - 1] = '\0';
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 7, "C1", "", only, 1, "", NULL, longip, ""), -1);
	buf_free(&b);

	char *longhelo = malloc(FRAME_HELO_MAX + 10);
	memset(longhelo, 'h', FRAME_HELO_MAX + 9);
	longhelo[FRAME_HELO_MAX + 9] = '\0';
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 7, "C1", "", only, 1, "", NULL, "::1", longhelo), 0);
	assert_int_equal(decode_begin(&b, &fb), FRAME_OK);
	assert_int_equal(fb.helo.len, FRAME_HELO_MAX);
	buf_free(&b);
	free(longhelo);
}

int main(void)
{
	if (getenv("RAWMAIL_SEED_DIR"))
		write_seeds(getenv("RAWMAIL_SEED_DIR"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_round_trip),
		cmocka_unit_test(test_begin_null_sender_empty_received),
		cmocka_unit_test(test_begin_encode_refuses),
		cmocka_unit_test(test_fixed_frames_round_trip),
		cmocka_unit_test(test_data_round_trip),
		cmocka_unit_test(test_header_malformed),
		cmocka_unit_test(test_begin_truncated_everywhere),
		cmocka_unit_test(test_begin_fields_malformed),
		cmocka_unit_test(test_result_malformed),
		cmocka_unit_test(test_ask_answer),
		cmocka_unit_test(test_begin_check),
		cmocka_unit_test(test_begin_relay_recipient),
		cmocka_unit_test(test_begin_signer),
		cmocka_unit_test(test_mailbox_safe),
		cmocka_unit_test(test_begin_client),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
