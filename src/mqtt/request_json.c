/* A JSON send request (issue 12): {"to", "subject", "text", "html",
 * "from", "id", "attachments": [{"name", "type", "data"}]} checked whole,
 * then composed with msg_compose_build as `rawmail send -s` composes. */
#include "mqtt/request_internal.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "msg/attach.h"
#include "msg/compose.h"
#include "msg/mime.h"

/* What a value is, for a reason naming a wrong type. */
static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE: return "true";
	case JSON_FALSE: return "false";
	default: return "null";
	}
}

/* An optional string field of obj: true with *s NULL when absent or null
 * (Node-RED templates often leave a field null); false (refused) when it
 * is another type.  what names the field in the reason. */
static bool json_string_field(struct request_ctx *ctx, json_t *obj, const char *key,
                              const char *what, const char **s, size_t *len)
{
	json_t *v = json_object_get(obj, key);
	*s = NULL;
	*len = 0;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v))
		return request_refuse(ctx, "%s must be a string, not %s", what, json_kind(v));
	*s = json_string_value(v);
	*len = json_string_length(v);
	return true;
}

/* "id": a string or a number, kept as text (a number as JSON writes it),
 * set in out->id at once so that a later refusal still carries it. */
static bool json_take_id(struct request_ctx *ctx, json_t *root)
{
	json_t *v = json_object_get(root, "id");
	if (!v || json_is_null(v))
		return true;
	char *id = NULL;
	if (json_is_string(v)) {
		if (json_string_length(v) > MQTT_REQUEST_ID_MAX)
			return request_refuse(ctx, "\"id\" is longer than %d octets", MQTT_REQUEST_ID_MAX);
		id = strndup(json_string_value(v), json_string_length(v));
	} else if (json_is_number(v)) {
		id = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	} else {
		return request_refuse(ctx, "\"id\" must be a string or a number, not %s", json_kind(v));
	}
	if (!id)
		return request_refuse(ctx, "out of memory");
	ctx->out->id = id;
	return true;
}

static size_t peek_ws(const char *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i;
}

/* p[i] is '"': the index after the closing quote (len if there is none). */
static size_t peek_string(const char *p, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return len;
}

/* p[i] starts a value: the index after it (strings and nested values
 * skipped whole, scalars up to the next ',' or '}'). */
static size_t peek_value(const char *p, size_t len, size_t i)
{
	size_t depth = 0;
	while (i < len) {
		char c = p[i];
		if (c == '"') {
			i = peek_string(p, len, i);
			if (depth == 0)
				return i;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;
			if (--depth == 0)
				return i + 1;
		} else if (c == ',' && depth == 0) {
			return i;
		}
		i++;
	}
	return len;
}

/* Walks the top-level object's members without building them (linear,
 * nothing allocated), and parses the value of a key written exactly "id"
 * on its own, through json_take_id's checks. */
void request_json_peek_id(struct request_ctx *ctx, const char *p, size_t len)
{
	size_t i = peek_ws(p, len, 0);
	if (i >= len || p[i] != '{')
		return;
	i++;
	for (;;) {
		i = peek_ws(p, len, i);
		if (i >= len || p[i] != '"')
			return;
		size_t k = i;
		i = peek_string(p, len, i);
		bool is_id = i - k == 4 && !memcmp(p + k, "\"id\"", 4);
		i = peek_ws(p, len, i);
		if (i >= len || p[i] != ':')
			return;
		i = peek_ws(p, len, i + 1);
		size_t v = i;
		i = peek_value(p, len, i);
		if (is_id) {
			/* \uXXXX escapes make a valid id up to six times its length. */
			char buf[MQTT_REQUEST_ID_MAX * 6 + 16];
			if (i - v > MQTT_REQUEST_ID_MAX * 6 + 2)
				return;
			int n = snprintf(buf, sizeof(buf), "{\"id\":%.*s}", (int)(i - v), p + v);
			json_t *root = n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
			if (root) {
				char why[256];
				struct request_ctx tmp = *ctx;
				tmp.reason = why;
				tmp.reasonlen = sizeof(why);
				json_take_id(&tmp, root);
				json_decref(root);
			}
			return;
		}
		i = peek_ws(p, len, i);
		if (i >= len || p[i] != ',')
			return;
		i++;
	}
}

