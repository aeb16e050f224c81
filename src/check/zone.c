/* Zone lines for a lab network without DNS: an A (or AAAA) and a PTR
 * record per host, so its hosts get names that resolve both ways
 * (forward-confirmed reverse DNS, which receivers ask of senders).  Pure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "check/check.h"

bool check_zone_name(int family, const unsigned char *addr, const char *domain, char *out,
                     size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, addr, ip, sizeof(ip)))
		return false;
	/* '.' and ':' are not label characters: "192.168.1.100" becomes
	 * "host-192-168-1-100" (RFC 1123 §2.1 host name syntax). */
	for (char *p = ip; *p; p++)
		if (*p == '.' || *p == ':')
			*p = '-';
	if (!domain || !*domain)
		domain = "lab";
	size_t dlen = strlen(domain);
	while (dlen && domain[dlen - 1] == '.')
		dlen--;
	int w = snprintf(out, outlen, "host-%s.%.*s.", ip, (int)dlen, domain);
	return w > 0 && (size_t)w < outlen;
}

bool check_zone_lines(int family, const unsigned char *addr, const char *domain, char *out,
                      size_t outlen)
{
	char name[300], ip[INET6_ADDRSTRLEN], rev[80];
	if (!check_zone_name(family, addr, domain, name, sizeof(name)) ||
	    !inet_ntop(family, addr, ip, sizeof(ip)))
		return false;
	if (family == AF_INET) {
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa.", addr[3], addr[2], addr[1],
		         addr[0]);
	} else {
		/* RFC 3596 §2.5: nibbles in reverse order under ip6.arpa. */
		static const char hex[] = "0123456789abcdef";
		size_t o = 0;
		for (int i = 15; i >= 0; i--) {
			rev[o++] = hex[addr[i] & 15];
			rev[o++] = '.';
			rev[o++] = hex[addr[i] >> 4];
			rev[o++] = '.';
		}
		memcpy(rev + o, "ip6.arpa.", sizeof("ip6.arpa."));
	}
	size_t used = strlen(out);
	int w = snprintf(out + used, outlen - used, "%s IN %s %s\n%s IN PTR %s\n", name,
	                 family == AF_INET ? "A" : "AAAA", ip, rev, name);
	if (w < 0 || (size_t)w >= outlen - used) {
		out[used] = '\0';
		return false;
	}
	return true;
}
