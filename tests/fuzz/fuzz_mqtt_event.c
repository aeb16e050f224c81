/* libFuzzer harness for the MQTT event builder (src/mqtt/event*.c) and
 * the message reading under it (src/msg/decode*.c, mime_read.c,
 * mime_param.c, mime_walk.c): whatever the message, mqtt_event_build
 * makes one JSON object that json_loads reads back, with every field of
 * the contract, a text within MQTT_EVENT_TEXT_MAX, attachments that match
 * the list (a topic and bytes exactly when published, sizes as listed),
 * and the same bytes on a second build.  mqtt_topic_level's output holds
 * none of + # / NUL and decodes back to the input.
 *
 * Input: a selector octet (bit 0: attachments published; bits 1-7: the
 * attachment cap, in units of 16 octets), then the message.  Seeds come
 * from tests/unit/test_mqtt_event.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mqtt/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const char *const keys[] = {
	"id", "mailbox", "from", "to", "client_ip", "helo", "header_from", "subject", "date",
	"message_id", "size", "path", "text", "text_truncated", "attachments",
};

static void check_topic_level(const char *in, size_t len)
{
	size_t cap = 3 * len + 1;
	char *out = malloc(cap);
	CHECK(out);
	size_t n = mqtt_topic_level(in, len, out, cap);
	CHECK(n == strlen(out) || len == 0);
	CHECK(len == 0 || n >= len);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK(out[i] != '+' && out[i] != '#' && out[i] != '/' && out[i] != '\0');
		char c = out[i];
		if (c == '%') {
			CHECK(i + 2 < n);
			char hex[3] = { out[i + 1], out[i + 2], 0 };
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		CHECK(k < len && in[k] == c);
		k++;
	}
	CHECK(k == len);
	/* One octet short: refused. */
	if (len)
		CHECK(mqtt_topic_level(in, len, out, n) == 0);
	/* The inverse gives the name back (a name with a NUL cannot be a C
	 * string: refused), and any text decodes without harm. */
	char *back = malloc(len + 1);
	CHECK(back);
	if (len && mqtt_topic_level(in, len, out, cap)) {
		size_t m = mqtt_topic_level_decode(out, back, len + 1);
		if (memchr(in, '\0', len))
			CHECK(m == 0);
		else
			CHECK(m == len && memcmp(back, in, len) == 0);
	}
	char *text = malloc(len + 1);
	CHECK(text);
	memcpy(text, in, len);
	text[len] = '\0';
	size_t m = mqtt_topic_level_decode(text, back, len + 1);
	CHECK(m == 0 || m == strlen(back));
	free(text);
	free(back);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t sel = data[0];
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;
	const char *const to[] = { "a@b.example", "\xFF@x" };
	struct outbox_event ev = {
		.id = "ID1", .mailbox = "box", .path = "box/new/1", .from = "f@x", .to = to,
		.nto = 2, .client_ip = "127.0.0.1", .helo = "h\xC0", .size = len, .time = 1,
	};
	struct mqtt_event_in in = {
		.ev = &ev, .msg = msg, .len = len,
		.attach_topic = (sel & 1) ? "p/received/box/ID1" : NULL,
		.max_attachment = (size_t)(sel >> 1) * 16,
	};
	struct mqtt_event_out out;
	CHECK(mqtt_event_build(&in, &out) == 0);
	CHECK(out.json && strlen(out.json) == out.json_len);
	json_error_t err;
	json_t *j = json_loadb(out.json, out.json_len, JSON_ALLOW_NUL, &err);
	CHECK(j && json_is_object(j));
	CHECK(json_object_size(j) == sizeof(keys) / sizeof(keys[0]));
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		CHECK(json_object_get(j, keys[k]) != NULL);
	json_t *text = json_object_get(j, "text");
	CHECK(json_is_null(text) || (json_is_string(text) &&
	                             json_string_length(text) <= MQTT_EVENT_TEXT_MAX));
	CHECK(json_is_boolean(json_object_get(j, "text_truncated")));
	json_t *list = json_object_get(j, "attachments");
	CHECK(json_is_array(list) && json_array_size(list) == out.natt);
	for (size_t i = 0; i < out.natt; i++) {
		const struct mqtt_event_attachment *a = &out.att[i];
		json_t *o = json_array_get(list, i);
		CHECK(a->name && a->type);
		CHECK(strcmp(json_string_value(json_object_get(o, "type")), a->type) == 0);
		CHECK((json_int_t)a->size == json_integer_value(json_object_get(o, "size")));
		bool published = in.attach_topic && a->size <= in.max_attachment;
		CHECK(published == (a->topic != NULL));
		CHECK(published == (a->data != NULL));
		CHECK(published == (json_object_get(o, "topic") != NULL));
		CHECK((in.attach_topic && !published) == (json_object_get(o, "skipped") != NULL));
	}
	json_decref(j);

	struct mqtt_event_out again;
	CHECK(mqtt_event_build(&in, &again) == 0);
	CHECK(again.json_len == out.json_len && memcmp(again.json, out.json, out.json_len) == 0);
	for (size_t i = 0; i < out.natt; i++)
		CHECK(!out.att[i].data ||
		      (again.att[i].data && memcmp(out.att[i].data, again.att[i].data, out.att[i].size) == 0));
	mqtt_event_free(&again);
	mqtt_event_free(&out);

	check_topic_level(msg, len < 256 ? len : 256);
	return 0;
}
