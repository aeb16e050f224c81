/* libFuzzer harness for the server side of SASL PLAIN/LOGIN
 * (src/smtp/sasl.c).  The first octet is the seed selector of
 * tests/unit/testutil.h (unused); the rest is split on LF: the first piece
 * is the AUTH command's argument, the others the client's lines, each
 * copied to an exact-size heap block so ASan sees any over-read.  Lines
 * after the exchange ends are fed too (they must get 503).
 *
 * Invariants (abort() on violation):
 *   a challenge is "", "VXNlcm5hbWU6" or "UGFzc3dvcmQ6";
 *   an error is one of the replies sasl.h lists, formats as one reply
 *   line, and leaves the password wiped;
 *   done: authcid and password non-empty and bounded, NUL-terminated in
 *   their arrays, authzid empty or equal to authcid, the names free of
 *   control octets, and the log form of the user never holds the password
 *   (unless the password is a substring of the user name itself);
 *   reset leaves every octet zero.
 * Seeds come from tests/unit/test_smtp_sasl.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/sasl.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static bool reply_known(const struct smtp_reply *r)
{
	static const struct {
		int code;
		const char *enhanced;
	} known[] = {
		{ 500, "5.5.6" }, { 501, "5.5.2" }, { 501, "5.5.4" }, { 501, "5.0.0" },
		{ 503, "5.5.1" }, { 504, "5.5.4" }, { 535, "5.7.8" },
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (r->code == known[i].code && r->enhanced &&
		    strcmp(r->enhanced, known[i].enhanced) == 0)
			return true;
	return false;
}

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static bool name_clean(const char *s, size_t cap)
{
	size_t len = strnlen(s, cap);
	if (len == cap)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static void check_step(struct smtp_sasl_server *s, enum smtp_sasl_step step)
{
	switch (step) {
	case SMTP_SASL_CHALLENGE:
		CHECK(s->challenge != NULL);
		CHECK(strcmp(s->challenge, "") == 0 || strcmp(s->challenge, "VXNlcm5hbWU6") == 0 ||
		      strcmp(s->challenge, "UGFzc3dvcmQ6") == 0);
		CHECK(s->mech == SMTP_SASL_PLAIN || s->mech == SMTP_SASL_LOGIN);
		break;
	case SMTP_SASL_ERROR: {
		CHECK(reply_known(&s->reply));
		CHECK(all_zero(s->password, sizeof(s->password)));
		struct buf out;
		buf_init(&out, 1024);
		CHECK(smtp_reply_write(&out, &s->reply) == 0);
		CHECK(memchr(out.data, '\n', out.len) == out.data + out.len - 1);
		buf_free(&out);
		break;
	}
	case SMTP_SASL_DONE: {
		CHECK(name_clean(s->authcid, sizeof(s->authcid)));
		CHECK(name_clean(s->authzid, sizeof(s->authzid)));
		size_t plen = strnlen(s->password, sizeof(s->password));
		CHECK(plen > 0 && plen <= SMTP_AUTH_PASSWORD_MAX);
		CHECK(s->authcid[0] != '\0');
		CHECK(s->authzid[0] == '\0' || strcmp(s->authzid, s->authcid) == 0);
		char log[4 * SMTP_AUTH_NAME_MAX + 1];
		smtp_sasl_server_user_log(s, log, sizeof(log));
		CHECK(strnlen(log, sizeof(log)) < sizeof(log));
		if (!strstr(s->authcid, s->password))
			CHECK(strstr(log, s->password) == NULL);
		break;
	}
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t left = size - 1;
	struct smtp_sasl_server s;
	smtp_sasl_server_init(&s);
	bool first = true, over = false;
	while (true) {
		const char *lf = memchr(p, '\n', left);
		size_t len = lf ? (size_t)(lf - p) : left;
		char *line = malloc(len ? len : 1);
		memcpy(line, p, len);
		enum smtp_sasl_step step = first ? smtp_sasl_server_start(&s, line, len)
		                                 : smtp_sasl_server_line(&s, line, len);
		free(line);
		if (over) {
			CHECK(step == SMTP_SASL_ERROR && s.reply.code == 503);
		}
		check_step(&s, step);
		if (step != SMTP_SASL_CHALLENGE)
			over = true;
		first = false;
		if (!lf)
			break;
		p = lf + 1;
		left -= len + 1;
	}
	smtp_sasl_server_reset(&s);
	CHECK(all_zero(&s, sizeof(s)));
	return 0;
}
