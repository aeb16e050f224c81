/* rawmail serve: the command line.  Every long option is also a key of the
 * configuration file, so both share config_set(). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/serve_queue.h"
#include "server/serve.h"
#include "util/config_file.h"
#include "util/limits.h"

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
	"\n"
	"Authenticated submission and relaying (need --spool: relayed mail goes through the\n"
	"outgoing queue):\n"
	"      --submission ADDR:PORT   a submission listener, STARTTLS then AUTH (RFC 6409;\n"
	"                               587 in production; repeatable)\n"
	"      --submissions ADDR:PORT  the same with implicit TLS (RFC 8314; 465)\n"
	"      --users FILE             who may log in (name:hash[:senders] lines, made with\n"
	"                               rawmail passwd); AUTH PLAIN and LOGIN are offered on\n"
	"                               submission listeners only, under TLS (a listener on\n"
	"                               exactly 127.0.0.1 or ::1 also without)\n"
	"      --max-auth-failures N    wrong passwords per connection before 421 (default 3);\n"
	"                               each failure also waits 1 s, doubling per failure\n"
	"                               of the same client address up to 16 s\n"
	"      --trusted-network CIDR   clients there may relay without AUTH, on any\n"
	"                               listener (repeatable; default none)\n"
	"\n"
	"The outgoing queue (rawmail send, sendmail): with a spool, a 'rawmail: queue'\n"
	"process delivers what is queued there, at once when it arrives, then on the\n"
	"retry schedule (no rawmail queue run needed):\n"
	"      --spool DIR              the queue (also spool in [queue]; default: none, no\n"
	"                               queue process)\n"
	"      --queue-user USER        its user when root; the spool is given to it.\n"
	"                               Default and only choice: the mail root's owner (the\n"
	"                               --mail-user), whose store process writes local mail\n"
	"      --retry-schedule LIST, --max-queue-lifetime DURATION, --delay-warning DURATION\n"
	"      --port N, --helo NAME (default --hostname), --timeout SECONDS, --cafile FILE,\n"
	"      --tls-fingerprint SHA256:HEX\n"
	"                               as for rawmail send; [delivery] and [queue] of the file\n"
	"                               (a smarthost: relay, auth-user, auth-password-file in\n"
	"                               [delivery], and [routes], as rawmail.conf(5) says)\n"
	"      --delivery-tls MODE      send's --tls for outgoing mail (--tls is serve's own)\n"
	"      --dns ADDR[:PORT] above serves both: client names and outgoing mail\n"
	"\n"
	"The MQTT bridge (a 'rawmail: mqtt' process; [mqtt] of the file, keys without\n"
	"the mqtt- prefix, url for --mqtt):\n"
	"      --mqtt URL               mqtt://[USER@]HOST[:PORT] or mqtts://... (TLS): each\n"
	"                               stored copy becomes an event on PREFIX/received/MAILBOX\n"
	"                               (JSON, QoS 1), after its 250, never lost; PREFIX/status\n"
	"                               is online/offline (retained, last will)\n"
	"      --mqtt-password-file FILE  the broker password (first line; read as root)\n"
	"      --mqtt-cafile FILE       CA of an mqtts:// broker (default: the system's)\n"
	"      --mqtt-topic PREFIX      (default rawmail)\n"
	"      --mqtt-client-id ID      (default rawmail-HOSTNAME; with --mqtt-send the\n"
	"                               requests' connection is ID-send)\n"
	"      --mqtt-protocol 3.1.1|5  (default 3.1.1)\n"
	"      --mqtt-attachments       also publish each attachment's bytes on\n"
	"                               PREFIX/received/MAILBOX/ID/N\n"
	"      --mqtt-max-attachment SIZE  larger ones are listed only (default 4M)\n"
	"      --mqtt-outbox-max N      events kept while the broker is away (default 100000)\n"
	"      --mqtt-send              send mail asked for on PREFIX/send (JSON) and\n"
	"                               PREFIX/send/ADDR (a whole message), through the\n"
	"                               queue (needs --spool); results on PREFIX/result\n"
	"      --mqtt-from ADDR         the sender of that mail (needed by --mqtt-send)\n"
	"      --mqtt-send-allow PATTERN  allowed recipients: user@domain or @domain\n"
	"                               (repeatable; default none)\n"
	"      --mqtt-send-rate N       requests per minute (default 60)\n"
	"  -h, --help                   this text\n"
	"\n"
	"Accepted: user@DOMAIN for each --domain, user@HOSTNAME, user@localhost,\n"
	"user@[IP] for each address it listens on (user@IP without brackets too),\n"
	"and postmaster.  Everything else is refused as relaying (554 5.7.1), except\n"
	"from a login or a --trusted-network, whose mail for elsewhere is queued.\n"
	"To run on port 25: sudo rawmail serve --listen 0.0.0.0:25 --listen [::]:25 ...\n";

static const char *const keys[] = {
	"listen", "mailroot", "domain", "hostname", "mailbox", "tls", "tls-cert", "tls-key",
	"max-message-size", "max-recipients", "max-connections", "max-connections-per-ip",
	"ipv4-prefix", "ipv6-prefix", "min-data-rate", "max-new-mailboxes-per-ip",
	"max-new-mailboxes", "max-errors", "timeout-command", "timeout-data", "timeout-shutdown",
	"greet-pause",
	"bare-newline", "sync", "accept-bare-ip", "dns", "rdns", "user", "mail-user", "log-level",
	"submission", "submissions", "users", "max-auth-failures", "trusted-network",
	"mqtt", "mqtt-password-file", "mqtt-cafile", "mqtt-topic", "mqtt-client-id",
	"mqtt-protocol", "mqtt-max-attachment", "mqtt-outbox-max", "mqtt-from", "mqtt-send-allow",
	"mqtt-send-rate",
};
/* Flags without a value: "yes" for their key. */
static const char *const switches[] = { "mqtt-attachments", "mqtt-send" };
#define NSWITCHES (sizeof(switches) / sizeof(switches[0]))
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The queue process's flags: send's, --tls as --delivery-tls.  --dns is
 * serve's and also given to the queue (one resolver setting per server);
 * --queue-user is serve's (a key of the file's top or [serve], as user
 * and mail-user are). */
