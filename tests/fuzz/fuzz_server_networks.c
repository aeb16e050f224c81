/* libFuzzer harness for the trusted networks (src/server/networks.c): any
 * text (the first octet selects nothing; the rest, NUL-terminated) is
 * either refused with a message that names it, leaving the list empty, or
 * accepted as one network whose printed form is accepted again as the
 * same network, which matches its own first address and not the address
 * just past its end.  Seeds come from tests/unit/test_server_networks.c
 * (RAWMAIL_SEED_DIR). */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/networks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	char *text = malloc(size);
	CHECK(text != NULL);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	struct networks n = { 0 };
	char err[256];
	err[0] = 'x';
	if (!networks_add(&n, text, err, sizeof(err))) {
		CHECK(n.count == 0 && n.entries == NULL);
		CHECK(strncmp(err, "trusted network \"", 17) == 0);
		free(text);
		return 0;
	}
	CHECK(n.count == 1);
	struct networks_entry e = n.entries[0];
	unsigned bits = e.family == AF_INET ? 32 : 128;
	CHECK(e.family == AF_INET || e.family == AF_INET6);
	CHECK(e.prefix >= 1 && e.prefix <= bits);
	char printed[NETWORKS_TEXT_MAX];
	networks_format(&e, printed, sizeof(printed));
	struct networks again = { 0 };
	CHECK(networks_add(&again, printed, err, sizeof(err)));
	CHECK(again.count == 1 && memcmp(&again.entries[0], &e, sizeof(e)) == 0);
	networks_free(&again);

	/* Its first address matches (also IPv4 as ::ffff:a.b.c.d); the one
	 * past its last does not, unless the network ends the space. */
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	unsigned char addr[16];
	memcpy(addr, e.addr, 16);
	if (e.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		CHECK(networks_match(&n, (struct sockaddr *)&ss));
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		memset(&ss, 0, sizeof(ss));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(sin6->sin6_addr.s6_addr + 12, addr, 4);
		CHECK(networks_match(&n, (struct sockaddr *)&ss));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		memcpy(sin6->sin6_addr.s6_addr, addr, 16);
		CHECK(networks_match(&n, (struct sockaddr *)&ss));
	}
	/* Adding 1 at the prefix's last bit gives the next network's first
	 * address (none past the end of the space: carry). */
	unsigned pos = e.prefix - 1; /* the prefix's last bit */
	int carry = 1;
	for (int i = (int)(pos / 8); i >= 0 && carry; i--) {
		unsigned add = (unsigned)i == pos / 8 ? 1u << (7 - pos % 8) : 1u;
		unsigned v = addr[i] + add;
		addr[i] = (unsigned char)v;
		carry = v > 0xff;
	}
	if (!carry) {
		memset(&ss, 0, sizeof(ss));
		if (e.family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, addr, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			sin6->sin6_family = AF_INET6;
			memcpy(sin6->sin6_addr.s6_addr, addr, 16);
		}
		/* An IPv6 network's next one may be ::ffff:0:0/96's: matched
		 * as IPv4 then, still not in this network. */
		CHECK(!networks_match(&n, (struct sockaddr *)&ss));
	}
	networks_free(&n);
	free(text);
	return 0;
}
