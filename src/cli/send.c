/* rawmail send's command line, and the options it shares with the
 * sendmail entry (sendmail.c); send_run.c does the rest.  See rawmail(1)
 * and send.h. */
#include "cli/send.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char send_help[] =
	"usage: rawmail send [options] RECIPIENT... < message\n"
	"\n"
	"Deliver a message straight to each recipient's mail server (its MX, or the\n"
	"address in user@[192.0.2.1]), with no account anywhere.  Standard input is a\n"
	"complete message, or with -s the text of a new one.\n"
	"\n"
	"  -c, --config FILE      settings file (default: $RAWMAIL_CONF, else\n"
	"                         /etc/rawmail.conf if it exists): its [send] and\n"
	"                         [delivery] sections; options given here win\n"
	"  -f ADDR                envelope sender (default: you@ORIGIN, origin in [send],\n"
	"                         else this host's name; \"\" for <>)\n"
	"  -F NAME, --from-name NAME  display name for the From: header\n"
	"  -s SUBJECT             compose: From, To, Subject, Date, Message-ID, MIME\n"
	"                         headers around the UTF-8 text on standard input\n"
	"      --attach FILE      attach a file (repeatable; composes a multipart message)\n"
	"  -t                     also send to the To, Cc and Bcc of the message (Bcc is\n"
	"                         removed before sending)\n"
	"  -v, -vv                print the SMTP conversation (S> and C> lines) on stderr;\n"
	"                         -vv includes the message itself\n"
	"  -4, -6                 IPv4 or IPv6 only (default: IPv6 first only when this\n"
	"                         host's IPv6 address has a PTR record)\n"
	"      --tls MODE         none, opportunistic (default: STARTTLS when offered),\n"
	"                         require (STARTTLS or fail), verify (require a certificate\n"
	"                         valid for the MX name)\n"
	"      --cafile FILE      trust anchors for --tls verify (default: the system's)\n"
	"      --tls-fingerprint SHA256:HEX  accept only this certificate or public key\n"
	"                         (repeatable; implies require)\n"
	"      --helo NAME        name for EHLO (default: this host's name, or its address)\n"
	"      --dns ADDR[:PORT]  resolver to ask (IPv6 as [::1]:5353; default: the system's)\n"
	"      --port N           server port (default 25)\n"
	"      --timeout SECONDS  for connecting and for each whole reply, however it\n"
	"                         trickles in (default 30; the reply to the end of the\n"
	"                         message may take 10 minutes)\n"
	"      --dry-run          print where the mail would go (MX hosts and addresses in\n"
	"                         the order tried) and connect to nothing\n"
	"  -h, --help             this text\n"
	"\n"
	"Options come before the recipients; \"--\" ends them.\n"
	"\n"
	"Exit status: 0 delivered to every recipient; 75 a temporary failure (not\n"
	"delivered and not queued: rawmail has no queue yet, send again later); 69 a\n"
	"permanent failure; 64 a usage error; 65 bad message data; 78 a bad\n"
	"settings file.\n";

#define SEND_OPTSTRING "+c:f:F:s:tv46h"

const struct option send_long_opts[] = {
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "tls-fingerprint", required_argument, NULL, OPT_FINGERPRINT },
	{ "helo", required_argument, NULL, OPT_HELO },
	{ "dns", required_argument, NULL, OPT_DNS },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "attach", required_argument, NULL, OPT_ATTACH },
	{ "from-name", required_argument, NULL, OPT_FROM_NAME },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "spool", required_argument, NULL, OPT_SPOOL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* The delivery settings' flags and their keys in [delivery]. */
static const char *delivery_key(int c)
{
	switch (c) {
	case OPT_TLS: return "tls";
	case OPT_CAFILE: return "cafile";
	case OPT_FINGERPRINT: return "tls-fingerprint";
	case OPT_HELO: return "helo";
	case OPT_DNS: return "dns";
	case OPT_PORT: return "port";
	case OPT_TIMEOUT: return "timeout";
	}
	return NULL;
}

/* The options both entries share (rawmail send's long ones, which a
 * sendmail link takes too).  0 taken, -1 invalid (said why), 1 not one
 * of them. */
int send_option(struct send_opts *o, int c, const char *arg)
{
	char err[256];
	const char *key = delivery_key(c);
	switch (c) {
	case 'F':
	case OPT_FROM_NAME:
		o->from_name = arg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case '4':
	case '6': {
		struct cli_delivery *d = &o->delivery;
		if (d->family_source == CLI_FROM_FLAG &&
		    d->family != (c == '4' ? DNS_FAMILY_V4_ONLY : DNS_FAMILY_V6_ONLY)) {
			fprintf(stderr, "%s: -4 and -6 exclude each other\n", o->prog);
			return -1;
		}
		cli_delivery_set(d, CLI_FROM_FLAG, "family", c == '4' ? "4" : "6", err, sizeof(err));
		return 0;
	}
	case OPT_CONFIG:
		return 0;   /* read before the other options (send_config.c) */
	case OPT_DRY_RUN:
		o->dry_run = true;
		return 0;
	}
	if (!key)
		return 1;
	if (cli_delivery_set(&o->delivery, CLI_FROM_FLAG, key, arg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: --%s '%s': %s\n", o->prog, key, arg, err);
		return -1;
	}
	return 0;
}

void send_opts_init(struct send_opts *o, const char *prog)
{
	*o = (struct send_opts){ .prog = prog, .from_where = "-f" };
	cli_delivery_init(&o->delivery);
}

void send_opts_free(struct send_opts *o)
{
	for (size_t i = 0; i < o->nowned; i++)
		free(o->owned[i]);
	free(o->owned);
	o->owned = NULL;
	o->nowned = 0;
}

/* Checks that need every option: pins need TLS, --cafile needs verify. */
int send_opts_check(struct send_opts *o)
{
	char err[256];
	if (!cli_delivery_finish(&o->delivery, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return -1;
	}
	return 0;
}

int cli_send(int argc, char **argv)
{
	struct send_opts o;
	send_opts_init(&o, "rawmail send");
	o.attach = calloc((size_t)argc, sizeof(*o.attach));
	if (!o.attach) {
		fprintf(stderr, "rawmail send: out of memory\n");
		return SEND_EXIT_OSERR;
	}
	int c, rc = send_config_load(&o, send_config_flag(argc, argv, SEND_OPTSTRING));
	if (rc != 0)
		goto out;
	rc = SEND_EXIT_USAGE;
	optind = 0;
	while ((c = getopt_long(argc, argv, SEND_OPTSTRING, send_long_opts, NULL)) != -1) {
		int r = send_option(&o, c, optarg);
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		switch (c) {
		case 'f':
			o.from = optarg;
			o.from_where = "-f";
			o.from_file = false;
			break;
		case 'c':
			break;   /* read first (send_config_flag) */
		case 's':
			o.subject = optarg;
			break;
		case 't':
			o.extract = true;
			break;
		case OPT_ATTACH:
			o.attach[o.nattach++] = optarg;
			break;
		case 'h':
			fputs(send_help, stdout);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "rawmail send: try 'rawmail send --help'\n");
			goto out;
		}
	}
	if (send_opts_check(&o) != 0)
		goto out;
	o.rcpts = argv + optind;
	o.nrcpts = (size_t)(argc - optind);
	rc = send_run(&o);
out:
	free(o.attach);
	send_opts_free(&o);
	return rc;
}
