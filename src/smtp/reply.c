/* SMTP replies onto the wire: RFC 5321 §4.2 (reply lines, multi-line
 * replies) with RFC 2034 / RFC 3463 enhanced status codes. */
#include "smtp/reply.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/limits.h"

/* RFC 5321 §4.2.1: the text is free-form, but a CR or LF inside it would
 * end the reply line early, so text an attacker chose (a HELO name, an
 * address echoed back) could forge a second reply.  Other control bytes
 * garble logs and terminals.  All of them become '?'. */
static bool reply_byte_unsafe(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	r->enhanced = enhanced;
	va_start(ap, fmt);
	int n = vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
	if (n < 0)
		r->text[0] = '\0';
	for (char *p = r->text; *p != '\0'; p++)
		if (reply_byte_unsafe((unsigned char)*p))
			*p = '?';
}

/* RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39. */
static bool reply_code_valid(int code)
{
	return code >= 200 && code <= 599 && (code / 10) % 10 <= 5;
}

/* RFC 3463 §2: class "." subject "." detail, class 2, 4 or 5, subject and
 * detail 1 to 3 digits; RFC 2034 §4: the class matches the reply code's
 * first digit.  At most 9 octets ("5.123.456"). */
static bool reply_enhanced_valid(const char *e, int code)
{
	if (e[0] != '0' + code / 100 || (e[0] != '2' && e[0] != '4' && e[0] != '5'))
		return false;
	size_t i = 1;
	for (int part = 0; part < 2; part++) {
		if (e[i++] != '.')
			return false;
		size_t digits = 0;
		while (e[i] >= '0' && e[i] <= '9' && digits < 3) {
			i++;
			digits++;
		}
		if (digits == 0)
			return false;
	}
	return e[i] == '\0';
}

/* Formats one reply line into line[], which holds SMTP_REPLY_LINE_MAX
 * octets: RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets with its
 * CRLF, so overlong text is cut.  sep is ' ' for the last line of a reply
 * and '-' for the others (§4.2.1); an empty last line is just "250\r\n"
 * (Reply-code [ SP textstring ] CRLF).  Returns the length. */
static size_t reply_format_line(char *line, int code, char sep, const char *enhanced,
                                const char *text, size_t text_len)
{
	size_t n = 0;
	bool continued = sep == '-';

	line[n++] = (char)('0' + code / 100);
	line[n++] = (char)('0' + code / 10 % 10);
	line[n++] = (char)('0' + code % 10);
	if (continued)
		line[n++] = '-';
	if (enhanced != NULL) {
		size_t elen = strlen(enhanced); /* validated: at most 9 octets */
		if (!continued)
			line[n++] = ' ';
		memcpy(line + n, enhanced, elen);
		n += elen;
	}
	if (text_len > 0) {
		if (!continued || enhanced != NULL)
			line[n++] = ' ';
		size_t room = SMTP_REPLY_LINE_MAX - 2 - n;
		if (text_len > room)
			text_len = room;
		for (size_t i = 0; i < text_len; i++) {
			unsigned char c = (unsigned char)text[i];
			line[n++] = reply_byte_unsafe(c) ? '?' : (char)c;
		}
	}
	line[n++] = '\r';
	line[n++] = '\n';
	return n;
}

int smtp_reply_write(struct buf *out, const struct smtp_reply *r)
{
	char line[SMTP_REPLY_LINE_MAX];

	if (!reply_code_valid(r->code) ||
	    (r->enhanced != NULL && !reply_enhanced_valid(r->enhanced, r->code)))
		return -1;
	/* The text is sanitised again here: a caller may have filled the
	 * struct by hand, and one unterminated array must not leak memory
	 * onto the wire. */
	size_t len = reply_format_line(line, r->code, ' ', r->enhanced, r->text,
	                               strnlen(r->text, sizeof r->text));
	/* One append: the buffer is either unchanged or holds the whole line. */
	return buf_append(out, line, len);
}

int smtp_reply_write_lines(struct buf *out, int code, const char *enhanced,
                           const char *const *lines, size_t n)
{
	char line[SMTP_REPLY_LINE_MAX];

	if (n == 0 || !reply_code_valid(code) ||
	    (enhanced != NULL && !reply_enhanced_valid(enhanced, code)))
		return -1;
	size_t start = out->len;
	for (size_t i = 0; i < n; i++) {
		const char *text = lines[i] != NULL ? lines[i] : "";
		size_t len = reply_format_line(line, code, i + 1 < n ? '-' : ' ', enhanced, text,
		                               strlen(text));
		if (buf_append(out, line, len) < 0) {
			/* Never leave half a multi-line reply: a client would
			 * wait for its last line forever. */
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}
