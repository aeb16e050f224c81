/* The text and the attachments of a message, for its event.
 *
 * What is what, leaf by leaf in the order of the message (multiparts are
 * descended, message/rfc822 parts are not):
 *   - the text: the first text/plain leaf that is neither marked
 *     "Content-Disposition: attachment" nor named (a file name makes it
 *     a file); in a multipart/alternative that is the plain alternative;
 *     a message without Content-Type is text/plain (RFC 2045 §5.2);
 *   - an attachment: any other leaf that is marked attachment, or has a
 *     name (Content-Disposition filename, else Content-Type name), or is
 *     not text/... (an inline image from a camera with no name, a
 *     message/rfc822, an application/octet-stream);
 *   - neither: other text/... leaves without a name (the text/html
 *     alternative, a second text/plain body), and multiparts that were not
 *     descended (no boundary, or nested deeper than MIME_DEPTH_MAX). */
#include "mqtt/event_parts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/decode.h"
#include "msg/mime_read.h"
#include "util/limits.h"

/* Decoded bytes are bounded by the message, which the store bounded. */
#define EVENT_BUF_MAX (SIZE_MAX / 2)
/* A token (disposition, transfer encoding) longer than this is none we
 * know. */
#define EVENT_TOKEN_MAX 64

void event_parts_init(struct event_parts *ep, const char *attach_topic, size_t max_attachment)
{
	memset(ep, 0, sizeof(*ep));
	ep->attach_topic = attach_topic;
	ep->max_attachment = max_attachment;
	buf_init(&ep->text, EVENT_BUF_MAX);
}

void event_attachment_free(struct mqtt_event_attachment *a)
{
	free(a->name);
	free(a->type);
	free(a->topic);
	free(a->data);
	memset(a, 0, sizeof(*a));
}

void event_parts_free(struct event_parts *ep)
{
	for (size_t i = 0; i < ep->natt; i++)
		event_attachment_free(&ep->att[i]);
	free(ep->att);
	free(ep->skipped);
	buf_free(&ep->text);
	ep->att = NULL;
	ep->skipped = NULL;
	ep->natt = ep->cap = 0;
}

/* The body with its Content-Transfer-Encoding undone (RFC 2045 §6: 7bit,
 * 8bit, binary and unknown encodings are taken as they are). */
static int part_decode(struct buf *out, const char *cte, const struct msg_mime_entity *e)
{
	if (strcmp(cte, "base64") == 0)
		return msg_decode_base64(out, e->body, e->body_len);
	if (strcmp(cte, "quoted-printable") == 0)
		return msg_decode_qp(out, e->body, e->body_len);
	return buf_append(out, e->body, e->body_len);
}

/* Line endings as LF (the Maildir convention), in place. */
static void text_lf(struct buf *b)
{
	size_t o = 0;
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n')
			continue;
		b->data[o++] = b->data[i];
	}
	b->len = o;
	if (b->data)
		b->data[o] = '\0';
}

static int part_text(struct event_parts *ep, const struct msg_mime_leaf *leaf, const char *cte)
{
	struct buf raw, charset;
	buf_init(&raw, EVENT_BUF_MAX);
	buf_init(&charset, EVENT_BUF_MAX);
	int rc = part_decode(&raw, cte, &leaf->e);
	if (rc == 0 && leaf->content_type &&
	    msg_mime_param(&charset, leaf->content_type, leaf->content_type_len, "charset",
	                   MSG_MIME_PARAM_RAW) < 0)
		rc = -1;
	if (rc == 0)
		rc = msg_decode_charset(&ep->text, charset.data ? charset.data : "", charset.len,
		                        raw.data ? raw.data : "", raw.len);
	buf_free(&raw);
	buf_free(&charset);
	if (rc < 0)
		return -1;
	text_lf(&ep->text);
	size_t keep = msg_decode_utf8_cut(ep->text.data ? ep->text.data : "", ep->text.len,
	                                  MQTT_EVENT_TEXT_MAX);
	if (keep < ep->text.len) {
		ep->text.len = keep;
		ep->text.data[keep] = '\0';
		ep->text_truncated = true;
	}
	ep->have_text = true;
	return 0;
}

