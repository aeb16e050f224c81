/* The drop file (maildrop.h): format and the untrusting parser.  Pure:
 * bytes in, an envelope out; fuzzed by tests/fuzz/fuzz_queue_drop.c. */
#include "queue/maildrop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/address.h"
#include "util/sha256.h"

_Static_assert(QUEUE_SHA256_LEN == SHA256_DIGEST_LEN, "one digest length");

int queue_drop_format(struct queue_envelope *env, const void *message, size_t len,
                      struct buf *out, const char **why)
{
	env->size = len;
	sha256_digest(message, len, env->sha256);
	if (queue_envelope_format(env, out, why) != 0)
		return -1;
	if (buf_append(out, message, len) != 0) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

/* The envelope ends at its "end" line: fields are percent-encoded, so no
 * earlier line can read "end" (envelope.h). */
static const char *envelope_end(const char *data, size_t len)
{
	static const char mark[] = "\nend\n";
	const size_t n = sizeof(mark) - 1;
	size_t at = 0;
	while (at + n <= len) {
		const char *p = memchr(data + at, '\n', len - at);
		if (!p)
			return NULL;
		at = (size_t)(p - data);
		if (at + n <= len && !memcmp(p, mark, n))
			return p + n;
		at++;
	}
	return NULL;
}

/* A recipient the sendmail entry would have accepted: a local name, or
 * a mailbox with a host name or an IPv4/IPv6 literal (never a General
 * literal or a source route). */
static bool rcpt_ok(const char *s)
{
	size_t len = strlen(s), used = 0;
	if (smtp_local_name_ok(s, len))
		return true;
	struct smtp_address a;
	return smtp_address_parse(s, len, SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_BARE_IP | SMTP_ADDR_UTF8,
	                          &a, &used) == SMTP_ADDR_OK &&
	       used == len && s[0] != '<' && a.kind != SMTP_DOMAIN_NONE &&
	       a.kind != SMTP_DOMAIN_GENERAL && !a.had_source_route;
}

static bool sender_ok(const char *s)
{
	size_t len = strlen(s), used = 0;
	if (len == 0)
		return true;   /* the null sender, as sendmail -f '<>' gives */
	struct smtp_address a;
	return smtp_address_parse(s, len, SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_UTF8, &a, &used) ==
	               SMTP_ADDR_OK &&
	       used == len && s[0] != '<' && a.kind != SMTP_DOMAIN_NONE &&
	       a.kind != SMTP_DOMAIN_GENERAL && !a.had_source_route;
}

int queue_drop_parse(const char *data, size_t len, struct queue_envelope *env, size_t *msg_off,
                     char *why, size_t whylen)
{
	memset(env, 0, sizeof(*env));
	const char *end = envelope_end(data, len);
	if (!end) {
		snprintf(why, whylen, "no envelope (no end line): not a drop file, or cut short");
		return -1;
	}
	char perr[256];
	if (queue_envelope_parse(data, (size_t)(end - data), env, perr, sizeof(perr)) != 0) {
		snprintf(why, whylen, "envelope: %s", perr);
		return -1;
	}
	size_t off = (size_t)(end - data), mlen = len - off;
	if (env->size != mlen) {
		snprintf(why, whylen, "message of %zu octets, the envelope says %llu: cut short?", mlen,
		         (unsigned long long)env->size);
		return -1;
	}
	uint8_t sum[QUEUE_SHA256_LEN];
	sha256_digest(end, mlen, sum);
	if (memcmp(sum, env->sha256, sizeof(sum)) != 0) {
		snprintf(why, whylen, "the message's SHA-256 differs from the envelope's");
		return -1;
	}
	if (!sender_ok(env->sender)) {
		snprintf(why, whylen, "the sender is not an address");
		return -1;
	}
	if (env->nrcpts == 0) {
		snprintf(why, whylen, "no recipient");
		return -1;
	}
	/* What a user may say is who sends to whom; the state of delivery,
	 * the flags that suppress bounces and the times are the queue's. */
	for (size_t i = 0; i < env->nrcpts; i++) {
		struct queue_rcpt *r = &env->rcpts[i];
		if (!rcpt_ok(r->addr)) {
			snprintf(why, whylen, "recipient %zu is neither a local name nor an address", i + 1);
			return -1;
		}
		if (r->orcpt && !rcpt_ok(r->orcpt)) {
			free(r->orcpt);
			r->orcpt = NULL;
		}
		r->state = QUEUE_RCPT_QUEUED;
		r->attempts = 0;
		r->next = 0;
		r->last_attempt = 0;
		queue_rcpt_set_last(r, NULL);
	}
	/* SMTPUTF8 is needed exactly when an address is not ASCII. */
	env->flags = queue_envelope_wants_smtputf8(env) ? QUEUE_FLAG_SMTPUTF8 : 0;
	env->origin = QUEUE_ORIGIN_SENDMAIL;
	env->id[0] = '\0';
	env->created = 0;
	*msg_off = off;
	return 0;
}
