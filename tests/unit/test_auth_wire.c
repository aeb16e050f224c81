/* The auth wire format (auth/wire.c): round trips of both frames, their
 * bounds, and the malformed frames a peer could send (each one a protocol
 * error, never a crash).  Seeds tests/fuzz/fuzz_auth_wire.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "auth/wire.h"

static const uint8_t key4[AUTH_WIRE_KEY_LEN] = { 4, 192, 0, 2, 7 };

static void test_check_round_trip(void **state)
{
	uint8_t f[AUTH_WIRE_CHECK_FRAME_MAX];
	/* A password may hold any octet but NUL: spaces, CR LF, 8-bit. */
	const char pw[] = "p a\r\n\xff:ss";
	size_t n = auth_wire_encode_check(f, 0x0102030405060708ull, key4, "alice", 5, pw,
	                                  sizeof(pw) - 1);
	assert_int_equal(n, AUTH_WIRE_HEADER_LEN + AUTH_WIRE_CHECK_MIN + 5 + sizeof(pw) - 1);
	size_t body_len;
	const char *why = NULL;
	assert_int_equal(auth_wire_header_decode(f, n, AUTH_WIRE_CHECK, &body_len, &why),
	                 AUTH_WIRE_DONE);
	assert_int_equal(body_len, n - AUTH_WIRE_HEADER_LEN);
	struct auth_wire_check c;
	assert_int_equal(auth_wire_decode_check(f + AUTH_WIRE_HEADER_LEN, body_len, &c, &why),
	                 AUTH_WIRE_DONE);
	assert_true(c.id == 0x0102030405060708ull);
	assert_memory_equal(c.key, key4, AUTH_WIRE_KEY_LEN);
	assert_int_equal(c.user_len, 5);
	assert_memory_equal(c.user, "alice", 5);
	assert_int_equal(c.password_len, sizeof(pw) - 1);
	assert_memory_equal(c.password, pw, sizeof(pw) - 1);
	/* Read by the other side, it is a protocol error. */
	assert_int_equal(auth_wire_header_decode(f, n, AUTH_WIRE_ANSWER, &body_len, &why),
	                 AUTH_WIRE_ERROR);
}

static void test_check_bounds(void **state)
{
	uint8_t f[AUTH_WIRE_CHECK_FRAME_MAX];
	static char user[AUTH_WIRE_USER_MAX + 1], pw[AUTH_WIRE_PASSWORD_MAX + 1];
	memset(user, 'u', sizeof(user));
	memset(pw, 'p', sizeof(pw));
	size_t n = auth_wire_encode_check(f, 1, key4, user, AUTH_WIRE_USER_MAX, pw,
	                                  AUTH_WIRE_PASSWORD_MAX);
	assert_int_equal(n, AUTH_WIRE_CHECK_FRAME_MAX);
	size_t body_len;
	const char *why;
	struct auth_wire_check c;
	assert_int_equal(auth_wire_header_decode(f, n, AUTH_WIRE_CHECK, &body_len, &why),
	                 AUTH_WIRE_DONE);
	assert_int_equal(auth_wire_decode_check(f + 5, body_len, &c, &why), AUTH_WIRE_DONE);
	/* One over either bound, or a NUL, cannot be said. */
	assert_int_equal(auth_wire_encode_check(f, 1, key4, user, AUTH_WIRE_USER_MAX + 1, pw, 1), 0);
	assert_int_equal(auth_wire_encode_check(f, 1, key4, user, 1, pw, AUTH_WIRE_PASSWORD_MAX + 1),
	                 0);
	assert_int_equal(auth_wire_encode_check(f, 1, key4, "a\0b", 3, "x", 1), 0);
	assert_int_equal(auth_wire_encode_check(f, 1, key4, "ab", 2, "x\0y", 3), 0);
	/* Empty strings can be said (the auth process answers FAIL). */
	n = auth_wire_encode_check(f, 2, key4, "", 0, "", 0);
	assert_int_equal(n, AUTH_WIRE_HEADER_LEN + AUTH_WIRE_CHECK_MIN);
	assert_int_equal(auth_wire_decode_check(f + 5, n - 5, &c, &why), AUTH_WIRE_DONE);
	assert_int_equal(c.user_len + c.password_len, 0);
}

