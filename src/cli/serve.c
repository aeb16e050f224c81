/* rawmail serve: the command line.  Every long option is also a key of the
 * configuration file, so both share config_set(). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/serve.h"
#include "util/config_file.h"

static const char serve_help[] =
	"usage: rawmail serve [options]\n"
	"\n"
	"Receive mail over SMTP and store it in Maildir.  Stays in the foreground;\n"
	"SIGTERM stops it cleanly, SIGHUP reloads the configuration.\n"
	"\n"
	"  -c, --config FILE            INI file; its keys are the long option names\n"
	"                               (default: $RAWMAIL_CONF, else /etc/rawmail.conf\n"
	"                               if it exists)\n"
	"      --listen ADDR:PORT       listen here (repeatable; IPv6 as [::1]:2525;\n"
	"                               default 127.0.0.1:2525 and [::1]:2525)\n"
	"      --mailroot DIR           one Maildir per mailbox below DIR (default ./mail)\n"
	"      --domain NAME            accept mail for this domain (repeatable)\n"
	"      --hostname NAME          name in the greeting and Received: (default: this host)\n"
	"      --mailbox NAME           only these mailboxes exist (repeatable; default: any)\n"
	"      --tls yes|no             offer STARTTLS (default yes)\n"
	"      --tls-cert FILE          certificate chain (PEM); default: a self-signed one\n"
	"      --tls-key FILE           its private key (PEM)\n"
	"      --max-message-size N     bytes, K/M/G allowed (default 25M)\n"
	"      --max-recipients N       per message, 100 to 10000 (default 1000)\n"
	"      --max-connections N      in all (default 10000)\n"
	"      --max-connections-per-ip N  (default 50)\n"
	"      --ipv4-prefix N          per-ip limit counts each IPv4 /N as one client (default 32)\n"
	"      --ipv6-prefix N          and each IPv6 /N (default 64: one customer's network)\n"
	"      --max-new-mailboxes-per-ip N  Maildirs that mail from one address (IPv6: /64)\n"
	"                               may create per hour (default 20; 0: none)\n"
	"      --max-new-mailboxes N    Maildirs created per hour in all (default 200);\n"
	"                               beyond: 450 4.7.1 at RCPT.  Existing Maildirs and\n"
	"                               --mailbox names are not counted\n"
	"      --max-errors N           bad commands before the session is closed (default 20)\n"
	"      --timeout-command SEC    wait for a command (default 300)\n"
	"      --timeout-data SEC       wait for message data (default 300)\n"
	"      --min-data-rate N        octets/s: DATA may last its timeout plus 1 s per N\n"
	"                               octets received (default 500); under overload slower\n"
	"                               transactions may be closed to admit new clients\n"
	"      --timeout-shutdown SEC   grace for a DATA in progress at SIGTERM (default 5)\n"
	"      --greet-pause MS         wait before the greeting; clients that talk first\n"
	"                               are refused (default 0: only at connect)\n"
	"      --bare-newline normalize|reject  bare CR or LF in message data (default normalize)\n"
	"      --sync syncfs|fsync      how a batch of messages is made durable (default syncfs)\n"
	"      --accept-bare-ip yes|no  take user@192.0.2.1 as user@[192.0.2.1] (default yes)\n"
	"      --dns ADDR[:PORT]        resolver for client names (default: the system's;\n"
	"                               IPv6 as [::1]:5353)\n"
	"      --rdns yes|no            put the client's verified name in Received: (default yes;\n"
	"                               with the system's resolver, loopback clients are skipped)\n"
	"      --user USER              smtp process user when started as root (default nobody)\n"
	"      --mail-user USER         store process user when root, never root; the mailroot\n"
	"                               is given to it (default: an existing mailroot's owner,\n"
	"                               'mail' for one rawmail creates)\n"
	"      --log-level LEVEL        error, warn, info or debug (default info)\n"
	"  -h, --help                   this text\n"
	"\n"
	"Accepted: user@DOMAIN for each --domain, user@HOSTNAME, user@localhost,\n"
	"user@[IP] for each address it listens on (user@IP without brackets too),\n"
	"and postmaster.  Everything else is refused as relaying (554 5.7.1).\n"
	"To run on port 25: sudo rawmail serve --listen 0.0.0.0:25 --listen [::]:25 ...\n";

static const char *const keys[] = {
	"listen", "mailroot", "domain", "hostname", "mailbox", "tls", "tls-cert", "tls-key",
	"max-message-size", "max-recipients", "max-connections", "max-connections-per-ip",
	"ipv4-prefix", "ipv6-prefix", "min-data-rate", "max-new-mailboxes-per-ip",
	"max-new-mailboxes", "max-errors", "timeout-command", "timeout-data", "timeout-shutdown",
	"greet-pause",
	"bare-newline", "sync", "accept-bare-ip", "dns", "rdns", "user", "mail-user", "log-level",
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

int cli_serve(int argc, char **argv)
{
	struct option opts[NKEYS + 3];
	size_t n = 0;
	for (; n < NKEYS; n++)
		opts[n] = (struct option){ keys[n], required_argument, NULL, 1000 + (int)n };
	opts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ 0 };

	struct serve_args args = { 0 };
	args.keys = calloc((size_t)argc, sizeof(*args.keys));
	args.values = calloc((size_t)argc, sizeof(*args.values));
	if (!args.keys || !args.values) {
		fprintf(stderr, "rawmail serve: out of memory\n");
		return 71;
	}
	int c, rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(serve_help, stdout);
			rc = 0;
			goto out;
		} else if (c == 'c') {
			args.config_file = optarg;
		} else if (c >= 1000 && c < 1000 + (int)NKEYS) {
			args.keys[args.n] = keys[c - 1000];
			args.values[args.n++] = optarg;
		} else {
			fprintf(stderr, "rawmail serve: try 'rawmail serve --help'\n");
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rawmail serve: unexpected argument '%s' (try --help)\n", argv[optind]);
		rc = EXIT_USAGE;
		goto out;
	}
	/* The same file as send's (rawmail.conf(5)): -c, $RAWMAIL_CONF, or
	 * /etc/rawmail.conf when it exists. */
	args.config_file =
		config_file_choose(args.config_file, getenv("RAWMAIL_CONF"), CONFIG_FILE_DEFAULT);
	rc = serve_main(&args);
out:
	free(args.keys);
	free(args.values);
	return rc;
}
