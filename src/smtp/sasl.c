/* SASL PLAIN and LOGIN for SMTP AUTH (RFC 4954, RFC 4616,
 * draft-murchison-sasl-login-00), both sides, sans I/O.  The base64 here is
 * RFC 4648 §4 and strict, as RFC 4954 §4 asks of a response: the message
 * composer's (msg/mime.h) is a body encoder in a module smtp may not use. */
#include "smtp/sasl.h"

#include <stdint.h>
#include <string.h>

#include "util/text.h"

enum {
	ST_IDLE = 0,   /* no exchange (before start, after done or error) */
	ST_PLAIN,      /* 334 sent for PLAIN's message */
	ST_LOGIN_USER, /* 334 "Username:" sent */
	ST_LOGIN_PASS, /* 334 "Password:" sent */
};

/* draft-murchison-sasl-login §2: the prompts, base64 of "Username:" and
 * "Password:". */
#define LOGIN_PROMPT_USER "VXNlcm5hbWU6"
#define LOGIN_PROMPT_PASS "UGFzc3dvcmQ6"

/* The decoded response: a base64 line of SMTP_AUTH_LINE_MAX octets. */
#define DECODED_MAX (SMTP_AUTH_LINE_MAX / 4 * 3)

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Strict RFC 4648 §4 decoding: length a multiple of 4, only the alphabet,
 * one or two '=' only at the very end, and the pad bits zero (§3.5: a
 * canonical encoding; anything else is garbage a sender did not make).
 * Returns the decoded length, or -1.  out must hold len / 4 * 3. */
static long b64_decode(unsigned char *out, const char *in, size_t len)
{
	if (len % 4 != 0)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)                /* "=x" inside the padding */
				return -1;
			v[k] = text_base64_value(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
			return -1;
		out[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)w;
	}
	return (long)n;
}

/* Returns the encoded length (NUL-terminated), or -1 when dst is too small. */
static int b64_encode(char *dst, size_t dstlen, const unsigned char *in, size_t len)
{
	size_t need = (len + 2) / 3 * 4;
	if (dstlen < need + 1)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		uint32_t w = (uint32_t)in[i] << 16;
		if (left > 1)
			w |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			w |= in[i + 2];
		dst[n++] = b64_alphabet[(w >> 18) & 63];
		dst[n++] = b64_alphabet[(w >> 12) & 63];
		dst[n++] = left > 1 ? b64_alphabet[(w >> 6) & 63] : '=';
		dst[n++] = left > 2 ? b64_alphabet[w & 63] : '=';
	}
	dst[n] = '\0';
	return (int)n;
}

static bool ascii_equal_nocase(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'a' && x <= 'z')
			x = (unsigned char)(x - 'a' + 'A');
		if (y >= 'a' && y <= 'z')
			y = (unsigned char)(y - 'a' + 'A');
		if (x != y)
			return false;
	}
	return true;
}

static enum smtp_sasl_step fail(struct smtp_sasl_server *s, int code, const char *enhanced,
                                const char *text)
{
	explicit_bzero(s->password, sizeof(s->password));
	s->state = ST_IDLE;
	s->challenge = NULL;
	smtp_reply_set(&s->reply, code, enhanced, "%s", text);
	return SMTP_SASL_ERROR;
}

static enum smtp_sasl_step fail_credentials(struct smtp_sasl_server *s)
{
	/* RFC 4954 §6. */
	return fail(s, 535, "5.7.8", "Authentication credentials invalid");
}

static enum smtp_sasl_step challenge(struct smtp_sasl_server *s, int state, const char *text)
{
	s->state = state;
	s->challenge = text;
	return SMTP_SASL_CHALLENGE;
}

/* A name is what a log can show as it is: valid UTF-8 (RFC 4616 §2 sends
 * UTF-8) with no C0, DEL or C1 control.  The one escaper decides: a name
 * it would change is refused. */
static bool name_acceptable(const unsigned char *p, size_t len)
{
	char escaped[4 * SMTP_AUTH_NAME_MAX + 1];
	if (len == 0 || len > SMTP_AUTH_NAME_MAX)
		return false;
	if (text_escape(escaped, sizeof(escaped), (const char *)p, len, 0) != len)
		return false;
	return strlen(escaped) == len && memcmp(escaped, p, len) == 0;
}

static void field_copy(char *dst, const unsigned char *p, size_t len)
{
	memcpy(dst, p, len);
	dst[len] = '\0';
}

/* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
static enum smtp_sasl_step plain_message(struct smtp_sasl_server *s, const unsigned char *m,
                                         size_t len)
{
	const unsigned char *nul1 = memchr(m, '\0', len);
	if (!nul1)
		return fail(s, 501, "5.5.2", "Malformed PLAIN message");
	size_t zlen = (size_t)(nul1 - m);
	const unsigned char *c = nul1 + 1;
	const unsigned char *nul2 = memchr(c, '\0', len - zlen - 1);
	if (!nul2)
		return fail(s, 501, "5.5.2", "Malformed PLAIN message");
	size_t clen = (size_t)(nul2 - c);
	const unsigned char *p = nul2 + 1;
	size_t plen = len - zlen - clen - 2;
	if (memchr(p, '\0', plen))
		return fail(s, 501, "5.5.2", "Malformed PLAIN message");
	if (!name_acceptable(c, clen))
		return fail_credentials(s);
	field_copy(s->authcid, c, clen);
	/* The authzid: we do not let one user act as another, so a non-empty
	 * one must name the authcid itself (octet for octet); RFC 4616 §2 lets
	 * the server refuse any other. */
	if (zlen > 0 && (zlen != clen || memcmp(m, c, clen) != 0))
		return fail_credentials(s);
	if (plen == 0 || plen > SMTP_AUTH_PASSWORD_MAX)
		return fail_credentials(s);
	field_copy(s->authzid, m, zlen);
	field_copy(s->password, p, plen);
	s->state = ST_IDLE;
	s->challenge = NULL;
	return SMTP_SASL_DONE;
}

static enum smtp_sasl_step login_user(struct smtp_sasl_server *s, const unsigned char *u,
                                      size_t len)
{
	if (memchr(u, '\0', len))
		return fail(s, 501, "5.5.2", "Malformed LOGIN response");
	if (!name_acceptable(u, len))
		return fail_credentials(s);
	field_copy(s->authcid, u, len);
	return challenge(s, ST_LOGIN_PASS, LOGIN_PROMPT_PASS);
}

static enum smtp_sasl_step login_password(struct smtp_sasl_server *s, const unsigned char *p,
                                          size_t len)
{
	if (memchr(p, '\0', len))
		return fail(s, 501, "5.5.2", "Malformed LOGIN response");
	if (len == 0 || len > SMTP_AUTH_PASSWORD_MAX)
		return fail_credentials(s);
	field_copy(s->password, p, len);
	s->state = ST_IDLE;
	s->challenge = NULL;
	return SMTP_SASL_DONE;
}

/* One response (initial or continuation), base64 text already checked for
 * length, handed to the step the state expects. */
static enum smtp_sasl_step response(struct smtp_sasl_server *s, const char *text, size_t len)
{
	unsigned char decoded[DECODED_MAX];
	long n = b64_decode(decoded, text, len);
	enum smtp_sasl_step step;
	if (n < 0) {
		step = fail(s, 501, "5.5.2", "Cannot Base64-decode client response");
	} else if (s->state == ST_PLAIN) {
		step = plain_message(s, decoded, (size_t)n);
	} else if (s->state == ST_LOGIN_USER) {
		step = login_user(s, decoded, (size_t)n);
	} else {
		step = login_password(s, decoded, (size_t)n);
	}
	/* The decoded response may hold the password. */
	explicit_bzero(decoded, n > 0 ? (size_t)n : 0);
	return step;
}

void smtp_sasl_server_init(struct smtp_sasl_server *s)
{
	memset(s, 0, sizeof(*s));
}

void smtp_sasl_server_reset(struct smtp_sasl_server *s)
{
	explicit_bzero(s, sizeof(*s));
}

