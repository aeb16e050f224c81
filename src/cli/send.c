/* rawmail send's command line, and the options it shares with the
 * sendmail entry (sendmail.c); send_run.c does the rest.  See rawmail(1)
 * and send.h. */
#include "cli/send.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/fingerprint.h"
#define SEND_DEFAULT_TIMEOUT 30

static const char send_help[] =
	"usage: rawmail send [options] RECIPIENT... < message\n"
	"\n"
	"Deliver a message straight to each recipient's mail server (its MX, or the\n"
	"address in user@[192.0.2.1]), with no account anywhere.  Standard input is a\n"
	"complete message, or with -s the text of a new one.\n"
	"\n"
	"  -f ADDR                envelope sender (default: you@this-host; \"\" for <>)\n"
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
	"permanent failure; 64 a usage error; 65 bad message data.\n";

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
	{ "spool", required_argument, NULL, OPT_SPOOL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static bool parse_number(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* The options both entries share (rawmail send's long ones, which a
 * sendmail link takes too).  0 taken, -1 invalid (said why), 1 not one
 * of them. */
int send_option(struct send_opts *o, int c, const char *arg)
{
	long v;
	switch (c) {
	case 'F':
	case OPT_FROM_NAME:
		o->from_name = arg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case '4':
	case '6':
		if (!o->family_auto && o->family != (c == '4' ? DNS_FAMILY_V4_ONLY : DNS_FAMILY_V6_ONLY)) {
			fprintf(stderr, "%s: -4 and -6 exclude each other\n", o->prog);
			return -1;
		}
		o->family_auto = false;
		o->family = c == '4' ? DNS_FAMILY_V4_ONLY : DNS_FAMILY_V6_ONLY;
		return 0;
	case OPT_TLS:
		o->tls_given = true;
		if (!strcmp(arg, "none"))
			o->tls = SEND_TLS_NONE;
		else if (!strcmp(arg, "opportunistic"))
			o->tls = SEND_TLS_OPPORTUNISTIC;
		else if (!strcmp(arg, "require"))
			o->tls = SEND_TLS_REQUIRE;
		else if (!strcmp(arg, "verify"))
			o->tls = SEND_TLS_VERIFY;
		else {
			fprintf(stderr, "%s: --tls '%s': use none, opportunistic, require or verify\n",
			        o->prog, arg);
			return -1;
		}
		return 0;
	case OPT_CAFILE:
		o->cafile = arg;
		return 0;
	case OPT_FINGERPRINT:
		if (o->npins == SEND_PINS_MAX) {
			fprintf(stderr, "%s: at most %d --tls-fingerprint\n", o->prog, SEND_PINS_MAX);
			return -1;
		}
		if (!tls_fingerprint_parse(arg, o->pins[o->npins])) {
			fprintf(stderr,
			        "%s: --tls-fingerprint '%s': expected SHA256: and 64 hex digits (as "
			        "printed by rawmail send -v or openssl x509 -fingerprint -sha256)\n",
			        o->prog, arg);
			return -1;
		}
		o->npins++;
		return 0;
	case OPT_HELO:
		o->helo = arg;
		return 0;
	case OPT_DNS:
		o->dns = arg;
		return 0;
	case OPT_PORT:
		if (!parse_number(arg, 1, 65535, &v)) {
			fprintf(stderr, "%s: --port '%s': expected 1 to 65535\n", o->prog, arg);
			return -1;
		}
		o->port = (unsigned short)v;
		return 0;
	case OPT_TIMEOUT:
		if (!parse_number(arg, 1, 3600, &v)) {
			fprintf(stderr, "%s: --timeout '%s': expected 1 to 3600 seconds\n", o->prog, arg);
			return -1;
		}
		o->timeout = (int)v;
		return 0;
	case OPT_DRY_RUN:
		o->dry_run = true;
		return 0;
	}
	return 1;
}

void send_opts_init(struct send_opts *o, const char *prog)
{
	*o = (struct send_opts){
		.prog = prog,
		.family_auto = true,
		.tls = SEND_TLS_OPPORTUNISTIC,
		.port = 25,
		.timeout = SEND_DEFAULT_TIMEOUT,
	};
}

/* Checks that need every option: pins need TLS, --cafile needs verify. */
int send_opts_check(struct send_opts *o)
{
	if (o->npins > 0 && (o->tls == SEND_TLS_NONE || o->tls == SEND_TLS_OPPORTUNISTIC)) {
		if (o->tls_given && o->tls == SEND_TLS_NONE) {
			fprintf(stderr, "%s: --tls-fingerprint needs TLS; not with --tls none\n", o->prog);
			return -1;
		}
		o->tls = SEND_TLS_REQUIRE;
	}
	if (o->cafile && o->tls != SEND_TLS_VERIFY) {
		fprintf(stderr, "%s: --cafile is for --tls verify\n", o->prog);
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
	int c, rc = SEND_EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+f:F:s:tv46h", send_long_opts, NULL)) != -1) {
		int r = send_option(&o, c, optarg);
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		switch (c) {
		case 'f':
			o.from = optarg;
			break;
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
	return rc;
}
