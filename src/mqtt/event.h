/* The JSON event for one stored copy (issue 12, "Mail in -> MQTT"): built
 * from the outbox record and the stored file's bytes.  Pure: no I/O, no
 * broker; hostile input (broken MIME, bad charsets, 10,000 parts, a 1 MiB
 * header, invalid UTF-8) gives a valid JSON object with what could be
 * read.  Fuzzed (tests/fuzz/fuzz_mqtt_event.c). */
#ifndef RAWMAIL_MQTT_EVENT_H
#define RAWMAIL_MQTT_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "store/outbox.h"

/* The text field's cap (the issue: at most 64 KiB, text_truncated when
 * cut). */
#define MQTT_EVENT_TEXT_MAX (64 * 1024)

struct mqtt_event_in {
	const struct outbox_event *ev;
	const char *msg;           /* the stored file's bytes, or NULL when the
	                              file is gone (the event then carries the
	                              record's fields only) */
	size_t len;
	/* --mqtt-attachments: the topic each attachment's bytes go to is
	 * attach_topic/N (N from 1), listed in the event; NULL when
	 * attachments are not published. */
	const char *attach_topic;
	size_t max_attachment;     /* larger ones are listed, not published */
};

struct mqtt_event_attachment {
	char *name;                /* UTF-8, "" when none */
	char *type;                /* lower-case media type */
	size_t size;               /* decoded size */
	char *topic;               /* NULL unless published */
	unsigned char *data;       /* decoded bytes, only when published */
};

struct mqtt_event_out {
	char *json;                /* the payload, compact JSON */
	size_t json_len;
	struct mqtt_event_attachment *att;
	size_t natt;
};

/* Builds the payload: one compact JSON object with, in this order, id,
 * mailbox, from, to (array), client_ip, helo (the record's), header_from,
 * subject (unfolded, RFC 2047 decoded), date, message_id (unfolded, as
 * written), size, path, text (the first text/plain part that is neither
 * marked attachment nor named: transfer-decoded, UTF-8, LF line endings,
 * at most MQTT_EVENT_TEXT_MAX octets cut at a character boundary),
 * text_truncated (always there: true when text was cut) and attachments
 * (an array of {name, type, size}, plus topic when published or "skipped"
 * when over max_attachment; out->att lists the same in the same order).
 * A field the message does not have (no Subject, no text/plain part) is
 * null; with msg NULL every message field is null, attachments too.
 * Header values and names are cut to MQTT_EVENT_FIELD_MAX octets
 * (util/limits.h).  Every string is valid UTF-8 (invalid octets become
 * U+FFFD).  What counts as an attachment: see src/mqtt/event_parts.c.
 * 0, or -1 when memory ran out (out is then empty). */
int mqtt_event_build(const struct mqtt_event_in *in, struct mqtt_event_out *out);
void mqtt_event_free(struct mqtt_event_out *out);

/* A mailbox name as one MQTT topic level: '+', '#', '/', '%' and NUL
 * percent-encoded (MQTT 3.1.1 §4.7; '%' so the encoding can be undone).
 * Returns the length written (out is NUL-terminated), or 0 when outlen is
 * too small (an empty name, which no mailbox has, also gives 0). */
size_t mqtt_topic_level(const char *in, size_t inlen, char *out, size_t outlen);
/* Its inverse, for a topic level that came from the broker (the ADDR of
 * PREFIX/send/ADDR): %XX back to its octet.  Returns the length written
 * (out is NUL-terminated), or 0 for an empty level, a broken escape, %00
 * (the result is a C string) or an out too small. */
size_t mqtt_topic_level_decode(const char *in, char *out, size_t outlen);

#endif
