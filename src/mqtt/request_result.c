/* mqtt_result_json: the objects published on PREFIX/result, built with
 * jansson (never by hand: a reply or a reason may hold quotes, control
 * characters or invalid UTF-8). */
#include "mqtt/request.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/text.h"

/* A JSON string of s; text that is not valid UTF-8 (a remote server's
 * reply in Latin-1) is escaped as \xNN text (util/text.h), which is.
 * NULL when memory ran out. */
static json_t *result_string(const char *s)
{
	size_t len = strlen(s);
	json_t *v = json_stringn(s, len);
	if (v)
		return v;
	size_t n = 4 * len + 1;
	char *esc = malloc(n);
	if (!esc)
		return NULL;
	text_escape(esc, n, s, len, TEXT_KEEP_NEWLINE);
	v = json_string(esc);
	free(esc);
	return v;
}

/* Sets key to s when s is not NULL; -1 when memory ran out. */
static int result_set(json_t *obj, const char *key, const char *s)
{
	if (!s)
		return 0;
	json_t *v = result_string(s);
	return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *result_recipients(const struct mqtt_result_rcpt *rcpts, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		json_t *one = json_object();
		if (!one || result_set(one, "address", rcpts[i].address ? rcpts[i].address : "") < 0 ||
		    result_set(one, "status", rcpts[i].status) < 0 ||
		    result_set(one, "reply", rcpts[i].reply) < 0) {
			json_decref(one);
			json_decref(list);
			return NULL;
		}
		/* _new takes the reference, also when it fails. */
		if (json_array_append_new(list, one) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

char *mqtt_result_json(const char *id, const char *queue_id, const char *status,
                       const char *reason, const struct mqtt_result_rcpt *rcpts, size_t n)
{
	json_t *obj = json_object();
	char *out = NULL;
	if (!obj)
		return NULL;
	/* jansson keeps the order keys were set in (2.8 and later). */
	if (result_set(obj, "id", id) == 0 && result_set(obj, "queue_id", queue_id) == 0 &&
	    result_set(obj, "status", status) == 0 && result_set(obj, "reason", reason) == 0) {
		json_t *list = n ? result_recipients(rcpts, n) : NULL;
		if (!n || (list && json_object_set_new(obj, "recipients", list) == 0))
			out = json_dumps(obj, JSON_COMPACT);
	}
	json_decref(obj);
	return out;
}
