/* Address fields written from command-line values: From and To
 * (RFC 5322 §3.4, §3.6.2, §3.6.3). */
#include "msg/header.h"

#include <stdbool.h>
#include <string.h>

#include "msg/mime.h"
#include "util/limits.h"

/* RFC 5322 §3.2.3 atext. */
static bool address_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* An address comes from the command line or the envelope: no line
 * breaks (injection), no other control octets, and short enough that the
 * field's lines stay within 998 octets. */
static int address_check(const char *addr, struct msg_error *err)
{
	if (msg_header_check_value("address", addr, err) < 0)
		return -1;
	size_t len = strlen(addr);
	if (len == 0 || len > SMTP_PATH_MAX)
		return msg_error_set(err, MSG_ERR_USAGE, 0, "address \"%.64s\" is empty or "
		                     "longer than %d octets", addr, SMTP_PATH_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];
		if (c < 32 || c == 127)
			return msg_error_set(err, MSG_ERR_USAGE, 0,
			                     "address holds a control character (0x%02x)", c);
	}
	return 0;
}

/* A phrase of atoms separated by single spaces (RFC 5322 §3.2.5). */
static bool address_atom_phrase(const char *s)
{
	if (!*s || *s == ' ')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == ' ' && (p[1] == ' ' || p[1] == '\0'))
			return false;
		if (*p != ' ' && !address_atext((unsigned char)*p))
			return false;
	}
	return true;
}

static int address_write_phrase(struct buf *out, size_t *col, const char *name)
{
	size_t len = strlen(name);
	if (!msg_mime_is_plain_ascii(name, len) || strstr(name, "=?"))
		return msg_mime_words_encode(out, col, name, len, MSG_WORD_PHRASE);
	if (address_atom_phrase(name)) {
		/* Atoms may be folded at their spaces (FWS in phrase). */
		for (const char *p = name; *p;) {
			size_t w = strcspn(p, " ");
			if (*col + 1 + w > MSG_HEADER_LINE_PREFERRED && p != name) {
				if (buf_append(out, "\r\n", 2) < 0)
					return -1;
				*col = 0;
			}
			if (buf_append(out, " ", 1) < 0 || buf_append(out, p, w) < 0)
				return -1;
			*col += 1 + w;
			p += w;
			if (*p == ' ')
				p++;
		}
		return 0;
	}
	/* A quoted string (§3.2.4) with "\" and '"' escaped, when it fits
	 * one preferred line; longer ones become encoded words, which fold. */
	size_t quoted = 3;
	for (size_t i = 0; i < len; i++)
		quoted += (name[i] == '"' || name[i] == '\\') ? 2 : 1;
	if (*col + quoted > MSG_HEADER_LINE_PREFERRED)
		return msg_mime_words_encode(out, col, name, len, MSG_WORD_PHRASE);
	if (buf_append(out, " \"", 2) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((name[i] == '"' || name[i] == '\\') && buf_append(out, "\\", 1) < 0)
			return -1;
		if (buf_append(out, name + i, 1) < 0)
			return -1;
	}
	*col += quoted;
	return buf_append(out, "\"", 1);
}

int msg_header_write_mailbox(struct buf *out, const char *name, const char *display_name,
                             const char *addr, struct msg_error *err)
{
	if (msg_header_check_value("display name", display_name, err) < 0 ||
	    address_check(addr, err) < 0)
		return -1;
	size_t col = strlen(name) + 1;
	if (buf_printf(out, "%s:", name) < 0)
		goto too_big;
	if (!display_name || !*display_name) {
		if (buf_printf(out, " %s\r\n", addr) < 0)
			goto too_big;
		return 0;
	}
	if (address_write_phrase(out, &col, display_name) < 0)
		goto too_big;
	size_t alen = strlen(addr) + 3;
	if (col + alen > MSG_HEADER_LINE_PREFERRED) {
		if (buf_append(out, "\r\n", 2) < 0)
			goto too_big;
	}
	if (buf_printf(out, " <%s>\r\n", addr) < 0)
		goto too_big;
	return 0;
too_big:
	return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
}

int msg_header_write_address_list(struct buf *out, const char *name,
                                  const char *const *addrs, size_t count,
                                  struct msg_error *err)
{
	for (size_t i = 0; i < count; i++)
		if (address_check(addrs[i], err) < 0)
			return -1;
	size_t col = strlen(name) + 1;
	if (buf_printf(out, "%s:", name) < 0)
		goto too_big;
	for (size_t i = 0; i < count; i++) {
		size_t w = strlen(addrs[i]) + (i + 1 < count ? 1 : 0);
		if (i > 0 && col + 1 + w > MSG_HEADER_LINE_PREFERRED) {
			if (buf_append(out, "\r\n", 2) < 0)
				goto too_big;
			col = 0;
		}
		if (buf_printf(out, " %s%s", addrs[i], i + 1 < count ? "," : "") < 0)
			goto too_big;
		col += 1 + w;
	}
	if (buf_append(out, "\r\n", 2) < 0)
		goto too_big;
	return 0;
too_big:
	return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
}