enum smtp_sasl_step smtp_sasl_server_start(struct smtp_sasl_server *s, const char *arg,
                                           size_t len)
{
	smtp_sasl_server_reset(s);
	const char *sp = memchr(arg, ' ', len);
	size_t mlen = sp ? (size_t)(sp - arg) : len;
	/* RFC 4954 §4: "AUTH" SP sasl-mech [SP initial-response]. */
	if (mlen == 0)
		return fail(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
	if (ascii_equal_nocase(arg, mlen, "PLAIN"))
		s->mech = SMTP_SASL_PLAIN;
	else if (ascii_equal_nocase(arg, mlen, "LOGIN"))
		s->mech = SMTP_SASL_LOGIN;
	else
		return fail(s, 504, "5.5.4", "Unrecognized authentication type");
	int state = s->mech == SMTP_SASL_PLAIN ? ST_PLAIN : ST_LOGIN_USER;
	if (!sp)
		return challenge(s, state, state == ST_PLAIN ? "" : LOGIN_PROMPT_USER);
	/* An initial response.  LOGIN has none in the draft, but clients
	 * (Outlook, some libraries) send the user name there: take it as the
	 * answer to "Username:". */
	const char *ir = sp + 1;
	size_t irlen = len - mlen - 1;
	s->state = state;
	if (irlen == 1 && ir[0] == '=')     /* RFC 4954 §4: an empty response */
		irlen = 0;
	else if (irlen == 0)
		return fail(s, 501, "5.5.2", "Cannot Base64-decode client response");
	if (irlen > SMTP_AUTH_LINE_MAX)
		return fail(s, 500, "5.5.6", "Authentication Exchange line is too long");
	return response(s, ir, irlen);
}

enum smtp_sasl_step smtp_sasl_server_line(struct smtp_sasl_server *s, const char *line,
                                          size_t len)
{
	if (s->state == ST_IDLE)
		return fail(s, 503, "5.5.1", "No authentication exchange in progress");
	/* RFC 4954 §4: a line of a single "*" cancels; the reply is 501. */
	if (len == 1 && line[0] == '*')
		return fail(s, 501, "5.0.0", "Authentication cancelled");
	if (len > SMTP_AUTH_LINE_MAX)
		return fail(s, 500, "5.5.6", "Authentication Exchange line is too long");
	return response(s, line, len);
}

void smtp_sasl_server_user_log(const struct smtp_sasl_server *s, char *dst, size_t dstlen)
{
	if (dstlen == 0)
		return;
	size_t len = strnlen(s->authcid, sizeof(s->authcid));
	text_escape(dst, dstlen, s->authcid, len, TEXT_ESCAPE_QUOTES);
}

static bool client_credentials_ok(const char *user, const char *password)
{
	size_t u = strlen(user), p = strlen(password);
	return u > 0 && u <= SMTP_AUTH_NAME_MAX && p > 0 && p <= SMTP_AUTH_PASSWORD_MAX;
}

static int client_fail(char *dst, size_t dstlen)
{
	if (dstlen > 0)
		dst[0] = '\0';
	return -1;
}

int smtp_sasl_client_plain(char *dst, size_t dstlen, const char *user, const char *password)
{
	if (!client_credentials_ok(user, password))
		return client_fail(dst, dstlen);
	unsigned char raw[SMTP_AUTH_NAME_MAX + SMTP_AUTH_PASSWORD_MAX + 2];
	size_t u = strlen(user), p = strlen(password);
	raw[0] = '\0';
	memcpy(raw + 1, user, u);
	raw[1 + u] = '\0';
	memcpy(raw + 2 + u, password, p);
	int n = b64_encode(dst, dstlen, raw, u + p + 2);
	explicit_bzero(raw, sizeof(raw));
	return n < 0 ? client_fail(dst, dstlen) : n;
}

/* The prompt LOGIN's 334 carries, if it is one we know: 0 user, 1
 * password, -1 another or not base64. */
static int login_prompt(const char *text, size_t len)
{
	unsigned char decoded[64];
	if (len > sizeof(decoded) / 3 * 4)
		return -1;
	long n = b64_decode(decoded, text, len);
	if (n < 0)
		return -1;
	const char *d = (const char *)decoded;
	if (ascii_equal_nocase(d, (size_t)n, "Username:") ||
	    ascii_equal_nocase(d, (size_t)n, "User Name") ||
	    ascii_equal_nocase(d, (size_t)n, "User Name:"))
		return 0;
	if (ascii_equal_nocase(d, (size_t)n, "Password:") ||
	    ascii_equal_nocase(d, (size_t)n, "Password"))
		return 1;
	return -1;
}

int smtp_sasl_client_login(char *dst, size_t dstlen, const char *text, size_t len,
                           unsigned step, const char *user, const char *password)
{
	if (!client_credentials_ok(user, password) || step > 1)
		return client_fail(dst, dstlen);
	int which = login_prompt(text, len);
	if (which < 0)
		which = (int)step;
	const char *answer = which == 0 ? user : password;
	int n = b64_encode(dst, dstlen, (const unsigned char *)answer, strlen(answer));
	return n < 0 ? client_fail(dst, dstlen) : n;
}

enum smtp_sasl_mech smtp_sasl_client_choose(const char *params, size_t len)
{
	bool plain = false, login = false;
	size_t i = 0;
	while (i < len) {
		while (i < len && (params[i] == ' ' || params[i] == '\t'))
			i++;
		size_t start = i;
		while (i < len && params[i] != ' ' && params[i] != '\t')
			i++;
		if (ascii_equal_nocase(params + start, i - start, "PLAIN"))
			plain = true;
		else if (ascii_equal_nocase(params + start, i - start, "LOGIN"))
			login = true;
	}
	return plain ? SMTP_SASL_PLAIN : login ? SMTP_SASL_LOGIN : SMTP_SASL_NONE;
}
