/* libFuzzer harness for the auth wire format (src/auth/wire.c), as the
 * auth process reads what the smtp process sends and the smtp process
 * what the auth process sends: a stream of frames, each header checked,
 * each body decoded.  Nothing may read out of bounds; a decoded frame's
 * strings lie inside its body and hold no NUL; and a frame that decodes
 * re-encodes to the same octets.
 *
 * Input: a selector octet (even: CHECK frames, odd: ANSWER frames), then
 * the stream.  Seeds come from tests/unit/test_auth_wire.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void inside(const uint8_t *body, size_t len, const char *s, size_t slen)
{
	if (slen == 0)
		return;
	CHECK((const uint8_t *)s >= body && (const uint8_t *)s + slen <= body + len);
	CHECK(!memchr(s, '\0', slen));
}

static void check_check(const uint8_t *body, size_t len)
{
	struct auth_wire_check c;
	const char *why;
	if (auth_wire_decode_check(body, len, &c, &why) != AUTH_WIRE_DONE)
		return;
	inside(body, len, c.user, c.user_len);
	inside(body, len, c.password, c.password_len);
	CHECK(c.user_len <= AUTH_WIRE_USER_MAX && c.password_len <= AUTH_WIRE_PASSWORD_MAX);
	static uint8_t out[AUTH_WIRE_CHECK_FRAME_MAX];
	size_t n = auth_wire_encode_check(out, c.id, c.key, c.user, c.user_len, c.password,
	                                  c.password_len);
	CHECK(n == AUTH_WIRE_HEADER_LEN + len && !memcmp(out + AUTH_WIRE_HEADER_LEN, body, len));
}

static void check_answer(const uint8_t *body, size_t len)
{
	struct auth_wire_answer a;
	const char *why;
	if (auth_wire_decode_answer(body, len, &a, &why) != AUTH_WIRE_DONE)
		return;
	inside(body, len, a.senders, a.senders_len);
	CHECK(a.senders_len == 0 || a.result == AUTH_WIRE_OK);
	static uint8_t out[AUTH_WIRE_ANSWER_FRAME_MAX];
	size_t n = auth_wire_encode_answer(out, a.id, a.result, a.senders, a.senders_len);
	CHECK(n == AUTH_WIRE_HEADER_LEN + len && !memcmp(out + AUTH_WIRE_HEADER_LEN, body, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum auth_wire_type type = data[0] & 1 ? AUTH_WIRE_ANSWER : AUTH_WIRE_CHECK;
	size_t pos = 1;
	while (pos < size) {
		size_t len;
		const char *why;
		enum auth_wire_status st =
			auth_wire_header_decode(data + pos, size - pos, type, &len, &why);
		if (st != AUTH_WIRE_DONE)
			break;
		pos += AUTH_WIRE_HEADER_LEN;
		if (size - pos < len)
			break;
		/* A copy of exactly the body, so ASan sees any overread. */
		uint8_t *body = malloc(len ? len : 1);
		if (!body)
			return 0;
		memcpy(body, data + pos, len);
		if (type == AUTH_WIRE_CHECK)
			check_check(body, len);
		else
			check_answer(body, len);
		free(body);
		pos += len;
	}
	return 0;
}
