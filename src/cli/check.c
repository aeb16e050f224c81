/* rawmail check: whether mail from this machine will be accepted, and
 * the exact fix for what would not (src/check/).  This file is only the
 * command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check/check.h"
#include "cli/cli.h"
#include "cli/send.h"
#include "dns/resolver.h"
#include "util/hostname.h"

static void check_usage(FILE *out)
{
	fputs("usage: rawmail check [--from ADDR] [--dns ADDR[:PORT]] [--port N] [--json]\n"
	      "                     [-4|-6] [--timeout SEC] [--helo NAME] [-c FILE]\n"
	      "                     [--dkim-key FILE --dkim-selector S [--dkim-domain D]]...\n"
	      "                     [RECIPIENT|DOMAIN|IP]...\n"
	      "\n"
	      "Runs the tests that decide whether mail from this machine is accepted,\n"
	      "one line per test: pass, warn, fail (or info), what was found, and the\n"
	      "fix (the DNS record to publish, the option to use).  Destinations are\n"
	      "checked in parallel; every network test has a timeout.\n"
	      "\n"
	      "  for each RECIPIENT or DOMAIN: its MX (null MX fails), and for each MX\n"
	      "    address: whether port 25 answers, greets, answers EHLO and offers\n"
	      "    STARTTLS (TLS version, certificate fingerprint); every address\n"
	      "    timing out means outgoing port 25 is probably blocked (--relay advice)\n"
	      "  for each IP (or user@[IP]): the same probe, and the fingerprint to pin\n"
	      "  the source address toward each destination, its PTR and whether the\n"
	      "    PTR resolves back (FCrDNS); a private source is behind NAT\n"
	      "  the EHLO name: fully qualified, resolving to the source address, and\n"
	      "    its own SPF record evaluated for it (RFC 7208 2.3: bounces)\n"
	      "  with --from: the domain's SPF record evaluated for each source\n"
	      "    address (fail, permerror fail; softfail, neutral, none warn; the fix\n"
	      "    is the record to publish), DMARC (RFC 9989 tree walk), and each DKIM\n"
	      "    key's record S._domainkey.D: present, parses, same k= and p= as the\n"
	      "    local key (the fix is the record to publish), not revoked, t=y warns;\n"
	      "    no key configured is a warning\n"
	      "  IP literals only (a lab without DNS): A and PTR zone lines naming\n"
	      "    the hosts host-A-B-C-D.DOMAIN. (--from's domain, else lab.)\n"
	      "\n"
	      "options:\n"
	      "  --from ADDR        the sender address whose domain is checked\n"
	      "  --dns ADDR[:PORT]  the DNS server to ask (default: resolv.conf)\n"
	      "  --port N           the SMTP port to probe (default 25)\n"
	      "  --json             the results as a JSON document\n"
	      "  -4, -6             probe IPv4 (IPv6) addresses only\n"
	      "  --timeout SEC      per network test (default 5)\n"
	      "  --helo NAME        the EHLO name to check and send (default: this host's)\n"
	      "  -c, --config FILE  the settings file whose [dkim] keys are checked\n"
	      "                     (default: $RAWMAIL_CONF, else /etc/rawmail.conf)\n"
	      "  --dkim-key FILE    a DKIM private key, as rawmail send takes it; with\n"
	      "  --dkim-selector S  its selector (alone: check the published record only)\n"
	      "  --dkim-domain D    and its domain (default: --from's); repeatable as a\n"
	      "                     group; they replace the file's [dkim] keys\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "exit status: 0 nothing failed, 1 something failed, 64 usage error.\n",
	      out);
}

static bool number(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);
	if (!*text || *end || text[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_check(int argc, char **argv)
{
	/* CHECK_ prefixed: send.h's OPT_ names are in scope */
	enum {
		CHECK_OPT_FROM = 256,
		CHECK_OPT_DNS,
		CHECK_OPT_PORT,
		CHECK_OPT_JSON,
		CHECK_OPT_TIMEOUT,
		CHECK_OPT_HELO,
		CHECK_OPT_DKIM_KEY,
		CHECK_OPT_DKIM_SELECTOR,
		CHECK_OPT_DKIM_DOMAIN,
		CHECK_OPT_CONFIG,
	};
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, CHECK_OPT_FROM },
		{ "dns", required_argument, NULL, CHECK_OPT_DNS },
		{ "port", required_argument, NULL, CHECK_OPT_PORT },
		{ "json", no_argument, NULL, CHECK_OPT_JSON },
		{ "timeout", required_argument, NULL, CHECK_OPT_TIMEOUT },
		{ "helo", required_argument, NULL, CHECK_OPT_HELO },
		{ "config", required_argument, NULL, CHECK_OPT_CONFIG },
		{ "dkim-key", required_argument, NULL, CHECK_OPT_DKIM_KEY },
		{ "dkim-selector", required_argument, NULL, CHECK_OPT_DKIM_SELECTOR },
		{ "dkim-domain", required_argument, NULL, CHECK_OPT_DKIM_DOMAIN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_opts o = { .port = 25, .family = DNS_FAMILY_ANY, .timeout_ms = 5000 };
	bool json = false;
	char dns[300];
	unsigned long v;
	int c;
	/* --dkim-* in order, applied after the settings file (they replace
	 * its [dkim] keys, as for send) */
	struct {
		const char *what, *value;
	} dkim_flags[3 * SEND_DKIM_MAX + 1];
	size_t ndkim_flags = 0;
	const char *config = NULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "46hc:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case CHECK_OPT_CONFIG: config = optarg; break;
		case CHECK_OPT_DKIM_KEY:
		case CHECK_OPT_DKIM_SELECTOR:
		case CHECK_OPT_DKIM_DOMAIN:
			if (ndkim_flags == sizeof(dkim_flags) / sizeof(dkim_flags[0])) {
				fprintf(stderr, "rawmail check: at most %d DKIM keys\n", SEND_DKIM_MAX);
				return EXIT_USAGE;
			}
			dkim_flags[ndkim_flags].what = c == CHECK_OPT_DKIM_KEY        ? "key"
			                               : c == CHECK_OPT_DKIM_SELECTOR ? "selector"
			                                                        : "domain";
			dkim_flags[ndkim_flags++].value = optarg;
			break;
		case CHECK_OPT_FROM:
			if (!strchr(optarg, '@')) {
				fprintf(stderr, "rawmail check: --from needs an address (user@domain)\n");
				return EXIT_USAGE;
			}
			o.from = optarg;
			break;
		case CHECK_OPT_DNS: {
			char err[200];
			if (!dns_server_parse(optarg, dns, sizeof(dns), err, sizeof(err))) {
				fprintf(stderr, "rawmail check: --dns: %s\n", err);
				return EXIT_USAGE;
			}
			o.dns = dns;
			break;
		}
		case CHECK_OPT_PORT:
			if (!number(optarg, 1, 65535, &v)) {
				fprintf(stderr, "rawmail check: --port: not a port: %s\n", optarg);
				return EXIT_USAGE;
			}
			o.port = (unsigned)v;
			break;
		case CHECK_OPT_JSON: json = true; break;
		case CHECK_OPT_HELO:
			if (!*optarg || strlen(optarg) > 253) {
				fprintf(stderr, "rawmail check: --helo: 1 to 253 octets\n");
				return EXIT_USAGE;
			}
			o.helo = optarg;
			break;
		case CHECK_OPT_TIMEOUT:
			if (!number(optarg, 1, 300, &v)) {
				fprintf(stderr, "rawmail check: --timeout: 1 to 300 seconds: %s\n", optarg);
				return EXIT_USAGE;
			}
			o.timeout_ms = (unsigned)v * 1000;
			break;
		case '4':
		case '6':
			if (o.family != DNS_FAMILY_ANY) {
				fprintf(stderr, "rawmail check: -4 and -6 exclude each other\n");
				return EXIT_USAGE;
			}
			o.family = c == '4' ? DNS_FAMILY_V4_ONLY : DNS_FAMILY_V6_ONLY;
			break;
		case 'h': check_usage(stdout); return 0;
		default:
			fprintf(stderr, "rawmail check: unknown option '%s'\n", argv[optind - 1]);
			check_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc && !o.from) {
		fprintf(stderr, "rawmail check: nothing to check: give a recipient, domain or IP, "
		                "or --from ADDR\n");
		check_usage(stderr);
		return EXIT_USAGE;
	}
	/* the EHLO name: this host's name, as rawmail send gives it (a short
	 * name is used as it is: check only looks at the replies) */
	char helo[256] = "";
	if (!o.helo) {
		hostname_get(helo, sizeof(helo), "/etc/hosts");
		if (!helo[0])
			snprintf(helo, sizeof(helo), "localhost");
		o.helo = helo;
	}
	/* The DKIM keys as send reads them: [dkim] of the settings file, then
	 * the flags (send_dkim_set: groups of key, selector, domain). */
	struct send_opts so;
	send_opts_init(&so, "rawmail check");
	int rc = send_config_load(&so, config);
	if (rc != 0) {
		send_opts_free(&so);
		return rc;
	}
	for (size_t i = 0; i < ndkim_flags; i++) {
		char err[300];
		if (send_dkim_set(&so, true, dkim_flags[i].what, dkim_flags[i].value, err,
		                  sizeof(err)) < 0) {
			fprintf(stderr, "rawmail check: --dkim-%s '%s': %s\n", dkim_flags[i].what,
			        dkim_flags[i].value, err);
			send_opts_free(&so);
			return EXIT_USAGE;
		}
	}
	/* Unlike send, a selector alone is a check of its published record,
	 * and the domain defaults to --from's. */
	struct check_dkim_key keys[SEND_DKIM_MAX];
	for (size_t i = 0; i < so.ndkim; i++) {
		const struct send_dkim *g = &so.dkim[i];
		if (!g->selector || (!g->domain && !o.from)) {
			const char *missing = !g->selector ? "selector" : "domain";
			if (so.dkim_flags)
				fprintf(stderr, "rawmail check: DKIM key %zu: --dkim-%s is missing (or "
				        "--from for the domain)\n", i + 1, missing);
			else
				fprintf(stderr, "rawmail check: %s: [dkim] key %zu has no %s\n",
				        so.config ? so.config : "settings file", i + 1, missing);
			send_opts_free(&so);
			return so.dkim_flags ? EXIT_USAGE : SEND_EXIT_CONFIG;
		}
		keys[i] = (struct check_dkim_key){ g->key, g->selector, g->domain };
	}
	o.dkim = keys;
	o.ndkim = so.ndkim;
	o.targets = (const char *const *)argv + optind;
	o.ntargets = (size_t)(argc - optind);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct check_results r = { 0 };
	char why[300];
	if (!check_run(&o, &r, why, sizeof(why))) {
		fprintf(stderr, "rawmail check: %s\n", why);
		check_results_free(&r);
		send_opts_free(&so);
		return EXIT_USAGE;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unsigned long ms = (unsigned long)((t1.tv_sec - t0.tv_sec) * 1000 +
	                                   (t1.tv_nsec - t0.tv_nsec) / 1000000);
	if (json)
		check_results_print_json(&r, ms, stdout);
	else
		check_results_print(&r, stdout);
	bool failed = r.oom || check_results_count(&r, CHECK_FAIL) > 0;
	check_results_free(&r);
	send_opts_free(&so);
	return failed ? 1 : 0;
}
