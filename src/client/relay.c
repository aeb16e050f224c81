/* Relay and route values (client/relay.h). */
#include "client/relay.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util/hostname.h"

static bool port_parse(const char *s, unsigned short *out)
{
	if (!*s || strlen(s) > 5)
		return false;
	unsigned long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*out = (unsigned short)v;
	return true;
}

static bool host_parse(const char *text, unsigned short default_port,
                       struct client_relay_host *out, char *err, size_t errlen)
{
	char host[SMTP_DOMAIN_MAX + 16];
	const char *port = NULL;
	memset(out, 0, sizeof(*out));
	out->port = default_port;
	if (text[0] == '[') {
		/* RFC 5321 §4.1.3's IPv6 literal, or a plain "[addr]". */
		const char *close = strchr(text, ']');
		if (!close)
			goto bad;
		size_t n = (size_t)(close - text - 1);
		if (n >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, n);
		host[n] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			goto bad;
		const char *ip = !strncasecmp(host, "IPv6:", 5) ? host + 5 : host;
		if (inet_pton(AF_INET6, ip, out->addr) == 1) {
			out->family = AF_INET6;
		} else if (ip == host && inet_pton(AF_INET, ip, out->addr) == 1) {
			out->family = AF_INET;
		} else {
			goto bad;
		}
		out->literal = true;
		inet_ntop(out->family, out->addr, out->host, sizeof(out->host));
	} else {
		if (strlen(text) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%s", text);
		char *colon = strchr(host, ':');
		if (colon && strchr(colon + 1, ':')) {
			/* Several colons: an IPv6 address without brackets, and no
			 * port (which colon would begin it?). */
			if (inet_pton(AF_INET6, host, out->addr) != 1)
				goto bad;
			out->family = AF_INET6;
			out->literal = true;
			inet_ntop(AF_INET6, out->addr, out->host, sizeof(out->host));
			return true;
		}
		if (colon) {
			*colon = '\0';
			port = colon + 1;
		}
		size_t n = strlen(host);
		if (n > 1 && host[n - 1] == '.')
			host[--n] = '\0';   /* the root's dot; "192.0.2.1." is the address too */
		if (inet_pton(AF_INET, host, out->addr) == 1) {
			out->family = AF_INET;
			out->literal = true;
			inet_ntop(AF_INET, out->addr, out->host, sizeof(out->host));
		} else {
			/* Another dot would be an empty label. */
			if (n == 0 || host[n - 1] == '.' || !hostname_syntax_ok(host) ||
			    n > SMTP_DOMAIN_MAX)
				goto bad;
			for (size_t i = 0; i <= n; i++)
				out->host[i] = (char)tolower((unsigned char)host[i]);
		}
	}
	if (port && !port_parse(port, &out->port)) {
		snprintf(err, errlen, "port: expected 1 to 65535");
		return false;
	}
	return true;
bad:
	snprintf(err, errlen, "expected a host name, an IPv4 address or an IPv6 address in "
	                      "brackets, then :PORT if not the default");
	return false;
}

bool client_relay_host_parse(const char *text, struct client_relay_host *out, char *err,
                             size_t errlen)
{
	static const char smtps[] = "smtps://", smtp[] = "smtp://";
	bool implicit = false;
	if (!strncasecmp(text, smtps, sizeof(smtps) - 1)) {
		implicit = true;
		text += sizeof(smtps) - 1;
	} else if (!strncasecmp(text, smtp, sizeof(smtp) - 1)) {
		text += sizeof(smtp) - 1;
	} else if (strstr(text, "://")) {
		snprintf(err, errlen, "only smtps:// (implicit TLS) or smtp:// (STARTTLS) before the host");
		return false;
	}
	if (!host_parse(text, implicit ? CLIENT_RELAY_PORT_SUBMISSIONS : CLIENT_RELAY_PORT_SUBMISSION,
	                out, err, errlen))
		return false;
	out->implicit_tls = implicit;
	return true;
}

bool client_relay_route_host_parse(const char *text, struct client_relay_host *out, char *err,
                                   size_t errlen)
{
	if (strstr(text, "://")) {
		snprintf(err, errlen, "a route is HOST[:PORT] (delivery as to an MX, port 25 by default)");
		return false;
	}
	return host_parse(text, CLIENT_RELAY_PORT_ROUTE, out, err, errlen);
}

bool client_relay_route_make(const char *domain, const char *host,
                             struct client_relay_route *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	size_t n = strlen(domain);
	if (n > 1 && domain[n - 1] == '.')
		n--;
	char d[SMTP_DOMAIN_MAX + 1];
	if (n == 0 || n > SMTP_DOMAIN_MAX) {
		snprintf(err, errlen, "expected a domain name before '='");
		return false;
	}
	memcpy(d, domain, n);
	d[n] = '\0';
	if (d[n - 1] == '.' || !hostname_syntax_ok(d)) {
		snprintf(err, errlen, "'%s' is not a domain name (routes are for domains, "
		                      "exactly as in addresses: no wildcards)", d);
		return false;
	}
	for (size_t i = 0; i <= n; i++)
		out->domain[i] = (char)tolower((unsigned char)d[i]);
	return client_relay_route_host_parse(host, &out->to, err, errlen);
}

bool client_relay_route_parse(const char *text, struct client_relay_route *out, char *err,
                              size_t errlen)
{
	const char *eq = strchr(text, '=');
	if (!eq) {
		snprintf(err, errlen, "expected DOMAIN=HOST[:PORT]");
		return false;
	}
	char domain[SMTP_DOMAIN_MAX + 2];
	size_t n = (size_t)(eq - text);
	if (n >= sizeof(domain)) {
		snprintf(err, errlen, "domain too long");
		return false;
	}
	memcpy(domain, text, n);
	domain[n] = '\0';
	return client_relay_route_make(domain, eq + 1, out, err, errlen);
}

const struct client_relay_route *client_relay_route_find(const struct client_relay_route *routes,
                                                         size_t n, const char *domain)
{
	size_t len = strlen(domain);
	if (len > 1 && domain[len - 1] == '.')
		len--;
	for (size_t i = 0; i < n; i++)
		if (strlen(routes[i].domain) == len && !strncasecmp(routes[i].domain, domain, len))
			return &routes[i];
	return NULL;
}

bool client_relay_is_loopback(int family, const unsigned char *addr)
{
	static const unsigned char v4[4] = { 127, 0, 0, 1 };
	static const unsigned char v6[16] = { [15] = 1 };
	if (family == AF_INET)
		return !memcmp(addr, v4, 4);
	return family == AF_INET6 && !memcmp(addr, v6, 16);
}

void client_relay_host_format(const struct client_relay_host *h, char *out, size_t outlen)
{
	bool v6 = h->literal && h->family == AF_INET6;
	snprintf(out, outlen, "%s%s%s%s:%u", h->implicit_tls ? "smtps://" : "", v6 ? "[" : "",
	         h->host, v6 ? "]" : "", h->port);
}