static void test_answer_round_trip(void **state)
{
	uint8_t f[AUTH_WIRE_ANSWER_FRAME_MAX];
	const char *s = "bob@example.org,@example.net";
	size_t n = auth_wire_encode_answer(f, 9, AUTH_WIRE_OK, s, strlen(s));
	assert_int_equal(n, AUTH_WIRE_HEADER_LEN + AUTH_WIRE_ANSWER_MIN + strlen(s));
	size_t body_len;
	const char *why;
	assert_int_equal(auth_wire_header_decode(f, n, AUTH_WIRE_ANSWER, &body_len, &why),
	                 AUTH_WIRE_DONE);
	struct auth_wire_answer a;
	assert_int_equal(auth_wire_decode_answer(f + 5, body_len, &a, &why), AUTH_WIRE_DONE);
	assert_true(a.id == 9);
	assert_int_equal(a.result, AUTH_WIRE_OK);
	assert_int_equal(a.senders_len, strlen(s));
	assert_memory_equal(a.senders, s, strlen(s));
	for (int r = AUTH_WIRE_OK; r <= AUTH_WIRE_TEMPFAIL; r++) {
		n = auth_wire_encode_answer(f, 10, (enum auth_wire_result)r, NULL, 0);
		assert_int_equal(n, AUTH_WIRE_HEADER_LEN + AUTH_WIRE_ANSWER_MIN);
		assert_int_equal(auth_wire_decode_answer(f + 5, n - 5, &a, &why), AUTH_WIRE_DONE);
		assert_int_equal(a.result, r);
		assert_int_equal(a.senders_len, 0);
	}
	/* Senders only with a yes, and only a real senders field. */
	assert_int_equal(auth_wire_encode_answer(f, 1, AUTH_WIRE_FAIL, s, strlen(s)), 0);
	assert_int_equal(auth_wire_encode_answer(f, 1, AUTH_WIRE_OK, "no spaces?", 10), 0);
	assert_int_equal(auth_wire_encode_answer(f, 1, (enum auth_wire_result)3, NULL, 0), 0);
}

static void test_header_malformed(void **state)
{
	uint8_t h[AUTH_WIRE_HEADER_LEN] = { 0, 0, 0, AUTH_WIRE_CHECK_MIN, AUTH_WIRE_CHECK };
	size_t body_len;
	const char *why;
	for (size_t i = 0; i < AUTH_WIRE_HEADER_LEN; i++)
		assert_int_equal(auth_wire_header_decode(h, i, AUTH_WIRE_CHECK, &body_len, &why),
		                 AUTH_WIRE_NEED_MORE);
	assert_int_equal(auth_wire_header_decode(h, 5, AUTH_WIRE_CHECK, &body_len, &why),
	                 AUTH_WIRE_DONE);
	h[3] = AUTH_WIRE_CHECK_MIN - 1;
	assert_int_equal(auth_wire_header_decode(h, 5, AUTH_WIRE_CHECK, &body_len, &why),
	                 AUTH_WIRE_ERROR);
	/* Over the bound: refused before the body is buffered. */
	uint32_t big = AUTH_WIRE_CHECK_MAX + 1;
	h[0] = 0, h[1] = (uint8_t)(big >> 16), h[2] = (uint8_t)(big >> 8), h[3] = (uint8_t)big;
	assert_int_equal(auth_wire_header_decode(h, 5, AUTH_WIRE_CHECK, &body_len, &why),
	                 AUTH_WIRE_ERROR);
	h[0] = 0xff;
	assert_int_equal(auth_wire_header_decode(h, 5, AUTH_WIRE_CHECK, &body_len, &why),
	                 AUTH_WIRE_ERROR);
	uint8_t t[AUTH_WIRE_HEADER_LEN] = { 0, 0, 0, AUTH_WIRE_ANSWER_MIN, 0 };
	for (unsigned type = 0; type < 256; type++) {
		t[4] = (uint8_t)type;
		enum auth_wire_status st =
			auth_wire_header_decode(t, 5, AUTH_WIRE_ANSWER, &body_len, &why);
		assert_int_equal(st, type == AUTH_WIRE_ANSWER ? AUTH_WIRE_DONE : AUTH_WIRE_ERROR);
	}
}

