/* DKIM relaxed canonicalisation (RFC 6376 §3.4.2 header, §3.4.4 body):
 * what signer and verifier both hash, so that white space changes in
 * transit do not break a signature. */
#include <stdbool.h>
#include <stddef.h>

#include "msg/dkim.h"

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int dkim_canon_header_relaxed(const char *field, size_t len, bool crlf, struct buf *out)
{
	size_t i = 0;
	/* The name, lower case, without the white space before the colon. */
	size_t colon = 0;
	while (colon < len && field[colon] != ':')
		colon++;
	size_t name_end = colon;
	while (name_end > 0 && is_wsp(field[name_end - 1]))
		name_end--;
	for (i = 0; i < name_end; i++) {
		char c = lower(field[i]);
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	if (buf_append(out, ":", 1) < 0)
		return -1;
	/* The value: unfolded (line ends removed), runs of WSP one SP, none
	 * at its start or end. */
	bool pending_space = false;
	bool started = false;
	for (i = colon + 1; i < len; i++) {
		char c = field[i];
		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			pending_space = started;
			continue;
		}
		if (pending_space && buf_append(out, " ", 1) < 0)
			return -1;
		pending_space = false;
		started = true;
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	if (crlf && buf_append(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

int dkim_canon_body_relaxed(const char *body, size_t len, struct buf *out)
{
	/* Empty lines are held back until a line with text follows: the
	 * ones at the end are dropped (§3.4.4). */
	size_t empty_lines = 0;
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '\n')
			end++;
		size_t line_end = end;  /* without LF and a CR before it */
		if (line_end > i && line_end < len && body[line_end - 1] == '\r')
			line_end--;
		/* Trailing WSP removed; a line of white space only is empty. */
		size_t text_end = line_end;
		while (text_end > i && is_wsp(body[text_end - 1]))
			text_end--;
		if (text_end == i) {
			empty_lines++;
		} else {
			for (; empty_lines > 0; empty_lines--)
				if (buf_append(out, "\r\n", 2) < 0)
					return -1;
			bool in_wsp = false;
			for (size_t j = i; j < text_end; j++) {
				if (is_wsp(body[j])) {
					in_wsp = true;
					continue;
				}
				if (in_wsp && buf_append(out, " ", 1) < 0)
					return -1;
				in_wsp = false;
				if (buf_append(out, &body[j], 1) < 0)
					return -1;
			}
			/* A last line without a line end gets CR LF too. */
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
		}
		i = end < len ? end + 1 : len;
	}
	return 0;
}

size_t dkim_body_offset(const char *msg, size_t len)
{
	size_t i = 0;
	while (i < len) {
		/* i is at a line start: an empty line ends the header section. */
		if (msg[i] == '\n')
			return i + 1;
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		while (i < len && msg[i] != '\n')
			i++;
		if (i < len)
			i++;
	}
	return len;
}
