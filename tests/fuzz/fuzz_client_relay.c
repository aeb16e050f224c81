/* libFuzzer harness for the --relay / --route values (src/client/relay.c).
 *
 * The first octet chooses the parser (even: a relay, odd: a route); the
 * rest, up to its first NUL, is the value.  On success:
 *   - the host is a NUL-terminated lower-case name, or an address whose
 *     text inet_ntop gives back;
 *   - the port is 1 to 65535;
 *   - formatting it and parsing that again gives the same host, port and
 *     TLS mode (a route's domain found again by client_relay_route_find).
 * Seeds come from tests/unit/test_client_relay.c (RAWMAIL_SEED_DIR). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void host_check(const struct client_relay_host *h)
{
	CHECK(memchr(h->host, '\0', sizeof(h->host)) != NULL);
	CHECK(h->port >= 1);
	if (h->literal) {
		char text[INET6_ADDRSTRLEN];
		CHECK(h->family == AF_INET || h->family == AF_INET6);
		CHECK(inet_ntop(h->family, h->addr, text, sizeof(text)) != NULL);
		CHECK(strcmp(text, h->host) == 0);
	} else {
		CHECK(h->host[0] != '\0');
		for (const char *p = h->host; *p; p++)
			CHECK(!(*p >= 'A' && *p <= 'Z') && *p != ':' && *p != '[' && *p != ' ');
	}
}

static void same_host(const struct client_relay_host *a, const struct client_relay_host *b)
{
	CHECK(strcmp(a->host, b->host) == 0);
	CHECK(a->port == b->port && a->literal == b->literal);
	CHECK(a->implicit_tls == b->implicit_tls);
	if (a->literal)
		CHECK(!memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1024)
		return 0;
	char text[1025];
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char err[256], again[600];
	if ((data[0] & 1) == 0) {
		struct client_relay_host h, h2;
		if (!client_relay_host_parse(text, &h, err, sizeof(err))) {
			CHECK(err[0] != '\0');
			return 0;
		}
		host_check(&h);
		client_relay_host_format(&h, again, sizeof(again));
		CHECK(client_relay_host_parse(again, &h2, err, sizeof(err)));
		same_host(&h, &h2);
		return 0;
	}
	struct client_relay_route r, r2;
	if (!client_relay_route_parse(text, &r, err, sizeof(err))) {
		CHECK(err[0] != '\0');
		return 0;
	}
	host_check(&r.to);
	CHECK(!r.to.implicit_tls);
	CHECK(client_relay_route_find(&r, 1, r.domain) == &r);
	char host[300];
	client_relay_host_format(&r.to, host, sizeof(host));
	snprintf(again, sizeof(again), "%s=%s", r.domain, host);
	CHECK(client_relay_route_parse(again, &r2, err, sizeof(err)));
	CHECK(strcmp(r.domain, r2.domain) == 0);
	same_host(&r.to, &r2.to);
	return 0;
}
