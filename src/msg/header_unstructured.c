/* Unstructured fields (Subject), RFC 5322 §3.6.5 and §2.2.3. */
#include "msg/header.h"

#include <stdbool.h>
#include <string.h>

#include "msg/mime.h"
#include "util/limits.h"

static bool unstructured_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of the segment at v: its white space, then its word. */
static size_t unstructured_segment(const char *v, size_t len)
{
	size_t i = 0;
	while (i < len && unstructured_wsp(v[i]))
		i++;
	while (i < len && !unstructured_wsp(v[i]))
		i++;
	return i;
}

/* Plain text may stand as it is when it is printable ASCII, does not look
 * like an encoded word (RFC 2047 §5: such text "must" not be confused with
 * one, so it is encoded) and every segment fits a line of 998 octets. */
static bool unstructured_plain(const char *name, const char *v, size_t len)
{
	if (!msg_mime_is_plain_ascii(v, len) || strstr(v, "=?"))
		return false;
	size_t head = strlen(name) + 2;
	for (size_t i = 0; i < len;) {
		size_t seg = unstructured_segment(v + i, len - i);
		if (head + seg > RFC5322_LINE_MAX)
			return false;
		i += seg;
	}
	return true;
}

int msg_header_write_unstructured(struct buf *out, const char *name, const char *value,
                                  struct msg_error *err)
{
	if (msg_header_check_value(name, value, err) < 0)
		return -1;
	size_t len = strlen(value);
	size_t col = strlen(name) + 1;
	if (buf_printf(out, "%s:", name) < 0)
		goto too_big;
	if (!unstructured_plain(name, value, len)) {
		if (msg_mime_words_encode(out, &col, value, len, MSG_WORD_TEXT) < 0)
			goto too_big;
	} else if (len) {
		/* §2.2.3: fold by putting CRLF before white space, only where
		 * a word follows (a line of white space alone is not allowed,
		 * §3.2.2), so unfolding gives back exactly the text. */
		if (buf_append(out, " ", 1) < 0)
			goto too_big;
		col++;
		bool first = true;
		for (size_t i = 0; i < len;) {
			size_t seg = unstructured_segment(value + i, len - i);
			bool has_word = !unstructured_wsp(value[i + seg - 1]);
			if (!first && has_word && col + seg > MSG_HEADER_LINE_PREFERRED) {
				if (buf_append(out, "\r\n", 2) < 0)
					goto too_big;
				col = 0;
			}
			if (buf_append(out, value + i, seg) < 0)
				goto too_big;
			col += seg;
			i += seg;
			first = false;
		}
	}
	if (buf_append(out, "\r\n", 2) < 0)
		goto too_big;
	return 0;
too_big:
	return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
}