static void test_check_body_malformed(void **state)
{
	uint8_t f[AUTH_WIRE_CHECK_FRAME_MAX];
	size_t n = auth_wire_encode_check(f, 3, key4, "bob", 3, "secret", 6);
	uint8_t *b = f + AUTH_WIRE_HEADER_LEN;
	size_t len = n - AUTH_WIRE_HEADER_LEN;
	struct auth_wire_check c;
	const char *why;
	/* Every truncation and one octet too many. */
	for (size_t i = 0; i < len; i++)
		assert_int_equal(auth_wire_decode_check(b, i, &c, &why), AUTH_WIRE_ERROR);
	uint8_t longer[AUTH_WIRE_CHECK_MAX + 1];
	memcpy(longer, b, len);
	longer[len] = 'x';
	assert_int_equal(auth_wire_decode_check(longer, len + 1, &c, &why), AUTH_WIRE_ERROR);
	/* A key of an unknown family. */
	uint8_t bad[64];
	memcpy(bad, b, len);
	bad[8] = 5;
	assert_int_equal(auth_wire_decode_check(bad, len, &c, &why), AUTH_WIRE_ERROR);
	/* A NUL in the user, then in the password. */
	memcpy(bad, b, len);
	bad[8 + AUTH_WIRE_KEY_LEN + 2 + 1] = 0;
	assert_int_equal(auth_wire_decode_check(bad, len, &c, &why), AUTH_WIRE_ERROR);
	memcpy(bad, b, len);
	bad[len - 1] = 0;
	assert_int_equal(auth_wire_decode_check(bad, len, &c, &why), AUTH_WIRE_ERROR);
	/* A user length pointing past the end. */
	memcpy(bad, b, len);
	bad[8 + AUTH_WIRE_KEY_LEN + 1] = 40;
	assert_int_equal(auth_wire_decode_check(bad, len, &c, &why), AUTH_WIRE_ERROR);
	/* A user longer than its bound inside a frame within the total bound. */
	static uint8_t over[AUTH_WIRE_CHECK_MAX];
	memset(over, 'u', sizeof(over));
	memcpy(over, b, 8 + AUTH_WIRE_KEY_LEN);
	size_t u = AUTH_WIRE_USER_MAX + 1, pos = 8 + AUTH_WIRE_KEY_LEN;
	over[pos] = (uint8_t)(u >> 8), over[pos + 1] = (uint8_t)u;
	pos += 2 + u;
	over[pos] = 0, over[pos + 1] = 0;
	assert_int_equal(auth_wire_decode_check(over, pos + 2, &c, &why), AUTH_WIRE_ERROR);
}

static void test_answer_body_malformed(void **state)
{
	uint8_t f[AUTH_WIRE_ANSWER_FRAME_MAX];
	size_t n = auth_wire_encode_answer(f, 3, AUTH_WIRE_OK, "@example.org", 12);
	uint8_t *b = f + AUTH_WIRE_HEADER_LEN;
	size_t len = n - AUTH_WIRE_HEADER_LEN;
	struct auth_wire_answer a;
	const char *why;
	for (size_t i = 0; i < len; i++)
		assert_int_equal(auth_wire_decode_answer(b, i, &a, &why), AUTH_WIRE_ERROR);
	uint8_t bad[64];
	memcpy(bad, b, len);
	bad[8] = 3; /* no such result */
	assert_int_equal(auth_wire_decode_answer(bad, len, &a, &why), AUTH_WIRE_ERROR);
	memcpy(bad, b, len);
	bad[8] = AUTH_WIRE_FAIL; /* senders with a no */
	assert_int_equal(auth_wire_decode_answer(bad, len, &a, &why), AUTH_WIRE_ERROR);
	memcpy(bad, b, len);
	bad[len - 1] = '\n'; /* not a senders field */
	assert_int_equal(auth_wire_decode_answer(bad, len, &a, &why), AUTH_WIRE_ERROR);
	memcpy(bad, b, len);
	bad[len - 1] = 0;
	assert_int_equal(auth_wire_decode_answer(bad, len, &a, &why), AUTH_WIRE_ERROR);
}

