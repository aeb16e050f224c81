/* SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) in the SMTP
 * AUTH exchange (RFC 4954), both sides, sans I/O: no sockets, no clock, no
 * password checking.  The server side turns the AUTH command's argument
 * and the client's continuation lines into "send this 334", "done: check
 * these credentials" or "send this error"; the caller checks the password
 * (through the auth process) and answers 235 2.7.0 or 535 5.7.8 itself.
 * The client side makes the responses a smarthost expects.
 *
 * Passwords live only in struct smtp_sasl_server (and the caller's output
 * arrays on the client side) and are wiped with explicit_bzero on reset;
 * no text this module returns for a reply or a log holds one. */
#ifndef RAWMAIL_SMTP_SASL_H
#define RAWMAIL_SMTP_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/reply.h"
#include "util/limits.h"

/* The mechanisms, in the order the server lists them after "250-AUTH". */
#define SMTP_SASL_MECHANISMS "PLAIN LOGIN"

enum smtp_sasl_mech { SMTP_SASL_NONE = 0, SMTP_SASL_PLAIN, SMTP_SASL_LOGIN };

enum smtp_sasl_step {
	SMTP_SASL_CHALLENGE, /* send "334 " + s->challenge, read one line, call _line */
	SMTP_SASL_DONE,      /* credentials complete: check them, then reset */
	SMTP_SASL_ERROR,     /* send s->reply; the exchange is over */
};

struct smtp_sasl_server {
	enum smtp_sasl_mech mech;
	int state;                  /* private */
	/* SMTP_SASL_CHALLENGE: the 334's text, base64 ("" for PLAIN). */
	const char *challenge;
	/* SMTP_SASL_ERROR: the reply to send (its text never holds what the
	 * client sent). */
	struct smtp_reply reply;
	/* SMTP_SASL_DONE: NUL-terminated, no NUL inside.  The names are valid
	 * UTF-8 without control characters (C0, DEL, C1); authcid and password
	 * are non-empty; authzid is empty or equal to authcid.  authcid may be
	 * set before an error too (a LOGIN user, a PLAIN message with a bad
	 * authzid): use smtp_sasl_server_user_log for it. */
	char authzid[SMTP_AUTH_NAME_MAX + 1];
	char authcid[SMTP_AUTH_NAME_MAX + 1];
	char password[SMTP_AUTH_PASSWORD_MAX + 1]; /* any octet but NUL */
};

/* An empty exchange (same as a reset one). */
void smtp_sasl_server_init(struct smtp_sasl_server *s);

/* Starts an exchange from the AUTH command's argument arg[0..len)
 * ("MECH" or "MECH SP initial-response", smtp_command's arg).  The
 * mechanism is case-insensitive; an initial response of "=" is an empty
 * one (RFC 4954 §4).  Resets s first.  Errors: 501 5.5.4 no mechanism;
 * 504 5.5.4 unknown mechanism; then as smtp_sasl_server_line. */
enum smtp_sasl_step smtp_sasl_server_start(struct smtp_sasl_server *s, const char *arg,
                                           size_t len);

/* Feeds the client's answer to a 334: line[0..len) without its CRLF, any
 * octets.  Errors (RFC 4954 §4, §6; RFC 3463):
 *   "*"                      501 5.0.0 cancelled
 *   over SMTP_AUTH_LINE_MAX  500 5.5.6
 *   not strict base64        501 5.5.2 (RFC 4648 §4 alphabet, length a
 *                            multiple of 4, "=" only as padding with zero
 *                            pad bits; no spaces; "=" alone is no empty
 *                            response here, only in the AUTH command)
 *   PLAIN without exactly two NULs, a NUL in a LOGIN answer
 *                            501 5.5.2 (RFC 4616 §2's message syntax)
 *   an empty user or password, a name over SMTP_AUTH_NAME_MAX or with a
 *   control character or invalid UTF-8, a password over
 *   SMTP_AUTH_PASSWORD_MAX, an authzid that is not empty and not the
 *   authcid (no proxy authorisation, RFC 4616 §2)
 *                            535 5.7.8
 *   no exchange in progress  503 5.5.1
 * On an error the password is wiped; the names stay for the log until
 * the next reset. */
enum smtp_sasl_step smtp_sasl_server_line(struct smtp_sasl_server *s, const char *line,
                                          size_t len);

/* Wipes everything (explicit_bzero: the password does not linger in
 * memory) and ends any exchange.  Call it when the session ends, and
 * after checking a DONE exchange's credentials. */
void smtp_sasl_server_reset(struct smtp_sasl_server *s);

/* The authentication identity, escaped for a log line (util/text.h with
 * TEXT_ESCAPE_QUOTES: fits a quoted value), "" when there is none yet.
 * dst always NUL-terminated; 4 * SMTP_AUTH_NAME_MAX + 1 always fits. */
void smtp_sasl_server_user_log(const struct smtp_sasl_server *s, char *dst, size_t dstlen);

/* Client side.  Each writes a NUL-terminated base64 response into
 * dst[0..dstlen) and returns its length, or -1 (dst emptied) when user or
 * password is empty or too long (SMTP_AUTH_NAME_MAX,
 * SMTP_AUTH_PASSWORD_MAX) or dst too small.  dst holds the password in
 * base64: wipe it (explicit_bzero) after sending.  SMTP_SASL_RESPONSE_MAX
 * octets always fit. */
#define SMTP_SASL_RESPONSE_MAX \
	(((SMTP_AUTH_NAME_MAX + SMTP_AUTH_PASSWORD_MAX + 2 + 2) / 3) * 4 + 1)

/* AUTH PLAIN's initial response: base64 of NUL user NUL password (empty
 * authzid: act as the user, RFC 4616 §2). */
int smtp_sasl_client_plain(char *dst, size_t dstlen, const char *user, const char *password);

/* The answer to LOGIN's 334 text[0..len) (base64 of the server's prompt).
 * step counts the 334s of this exchange from 0.  A prompt that decodes to
 * "Username:" or "User Name" gets the user, "Password:" the password
 * (case-insensitive, as servers vary); another prompt is answered by its
 * position (user first).  A third 334 (step > 1) gets -1: the caller
 * cancels with "*". */
int smtp_sasl_client_login(char *dst, size_t dstlen, const char *text, size_t len,
                           unsigned step, const char *user, const char *password);

/* Which mechanism to use from the EHLO AUTH keyword's parameters
 * params[0..len) (RFC 4954 §3: mechanism names separated by spaces,
 * case-insensitive; the list of the old "AUTH=" form parses the same):
 * PLAIN if listed, else LOGIN, else SMTP_SASL_NONE. */
enum smtp_sasl_mech smtp_sasl_client_choose(const char *params, size_t len);

#endif
