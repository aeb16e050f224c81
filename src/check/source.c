/* The source address toward a destination, and what kind of address it
 * is.  The kernel chooses the source of a connection by its routing
 * table; a UDP socket connected to the destination (nothing is sent)
 * shows that choice through getsockname. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check/check.h"
#include "util/ip_text.h"

enum check_range check_range_of(int family, const unsigned char *a)
{
	if (family == AF_INET) {
		if (a[0] == 127)
			return CHECK_RANGE_LOOPBACK;
		/* RFC 1918 §3, and RFC 6598 shared address space (carrier-grade
		 * NAT: also never the address a receiver sees) */
		if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
		    (a[0] == 192 && a[1] == 168) || (a[0] == 100 && (a[1] & 0xc0) == 64))
			return CHECK_RANGE_PRIVATE;
		if (a[0] == 169 && a[1] == 254)
			return CHECK_RANGE_LINKLOCAL;
		return CHECK_RANGE_PUBLIC;
	}
	static const unsigned char loop6[16] = { [15] = 1 };
	if (!memcmp(a, loop6, 16))
		return CHECK_RANGE_LOOPBACK;
	if ((a[0] & 0xfe) == 0xfc)  /* RFC 4193 unique local fc00::/7 */
		return CHECK_RANGE_PRIVATE;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return CHECK_RANGE_LINKLOCAL;
	return CHECK_RANGE_PUBLIC;
}

bool check_source_for(int family, const unsigned char *dest, unsigned char *src, char *err,
                      size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(25);
		memcpy(&s4->sin_addr, dest, 4);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(25);
		memcpy(&s6->sin6_addr, dest, 16);
		len = sizeof(*s6);
	}
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct sockaddr_storage me;
	socklen_t mlen = sizeof(me);
	bool ok = getsockname(fd, (struct sockaddr *)&me, &mlen) == 0;
	if (!ok)
		snprintf(err, errlen, "%s", strerror(errno));
	close(fd);
	if (ok) {
		if (family == AF_INET)
			memcpy(src, &((struct sockaddr_in *)&me)->sin_addr, 4);
		else
			memcpy(src, &((struct sockaddr_in6 *)&me)->sin6_addr, 16);
	}
	return ok;
}

bool check_ehlo_revealed(const char *text, int *family, unsigned char addr[16])
{
	/* Only the first line: the greeting of EHLO's reply; later lines are
	 * extensions. */
	const char *nl = strchr(text, '\n');
	size_t len = nl ? (size_t)(nl - text) : strlen(text);
	const char *open = memchr(text, '[', len);
	if (!open)
		return false;
	const char *close_br = memchr(open, ']', len - (size_t)(open - text));
	if (!close_br)
		return false;
	const char *a = open + 1;
	size_t alen = (size_t)(close_br - a);
	if (alen > 5 && !strncasecmp(a, "IPv6:", 5)) {
		a += 5;
		alen -= 5;
	}
	if (ip_text_v4(a, alen, addr)) {
		*family = AF_INET;
		return true;
	}
	unsigned char six[16];
	int k = ip_text_v6(a, alen, six);
	if (k == 6) {
		memcpy(addr, six, 16);
		*family = AF_INET6;
		return true;
	}
	if (k == 4) {
		memcpy(addr, six, 4);
		*family = AF_INET;
		return true;
	}
	return false;
}
