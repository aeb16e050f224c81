#include "auth/wire.h"

#include <netinet/in.h>
#include <string.h>

#include "auth/users.h"
#include "util/be.h"
#include "util/netkey.h"

_Static_assert(AUTH_WIRE_KEY_LEN == NETKEY_LEN, "one client key");

void auth_wire_client_key(const struct sockaddr *sa, uint8_t key[AUTH_WIRE_KEY_LEN])
{
	netkey_from_sockaddr(sa, key);
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
	be_put32(p, (uint32_t)body);
	p[4] = AUTH_WIRE_CHECK;
	p += AUTH_WIRE_HEADER_LEN;
	be_put64(p, id);
	p += 8;
	memcpy(p, key, AUTH_WIRE_KEY_LEN);
	p += AUTH_WIRE_KEY_LEN;
	be_put16(p, user_len);
	p += 2;
	if (user_len)
		memcpy(p, user, user_len);
	p += user_len;
	be_put16(p, password_len);
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
	be_put32(p, (uint32_t)body);
	p[4] = AUTH_WIRE_ANSWER;
	p += AUTH_WIRE_HEADER_LEN;
	be_put64(p, id);
	p += 8;
	*p++ = (uint8_t)r;
	be_put16(p, senders_len);
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
	size_t len = be_get32(p);
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
	size_t n = be_get16(body + *pos);
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
	out->id = be_get64(body);
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
	out->id = be_get64(body);
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
