/* The JSON event for one stored copy (mqtt/event.h).
 *
 * Fields, in this order: id, mailbox, from, to (array), client_ip, helo
 * (from the outbox record), header_from, subject, date, message_id (the
 * message's header fields: unfolded; header_from and subject with their
 * RFC 2047 encoded words decoded; each cut to MQTT_EVENT_FIELD_MAX
 * octets), size, path, text, text_truncated (always there: true when the
 * text was cut to MQTT_EVENT_TEXT_MAX), attachments (an array of {name,
 * type, size} and, when published, topic, or "skipped" saying why not).
 * A header field the message does not have, or a text it does not have,
 * is null; with no message (in->msg NULL) all of the message's fields are
 * null, attachments too.
 *
 * Written with json-c, not jansson (which reads the send requests, with
 * its duplicate-key check json-c lacks): jansson's writer decodes every
 * UTF-8 character of a string to decide on escapes, 20 us for a 4 KiB
 * text, a third of the bridge's CPU per event; json-c's escapes bytes
 * from a table, 4 us for the same object built and written.  json-c
 * writes the octets it is given, so every string is made valid UTF-8
 * first: invalid octets become U+FFFD (msg/decode.h's functions all
 * promise valid UTF-8; fuzz_mqtt_event reads every event back with
 * jansson's strict reader). */
#include "mqtt/event.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "msg/decode.h"
#include "msg/mime_read.h"
#include "mqtt/event_parts.h"
#include "util/limits.h"

#define EVENT_BUF_MAX (SIZE_MAX / 2)

/* A JSON string of the valid UTF-8 p[0..len); NULL when memory ran out. */
static json_object *event_valid_string(const char *p, size_t len)
{
	return len <= INT_MAX ? json_object_new_string_len(p ? p : "", (int)len) : NULL;
}

/* A JSON string of p[0..len), repaired to valid UTF-8; NULL when memory
 * ran out. */
static json_object *event_string(const char *p, size_t len)
{
	struct buf b;
	buf_init(&b, EVENT_BUF_MAX);
	if (msg_decode_utf8_repair(&b, p ? p : "", p ? len : 0) < 0) {
		buf_free(&b);
		return NULL;
	}
	json_object *s = event_valid_string(b.data, b.len);
	buf_free(&b);
	return s;
}

static json_object *event_cstring(const char *s)
{
	return event_string(s, s ? strlen(s) : 0);
}

/* Sets key (a literal) to v, taking it: 0, or -1 when v is NULL or memory
 * ran out.  Keys are new and constant: json-c neither copies nor looks
 * them up. */
static int event_put(json_object *o, const char *key, json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW |
	                                                 JSON_C_OBJECT_ADD_CONSTANT_KEY) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* key: null. */
