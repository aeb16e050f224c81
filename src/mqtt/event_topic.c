/* A mailbox name as one MQTT topic level (mqtt/event.h). */
#include "mqtt/event.h"

#include "util/text.h"

size_t mqtt_topic_level(const char *in, size_t inlen, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		/* MQTT 3.1.1 §4.7.1: '+' and '#' are wildcards and '/' separates
		 * levels; §1.5.3: a topic name holds no U+0000.  '%' too, so
		 * that the encoding can be undone. */
		bool escape = c == '+' || c == '#' || c == '/' || c == '%' || c == '\0';
		size_t w = escape ? 3 : 1;
		if (outlen - n <= w || outlen == 0)
			return 0;
		if (escape) {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	if (outlen == 0)
		return 0;
	out[n] = '\0';
	return n;
}

size_t mqtt_topic_level_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		if (o + 1 >= outlen)
			return 0;
		if (*p == '%') {
			int hi = text_hex_value((unsigned char)p[1]);
			int lo = hi < 0 ? -1 : text_hex_value((unsigned char)p[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return 0;
			out[o++] = (char)(hi * 16 + lo);
			p += 2;
		} else {
			out[o++] = *p;
		}
	}
	if (o == 0)
		return 0;
	out[o] = '\0';
	return o;
}
