/* Reading a received MIME message (RFC 2045, RFC 2046, RFC 2231, RFC
 * 5322): its header section and fields, Content-Type and its parameters,
 * and a walk over its parts.  Pure and lenient (a hostile message gives
 * what can be read, never an error), linear in the message: see
 * MIME_DEPTH_MAX and MIME_PARTS_MAX in util/limits.h.  Decoding the parts'
 * bytes is decode.h's. */
#ifndef RAWMAIL_MSG_MIME_READ_H
#define RAWMAIL_MSG_MIME_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* A message or a body part: its header section and its body. */
struct msg_mime_entity {
	const char *header;   /* the fields, without the empty line */
	size_t header_len;
	const char *body;
	size_t body_len;
};

/* RFC 5322 §2.1: the header section ends at the first empty line (CR LF
 * or a bare LF); with none, all of p is header and the body is empty.  A
 * part that starts with an empty line has no fields. */
void msg_mime_split(const char *p, size_t len, struct msg_mime_entity *e);

/* A field to look for: name (without ':') set by the caller; value and
 * len (the raw value after the colon, folded, up to its last line break)
 * and found set by msg_mime_fields_find. */
struct msg_mime_field {
	const char *name;
	const char *value;
	size_t len;
	bool found;
};

/* One pass over a header section: each field's first occurrence, names
 * compared case-insensitively (white space before the colon allowed,
 * RFC 5322 §4.5.2's obsolete syntax). */
void msg_mime_fields_find(const char *header, size_t len, struct msg_mime_field *f, size_t n);

/* Appends a raw field value unfolded (RFC 5322 §2.2.3: every CR and LF
 * removed) with the white space at both ends trimmed.  Octets as they
 * are (not checked for UTF-8). */
int msg_mime_unfold(struct buf *out, const char *value, size_t len);

/* The media type of a Content-Type value, "type/subtype" in lower case
 * (RFC 2045 §5.1: case-insensitive), appended to out; when value is NULL
 * or not a valid type, def is appended instead (§5.2: text/plain). */
int msg_mime_type(struct buf *out, const char *value, size_t len, const char *def);

/* The first token of a value in lower case (Content-Disposition's
 * "attachment", Content-Transfer-Encoding's "base64"), appended to out. */
int msg_mime_token(struct buf *out, const char *value, size_t len);

enum msg_mime_param_mode {
	MSG_MIME_PARAM_RAW,    /* the octets as written (boundary, charset) */
	MSG_MIME_PARAM_TEXT,   /* decoded to UTF-8: RFC 2231 charset and
	                          percent-encoding, or RFC 2047 encoded words
	                          in a plain value (as many mailers write) */
};

/* Appends the value of the parameter name (lower case) of a Content-Type
 * or Content-Disposition value: a token or a quoted string (RFC 2045
 * §5.1, with its quoted-pairs), or RFC 2231's name*=charset'lang'%XX and
 * continuations name*0, name*1*, ... (at most MIME_PARAM_SECTIONS_MAX,
 * joined in order from 0 while they follow each other), which win over a
 * plain name=.  1 when found, 0 when not, -1 when out is full. */
int msg_mime_param(struct buf *out, const char *value, size_t len, const char *name,
                   enum msg_mime_param_mode mode);

/* A leaf of the walk: a part that is not a multipart that was descended.
 * type is its media type in lower case (the default where none: text/plain,
 * message/rfc822 in a multipart/digest, RFC 2046 §5.1.5); a message/rfc822
 * part is a leaf (never descended), and so is a multipart without a
 * boundary or nested deeper than MIME_DEPTH_MAX (type multipart/...). */
struct msg_mime_leaf {
	struct msg_mime_entity e;
	const char *type;
	const char *content_type;   /* the raw Content-Type value, or NULL */
	size_t content_type_len;
	int depth;                  /* 0: the message itself */
};

/* Returns 0 to go on, -1 to stop the walk (memory ran out). */
typedef int (*msg_mime_leaf_fn)(const struct msg_mime_leaf *leaf, void *arg);

/* Walks the message msg[0..len) depth first, calling leaf() for each leaf
 * in order.  Multiparts per RFC 2046 §5.1.1: a delimiter line is "--"
 * boundary, optionally "--" (the close delimiter), then only white space;
 * the line break before it belongs to it; preamble and epilogue are
 * ignored; a missing close delimiter ends the last part at the end of the
 * body.  At most MIME_PARTS_MAX parts are visited.  Returns 0, or -1 when
 * leaf() did. */
int msg_mime_walk(const char *msg, size_t len, msg_mime_leaf_fn leaf, void *arg);

#endif
