#include "auth/wire.h"

#include <netinet/in.h>
#include <string.h>

#include "auth/users.h"

static void put_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static size_t get_u16(const uint8_t *p)
{
	return ((size_t)p[0] << 8) | p[1];
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return ((uint64_t)get_u32(p) << 32) | get_u32(p + 4);
}

void auth_wire_client_key(const struct sockaddr *sa, uint8_t key[AUTH_WIRE_KEY_LEN])
{
	memset(key, 0, AUTH_WIRE_KEY_LEN);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		key[0] = 4;
		memcpy(key + 1, a->s6_addr + 12, 4);
		return;
	}
	/* One IPv6 customer has a /64: keying /128s would give it 2^64
	 * fresh delays. */
	key[0] = 6;
	memcpy(key + 1, a->s6_addr, 8);
}

static bool str_ok(const char *s, size_t len, size_t max)
{
	return len <= max && (len == 0 || (s && !memchr(s, '\0', len)));
}

size_t auth_wire_encode_check(uint8_t out[AUTH_WIRE_CHECK_FRAME_MAX], uint64_t id,
                              const uint8_t key[AUTH_WIRE_KEY_LEN], const char *user,
                              size_t user_len, const char *password, size_t password_len)
{
	if (!str_ok(user, user_len, AUTH_WIRE_USER_MAX) ||
	    !str_ok(password, password_len, AUTH_WIRE_PASSWORD_MAX))
		return 0;
	size_t body = AUTH_WIRE_CHECK_MIN + user_len + password_len;
	uint8_t *p = out;
	put_u32(p, (uint32_t)body);
	p[4] = AUTH_WIRE_CHECK;
	p += AUTH_WIRE_HEADER_LEN;
	put_u64(p, id);
	p += 8;
	memcpy(p, key, AUTH_WIRE_KEY_LEN);
	p += AUTH_WIRE_KEY_LEN;
	put_u16(p, user_len);
	p += 2;
	if (user_len)
		memcpy(p, user, user_len);
	p += user_len;
	put_u16(p, password_len);
	p += 2;
	if (password_len)
		memcpy(p, password, password_len);
	return AUTH_WIRE_HEADER_LEN + body;
}

size_t auth_wire_encode_answer(uint8_t out[AUTH_WIRE_ANSWER_FRAME_MAX], uint64_t id,
                               enum auth_wire_result r, const char *senders, size_t senders_len)
{
	if (r != AUTH_WIRE_OK && r != AUTH_WIRE_FAIL && r != AUTH_WIRE_TEMPFAIL)
		return 0;
	if (!str_ok(senders, senders_len, AUTH_WIRE_SENDERS_MAX))
		return 0;
	if (senders_len && (r != AUTH_WIRE_OK || auth_senders_check(senders, senders_len)))
		return 0;
	size_t body = AUTH_WIRE_ANSWER_MIN + senders_len;
	uint8_t *p = out;
	put_u32(p, (uint32_t)body);
	p[4] = AUTH_WIRE_ANSWER;
	p += AUTH_WIRE_HEADER_LEN;
	put_u64(p, id);
	p += 8;
	*p++ = (uint8_t)r;
	put_u16(p, senders_len);
	p += 2;
	if (senders_len)
		memcpy(p, senders, senders_len);
	return AUTH_WIRE_HEADER_LEN + body;
}

enum auth_wire_status auth_wire_header_decode(const uint8_t *p, size_t avail,
                                              enum auth_wire_type expected, size_t *body_len,
                                              const char **why)
{
	if (avail < AUTH_WIRE_HEADER_LEN)
		return AUTH_WIRE_NEED_MORE;
	if (p[4] != expected) {
		*why = "unexpected frame type";
		return AUTH_WIRE_ERROR;
	}
	size_t len = get_u32(p);
	size_t min = expected == AUTH_WIRE_CHECK ? AUTH_WIRE_CHECK_MIN : AUTH_WIRE_ANSWER_MIN;
	size_t max = expected == AUTH_WIRE_CHECK ? AUTH_WIRE_CHECK_MAX : AUTH_WIRE_ANSWER_MAX;
	if (len < min || len > max) {
		*why = "frame length out of bounds";
		return AUTH_WIRE_ERROR;
	}
	*body_len = len;
	return AUTH_WIRE_DONE;
}

/* A string at *pos of at most max octets without NUL; advances *pos. */
static bool get_str(const uint8_t *body, size_t len, size_t *pos, size_t max, const char **s,
                    size_t *slen)
{
	if (len - *pos < 2)
		return false;
	size_t n = get_u16(body + *pos);
	*pos += 2;
	if (n > max || len - *pos < n || memchr(body + *pos, '\0', n))
		return false;
	*s = (const char *)body + *pos;
	*slen = n;
	*pos += n;
	return true;
}

enum auth_wire_status auth_wire_decode_check(const uint8_t *body, size_t len,
                                             struct auth_wire_check *out, const char **why)
{
	if (len < AUTH_WIRE_CHECK_MIN || len > AUTH_WIRE_CHECK_MAX) {
		*why = "CHECK of a wrong length";
		return AUTH_WIRE_ERROR;
	}
	out->id = get_u64(body);
	out->key = body + 8;
	if (out->key[0] != 0 && out->key[0] != 4 && out->key[0] != 6) {
		*why = "CHECK with a client key of an unknown family";
		return AUTH_WIRE_ERROR;
	}
	size_t pos = 8 + AUTH_WIRE_KEY_LEN;
	if (!get_str(body, len, &pos, AUTH_WIRE_USER_MAX, &out->user, &out->user_len)) {
		*why = "CHECK with a malformed user";
		return AUTH_WIRE_ERROR;
	}
	if (!get_str(body, len, &pos, AUTH_WIRE_PASSWORD_MAX, &out->password,
	             &out->password_len)) {
		*why = "CHECK with a malformed password";
		return AUTH_WIRE_ERROR;
	}
	if (pos != len) {
		*why = "CHECK with trailing octets";
		return AUTH_WIRE_ERROR;
	}
	return AUTH_WIRE_DONE;
}

enum auth_wire_status auth_wire_decode_answer(const uint8_t *body, size_t len,
                                              struct auth_wire_answer *out, const char **why)
{
	if (len < AUTH_WIRE_ANSWER_MIN || len > AUTH_WIRE_ANSWER_MAX) {
		*why = "ANSWER of a wrong length";
		return AUTH_WIRE_ERROR;
	}
	out->id = get_u64(body);
	uint8_t r = body[8];
	if (r != AUTH_WIRE_OK && r != AUTH_WIRE_FAIL && r != AUTH_WIRE_TEMPFAIL) {
		*why = "ANSWER with an unknown result";
		return AUTH_WIRE_ERROR;
	}
	out->result = (enum auth_wire_result)r;
	size_t pos = 9;
	if (!get_str(body, len, &pos, AUTH_WIRE_SENDERS_MAX, &out->senders, &out->senders_len) ||
	    pos != len) {
		*why = "ANSWER with malformed senders";
		return AUTH_WIRE_ERROR;
	}
	/* The smtp process enforces these at MAIL: only a field the users
	 * file itself would accept, and only with a yes. */
	if (out->senders_len &&
	    (r != AUTH_WIRE_OK || auth_senders_check(out->senders, out->senders_len))) {
		*why = "ANSWER with senders that are not a senders field";
		return AUTH_WIRE_ERROR;
	}
	return AUTH_WIRE_DONE;
}
