/* A --dns value checked and normalised (dns/resolver.h): pure text, no
 * c-ares, so that the settings readers link it without the resolver (the
 * sendmail link's small program, cli/sendmail_main.c, among them). */
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool dns_server_parse(const char *text, char *out, size_t outlen, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned long port = 53;
	unsigned char bin[16];
	bool v6;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || (size_t)(close - text - 1) >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		if (close[1] == ':') {
			char *end;
			port = strtoul(close + 2, &end, 10);
			if (*end || close[2] == '\0')
				goto bad;
		} else if (close[1]) {
			goto bad;
		}
		v6 = true;
	} else if (strchr(text, ':') && strchr(text, ':') != strrchr(text, ':')) {
		/* Unbracketed IPv6: no port. */
		if (strlen(text) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%s", text);
		v6 = true;
	} else {
		const char *colon = strchr(text, ':');
		size_t n = colon ? (size_t)(colon - text) : strlen(text);
		if (n >= sizeof(host))
			goto bad;
		memcpy(host, text, n);
		host[n] = '\0';
		if (colon) {
			char *end;
			port = strtoul(colon + 1, &end, 10);
			if (*end || colon[1] == '\0')
				goto bad;
		}
		v6 = false;
	}
	if (port == 0 || port > 65535 || inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1)
		goto bad;
	if (v6)
		snprintf(out, outlen, "[%s]:%lu", host, port);
	else
		snprintf(out, outlen, "%s:%lu", host, port);
	return true;
bad:
	snprintf(err, errlen, "dns: '%s' is not ADDR[:PORT] (an IP address; IPv6 as [::1]:5353)",
	         text);
	return false;
}
