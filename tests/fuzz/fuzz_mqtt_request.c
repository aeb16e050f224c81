/* libFuzzer harness for MQTT send requests (src/mqtt/request*.c): any
 * payload gives either a request or a refusal, never a crash.  A request
 * has 1..MQTT_REQUEST_RECIPIENTS_MAX distinct recipients, each allowed by
 * the policy, the configured sender, and a message within the size limit
 * with CR LF line endings only and no line over 998 octets; a refusal has
 * a one-line reason, and the result object built from it (and the id) is
 * valid JSON that reads back to the same strings.
 *
 * The first octet selects: bit 0 the topic gives bob@example.org, bit 1 a
 * small size limit (4 KiB), bit 2 no allow pattern, bit 3 a reason
 * buffer of 40 octets (cut, still valid UTF-8).  Seeds come from
 * tests/unit/test_mqtt_request.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mqtt/request.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const char *const allow[] = { "bob@example.org", "@example.net", "@[192.0.2.1]" };

static void check_message(const struct mqtt_request *r, size_t max)
{
	CHECK(r->message && r->message_len > 0 && r->message_len <= max);
	size_t start = 0;
	for (size_t i = 0; i < r->message_len; i++) {
		if (r->message[i] == '\r')
			CHECK(i + 1 < r->message_len && r->message[i + 1] == '\n');
		if (r->message[i] != '\n')
			continue;
		CHECK(i > start && r->message[i - 1] == '\r');
		CHECK(i - 1 - start <= RFC5322_LINE_MAX);
		start = i + 1;
	}
	CHECK(start == r->message_len);
	CHECK(memchr(r->message, '\0', r->message_len) == NULL);
}

static void check_result(const char *id, const char *reason)
{
	char *j = mqtt_result_json(id, NULL, "refused", reason, NULL, 0);
	CHECK(j);
	json_error_t e;
	json_t *back = json_loads(j, 0, &e);
	CHECK(back);
	CHECK(!strcmp(json_string_value(json_object_get(back, "reason")), reason));
	if (id)
		CHECK(!strcmp(json_string_value(json_object_get(back, "id")), id));
	json_decref(back);
	free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	unsigned char random[MQTT_REQUEST_RANDOM_LEN] = { 0 };
	struct mqtt_request_policy p = {
		.allow = allow,
		.nallow = sel & 4 ? 0 : sizeof(allow) / sizeof(allow[0]),
		.from = "rawmail@home.example",
		.max_size = sel & 2 ? 4096 : 1 << 20,
		.hostname = "home.example",
		.now = 1780000000,
		.random = random,
	};
	struct mqtt_request r;
	char reason[512];
	bool ok = mqtt_request_parse(sel & 1 ? "bob@example.org" : NULL, data + 1, size - 1, &p, &r,
	                             reason, sel & 8 ? 40 : sizeof(reason));
	if (ok) {
		CHECK(!(sel & 4));
		CHECK(r.nto >= 1 && r.nto <= MQTT_REQUEST_RECIPIENTS_MAX);
		for (size_t i = 0; i < r.nto; i++) {
			CHECK(mqtt_request_allowed(&p, r.to[i]));
			CHECK(strlen(r.to[i]) <= SMTP_PATH_MAX);
			for (size_t k = 0; k < i; k++)
				CHECK(strcmp(r.to[i], r.to[k]) != 0);
		}
		CHECK(r.from && !strcmp(r.from, p.from));
		CHECK(!r.id || strlen(r.id) <= MQTT_REQUEST_ID_MAX + 32);
		check_message(&r, p.max_size);
	} else {
		CHECK(reason[0] != '\0');
		CHECK(strpbrk(reason, "\r\n") == NULL);
		CHECK(!r.message && !r.to && !r.from);
		check_result(r.id, reason);
	}
	mqtt_request_free(&r);
	return 0;
}
