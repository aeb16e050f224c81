/* The private wire format between the smtp process (server/auth_client.c)
 * and the auth process (auth/process.c): length-prefixed frames over a
 * SOCK_STREAM socketpair, in the store's style (store/frame.h).  Pure: no
 * I/O, no allocation; frames are built in the caller's fixed arrays, so a
 * frame holding a password has exactly one copy the caller can wipe.
 *
 * A frame is a 5-octet header, u32 body length (big-endian) and u8 type,
 * then the body.  Integers are big-endian; a string is a u16 length and
 * that many octets, never a NUL.
 *
 *   CHECK   smtp  u64 id, AUTH_WIRE_KEY_LEN octets client key,
 *                 str user (0..AUTH_WIRE_USER_MAX),
 *                 str password (0..AUTH_WIRE_PASSWORD_MAX, any octet but NUL)
 *   ANSWER  auth  u64 id, u8 enum auth_wire_result,
 *                 str senders (0..AUTH_WIRE_SENDERS_MAX; empty unless OK;
 *                 when not empty, a users-file senders field that
 *                 auth_senders_check accepts; empty: any sender)
 *
 * Each side decodes only the type the other sends, and every length is
 * checked against its bound from the header on: a frame that breaks the
 * format is a fatal protocol error for the connection.  The format says
 * nothing about whether a user name is well formed: the auth process
 * looks it up as octets and an odd one simply fails. */
#ifndef RAWMAIL_AUTH_WIRE_H
#define RAWMAIL_AUTH_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/limits.h"

enum auth_wire_type {
	AUTH_WIRE_CHECK = 1,
	AUTH_WIRE_ANSWER = 2,
};

enum auth_wire_result {
	AUTH_WIRE_OK = 0,       /* the user exists and the password is theirs */
	AUTH_WIRE_FAIL = 1,     /* unknown user or wrong password (not told apart) */
	AUTH_WIRE_TEMPFAIL = 2, /* could not check (memory, crypt, too busy): try later */
};

enum auth_wire_status {
	AUTH_WIRE_ERROR = -1,
	AUTH_WIRE_NEED_MORE = 0,
	AUTH_WIRE_DONE = 1,
};

#define AUTH_WIRE_HEADER_LEN 5
/* The client's network, as the store's newbox keys it (store/newbox.h):
 * family (4 or 6), then the IPv4 address or the IPv6 address's first 64
 * bits, zero-padded. */
#define AUTH_WIRE_KEY_LEN 17 /* NETKEY_LEN */
#define AUTH_WIRE_USER_MAX SMTP_AUTH_NAME_MAX
#define AUTH_WIRE_PASSWORD_MAX SMTP_AUTH_PASSWORD_MAX
/* A senders field is part of one line of the users file. */
#define AUTH_WIRE_SENDERS_MAX AUTH_USERS_LINE_MAX
#define AUTH_WIRE_CHECK_MIN (8u + AUTH_WIRE_KEY_LEN + 2u + 2u)
#define AUTH_WIRE_CHECK_MAX (AUTH_WIRE_CHECK_MIN + AUTH_WIRE_USER_MAX + AUTH_WIRE_PASSWORD_MAX)
#define AUTH_WIRE_ANSWER_MIN (8u + 1u + 2u)
#define AUTH_WIRE_ANSWER_MAX (AUTH_WIRE_ANSWER_MIN + AUTH_WIRE_SENDERS_MAX)
/* Whole frames, header included: the arrays the encoders fill. */
#define AUTH_WIRE_CHECK_FRAME_MAX (AUTH_WIRE_HEADER_LEN + AUTH_WIRE_CHECK_MAX)
#define AUTH_WIRE_ANSWER_FRAME_MAX (AUTH_WIRE_HEADER_LEN + AUTH_WIRE_ANSWER_MAX)

/* A decoded CHECK: the strings point into the body, not NUL-terminated. */
struct auth_wire_check {
	uint64_t id;
	const uint8_t *key;     /* AUTH_WIRE_KEY_LEN octets */
	const char *user;
	size_t user_len;
	const char *password;
	size_t password_len;
};

struct auth_wire_answer {
	uint64_t id;
	enum auth_wire_result result;
	const char *senders;    /* not NUL-terminated */
	size_t senders_len;
};

/* The key of a client address (IPv4-mapped IPv6 counts as IPv4; an IPv6
 * client is its /64, one customer; any other family is all zeros).  The
 * same octets as newbox_client_key, without linking the store. */
void auth_wire_client_key(const struct sockaddr *sa, uint8_t key[AUTH_WIRE_KEY_LEN]);

/* Encoders: the frame's length, or 0 if it cannot be said in the format
 * (a field over its bound or holding a NUL; senders not empty with a result
 * other than OK, or not a valid senders field).  out is then untouched. */
size_t auth_wire_encode_check(uint8_t out[AUTH_WIRE_CHECK_FRAME_MAX], uint64_t id,
                              const uint8_t key[AUTH_WIRE_KEY_LEN], const char *user,
                              size_t user_len, const char *password, size_t password_len);
size_t auth_wire_encode_answer(uint8_t out[AUTH_WIRE_ANSWER_FRAME_MAX], uint64_t id,
                               enum auth_wire_result r, const char *senders, size_t senders_len);

/* Reads a header from p[0..avail): AUTH_WIRE_NEED_MORE until
 * AUTH_WIRE_HEADER_LEN octets are there; AUTH_WIRE_ERROR (with *why) for
 * a type other than expected or a body length outside that type's bounds;
 * else AUTH_WIRE_DONE with *body_len (the body may not have arrived). */
enum auth_wire_status auth_wire_header_decode(const uint8_t *p, size_t avail,
                                              enum auth_wire_type expected, size_t *body_len,
                                              const char **why);

/* Body decoders: AUTH_WIRE_DONE or AUTH_WIRE_ERROR (with *why). */
enum auth_wire_status auth_wire_decode_check(const uint8_t *body, size_t len,
                                             struct auth_wire_check *out, const char **why);
enum auth_wire_status auth_wire_decode_answer(const uint8_t *body, size_t len,
                                              struct auth_wire_answer *out, const char **why);

#endif
