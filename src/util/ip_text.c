#include "util/ip_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_dotted_quad(const char *c, size_t n)
{
	size_t i = 0;
	for (int group = 0; group < 4; group++) {
		size_t digits = 0;
		if (group > 0) {
			if (i >= n || c[i] != '.')
				return false;
			i++;
		}
		while (i < n && is_digit(c[i]) && digits <= 3) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return false;
		if (digits > 1 && c[i - digits] == '0')
			return false;
	}
	return i == n;
}

bool ip_text_v4(const char *text, size_t len, unsigned char out[4])
{
	char buf[IP_TEXT_V4_MAX + 1];
	if (len > IP_TEXT_V4_MAX || !is_dotted_quad(text, len))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, out) == 1;
}

int ip_text_v6(const char *text, size_t len, unsigned char out[16])
{
	char buf[IP_TEXT_V6_MAX + 1];
	struct in6_addr a6;
	if (len == 0 || len > IP_TEXT_V6_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!is_digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') && c != ':' &&
		    c != '.')
			return 0;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(out, a6.s6_addr + 12, 4);
		return 4;
	}
	memcpy(out, a6.s6_addr, 16);
	return 6;
}
