/* A mailbox name as one MQTT topic level (mqtt/event.h). */
#include "mqtt/event.h"

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
