/* The line checks of raw messages: length (RFC 5322 §2.1.1) and NUL
 * (§2.3: text is US-ASCII 1..127, and 8BITMIME, RFC 6152 §3, keeps
 * excluding NUL). */
#include "msg/raw.h"

#include <string.h>

#include "util/limits.h"

static int raw_check(const char *in, size_t len, bool lengths, struct msg_error *err)
{
	size_t line = 1;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(in + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - in) : len;
		size_t n = end - pos;
		if (nl && n && in[end - 1] == '\r')
			n--;
		/* A NUL can hide a line's meaning from one reader and not the
		 * next: "\r\n\x00.\r\n" is the end of data to a C string. */
		if (memchr(in + pos, '\0', n))
			return msg_error_set(err, MSG_ERR_NUL, line,
			                     "line %zu of the message holds a NUL octet, which "
			                     "RFC 5322 does not allow in a message: remove it, or "
			                     "send the data as an attachment (--attach)", line);
		if (lengths && n > RFC5322_LINE_MAX)
			return msg_error_set(err, MSG_ERR_LINE_TOO_LONG, line,
			                     "line %zu of the message is %zu octets long; RFC 5322 "
			                     "allows 998: wrap it, or compose with -s (which "
			                     "encodes long lines)", line, n);
		pos = end + 1;
		line++;
	}
	return 0;
}

int msg_raw_check_lines(const char *in, size_t len, struct msg_error *err)
{
	return raw_check(in, len, true, err);
}

int msg_raw_check_nul(const char *in, size_t len, struct msg_error *err)
{
	return raw_check(in, len, false, err);
}
