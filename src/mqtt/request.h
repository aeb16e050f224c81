/* A send request from MQTT (issue 12, "MQTT -> mail out") and the result
 * objects published on PREFIX/result.  Pure: no I/O, no broker; the
 * bridge (mqtt/bridge*.c) queues what mqtt_request_parse accepts.
 * Fuzzed (tests/fuzz/fuzz_mqtt_request.c).
 *
 * A payload starting with '{' (after optional white space) is a JSON
 * object: {"to": ADDR or [ADDR...], "subject", "text", "html" (optional),
 * "from" (optional, default policy->from), "id" (optional correlation
 * id), "attachments": [{"name", "type", "data" (base64)}]}.  Any other
 * payload is a complete RFC 5322 message, its recipients from the topic's
 * ADDR (PREFIX/send/ADDR) or else its To and Cc. */
#ifndef RAWMAIL_MQTT_REQUEST_H
#define RAWMAIL_MQTT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mqtt_request_policy {
	const char *const *allow;  /* --mqtt-send-allow: "user@domain" or "@domain",
	                              case-insensitive domains; none allows nothing */
	size_t nallow;
	const char *from;          /* the configured sender (envelope and From) */
	size_t max_size;           /* serve's message size limit: payload and result */
	const char *hostname;      /* for Message-ID; NULL: from's domain */
	int64_t now;               /* for Date (seconds since the epoch, UTC) */
	/* MQTT_REQUEST_RANDOM_LEN octets fresh for each request (getrandom):
	 * the Message-ID's and the MIME boundaries' unique part.  NULL: taken
	 * from a SHA-256 of now and the payload, so two identical payloads in
	 * the same second would get the same Message-ID (tests only). */
	const unsigned char *random;
};
#define MQTT_REQUEST_RANDOM_LEN 24   /* msg/header.h's MSG_RANDOM_LEN */

struct mqtt_request {
	char *id;                  /* the request's "id", or NULL */
	char *from;                /* envelope sender */
	char **to;                 /* envelope recipients, checked addr-specs */
	size_t nto;
	char *message;             /* the whole message, CR LF line endings */
	size_t message_len;
};

/* Parses and checks one request.  topic_addr is ADDR of PREFIX/send/ADDR
 * (already percent-decoded) or NULL for PREFIX/send.  true with *out
 * filled, or false with a sentence in reason saying what is wrong (bad
 * JSON and where, no recipient, a recipient --mqtt-send-allow does not
 * allow, CR/LF in the subject, too large...) and out->id still set when
 * the payload had one, for the refusal's result (not for a payload
 * refused before parsing: larger than max_size).  Either way call
 * mqtt_request_free.  The rules (doc/DESIGN.md "Send requests"):
 * - recipients: each an RFC 5321 addr-spec (quotes as written, the domain
 *   in lower case and A-labels, literals as inet_ntop writes them), at
 *   most MQTT_REQUEST_RECIPIENTS_MAX, each allowed by the policy;
 * - the sender is always policy->from; "from" (JSON) or the From field
 *   (a raw message) must be that address (a raw message's display name
 *   may differ); a raw message without From gets one;
 * - JSON: unknown fields are ignored, null is the same as absent for the
 *   optional fields, "subject" and "text" may be absent (empty);
 * - a raw message must start with a header field; LF line endings become
 *   CR LF, a CR not followed by LF is refused; missing Date and
 *   Message-ID are added; Bcc fields are removed (their addresses are
 *   recipients when the topic gives none, as sendmail -t does). */
#define MQTT_REQUEST_REASON_MAX 1024  /* a reason buffer every sentence fits
                                        (a shorter one cuts it at a character) */
bool mqtt_request_parse(const char *topic_addr, const void *payload, size_t len,
                        const struct mqtt_request_policy *policy, struct mqtt_request *out,
                        char *reason, size_t reasonlen);
void mqtt_request_free(struct mqtt_request *r);

/* Whether addr (an addr-spec) matches one of the allow patterns: an
 * address matches a pattern "local@domain" when its local part is the
 * same octets (RFC 5321 §2.4: only the receiving host may fold its case;
 * a quoted "bob" is bob) and its domain the same, and a pattern
 * "@domain" when its domain is the same (that domain only: no
 * subdomains).  Domains compare case-insensitively, U-labels as their
 * A-labels, address literals by their binary address ("@[192.0.2.1]").
 * Nothing matches when nallow is 0, nor a pattern that does not parse. */
bool mqtt_request_allowed(const struct mqtt_request_policy *policy, const char *addr);

/* Whether pattern is a valid --mqtt-send-allow value (an addr-spec, or
 * "@" and a domain or address literal), for the option parser; false
 * with a sentence in why. */
bool mqtt_request_pattern_ok(const char *pattern, char *why, size_t whylen);

/* One recipient's outcome in a result. */
struct mqtt_result_rcpt {
	const char *address;
	const char *status;        /* "queued", "delivered", "failed" */
	const char *reply;         /* the remote reply, or NULL */
};

/* A result object, compact JSON, malloc'd (NULL when memory ran out): id
 * (omitted when NULL), queue_id (omitted when NULL), status ("queued",
 * "delivered", "failed", "refused"), reason (omitted when NULL),
 * recipients (omitted when n is 0). */
char *mqtt_result_json(const char *id, const char *queue_id, const char *status,
                       const char *reason, const struct mqtt_result_rcpt *rcpts, size_t n);

#endif
