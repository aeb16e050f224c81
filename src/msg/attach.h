/* Attachments (--attach FILE): reading the file, its MIME type, and the
 * headers of its body part. */
#ifndef RAWMAIL_MSG_ATTACH_H
#define RAWMAIL_MSG_ATTACH_H

#include <stdbool.h>
#include <stddef.h>

#include "msg/error.h"
#include "util/buf.h"

/* Reads the whole file at path into out (bounded by out's maximum): the
 * module's one I/O.  MSG_ERR_FILE when it cannot be opened or read (the
 * text says why), MSG_ERR_TOO_BIG when it is larger than the maximum. */
int msg_attach_read_file(const char *path, struct buf *out, struct msg_error *err);

/* The MIME type for a file name, from its extension, case-insensitively
 * (.pdf → application/pdf); application/octet-stream when unknown. */
const char *msg_attach_mime_type(const char *name);

/* The last component of a path ("a/b/c.txt" → "c.txt"); "attachment" when
 * the path ends in "/" or is empty. */
const char *msg_attach_base_name(const char *path);

/* Appends the part headers of an attachment: Content-Type,
 * Content-Disposition: attachment; filename=... and
 * Content-Transfer-Encoding: base64.  A name of printable ASCII that fits
 * a line is a quoted string; any other (non-ASCII, quotes, control
 * octets, long) is RFC 2231 "filename*=UTF-8''%XX...", split into
 * numbered continuations (§3) so lines stay short. */
int msg_attach_write_headers(struct buf *out, const char *path);
/* The same with an explicit type ("image/jpeg"); NULL: from the name. */
int msg_attach_write_headers_typed(struct buf *out, const char *path, const char *type);

/* Whether type is a bare media type "type/subtype" that may go into a
 * Content-Type field as it is: two RFC 6838 §4.2 restricted names
 * (letters and digits first, then letters, digits and !#$&-^_.+, at most
 * 127 octets each), no parameters, no white space. */
bool msg_attach_type_ok(const char *type);

#endif