static void test_client_key(void **state)
{
	uint8_t k[AUTH_WIRE_KEY_LEN];
	struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons(25) };
	inet_pton(AF_INET, "192.0.2.7", &in4.sin_addr);
	auth_wire_client_key((struct sockaddr *)&in4, k);
	assert_memory_equal(k, key4, AUTH_WIRE_KEY_LEN);
	/* IPv4-mapped IPv6 is the same client. */
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
	auth_wire_client_key((struct sockaddr *)&in6, k);
	assert_memory_equal(k, key4, AUTH_WIRE_KEY_LEN);
	/* Two addresses of one /64 are one client; another /64 is not. */
	uint8_t k2[AUTH_WIRE_KEY_LEN];
	inet_pton(AF_INET6, "2001:db8:1:2::1", &in6.sin6_addr);
	auth_wire_client_key((struct sockaddr *)&in6, k);
	inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &in6.sin6_addr);
	auth_wire_client_key((struct sockaddr *)&in6, k2);
	assert_memory_equal(k, k2, AUTH_WIRE_KEY_LEN);
	assert_int_equal(k[0], 6);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &in6.sin6_addr);
	auth_wire_client_key((struct sockaddr *)&in6, k2);
	assert_memory_not_equal(k, k2, AUTH_WIRE_KEY_LEN);
	/* Any other family: all zeros, still a key the decoder accepts. */
	struct sockaddr un = { .sa_family = AF_UNIX };
	auth_wire_client_key(&un, k);
	uint8_t zero[AUTH_WIRE_KEY_LEN] = { 0 };
	assert_memory_equal(k, zero, AUTH_WIRE_KEY_LEN);
}

/* With RAWMAIL_SEED_DIR: streams of frames for the fuzzer (first octet:
 * even reads as the auth process, odd as the smtp process). */
static void write_seed(const char *dir, const char *name, uint8_t sel, const uint8_t *a,
                       size_t alen, const uint8_t *b, size_t blen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return;
	fputc(sel, f);
	fwrite(a, 1, alen, f);
	fwrite(b, 1, blen, f);
	fclose(f);
}

static void write_seeds(const char *dir)
{
	static uint8_t c1[AUTH_WIRE_CHECK_FRAME_MAX], c2[AUTH_WIRE_CHECK_FRAME_MAX];
	size_t n1 = auth_wire_encode_check(c1, 1, key4, "alice", 5, "secret", 6);
	size_t n2 = auth_wire_encode_check(c2, 2, key4, "bob@example.org", 15, "p\xffw", 3);
	write_seed(dir, "auth-wire-check", 0, c1, n1, c2, n2);
	static uint8_t a1[AUTH_WIRE_ANSWER_FRAME_MAX], a2[AUTH_WIRE_ANSWER_FRAME_MAX];
	n1 = auth_wire_encode_answer(a1, 1, AUTH_WIRE_OK, "a@example.org, @example.net", 27);
	n2 = auth_wire_encode_answer(a2, 2, AUTH_WIRE_FAIL, NULL, 0);
	write_seed(dir, "auth-wire-answer", 1, a1, n1, a2, n2);
}

int main(void)
{
	if (getenv("RAWMAIL_SEED_DIR"))
		write_seeds(getenv("RAWMAIL_SEED_DIR"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_round_trip),
		cmocka_unit_test(test_check_bounds),
		cmocka_unit_test(test_answer_round_trip),
		cmocka_unit_test(test_header_malformed),
		cmocka_unit_test(test_check_body_malformed),
		cmocka_unit_test(test_answer_body_malformed),
		cmocka_unit_test(test_client_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