static bool json_take_recipients(struct request_ctx *ctx, json_t *root)
{
	json_t *to = json_object_get(root, "to");
	if (!to || json_is_null(to))
		return request_refuse(ctx, "no recipient: give \"to\", an address or an array of "
		                      "addresses");
	if (json_is_string(to))
		return request_rcpt_add(ctx, "recipient", json_string_value(to),
		                        json_string_length(to));
	if (!json_is_array(to))
		return request_refuse(ctx, "\"to\" must be an address or an array of addresses, not %s",
		                      json_kind(to));
	size_t n = json_array_size(to);
	if (n == 0)
		return request_refuse(ctx, "no recipient: \"to\" is an empty array");
	if (n > MQTT_REQUEST_RECIPIENTS_MAX)
		return request_refuse(ctx, "\"to\" has %zu addresses, more than %d: send several "
		                      "requests", n, MQTT_REQUEST_RECIPIENTS_MAX);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(to, i);
		if (!json_is_string(v))
			return request_refuse(ctx, "\"to\" item %zu must be an address (a string), not %s",
			                      i + 1, json_kind(v));
		if (!request_rcpt_add(ctx, "recipient", json_string_value(v), json_string_length(v)))
			return false;
	}
	return true;
}

/* RFC 5322 §2.2: a field body holds no CR or LF (one would start a new
 * field: header injection) and §3.2.5 unstructured text no other control
 * character but HTAB (C0, DEL, and C1 as RFC 6532 UTF-8 lets them in). */
static bool json_check_subject(struct request_ctx *ctx, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			return request_refuse(ctx, "\"subject\" holds a line break: a subject is one line "
			                      "(a line break there would add header fields)");
		if ((c < 32 && c != '\t') || c == 127)
			return request_refuse(ctx, "\"subject\" holds a control character (U+%04X)", c);
		/* C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F; jansson has
		 * checked the UTF-8): CSI and friends act on terminals. */
		if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] < 0xA0)
			return request_refuse(ctx, "\"subject\" holds a control character (U+%04X)",
			                      (unsigned char)s[i + 1]);
	}
	return true;
}

/* The decoded attachments, freed together. */
struct json_attachments {
	struct msg_attachment *att;
	struct buf *data;
	size_t n;
};

static void json_attachments_free(struct json_attachments *a)
{
	for (size_t i = 0; i < a->n; i++)
		buf_free(&a->data[i]);
	free(a->data);
	free(a->att);
}

static bool json_take_attachment(struct request_ctx *ctx, json_t *v, size_t i,
                                 struct json_attachments *a)
{
	char shown[160];
	if (!json_is_object(v))
		return request_refuse(ctx, "attachment %zu must be an object {\"name\", \"type\", "
		                      "\"data\"}, not %s", i + 1, json_kind(v));
	const char *name, *type, *data;
	size_t name_len, type_len, data_len;
	char what[64];
	snprintf(what, sizeof(what), "attachment %zu's \"name\"", i + 1);
	if (!json_string_field(ctx, v, "name", what, &name, &name_len))
		return false;
	if (!name || name_len == 0)
		return request_refuse(ctx, "attachment %zu has no \"name\" (a file name such as "
		                      "snapshot.jpg)", i + 1);
	request_shown(name, name_len, shown, sizeof(shown));
	snprintf(what, sizeof(what), "attachment %zu's \"type\"", i + 1);
	if (!json_string_field(ctx, v, "type", what, &type, &type_len))
		return false;
	if (type && !msg_attach_type_ok(type)) {
		char t[100];
		return request_refuse(ctx, "attachment %zu (%s): \"type\" '%s' is not a media type "
		                      "such as image/jpeg", i + 1, shown,
		                      request_shown(type, type_len, t, sizeof(t)));
	}
	snprintf(what, sizeof(what), "attachment %zu's \"data\"", i + 1);
	if (!json_string_field(ctx, v, "data", what, &data, &data_len))
		return false;
	if (!data)
		return request_refuse(ctx, "attachment %zu (%s) has no \"data\" (its bytes in base64)",
		                      i + 1, shown);
	struct buf *b = &a->data[a->n];
	buf_init(b, ctx->policy->max_size);
	a->att[a->n++] = (struct msg_attachment){ .name = name, .type = type };
	size_t bad = 0;
	int rc = msg_mime_base64_decode(b, data, data_len, &bad);
	if (rc == -1)
		return request_refuse(ctx, "attachment %zu (%s): \"data\" is not base64 (RFC 4648: "
		                      "A-Z a-z 0-9 + / padded with =) at offset %zu", i + 1, shown,
		                      bad);
	if (rc < 0)
		return request_refuse(ctx, "attachment %zu (%s) is larger than the size limit of %zu "
		                      "octets", i + 1, shown, ctx->policy->max_size);
	a->att[a->n - 1].data = b->data ? b->data : "";
	a->att[a->n - 1].len = b->len;
	return true;
}