static const struct option queue_opts[] = {
	{ "spool", required_argument, NULL, OPT_SPOOL },
	{ "delivery-tls", required_argument, NULL, OPT_TLS },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "tls-fingerprint", required_argument, NULL, OPT_FINGERPRINT },
	{ "helo", required_argument, NULL, OPT_HELO },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retry-schedule", required_argument, NULL, OPT_RETRY_SCHEDULE },
	{ "max-queue-lifetime", required_argument, NULL, OPT_MAX_QUEUE_LIFETIME },
	{ "delay-warning", required_argument, NULL, OPT_DELAY_WARNING },
};
#define NQUEUE (sizeof(queue_opts) / sizeof(queue_opts[0]))

/* The queue's settings: [delivery] and [queue] of the file, then the
 * flags (codes[i], values[i]); *on when a spool is set.  0 or the exit
 * status (said why). */
static int serve_queue_opts(struct send_opts *o, const char *config, const int *codes,
                            char **values, size_t n, bool *on)
{
	int rc = send_config_load(o, config);
	if (rc != 0)
		return rc;
	/* [send] spool is rawmail send's; serve reads [queue] and --spool. */
	o->spool = o->queue.spool;
	for (size_t i = 0; i < n; i++) {
		if (codes[i] == OPT_TLS) {
			/* Said under serve's name for it. */
			char err[256];
			if (cli_delivery_set(&o->delivery, CLI_FROM_FLAG, "tls", values[i], err,
			                     sizeof(err)) < 0) {
				fprintf(stderr, "rawmail serve: --delivery-tls '%s': %s\n", values[i], err);
				return EXIT_USAGE;
			}
		} else if (send_option(o, codes[i], values[i]) != 0) {
			return EXIT_USAGE;
		}
	}
	if ((rc = send_opts_check(o)) != 0)
		return rc;
	*on = o->spool != NULL;
	return 0;
}

int cli_serve(int argc, char **argv)
{
	struct option opts[NKEYS + NQUEUE + NSWITCHES + 4];
	size_t n = 0;
	for (; n < NKEYS; n++)
		opts[n] = (struct option){ keys[n], required_argument, NULL, 1000 + (int)n };
	for (size_t i = 0; i < NSWITCHES; i++)
		opts[n++] = (struct option){ switches[i], no_argument, NULL, 4000 + (int)i };
	opts[n++] = (struct option){ "queue-user", required_argument, NULL, 3000 };
	for (size_t i = 0; i < NQUEUE; i++)
		opts[n++] = (struct option){ queue_opts[i].name, required_argument, NULL, 2000 + (int)i };
	opts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ 0 };

	struct serve_args args = { 0 };
	args.keys = calloc((size_t)argc, sizeof(*args.keys));
	args.values = calloc((size_t)argc, sizeof(*args.values));
	int rc;
	int *qcodes = calloc((size_t)argc, sizeof(*qcodes));
	char **qvalues = calloc((size_t)argc, sizeof(*qvalues));
	size_t nq = 0;
	struct send_opts qo;
	send_opts_init(&qo, "rawmail serve");
	if (!args.keys || !args.values || !qcodes || !qvalues) {
		fprintf(stderr, "rawmail serve: out of memory\n");
		rc = 71;
		goto out;
	}
	int c;
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
			if (!strcmp(keys[c - 1000], "dns")) {
				qcodes[nq] = OPT_DNS;
				qvalues[nq++] = optarg;
			}
		} else if (c >= 4000 && c < 4000 + (int)NSWITCHES) {
			args.keys[args.n] = switches[c - 4000];
			args.values[args.n++] = "yes";
		} else if (c == 3000) {
			args.keys[args.n] = "queue-user";
			args.values[args.n++] = optarg;
		} else if (c >= 2000 && c < 2000 + (int)NQUEUE) {
			qcodes[nq] = queue_opts[c - 2000].val;
			qvalues[nq++] = optarg;
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
	bool queue = false;
	rc = serve_queue_opts(&qo, args.config_file, qcodes, qvalues, nq, &queue);
	if (rc != 0)
		goto out;
	if (queue) {
		args.queue_main = serve_queue_main;
		args.queue_arg = &qo;
		args.spool = qo.spool;
	}
	/* [dkim] (the same section as send's, rawmail.conf(5)): the store
	 * signs a login's relayed mail with these keys. */
	_Static_assert(SEND_DKIM_MAX <= STORE_DKIM_KEYS_MAX, "the store takes every [dkim] key");
	struct serve_dkim dkim[SEND_DKIM_MAX];
	for (size_t i = 0; i < qo.ndkim && i < SEND_DKIM_MAX; i++)
		dkim[i] = (struct serve_dkim){ .key = qo.dkim[i].key, .selector = qo.dkim[i].selector,
		                               .domain = qo.dkim[i].domain };
	args.dkim = dkim;
	args.ndkim = qo.ndkim;
	args.config_file =
		config_file_choose(args.config_file, getenv("RAWMAIL_CONF"), CONFIG_FILE_DEFAULT);
	rc = serve_main(&args);
out:
	send_opts_free(&qo);
	free(qcodes);
	free(qvalues);
	free(args.keys);
	free(args.values);
	return rc;
}
