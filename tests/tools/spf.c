/* tool_spf --dns ADDR:PORT [--timeout MS] IP DOMAIN [SENDER [HELO]]
 * tool_spf --dns ADDR:PORT [--timeout MS] --txt NAME
 *
 * Evaluates SPF with spf_check_start (src/dns/spf.c) against the given
 * DNS server and prints, one per line:
 *     result RESULT
 *     domain DOMAIN
 *     lookups N
 *     voids N
 *     matched TERM
 *     matched_in DOMAIN
 *     record TEXT
 *     explanation TEXT
 * With --txt, dns_txt_lookup (src/dns/rr.c) instead:
 *     status ok|nxdomain|nodata|temporary
 *     txt RECORD            (one line per record, strings joined)
 *     text TEXT             (why not ok)
 * Exits 0, or 64 on a usage error.  Only for the integration tests
 * (tests/integration/test_spf.py) until rawmail check prints the same. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "dns/resolver.h"
#include "dns/rr.h"
#include "dns/spf.h"

static void done_cb(void *arg, const struct spf_outcome *o)
{
	printf("result %s\ndomain %s\nlookups %u\nvoids %u\nmatched %s\nmatched_in %s\nrecord %s\n"
	       "explanation %s\n",
	       spf_result_name(o->result), o->domain, o->lookups, o->void_lookups, o->matched, o->matched_in,
	       o->record, o->explanation);
	event_base_loopbreak(arg);
}

static void txt_cb(void *arg, const struct dns_rr_result *res)
{
	printf("status %s\n", dns_rr_status_name(res->status));
	for (size_t i = 0; i < res->n; i++)
		printf("txt %s\n", res->items[i].text);
	printf("text %s\n", res->text);
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	const char *server = NULL;
	unsigned timeout = 500;
	int i = 1;
	const char *txt = NULL;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "--txt"))
			txt = argv[i + 1];
		else if (!strcmp(argv[i], "--dns"))
			server = argv[i + 1];
		else if (!strcmp(argv[i], "--timeout"))
			timeout = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else
			break;
	}
	struct spf_request req;
	memset(&req, 0, sizeof(req));
	/* Never the system's resolver: these tests stay on loopback. */
	if (!server || (!txt && (argc - i < 2 || argc - i > 4)) || (txt && argc != i)) {
		fprintf(stderr, "usage: tool_spf --dns ADDR:PORT [--timeout MS] IP DOMAIN [SENDER [HELO]]\n"
		                "       tool_spf --dns ADDR:PORT [--timeout MS] --txt NAME\n");
		return 64;
	}
	char err[256];
	struct event_base *base = event_base_new();
	struct dns_resolver *r = dns_resolver_new(server, timeout, err, sizeof(err));
	if (!base || !r || !dns_resolver_attach(r, base)) {
		fprintf(stderr, "tool_spf: %s\n", r ? "cannot start" : err);
		return 1;
	}
	if (txt) {
		if (!dns_txt_lookup(r, txt, txt_cb, base)) {
			fprintf(stderr, "tool_spf: cannot look up %s\n", txt);
			return 1;
		}
		event_base_dispatch(base);
		dns_resolver_free(r);
		event_base_free(base);
		return 0;
	}
	if (inet_pton(AF_INET, argv[i], req.ip) == 1)
		req.family = AF_INET;
	else if (inet_pton(AF_INET6, argv[i], req.ip) == 1)
		req.family = AF_INET6;
	else {
		fprintf(stderr, "tool_spf: %s is not an address\n", argv[i]);
		return 64;
	}
	req.domain = argv[i + 1];
	req.sender = argc - i > 2 ? argv[i + 2] : NULL;
	req.helo = argc - i > 3 ? argv[i + 3] : NULL;
	struct spf_check *c = spf_check_start(r, &req, done_cb, base);
	if (!c) {
		fprintf(stderr, "tool_spf: out of memory\n");
		return 1;
	}
	event_base_dispatch(base);
	dns_resolver_free(r);
	event_base_free(base);
	return 0;
}