static bool json_take_attachments(struct request_ctx *ctx, json_t *root,
                                  struct json_attachments *a)
{
	json_t *list = json_object_get(root, "attachments");
	if (!list || json_is_null(list))
		return true;
	if (!json_is_array(list))
		return request_refuse(ctx, "\"attachments\" must be an array of objects {\"name\", "
		                      "\"type\", \"data\"}, not %s", json_kind(list));
	size_t n = json_array_size(list);
	if (n > MQTT_REQUEST_ATTACHMENTS_MAX)
		return request_refuse(ctx, "%zu attachments, more than %d", n,
		                      MQTT_REQUEST_ATTACHMENTS_MAX);
	if (n == 0)
		return true;
	a->att = calloc(n, sizeof(*a->att));
	a->data = calloc(n, sizeof(*a->data));
	if (!a->att || !a->data)
		return request_refuse(ctx, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!json_take_attachment(ctx, json_array_get(list, i), i, a))
			return false;
	return true;
}

/* Everything checked: the message composed into out->message. */
static bool json_compose(struct request_ctx *ctx, const struct msg_compose *c)
{
	struct buf msg;
	buf_init(&msg, ctx->policy->max_size);
	struct msg_error err = { 0 };
	if (msg_compose_build(c, &msg, &err) < 0) {
		buf_free(&msg);
		if (err.status == MSG_ERR_TOO_BIG)
			return request_refuse(ctx, "the message would be larger than the size limit of "
			                      "%zu octets (attachments grow by a third in base64)",
			                      ctx->policy->max_size);
		return request_refuse(ctx, "%s", err.text);
	}
	ctx->out->message = buf_release(&msg, &ctx->out->message_len);
	return ctx->out->message ? true : request_refuse(ctx, "out of memory");
}

static bool json_request(struct request_ctx *ctx, json_t *root, struct json_attachments *att)
{
	if (!json_is_object(root))
		return request_refuse(ctx, "the request must be a JSON object {\"to\": ..., "
		                      "\"subject\": ..., \"text\": ...}, not %s", json_kind(root));
	const char *subject, *text, *html, *from;
	size_t subject_len, text_len, html_len, from_len;
	if (!json_take_id(ctx, root) || !json_take_recipients(ctx, root) ||
	    !json_string_field(ctx, root, "subject", "\"subject\"", &subject, &subject_len) ||
	    !json_check_subject(ctx, subject ? subject : "", subject_len) ||
	    !json_string_field(ctx, root, "text", "\"text\"", &text, &text_len) ||
	    !json_string_field(ctx, root, "html", "\"html\"", &html, &html_len) ||
	    !json_string_field(ctx, root, "from", "\"from\"", &from, &from_len))
		return false;
	/* The sender is the configured one: anyone who can publish must not
	 * be able to send as someone else. */
	if (from && !request_from_is_sender(ctx->policy, from)) {
		char shown[160];
		return request_refuse(ctx, "\"from\" %s is not the configured sender %s: requests "
		                      "send only as %s (leave \"from\" out)",
		                      request_shown(from, from_len, shown, sizeof(shown)),
		                      ctx->policy->from, ctx->policy->from);
	}
	if (!json_take_attachments(ctx, root, att))
		return false;
	struct msg_compose c = {
		.from = ctx->policy->from,
		.to = (const char *const *)ctx->rcpts.addrs,
		.to_count = ctx->rcpts.count,
		.subject = subject ? subject : "",
		.body = text ? text : "",
		.body_len = text_len,
		.html = html,
		.html_len = html_len,
		.attachments = att->att,
		.attachment_count = att->n,
		.stamp = ctx->stamp,
	};
	return json_compose(ctx, &c);
}

bool request_json_parse(struct request_ctx *ctx, const char *payload, size_t len)
{
	json_error_t jerr;
	/* RFC 8259 §4: names SHOULD be unique; a duplicate "to" would leave
	 * which one counts to the parser. */
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		char shown[JSON_ERROR_TEXT_LENGTH + 8];
		return request_refuse(ctx, "bad JSON at line %d column %d: %s", jerr.line, jerr.column,
		                      request_shown(jerr.text, strlen(jerr.text), shown,
		                                    sizeof(shown)));
	}
	struct json_attachments att = { 0 };
	bool ok = json_request(ctx, root, &att);
	json_attachments_free(&att);
	json_decref(root);
	return ok;
}
