/* The name rawmail gives in EHLO (--helo, else this host's name).
 * Receivers check it: RFC 5321 §4.1.1.1 asks for the host's fully
 * qualified name, and many refuse a name that does not resolve (Postfix
 * reject_unknown_helo_hostname) or look for it to match the client's
 * address.  None of this is a refusal at the large providers, so every
 * finding is a warning. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "check/run.h"
#include "util/hostname.h"

static void helo_cb(void *arg, const struct dns_lookup_result *res)
{
	struct check_run *run = arg;
	run->helo_answered = true;
	run->helo_status = res->status;
	for (size_t i = 0; res->status == DNS_LOOKUP_OK && i < res->n && run->helo_n < 16; i++) {
		run->helo_family[run->helo_n] = res->addrs[i].family;
		memcpy(run->helo_addr[run->helo_n], res->addrs[i].addr, 16);
		run->helo_n++;
	}
	check_run_done(run);
}

void check_helo_start(struct check_run *run)
{
	const char *name = run->o->helo;
	if (!strchr(name, '.') || !hostname_syntax_ok(name))
		return;  /* reported without a lookup */
	bool answered = false;
	run->pending++;
	if (!dns_host_lookup(run->dns, name, DNS_FAMILY_ANY, helo_cb, run, &answered) && !answered)
		check_run_done(run);
}

void check_helo_report(struct check_run *run, const int *families,
                       const unsigned char (*addrs)[16], size_t n, struct check_results *out)
{
	char name[300], fix[600];
	check_text_safe(name, sizeof(name), run->o->helo);
	snprintf(fix, sizeof(fix),
	         "give a fully qualified name whose A (AAAA) record is this host's address: "
	         "rawmail send --helo mail.example.org (and publish mail.example.org. IN A "
	         "ADDRESS)");
	if (!strchr(run->o->helo, '.') || !hostname_syntax_ok(run->o->helo)) {
		check_results_add(out, CHECK_WARN, "helo", name, fix,
		                  "not a fully qualified host name (RFC 5321 §4.1.1.1): some receivers "
		                  "refuse it");
		return;
	}
	if (!run->helo_answered || run->helo_status == DNS_LOOKUP_TEMPORARY) {
		check_results_add(out, CHECK_WARN, "helo", name, NULL,
		                  "its address lookup failed (timeout or server failure): try again");
		return;
	}
	if (run->helo_status != DNS_LOOKUP_OK || run->helo_n == 0) {
		check_results_add(out, CHECK_WARN, "helo", name, fix,
		                  "has no A or AAAA record: receivers that check the EHLO name "
		                  "refuse it");
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < run->helo_n; k++)
			if (families[i] == run->helo_family[k] &&
			    !memcmp(addrs[i], run->helo_addr[k], families[i] == AF_INET ? 4 : 16)) {
				char ip[INET6_ADDRSTRLEN];
				inet_ntop(families[i], addrs[i], ip, sizeof(ip));
				check_results_add(out, CHECK_PASS, "helo", name, NULL,
				                  "resolves to this host's address %s", ip);
				return;
			}
	if (n == 0) {
		check_results_add(out, CHECK_INFO, "helo", name, NULL,
		                  "resolves (no destination given to compare the source address "
		                  "with)");
		return;
	}
	char first[INET6_ADDRSTRLEN];
	inet_ntop(run->helo_family[0], run->helo_addr[0], first, sizeof(first));
	check_results_add(out, CHECK_WARN, "helo", name, fix,
	                  "resolves to %s%s, not to this host's source address", first,
	                  run->helo_n > 1 ? " and others" : "");
}
