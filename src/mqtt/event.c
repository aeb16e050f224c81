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
 * null, attachments too.  Every string is valid UTF-8: invalid octets
 * become U+FFFD before they reach jansson (whose json_stringn refuses
 * invalid UTF-8). */
#include "mqtt/event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "msg/decode.h"
#include "msg/mime_read.h"
#include "mqtt/event_parts.h"
#include "util/limits.h"

#define EVENT_BUF_MAX (SIZE_MAX / 2)

/* A JSON string of p[0..len), repaired to valid UTF-8; NULL when memory
 * ran out. */
static json_t *event_string(const char *p, size_t len)
{
	struct buf b;
	buf_init(&b, EVENT_BUF_MAX);
	if (msg_decode_utf8_repair(&b, p ? p : "", p ? len : 0) < 0) {
		buf_free(&b);
		return NULL;
	}
	json_t *s = json_stringn(b.data ? b.data : "", b.len);
	buf_free(&b);
	return s;
}

static json_t *event_cstring(const char *s)
{
	return event_string(s, s ? strlen(s) : 0);
}

/* Sets key to v (taking it): 0, or -1 when v is NULL or memory ran out. */
static int event_put(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return -1;
	return json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

/* A header field's value: null when absent; unfolded, encoded words
 * decoded when words, made valid UTF-8, cut at a character boundary. */
static json_t *event_header(const struct msg_mime_field *f, bool words)
{
	if (!f->found)
		return json_null();
	struct buf raw, text;
	buf_init(&raw, EVENT_BUF_MAX);
	buf_init(&text, EVENT_BUF_MAX);
	json_t *v = NULL;
	if (msg_mime_unfold(&raw, f->value, f->len) == 0) {
		const char *r = raw.data ? raw.data : "";
		int rc = words ? msg_decode_words(&text, r, raw.len)
		               : msg_decode_utf8_repair(&text, r, raw.len);
		if (rc == 0) {
			const char *t = text.data ? text.data : "";
			v = json_stringn(t, msg_decode_utf8_cut(t, text.len, MQTT_EVENT_FIELD_MAX));
		}
	}
	buf_free(&raw);
	buf_free(&text);
	return v;
}

static int event_envelope(json_t *o, const struct outbox_event *ev)
{
	if (event_put(o, "id", event_cstring(ev->id)) < 0 ||
	    event_put(o, "mailbox", event_cstring(ev->mailbox)) < 0 ||
	    event_put(o, "from", event_cstring(ev->from)) < 0)
		return -1;
	json_t *to = json_array();
	if (event_put(o, "to", to) < 0)
		return -1;
	for (size_t i = 0; i < ev->nto; i++) {
		json_t *s = event_cstring(ev->to[i]);
		if (!s || json_array_append_new(to, s) < 0)
			return -1;
	}
	if (event_put(o, "client_ip", event_cstring(ev->client_ip)) < 0 ||
	    event_put(o, "helo", event_cstring(ev->helo)) < 0)
		return -1;
	return 0;
}

static int event_headers(json_t *o, const struct mqtt_event_in *in)
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
	if (event_put(o, "header_from", event_header(&f[0], true)) < 0 ||
	    event_put(o, "subject", event_header(&f[1], true)) < 0 ||
	    event_put(o, "date", event_header(&f[2], false)) < 0 ||
	    event_put(o, "message_id", event_header(&f[3], false)) < 0)
		return -1;
	return 0;
}

static json_t *event_attachments(const struct event_parts *ep)
{
	json_t *list = json_array();
	if (!list)
		return NULL;
	for (size_t i = 0; i < ep->natt; i++) {
		const struct mqtt_event_attachment *a = &ep->att[i];
		json_t *o = json_object();
		if (!o || json_array_append_new(list, o) < 0 ||
		    event_put(o, "name", event_cstring(a->name)) < 0 ||
		    event_put(o, "type", event_cstring(a->type)) < 0 ||
		    event_put(o, "size", json_integer((json_int_t)a->size)) < 0 ||
		    (a->topic && event_put(o, "topic", event_cstring(a->topic)) < 0) ||
		    (ep->skipped[i] &&
		     event_put(o, "skipped", json_string("larger than the attachment limit")) < 0)) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static int event_body(json_t *o, const struct mqtt_event_in *in, struct event_parts *ep)
{
	if (event_put(o, "size", json_integer((json_int_t)in->ev->size)) < 0 ||
	    event_put(o, "path", event_cstring(in->ev->path)) < 0)
		return -1;
	if (in->msg && event_parts_read(ep, in->msg, in->len) < 0)
		return -1;
	json_t *text = ep->have_text ? json_stringn(ep->text.data ? ep->text.data : "", ep->text.len)
	                             : json_null();
	if (event_put(o, "text", text) < 0 ||
	    event_put(o, "text_truncated", json_boolean(ep->text_truncated)) < 0)
		return -1;
	return event_put(o, "attachments", in->msg ? event_attachments(ep) : json_null());
}

int mqtt_event_build(const struct mqtt_event_in *in, struct mqtt_event_out *out)
{
	memset(out, 0, sizeof(*out));
	struct event_parts ep;
	event_parts_init(&ep, in->attach_topic, in->max_attachment);
	json_t *o = json_object();
	int rc = -1;
	if (o && event_envelope(o, in->ev) == 0 && event_headers(o, in) == 0 &&
	    event_body(o, in, &ep) == 0) {
		out->json = json_dumps(o, JSON_COMPACT);
		if (out->json) {
			out->json_len = strlen(out->json);
			/* The attachments (and their bytes) are the caller's now. */
			out->att = ep.att;
			out->natt = ep.natt;
			ep.att = NULL;
			ep.natt = 0;
			rc = 0;
		}
	}
	json_decref(o);
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
