/* The message side of the event (mqtt/event.h): its text and its
 * attachments, found by a walk over its MIME parts.  Private to
 * src/mqtt/event*.c. */
#ifndef RAWMAIL_MQTT_EVENT_PARTS_H
#define RAWMAIL_MQTT_EVENT_PARTS_H

#include <stdbool.h>
#include <stddef.h>

#include "mqtt/event.h"
#include "util/buf.h"

struct event_parts {
	/* In: the attachment topic and size cap (mqtt_event_in's). */
	const char *attach_topic;
	size_t max_attachment;
	/* Out: the first text/plain part, UTF-8 with LF line endings, cut to
	 * MQTT_EVENT_TEXT_MAX. */
	bool have_text;
	bool text_truncated;
	struct buf text;
	/* The attachments in the order of the message; skipped[i] when one
	 * was too large to publish (attach_topic set, size over the cap). */
	struct mqtt_event_attachment *att;
	bool *skipped;
	size_t natt;
	size_t cap;
};

void event_parts_init(struct event_parts *ep, const char *attach_topic, size_t max_attachment);
/* Walks msg: 0, or -1 when memory ran out. */
int event_parts_read(struct event_parts *ep, const char *msg, size_t len);
void event_parts_free(struct event_parts *ep);
/* Frees one attachment's strings and bytes. */
void event_attachment_free(struct mqtt_event_attachment *a);

#endif
