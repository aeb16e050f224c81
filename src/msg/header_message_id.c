/* The Message-ID field, RFC 5322 §3.6.4. */
#include "msg/header.h"

#include <stdbool.h>
#include <string.h>

#include "util/limits.h"

/* RFC 5322 §3.2.3 atext, the characters of a dot-atom. */
static bool message_id_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* id-right is dot-atom-text or a no-fold-literal "[...]" (RFC 5322
 * §3.6.4): a host name or an address literal like [192.0.2.1]. */
static bool message_id_right_valid(const char *h)
{
	size_t len = strlen(h);
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	if (h[0] == '[') {
		if (len < 3 || h[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)h[i];
			/* dtext: printable ASCII but "[", "]" and "\" */
			if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
				return false;
		}
		return true;
	}
	if (h[0] == '.' || h[len - 1] == '.' || strstr(h, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (h[i] != '.' && !message_id_atext((unsigned char)h[i]))
			return false;
	return true;
}

int msg_header_write_message_id(struct buf *out, const struct msg_stamp *stamp,
                                struct msg_error *err)
{
	if (msg_header_check_value("host name", stamp->hostname, err) < 0)
		return -1;
	if (!stamp->hostname || !message_id_right_valid(stamp->hostname))
		return msg_error_set(err, MSG_ERR_USAGE, 0,
		                     "host name \"%.64s\" cannot form a Message-ID",
		                     stamp->hostname ? stamp->hostname : "");
	struct tm tm;
	if (!gmtime_r(&stamp->date, &tm))
		return msg_error_set(err, MSG_ERR_USAGE, 0, "date out of range");
	char rnd[2 * 12 + 1];
	for (size_t i = 0; i < 12; i++) {
		rnd[2 * i] = "0123456789abcdef"[stamp->random[i] >> 4];
		rnd[2 * i + 1] = "0123456789abcdef"[stamp->random[i] & 15];
	}
	rnd[24] = '\0';
	if (buf_printf(out, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n",
	               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	               tm.tm_sec, rnd, stamp->hostname) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	return 0;
}
