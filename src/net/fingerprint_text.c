/* Pins as text (net/fingerprint.h): parsed and formatted without OpenSSL,
 * so the sendmail entry's small program (cli/sendmail_main.c), which reads
 * and passes on --tls-fingerprint, links no TLS library. */
#include "net/fingerprint.h"

#include <string.h>
#include <strings.h>

#include "util/text.h"

bool tls_fingerprint_parse(const char *text, unsigned char out[TLS_FINGERPRINT_LEN])
{
	const size_t plen = sizeof(TLS_FINGERPRINT_PREFIX) - 1;
	if (!text || strncasecmp(text, TLS_FINGERPRINT_PREFIX, plen) != 0)
		return false;
	const char *p = text + plen;
	size_t len = strlen(p);
	/* Exactly two spellings, told apart by length alone: 64 digits, or 32
	 * pairs with 31 colons between them. */
	bool colons;
	if (len == 2 * TLS_FINGERPRINT_LEN)
		colons = false;
	else if (len == 3 * TLS_FINGERPRINT_LEN - 1)
		colons = true;
	else
		return false;

	/* Decoded into a copy so a bad digit late in the text leaves out as
	 * the caller had it. */
	unsigned char fp[TLS_FINGERPRINT_LEN];
	for (size_t i = 0; i < TLS_FINGERPRINT_LEN; i++) {
		if (colons && i > 0) {
			if (*p != ':')
				return false;
			p++;
		}
		/* text_hex_value, not isxdigit(): ASCII whatever the locale. */
		int hi = text_hex_value((unsigned char)p[0]);
		int lo = hi < 0 ? -1 : text_hex_value((unsigned char)p[1]);
		if (lo < 0)
			return false;
		fp[i] = (unsigned char)(hi << 4 | lo);
		p += 2;
	}
	memcpy(out, fp, sizeof(fp));
	return true;
}

void tls_fingerprint_format(const unsigned char fp[TLS_FINGERPRINT_LEN],
                            char out[TLS_FINGERPRINT_TEXT_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	const size_t plen = sizeof(TLS_FINGERPRINT_PREFIX) - 1;
	memcpy(out, TLS_FINGERPRINT_PREFIX, plen);
	char *p = out + plen;
	for (size_t i = 0; i < TLS_FINGERPRINT_LEN; i++) {
		*p++ = digits[fp[i] >> 4];
		*p++ = digits[fp[i] & 0x0f];
	}
	*p = '\0';
}
