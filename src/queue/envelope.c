#include "queue/envelope.h"
#include "util/text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = { "queued", "delivered", "failed", "bounced" };
static const char *const origin_names[] = { "send", "sendmail", "submission", "bounce", "local",
                                             "mqtt" };
static const char *const flag_names[] = { "smtputf8", "bounce", "warned" };
#define NFLAGS 3
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The header records, in the order they are written and must be read. */
enum record { R_MAGIC, R_ID, R_CREATED, R_SENDER, R_SIZE, R_SHA256, R_FLAGS, R_ORIGIN, R_RCPT,
	      R_END, R_COUNT };
static const char *const record_names[R_COUNT] = {
	"rawmail-queue", "id", "created", "sender", "size", "sha256", "flags", "origin", "rcpt", "end",
};

const char *queue_rcpt_state_name(enum queue_rcpt_state s)
{
	return (unsigned)s < NELEM(state_names) ? state_names[s] : "?";
}

bool queue_id_valid(const char *id, size_t len)
{
	if (len == 0 || len > QUEUE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* ---- parsing ---- */

struct field {
	const char *p;
	size_t len;
};

struct parser {
	size_t line;
	char *why;
	size_t whylen;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct parser *ps, const char *fmt, ...)
{
	int n = snprintf(ps->why, ps->whylen, "line %zu: ", ps->line);
	if (n >= 0 && (size_t)n < ps->whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ps->why + n, ps->whylen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool field_is(struct field f, const char *s)
{
	return f.len == strlen(s) && memcmp(f.p, s, f.len) == 0;
}

/* A decimal number without sign or leading zeros, at most max. */
static int parse_number(struct parser *ps, struct field f, uint64_t max, const char *what,
                        uint64_t *out)
{
	uint64_t v = 0;
	if (f.len == 0 || (f.len > 1 && f.p[0] == '0'))
		return fail(ps, "%s is not a plain decimal number", what);
	for (size_t i = 0; i < f.len; i++) {
		if (f.p[i] < '0' || f.p[i] > '9')
			return fail(ps, "%s is not a plain decimal number", what);
		unsigned d = (unsigned)(f.p[i] - '0');
		if (v > (max - d) / 10)
			return fail(ps, "%s is too large", what);
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_epoch(struct parser *ps, struct field f, const char *what, int64_t *out)
{
	uint64_t v;
	if (parse_number(ps, f, INT64_MAX, what, &v) < 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Decodes a percent-encoded field into a new string.  Raw octets that the
 * formatter would have encoded are refused, and so is %00 (a C string
 * cannot hold it).  max bounds the decoded length. */
static int parse_text(struct parser *ps, struct field f, size_t max, const char *what, char **out)
{
	char *s = malloc(f.len + 1);
	size_t o = 0;
	if (!s)
		return fail(ps, "out of memory");
	for (size_t i = 0; i < f.len; i++) {
		unsigned char c = (unsigned char)f.p[i];
		if (c == '%') {
			if (f.len - i < 3) {
				free(s);
				return fail(ps, "%s: '%%' is not followed by two hex digits", what);
			}
			int h = text_hex_value((unsigned char)f.p[i + 1]);
			int l = text_hex_value((unsigned char)f.p[i + 2]);
			if (h < 0 || l < 0) {
				free(s);
				return fail(ps, "%s: '%%' is not followed by two hex digits", what);
			}
			c = (unsigned char)(h * 16 + l);
			if (c == 0) {
				free(s);
				return fail(ps, "%s: holds an encoded NUL (%%00)", what);
			}
			i += 2;
		}
		if (o == max) {
			free(s);
			return fail(ps, "%s is longer than %zu octets", what, max);
		}
		s[o++] = (char)c;
	}
	s[o] = '\0';
	*out = s;
	return 0;
}

/* Splits a line into at most max fields separated by single spaces. */
static int split(struct parser *ps, const char *p, size_t len, struct field *fields, size_t max,
                 size_t *n)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != ' ')
			continue;
		if (i == start)
			return fail(ps, "empty field (two spaces, or a space at an end of the line)");
		if (k == max)
			return fail(ps, "too many fields");
		fields[k].p = p + start;
		fields[k].len = i - start;
		k++;
		start = i + 1;
	}
	*n = k;
	return 0;
}

static int parse_rcpt(struct parser *ps, struct field *f, size_t n, struct queue_envelope *env)
{
	if (n != 8)
		return fail(ps, "rcpt has %zu fields, not 7 (STATE ATTEMPTS NEXT LASTEPOCH ADDR ORCPT "
		                "LAST)", n - 1);
	if (env->nrcpts == QUEUE_ENV_RCPTS_MAX)
		return fail(ps, "more than %d rcpt records", QUEUE_ENV_RCPTS_MAX);
	if (env->nrcpts % 16 == 0) {
		struct queue_rcpt *r = realloc(env->rcpts, (env->nrcpts + 16) * sizeof(*r));
		if (!r)
			return fail(ps, "out of memory");
		env->rcpts = r;
	}
	struct queue_rcpt *r = &env->rcpts[env->nrcpts];
	memset(r, 0, sizeof(*r));
	env->nrcpts++;   /* counted now, so queue_envelope_free frees a half-parsed one */
	size_t s;
	for (s = 0; s < NELEM(state_names); s++)
		if (field_is(f[1], state_names[s]))
			break;
	if (s == NELEM(state_names))
		return fail(ps, "unknown recipient state (queued, delivered, failed or bounced)");
	r->state = (enum queue_rcpt_state)s;
	uint64_t attempts;
	if (parse_number(ps, f[2], UINT32_MAX, "ATTEMPTS", &attempts) < 0 ||
	    parse_epoch(ps, f[3], "NEXT", &r->next) < 0 ||
	    parse_epoch(ps, f[4], "LASTEPOCH", &r->last_attempt) < 0 ||
	    parse_text(ps, f[5], QUEUE_ENV_ADDR_MAX, "ADDR", &r->addr) < 0)
		return -1;
	r->attempts = (uint32_t)attempts;
	if (r->addr[0] == '\0')
		return fail(ps, "ADDR is empty");
	if (!field_is(f[6], "-") && parse_text(ps, f[6], QUEUE_ENV_ADDR_MAX, "ORCPT", &r->orcpt) < 0)
		return -1;
	if (!field_is(f[7], "-") && parse_text(ps, f[7], QUEUE_ENV_LAST_MAX, "LAST", &r->last) < 0)
		return -1;
	return 0;
}

static int parse_flags(struct parser *ps, struct field f, unsigned *flags)
{
	*flags = 0;
	if (field_is(f, "-"))
		return 0;
	size_t start = 0;
	int prev = -1;
	for (size_t i = 0; i <= f.len; i++) {
		if (i < f.len && f.p[i] != ',')
			continue;
		struct field one = { f.p + start, i - start };
		int k;
		for (k = 0; k < NFLAGS; k++)
			if (field_is(one, flag_names[k]))
				break;
		if (k == NFLAGS)
			return fail(ps, "unknown flag (smtputf8, bounce, warned, or '-' for none)");
		/* One order, each once: a file has one spelling. */
		if (k <= prev)
			return fail(ps, "flags repeated or out of order (smtputf8,bounce,warned)");
		prev = k;
		*flags |= 1u << k;
		start = i + 1;
	}
	return 0;
}

static int parse_header(struct parser *ps, enum record rec, struct field *f, size_t n,
                        struct queue_envelope *env)
{
	if (n != 2)
		return fail(ps, "%s takes one field, not %zu", record_names[rec], n - 1);
	uint64_t v;
	switch (rec) {
	case R_MAGIC:
		if (!field_is(f[1], "1"))
			return fail(ps, "unsupported version (this rawmail reads version 1)");
		return 0;
	case R_ID:
		if (!queue_id_valid(f[1].p, f[1].len))
			return fail(ps, "id is not 1 to %d of A-Z a-z 0-9 _ -", QUEUE_ID_MAX);
		memcpy(env->id, f[1].p, f[1].len);
		env->id[f[1].len] = '\0';
		return 0;
	case R_CREATED:
		return parse_epoch(ps, f[1], "created", &env->created);
	case R_SENDER:
		if (field_is(f[1], "<>")) {
			env->sender = strdup("");
			return env->sender ? 0 : fail(ps, "out of memory");
		}
		return parse_text(ps, f[1], QUEUE_ENV_ADDR_MAX, "sender", &env->sender);
	case R_SIZE:
		if (parse_number(ps, f[1], INT64_MAX, "size", &v) < 0)
			return -1;
		env->size = v;
		return 0;
	case R_SHA256:
		if (f[1].len != 2 * QUEUE_SHA256_LEN)
			return fail(ps, "sha256 is not 64 hex digits");
		for (size_t i = 0; i < QUEUE_SHA256_LEN; i++) {
			int h = text_hex_value((unsigned char)f[1].p[2 * i]);
			int l = text_hex_value((unsigned char)f[1].p[2 * i + 1]);
			if (h < 0 || l < 0 || (f[1].p[2 * i] >= 'A' && f[1].p[2 * i] <= 'F') ||
			    (f[1].p[2 * i + 1] >= 'A' && f[1].p[2 * i + 1] <= 'F'))
				return fail(ps, "sha256 is not 64 lower-case hex digits");
			env->sha256[i] = (uint8_t)(h * 16 + l);
		}
		return 0;
	case R_FLAGS:
		return parse_flags(ps, f[1], &env->flags);
	case R_ORIGIN:
		for (size_t k = 0; k < NELEM(origin_names); k++)
			if (field_is(f[1], origin_names[k])) {
				env->origin = (enum queue_origin)k;
				return 0;
			}
		return fail(ps, "unknown origin (send, sendmail, submission, bounce, local or mqtt)");
	default:
		return fail(ps, "internal: not a header record");
	}
}

int queue_envelope_parse(const char *data, size_t len, struct queue_envelope *env, char *why,
                         size_t whylen)
{
	struct parser ps = { 0, why, whylen };
	memset(env, 0, sizeof(*env));
	if (why && whylen)
		why[0] = '\0';
	if (len > QUEUE_ENV_FILE_MAX)
		return fail(&ps, "file larger than %u octets", QUEUE_ENV_FILE_MAX);
	enum record expect = R_MAGIC;
	size_t pos = 0;
	while (pos < len) {
		ps.line++;
		if (expect == R_COUNT)
			return fail(&ps, "text after the end record");
		const char *p = data + pos;
		size_t avail = len - pos;
		size_t scan = avail < QUEUE_ENV_LINE_MAX + 1 ? avail : QUEUE_ENV_LINE_MAX + 1;
		const char *lf = memchr(p, '\n', scan);
		if (!lf) {
			if (avail > QUEUE_ENV_LINE_MAX)
				return fail(&ps, "line longer than %u octets", QUEUE_ENV_LINE_MAX);
			return fail(&ps, "no line end: the file is truncated");
		}
		size_t linelen = (size_t)(lf - p);
		pos += linelen + 1;
		for (size_t i = 0; i < linelen; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c == 0)
				return fail(&ps, "NUL byte at column %zu", i + 1);
			if ((c < 0x20 || c >= 0x7f) && c != ' ')
				return fail(&ps, "raw byte 0x%02x at column %zu (fields are "
				                 "percent-encoded)", c, i + 1);
		}
		struct field f[9];
		size_t n = 0;
		if (split(&ps, p, linelen, f, 9, &n) < 0)
			return -1;
		int rec;
		for (rec = 0; rec < R_COUNT; rec++)
			if (field_is(f[0], record_names[rec]))
				break;
		if (rec == R_COUNT)
			return fail(&ps, "unknown record \"%.*s\"", f[0].len > 32 ? 32 : (int)f[0].len,
			            f[0].p);
		if (rec == R_RCPT && expect >= R_RCPT) {
			if (parse_rcpt(&ps, f, n, env) < 0)
				return -1;
			expect = R_END;
			continue;
		}
		if (rec == R_END && expect == R_END) {
			if (n != 1)
				return fail(&ps, "end takes no fields");
			expect = R_COUNT;
			continue;
		}
		if (rec != (int)expect) {
			if (rec < (int)expect && rec != R_RCPT)
				return fail(&ps, "duplicate %s record", record_names[rec]);
			return fail(&ps, "%s record where %s was expected", record_names[rec],
			            expect == R_END ? "rcpt or end" : record_names[expect]);
		}
		if (parse_header(&ps, (enum record)rec, f, n, env) < 0)
			return -1;
		expect = (enum record)(rec + 1);
	}
	if (expect != R_COUNT) {
		ps.line++;
		return fail(&ps, "file ends where %s was expected: truncated",
		            expect == R_END ? "rcpt or end" : record_names[expect]);
	}
	return 0;
}

/* ---- formatting ---- */

static bool must_encode(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || c == '%';
}

/* Appends " " and s percent-encoded (at most max octets of it). */
static int put_text(struct buf *b, const char *s, size_t max, bool whole)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(s);
	if (len > max)
		len = max;
	char tmp[3 * 256];
	size_t o = 0;
	if (buf_append(b, " ", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (must_encode(c) || whole) {
			tmp[o++] = '%';
			tmp[o++] = hex[c >> 4];
			tmp[o++] = hex[c & 15];
		} else {
			tmp[o++] = (char)c;
		}
		if (o > sizeof(tmp) - 3) {
			if (buf_append(b, tmp, o) < 0)
				return -1;
			o = 0;
		}
	}
	return buf_append(b, tmp, o);
}

/* The length of s cut at max octets without splitting a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t max)
{
	size_t len = strlen(s);
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80 && max - n < 3)
		n--;
	return n;
}

static int put_optional(struct buf *b, const char *s, size_t max)
{
	if (!s || !*s)
		return buf_append(b, " -", 2);
	/* A literal "-" is encoded so that it does not read as "none". */
	return put_text(b, s, max, strcmp(s, "-") == 0);
}

int queue_envelope_format(const struct queue_envelope *env, struct buf *out, const char **why)
{
	size_t start = out->len;
	struct buf *b = out;
	*why = NULL;
	if (!queue_id_valid(env->id, strlen(env->id)))
		*why = "id is not a valid queue id";
	else if (!env->sender || strlen(env->sender) > QUEUE_ENV_ADDR_MAX)
		*why = "sender missing or too long";
	else if (env->nrcpts == 0 || env->nrcpts > QUEUE_ENV_RCPTS_MAX)
		*why = "no recipients, or too many";
	else if (env->created < 0 || env->size > INT64_MAX || (unsigned)env->origin >= NELEM(origin_names) ||
	         (env->flags & ~7u))
		*why = "created, size, origin or flags out of range";
	for (size_t i = 0; !*why && i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		if (!r->addr || !*r->addr || strlen(r->addr) > QUEUE_ENV_ADDR_MAX ||
		    (r->orcpt && strlen(r->orcpt) > QUEUE_ENV_ADDR_MAX))
			*why = "a recipient address is empty or too long";
		else if ((unsigned)r->state >= NELEM(state_names) || r->next < 0 || r->last_attempt < 0)
			*why = "a recipient's state or times are out of range";
	}
	if (*why)
		return -1;
	char hex[2 * QUEUE_SHA256_LEN + 1];
	for (size_t i = 0; i < QUEUE_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", env->sha256[i]);
	char flags[32] = "-";
	size_t fl = 0;
	for (int k = 0; k < NFLAGS; k++)
		if (env->flags & (1u << k))
			fl += (size_t)snprintf(flags + fl, sizeof(flags) - fl, "%s%s", fl ? "," : "",
			                       flag_names[k]);
	int rc = buf_printf(b, "rawmail-queue %d\nid %s\ncreated %lld\nsender", QUEUE_ENV_VERSION,
	                    env->id, (long long)env->created);
	if (rc == 0)
		rc = env->sender[0] ? put_text(b, env->sender, QUEUE_ENV_ADDR_MAX,
		                               strcmp(env->sender, "<>") == 0)
		                    : buf_append(b, " <>", 3);
	if (rc == 0)
		rc = buf_printf(b, "\nsize %llu\nsha256 %s\nflags %s\norigin %s\n",
		                (unsigned long long)env->size, hex, flags, origin_names[env->origin]);
	for (size_t i = 0; rc == 0 && i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		rc = buf_printf(b, "rcpt %s %u %lld %lld", state_names[r->state], r->attempts,
		                (long long)r->next, (long long)r->last_attempt);
		if (rc == 0)
			rc = put_text(b, r->addr, QUEUE_ENV_ADDR_MAX, false);
		if (rc == 0)
			rc = put_optional(b, r->orcpt, QUEUE_ENV_ADDR_MAX);
		if (rc == 0)
			rc = put_optional(b, r->last, r->last ? cut_utf8(r->last, QUEUE_ENV_LAST_MAX) : 0);
		if (rc == 0)
			rc = buf_append(b, "\n", 1);
	}
	if (rc == 0)
		rc = buf_append(b, "end\n", 4);
	if (rc == 0 && b->len - start > QUEUE_ENV_FILE_MAX)
		rc = -1;
	if (rc < 0) {
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
		*why = "out of memory, or the envelope is larger than the buffer allows";
		return -1;
	}
	return 0;
}

/* ---- building ---- */

int queue_envelope_set_sender(struct queue_envelope *env, const char *sender)
{
	char *s = strdup(sender);
	if (!s)
		return -1;
	free(env->sender);
	env->sender = s;
	return 0;
}

int queue_envelope_add_rcpt(struct queue_envelope *env, const char *addr, const char *orcpt)
{
	if (env->nrcpts >= QUEUE_ENV_RCPTS_MAX) {
		errno = E2BIG;
		return -1;
	}
	struct queue_rcpt *r = realloc(env->rcpts, (env->nrcpts + 1) * sizeof(*r));
	if (!r)
		return -1;
	env->rcpts = r;
	r = &env->rcpts[env->nrcpts];
	memset(r, 0, sizeof(*r));
	r->addr = strdup(addr);
	r->orcpt = orcpt ? strdup(orcpt) : NULL;
	if (!r->addr || (orcpt && !r->orcpt)) {
		free(r->addr);
		free(r->orcpt);
		return -1;
	}
	env->nrcpts++;
	return 0;
}

int queue_rcpt_set_last(struct queue_rcpt *r, const char *last)
{
	char *s = last ? strdup(last) : NULL;
	if (last && !s)
		return -1;
	free(r->last);
	r->last = s;
	return 0;
}

void queue_envelope_free(struct queue_envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orcpt);
		free(env->rcpts[i].last);
	}
	free(env->rcpts);
	free(env->sender);
	memset(env, 0, sizeof(*env));
}

static bool str_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool queue_envelope_equal(const struct queue_envelope *a, const struct queue_envelope *b)
{
	if (strcmp(a->id, b->id) != 0 || a->created != b->created || !str_equal(a->sender, b->sender) ||
	    a->size != b->size || memcmp(a->sha256, b->sha256, QUEUE_SHA256_LEN) != 0 ||
	    a->flags != b->flags || a->origin != b->origin || a->nrcpts != b->nrcpts)
		return false;
	for (size_t i = 0; i < a->nrcpts; i++) {
		const struct queue_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		if (x->state != y->state || x->attempts != y->attempts || x->next != y->next ||
		    x->last_attempt != y->last_attempt || !str_equal(x->addr, y->addr) ||
		    !str_equal(x->orcpt, y->orcpt) || !str_equal(x->last, y->last))
			return false;
	}
	return true;
}

static bool has_8bit(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

bool queue_envelope_wants_smtputf8(const struct queue_envelope *env)
{
	bool utf8 = has_8bit(env->sender);
	for (size_t i = 0; i < env->nrcpts && !utf8; i++)
		utf8 = has_8bit(env->rcpts[i].addr);
	return utf8;
}
