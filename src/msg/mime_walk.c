/* The walk over a received message's parts (RFC 2046 §5.1). */
#include "msg/mime_read.h"

#include <string.h>

#include "util/limits.h"

/* RFC 2046 §5.1.1: a boundary is 1 to 70 characters; longer ones are
 * accepted up to this (some mailers exceed 70), and a multipart with a
 * longer one is a leaf. */
#define BOUNDARY_MAX 256

struct walk {
	msg_mime_leaf_fn leaf;
	void *arg;
	size_t parts;
};

static int walk_entity(struct walk *w, const char *p, size_t len, int depth, bool in_digest);

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Whether the line p[0..len) (no line break) is a delimiter line of the
 * boundary b ("--" b, optionally "--", then only white space, §5.1.1's
 * transport padding); *close says which. */
static bool delimiter_line(const char *p, size_t len, const char *b, size_t blen, bool *close)
{
	if (len < 2 + blen || p[0] != '-' || p[1] != '-' || memcmp(p + 2, b, blen) != 0)
		return false;
	size_t i = 2 + blen;
	*close = i + 1 < len && p[i] == '-' && p[i + 1] == '-';
	if (*close)
		i += 2;
	for (; i < len; i++)
		if (!is_wsp(p[i]))
			return false;
	return true;
}

/* The body parts of a multipart body, each walked in turn.  One pass over
 * the body, line by line. */
static int walk_multipart(struct walk *w, const char *body, size_t len, const char *b,
                          size_t blen, int depth, bool digest)
{
	bool in_part = false;
	size_t part_start = 0;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(body + i, '\n', len - i);
		size_t next = nl ? (size_t)(nl - body) + 1 : len;
		size_t content = nl ? (size_t)(nl - body) : len;
		if (content > i && body[content - 1] == '\r')
			content--;
		bool close;
		if (body[i] == '-' && delimiter_line(body + i, content - i, b, blen, &close)) {
			if (in_part) {
				/* The line break before the delimiter is the
				 * delimiter's (§5.1.1). */
				size_t end = i;
				if (end > part_start && body[end - 1] == '\n')
					end--;
				if (end > part_start && body[end - 1] == '\r')
					end--;
				if (walk_entity(w, body + part_start, end - part_start, depth, digest) < 0)
					return -1;
				if (w->parts >= MIME_PARTS_MAX)
					return 0;
			}
			if (close)
				return 0;   /* the epilogue is ignored */
			in_part = true;
			part_start = next;
		}
		i = next;
	}
	/* No close delimiter: the last part runs to the end. */
	if (in_part)
		return walk_entity(w, body + part_start, len - part_start, depth, digest);
	return 0;
}

static int walk_entity(struct walk *w, const char *p, size_t len, int depth, bool in_digest)
{
	if (w->parts >= MIME_PARTS_MAX)
		return 0;
	w->parts++;
	struct msg_mime_leaf leaf;
	msg_mime_split(p, len, &leaf.e);
	struct msg_mime_field ct = { .name = "Content-Type" };
	msg_mime_fields_find(leaf.e.header, leaf.e.header_len, &ct, 1);
	leaf.content_type = ct.found ? ct.value : NULL;
	leaf.content_type_len = ct.len;
	leaf.depth = depth;
	char type_store[320];
	struct buf type;
	buf_init(&type, sizeof(type_store) - 1);
	/* RFC 2046 §5.1.5: in a digest, parts are messages by default. */
	if (msg_mime_type(&type, leaf.content_type, leaf.content_type_len,
	                  in_digest ? "message/rfc822" : "text/plain") < 0) {
		buf_free(&type);
		return -1;
	}
	memcpy(type_store, type.data, type.len + 1);
	buf_free(&type);
	leaf.type = type_store;
	if (strncmp(type_store, "multipart/", 10) == 0 && depth < MIME_DEPTH_MAX && ct.found) {
		struct buf boundary;
		buf_init(&boundary, BOUNDARY_MAX);
		int found = msg_mime_param(&boundary, ct.value, ct.len, "boundary", MSG_MIME_PARAM_RAW);
		if (found > 0 && boundary.len > 0) {
			int rc = walk_multipart(w, leaf.e.body, leaf.e.body_len, boundary.data,
			                        boundary.len, depth + 1,
			                        strcmp(type_store, "multipart/digest") == 0);
			buf_free(&boundary);
			return rc;
		}
		buf_free(&boundary);
		/* No usable boundary (or one over BOUNDARY_MAX): a leaf. */
	}
	return w->leaf(&leaf, w->arg);
}

int msg_mime_walk(const char *msg, size_t len, msg_mime_leaf_fn leaf, void *arg)
{
	struct walk w = { .leaf = leaf, .arg = arg, .parts = 0 };
	return walk_entity(&w, msg, len, 0, false);
}
