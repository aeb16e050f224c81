/* What the parts of the send request parser (mqtt/request*.c) share; not
 * part of the module's API. */
#ifndef RAWMAIL_MQTT_REQUEST_INTERNAL_H
#define RAWMAIL_MQTT_REQUEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "msg/address_list.h"
#include "msg/header.h"
#include "mqtt/request.h"
#include "util/limits.h"

/* One request being parsed. */
struct request_ctx {
	const struct mqtt_request_policy *policy;
	struct mqtt_request *out;
	char *reason;
	size_t reasonlen;
	struct msg_stamp stamp;        /* Date, Message-ID, boundaries */
	struct msg_recipients rcpts;   /* normalised, distinct */
};

/* Writes the sentence into ctx->reason and returns false. */
bool request_refuse(struct request_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Text from the request as it may stand in a reason: control octets and
 * invalid UTF-8 escaped (util/text.h), cut with "..." when longer than
 * buf (at least 4 octets).  Returns buf. */
const char *request_shown(const char *in, size_t len, char *buf, size_t buflen);

/* Checks one recipient in[0..len) (what) and adds it, normalised, to
 * ctx->rcpts when it is new: a deliverable addr-spec the policy allows.
 * false (refused, said why) otherwise. */
bool request_rcpt_add(struct request_ctx *ctx, const char *what, const char *in, size_t len);

/* Whether addr (an addr-spec, as the user wrote it) is the configured
 * sender policy->from. */
bool request_from_is_sender(const struct mqtt_request_policy *policy, const char *addr);

/* The two kinds of payload; each fills ctx->rcpts and ctx->out->message. */
bool request_json_parse(struct request_ctx *ctx, const char *payload, size_t len);
bool request_raw_parse(struct request_ctx *ctx, const char *topic_addr, const char *payload,
                       size_t len);
/* The "id" of a JSON payload too large to parse whole, into ctx->out->id
 * when it can be found and is valid, so that its refusal still echoes it. */
void request_json_peek_id(struct request_ctx *ctx, const char *payload, size_t len);

#endif