static char *text_dup(const char *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		if (len)
			memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

static int part_attachment(struct event_parts *ep, const struct msg_mime_leaf *leaf,
                           const char *cte, const struct buf *name)
{
	if (ep->natt == ep->cap) {
		size_t cap = ep->cap ? ep->cap * 2 : 4;
		struct mqtt_event_attachment *att = realloc(ep->att, cap * sizeof(*att));
		if (!att)
			return -1;
		ep->att = att;
		bool *skipped = realloc(ep->skipped, cap * sizeof(*skipped));
		if (!skipped)
			return -1;
		ep->skipped = skipped;
		ep->cap = cap;
	}
	struct mqtt_event_attachment *a = &ep->att[ep->natt];
	memset(a, 0, sizeof(*a));
	ep->skipped[ep->natt] = false;
	ep->natt++;
	const char *n = name->data ? name->data : "";
	a->name = text_dup(n, msg_decode_utf8_cut(n, name->len, MQTT_EVENT_FIELD_MAX));
	a->type = text_dup(leaf->type, strlen(leaf->type));
	if (!a->name || !a->type)
		return -1;
	struct buf data;
	buf_init(&data, EVENT_BUF_MAX);
	if (part_decode(&data, cte, &leaf->e) < 0) {
		buf_free(&data);
		return -1;
	}
	a->size = data.len;
	if (ep->attach_topic && data.len <= ep->max_attachment) {
		/* N is the attachment's place in the list, from 1. */
		struct buf topic;
		buf_init(&topic, EVENT_BUF_MAX);
		if (buf_printf(&topic, "%s/%zu", ep->attach_topic, ep->natt) < 0) {
			buf_free(&topic);
			buf_free(&data);
			return -1;
		}
		a->topic = buf_release(&topic, NULL);
		a->data = data.len ? (unsigned char *)buf_release(&data, NULL) : malloc(1);
		if (!a->data)
			return -1;
	} else if (ep->attach_topic) {
		ep->skipped[ep->natt - 1] = true;
	}
	buf_free(&data);
	return 0;
}

static int parts_leaf(const struct msg_mime_leaf *leaf, void *arg)
{
	struct event_parts *ep = arg;
	struct msg_mime_field f[2] = {
		{ .name = "Content-Disposition" },
		{ .name = "Content-Transfer-Encoding" },
	};
	msg_mime_fields_find(leaf->e.header, leaf->e.header_len, f, 2);
	char disp[EVENT_TOKEN_MAX + 1] = "";
	char cte[EVENT_TOKEN_MAX + 1] = "";
	struct buf t;
	for (int k = 0; k < 2; k++) {
		if (!f[k].found)
			continue;
		buf_init(&t, EVENT_TOKEN_MAX);
		/* A token too long for t is none we know: left "". */
		if (msg_mime_token(&t, f[k].value, f[k].len) == 0 && t.data)
			memcpy(k == 0 ? disp : cte, t.data, t.len + 1);
		buf_free(&t);
	}
	struct buf name;
	buf_init(&name, EVENT_BUF_MAX);
	int found = 0;
	if (f[0].found)
		found = msg_mime_param(&name, f[0].value, f[0].len, "filename", MSG_MIME_PARAM_TEXT);
	if (found == 0 && leaf->content_type)
		found = msg_mime_param(&name, leaf->content_type, leaf->content_type_len, "name",
		                       MSG_MIME_PARAM_TEXT);
	int rc = found < 0 ? -1 : 0;
	bool marked = strcmp(disp, "attachment") == 0;
	bool named = found > 0 && name.len > 0;
	bool text = strncmp(leaf->type, "text/", 5) == 0;
	bool multipart = strncmp(leaf->type, "multipart/", 10) == 0;
	if (rc == 0 && !ep->have_text && !marked && !named && strcmp(leaf->type, "text/plain") == 0)
		rc = part_text(ep, leaf, cte);
	else if (rc == 0 && !multipart && (marked || named || !text))
		rc = part_attachment(ep, leaf, cte, &name);
	buf_free(&name);
	return rc;
}

int event_parts_read(struct event_parts *ep, const char *msg, size_t len)
{
	return msg_mime_walk(msg, len, parts_leaf, ep);
}
