/* The headers of an attachment's body part (RFC 2045, RFC 2183, RFC 2231). */
#include "msg/attach.h"

#include <stdbool.h>
#include <string.h>

#include "msg/header.h"

/* Encoded characters per RFC 2231 continuation line: with the parameter
 * name and indentation a line stays under 78 characters. */
#define ATTACH_SEGMENT_MAX 60

/* RFC 2231 §7 attribute-char (as RFC 5987 lists it): what an extended
 * value may carry without %XX. */
static bool attach_attr_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$&+-.^_`|~", c) != NULL;
}

/* A file name that may be a quoted string (RFC 2045 §5.1 value): printable
 * ASCII without '"' and '\' (quoted-pairs confuse some readers). */
static bool attach_name_plain(const char *name)
{
	size_t len = strlen(name);
	if (len > ATTACH_SEGMENT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 32 || c > 126 || c == '"' || c == '\\')
			return false;
	}
	return true;
}

static int attach_write_filename(struct buf *out, const char *name)
{
	if (attach_name_plain(name))
		return buf_printf(out, ";\r\n filename=\"%s\"", name);
	/* RFC 2231 §4: charset and language precede the first segment;
	 * §3: segments are numbered filename*0*, filename*1*, ... and a
	 * %XX triplet is never split. */
	size_t len = strlen(name);
	size_t total = 0;
	for (size_t k = 0; k < len; k++)
		total += attach_attr_char((unsigned char)name[k]) ? 1 : 3;
	size_t i = 0;
	for (unsigned seg = 0; i < len || seg == 0; seg++) {
		int rc = total <= ATTACH_SEGMENT_MAX
		       ? buf_append_str(out, ";\r\n filename*=UTF-8''")
		       : buf_printf(out, ";\r\n filename*%u*=%s", seg, seg == 0 ? "UTF-8''" : "");
		if (rc < 0)
			return -1;
		size_t width = 0;
		size_t room = 0;   /* octets of the current character still to write */
		while (i < len) {
			unsigned char c = (unsigned char)name[i];
			size_t w = attach_attr_char(c) ? 1 : 3;
			if (room == 0) {
				/* Keep a UTF-8 character within one segment,
				 * for readers that decode segments apart. */
				size_t n = 1;
				while (i + n < len && n < 4 &&
				       ((unsigned char)name[i + n] & 0xC0) == 0x80)
					n++;
				if (width && width + 3 * n > ATTACH_SEGMENT_MAX)
					break;
				room = n;
			}
			if (width + w > ATTACH_SEGMENT_MAX)
				break;
			room--;
			char enc[3] = { '%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15] };
			if (w == 1)
				enc[0] = (char)c;
			if (buf_append(out, enc, w) < 0)
				return -1;
			width += w;
			i++;
		}
	}
	return 0;
}

int msg_attach_write_headers(struct buf *out, const char *path)
{
	return msg_attach_write_headers_typed(out, path, NULL);
}

int msg_attach_write_headers_typed(struct buf *out, const char *path, const char *type)
{
	const char *name = msg_attach_base_name(path);
	if (buf_printf(out, "Content-Type: %s\r\nContent-Disposition: attachment",
	               type ? type : msg_attach_mime_type(name)) < 0 ||
	    attach_write_filename(out, name) < 0 ||
	    buf_append_str(out, "\r\nContent-Transfer-Encoding: base64\r\n\r\n") < 0)
		return -1;
	return 0;
}
