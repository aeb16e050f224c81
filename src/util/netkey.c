#include "util/netkey.h"

#include <netinet/in.h>
#include <string.h>

void netkey_from_sockaddr(const struct sockaddr *sa, uint8_t key[NETKEY_LEN])
{
	memset(key, 0, NETKEY_LEN);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		key[0] = 4;
		memcpy(key + 1, a->s6_addr + 12, 4);
		return;
	}
	key[0] = 6;
	memcpy(key + 1, a->s6_addr, 8);
}
