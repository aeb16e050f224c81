/* tool_dnsplan --dns ADDR:PORT [-4|-6|--prefer-6|--any] DOMAIN...
 *
 * Resolves each DOMAIN with dns_destination_lookup (src/dns/lookup.c) and
 * prints, in argument order, either its delivery list
 *     DOMAIN PREF HOST ADDRESS
 * one line per address in the order they would be tried, or
 *     DOMAIN error temporary|permanent|nullmx TEXT
 * Exits 0 (64 on a usage error).  Only for the integration tests
 * (tests/integration/test_dns_lookup.py) until `rawmail send --dry-run`
 * prints the same plan.  The default family order is IPv4 first. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "dns/lookup.h"
#include "dns/resolver.h"
#include "util/buf.h"

struct job {
	const char *domain;
	struct buf out;
	bool done;
	size_t *remaining;
	struct event_base *base;
};

static void done_cb(void *arg, const struct dns_lookup_result *res)
{
	struct job *j = arg;

	if (res->status == DNS_LOOKUP_OK) {
		for (size_t i = 0; i < res->n; i++) {
			char text[INET6_ADDRSTRLEN];
			const struct dns_lookup_addr *a = &res->addrs[i];

			inet_ntop(a->family, a->addr, text, sizeof(text));
			buf_printf(&j->out, "%s %u %s %s\n", j->domain, a->preference, a->host, text);
		}
	} else {
		buf_printf(&j->out, "%s error %s %s\n", j->domain, dns_lookup_status_name(res->status),
		           res->text);
	}
	j->done = true;
	if (--*j->remaining == 0)
		event_base_loopbreak(j->base);
}

int main(int argc, char **argv)
{
	const char *server = NULL;
	enum dns_family_pref pref = DNS_FAMILY_V4_FIRST;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--dns") && i + 1 < argc)
			server = argv[++i];
		else if (!strcmp(argv[i], "-4"))
			pref = DNS_FAMILY_V4_ONLY;
		else if (!strcmp(argv[i], "-6"))
			pref = DNS_FAMILY_V6_ONLY;
		else if (!strcmp(argv[i], "--prefer-6"))
			pref = DNS_FAMILY_V6_FIRST;
		else if (!strcmp(argv[i], "--any"))
			pref = DNS_FAMILY_ANY;
		else
			break;
	}
	/* Never the system's resolver: these tests stay on loopback. */
	if (!server || i >= argc) {
		fprintf(stderr, "usage: tool_dnsplan --dns ADDR:PORT [-4|-6|--prefer-6|--any] DOMAIN...\n");
		return 64;
	}
	char err[256];
	struct event_base *base = event_base_new();
	struct dns_resolver *r = dns_resolver_new(server, 500, err, sizeof(err));
	if (!base || !r || !dns_resolver_attach(r, base)) {
		fprintf(stderr, "tool_dnsplan: %s\n", r ? "cannot attach resolver" : err);
		return 1;
	}
	size_t njobs = (size_t)(argc - i), remaining = njobs;
	struct job *jobs = calloc(njobs, sizeof(*jobs));
	if (!jobs)
		return 1;
	for (size_t k = 0; k < njobs; k++) {
		struct job *j = &jobs[k];

		j->domain = argv[i + (int)k];
		j->remaining = &remaining;
		j->base = base;
		buf_init(&j->out, 1 << 20);
		if (!dns_destination_lookup(r, j->domain, pref, NULL, NULL, done_cb, j)) {
			buf_printf(&j->out, "%s error temporary lookup could not start\n", j->domain);
			j->done = true;
			remaining--;
		}
	}
	if (remaining > 0)
		event_base_dispatch(base);
	for (size_t k = 0; k < njobs; k++) {
		if (jobs[k].out.len)
			fwrite(jobs[k].out.data, 1, jobs[k].out.len, stdout);
		buf_free(&jobs[k].out);
	}
	free(jobs);
	dns_resolver_free(r);
	event_base_free(base);
	return 0;
}