static int event_put_null(json_object *o, const char *key)
{
	return json_object_object_add_ex(o, key, NULL, JSON_C_OBJECT_ADD_KEY_IS_NEW |
	                                                       JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

/* Appends v to the array a, taking it: 0, or -1. */
static int event_append(json_object *a, json_object *v)
{
	if (!v)
		return -1;
	if (json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* A header field's value: null when absent; unfolded, encoded words
 * decoded when words, made valid UTF-8, cut at a character boundary.
 * -1 when memory ran out. */
static int event_header(json_object *o, const char *key, const struct msg_mime_field *f,
                        bool words)
{
	if (!f->found)
		return event_put_null(o, key);
	struct buf raw, text;
	buf_init(&raw, EVENT_BUF_MAX);
	buf_init(&text, EVENT_BUF_MAX);
	json_object *v = NULL;
	if (msg_mime_unfold(&raw, f->value, f->len) == 0) {
		const char *r = raw.data ? raw.data : "";
		int rc = words ? msg_decode_words(&text, r, raw.len)
		               : msg_decode_utf8_repair(&text, r, raw.len);
		if (rc == 0) {
			const char *t = text.data ? text.data : "";
			v = event_valid_string(t, msg_decode_utf8_cut(t, text.len, MQTT_EVENT_FIELD_MAX));
		}
	}
	buf_free(&raw);
	buf_free(&text);
	return event_put(o, key, v);
}

static int event_envelope(json_object *o, const struct outbox_event *ev)
{
	if (event_put(o, "id", event_cstring(ev->id)) < 0 ||
	    event_put(o, "mailbox", event_cstring(ev->mailbox)) < 0 ||
	    event_put(o, "from", event_cstring(ev->from)) < 0)
		return -1;
	json_object *to = json_object_new_array_ext((int)(ev->nto < 1024 ? ev->nto : 1024));
	if (event_put(o, "to", to) < 0)
		return -1;
	for (size_t i = 0; i < ev->nto; i++)
		if (event_append(to, event_cstring(ev->to[i])) < 0)
			return -1;
	if (event_put(o, "client_ip", event_cstring(ev->client_ip)) < 0 ||
	    event_put(o, "helo", event_cstring(ev->helo)) < 0)
		return -1;
	return 0;
}

static int event_headers(json_object *o, const struct mqtt_event_in *in)
{
	struct msg_mime_field f[4] = {
		{ .name = "From" }, { .name = "Subject" }, { .name = "Date" }, { .name = "Message-ID" },
	};
	if (in->msg) {
		struct msg_mime_entity e;
		msg_mime_split(in->msg, in->len, &e);
		msg_mime_fields_find(e.header, e.header_len, f, 4);
	} else {
		for (size_t k = 0; k < 4; k++)
			f[k].found = false;
	}
	if (event_header(o, "header_from", &f[0], true) < 0 ||
	    event_header(o, "subject", &f[1], true) < 0 ||
	    event_header(o, "date", &f[2], false) < 0 ||
	    event_header(o, "message_id", &f[3], false) < 0)
		return -1;
	return 0;
}

static json_object *event_attachments(const struct event_parts *ep)
{
	json_object *list = json_object_new_array();
	if (!list)
		return NULL;
	for (size_t i = 0; i < ep->natt; i++) {
		const struct mqtt_event_attachment *a = &ep->att[i];
		json_object *o = json_object_new_object();
		if (event_append(list, o) < 0 ||
		    event_put(o, "name", event_cstring(a->name)) < 0 ||
		    event_put(o, "type", event_cstring(a->type)) < 0 ||
		    event_put(o, "size", json_object_new_int64((int64_t)a->size)) < 0 ||
		    (a->topic && event_put(o, "topic", event_cstring(a->topic)) < 0) ||
		    (ep->skipped[i] && event_put(o, "skipped", json_object_new_string(
		                                                   "larger than the attachment limit")) < 0)) {
			json_object_put(list);
			return NULL;
		}
	}
	return list;
}

static int event_body(json_object *o, const struct mqtt_event_in *in, struct event_parts *ep)
{
	if (event_put(o, "size", json_object_new_int64((int64_t)in->ev->size)) < 0 ||
	    event_put(o, "path", event_cstring(in->ev->path)) < 0)
		return -1;
	if (in->msg && event_parts_read(ep, in->msg, in->len) < 0)
		return -1;
	if ((ep->have_text ? event_put(o, "text", event_valid_string(ep->text.data, ep->text.len))
	                   : event_put_null(o, "text")) < 0 ||
	    event_put(o, "text_truncated", json_object_new_boolean(ep->text_truncated)) < 0)
		return -1;
	return in->msg ? event_put(o, "attachments", event_attachments(ep))
	               : event_put_null(o, "attachments");
}

int mqtt_event_build(const struct mqtt_event_in *in, struct mqtt_event_out *out)
{
	memset(out, 0, sizeof(*out));
	struct event_parts ep;
	event_parts_init(&ep, in->attach_topic, in->max_attachment);
	json_object *o = json_object_new_object();
	int rc = -1;
	if (o && event_envelope(o, in->ev) == 0 && event_headers(o, in) == 0 &&
	    event_body(o, in, &ep) == 0) {
		size_t len = 0;
		/* Compact; "/" as it is (JSON does not need it escaped). */
		const char *text = json_object_to_json_string_length(
		        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
		if (text && (out->json = malloc(len + 1))) {
			memcpy(out->json, text, len + 1);
			out->json_len = len;
			/* The attachments (and their bytes) are the caller's now. */
			out->att = ep.att;
			out->natt = ep.natt;
			ep.att = NULL;
			ep.natt = 0;
			rc = 0;
		}
	}
	json_object_put(o);
	event_parts_free(&ep);
	return rc;
}
void mqtt_event_free(struct mqtt_event_out *out)
{
	for (size_t i = 0; i < out->natt; i++)
		event_attachment_free(&out->att[i]);
	free(out->att);
	free(out->json);
	memset(out, 0, sizeof(*out));
}
