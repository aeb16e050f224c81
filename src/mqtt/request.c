/* mqtt_request_parse: the size limit, which kind of payload, and the
 * request handed back whole or not at all (issue 12, "MQTT -> mail out").
 * The rules are in mqtt/request.h and doc/DESIGN.md "Send requests". */
#include "mqtt/request_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

_Static_assert(MQTT_REQUEST_RANDOM_LEN == MSG_RANDOM_LEN, "one length for the random octets");

/* Date (UTC: this code reads no time zone) and the unique octets of the
 * Message-ID and the MIME boundaries. */
static void request_stamp(struct request_ctx *ctx, const void *payload, size_t len)
{
	const struct mqtt_request_policy *p = ctx->policy;
	ctx->stamp.date = (time_t)p->now;
	ctx->stamp.tz_minutes = 0;
	ctx->stamp.hostname = p->hostname;
	if (!ctx->stamp.hostname && p->from && strrchr(p->from, '@'))
		ctx->stamp.hostname = strrchr(p->from, '@') + 1;
	if (p->random) {
		memcpy(ctx->stamp.random, p->random, MSG_RANDOM_LEN);
		return;
	}
	struct sha256 s;
	unsigned char digest[SHA256_DIGEST_LEN];
	sha256_init(&s);
	sha256_update(&s, &p->now, sizeof(p->now));
	sha256_update(&s, payload, len);
	sha256_final(&s, digest);
	memcpy(ctx->stamp.random, digest, MSG_RANDOM_LEN);
}

/* JSON when the first octet that is not white space (RFC 8259 §2 ws) is
 * "{". */
static bool request_is_json(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i < len && p[i] == '{';
}

bool mqtt_request_parse(const char *topic_addr, const void *payload, size_t len,
                        const struct mqtt_request_policy *policy, struct mqtt_request *out,
                        char *reason, size_t reasonlen)
{
	memset(out, 0, sizeof(*out));
	if (reasonlen)
		reason[0] = '\0';
	struct request_ctx ctx = { .policy = policy, .out = out, .reason = reason,
	                           .reasonlen = reasonlen };
	/* Before anything is parsed: a payload can only grow into a message.
	 * Its id is still looked for, for the refusal. */
	if (len > policy->max_size) {
		if (request_is_json(payload, len))
			request_json_peek_id(&ctx, payload, len);
		return request_refuse(&ctx, "the request is %zu octets, larger than the size limit "
		                      "of %zu octets", len, policy->max_size);
	}
	if (!policy->from || !*policy->from)
		return request_refuse(&ctx, "no sender address is configured for MQTT requests");
	msg_recipients_init(&ctx.rcpts, MQTT_REQUEST_RECIPIENTS_MAX);
	request_stamp(&ctx, payload, len);
	bool ok = request_is_json(payload, len)
	        ? request_json_parse(&ctx, payload, len)
	        : request_raw_parse(&ctx, topic_addr, payload, len);
	if (ok) {
		out->from = strdup(policy->from);
		ok = out->from != NULL || request_refuse(&ctx, "out of memory");
	}
	if (!ok) {
		char *id = out->id;
		out->id = NULL;
		mqtt_request_free(out);
		out->id = id;
		msg_recipients_free(&ctx.rcpts);
		return false;
	}
	out->to = ctx.rcpts.addrs;
	out->nto = ctx.rcpts.count;
	return true;
}

void mqtt_request_free(struct mqtt_request *r)
{
	free(r->id);
	free(r->from);
	for (size_t i = 0; i < r->nto; i++)
		free(r->to[i]);
	free(r->to);
	free(r->message);
	memset(r, 0, sizeof(*r));
}
