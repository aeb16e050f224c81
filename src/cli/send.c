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
	"                         /etc/rawmail.conf if it exists): its [send], [delivery]\n"
	"                         and [queue] sections; options given here win\n"
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
	"                         the order tried) and connect to nothing (and queue nothing)\n"
	"      --spool DIR        the queue (default /var/spool/rawmail for root, else\n"
	"                         $XDG_STATE_HOME/rawmail/spool or ~/.local/state/rawmail/spool)\n"
	"      --no-queue         try once and queue nothing (what is not delivered is lost)\n"
	"      --retry-schedule LIST  when `rawmail queue run` tries again after each failed\n"
	"                         attempt (default 5m,10m,20m,40m,1h, the last repeating)\n"
	"      --max-queue-lifetime DURATION  give up and bounce after (default 5d)\n"
	"      --delay-warning DURATION  tell the sender once when a message is still\n"
	"                         queued after this long (default 0: never)\n"
	"      --mailroot DIR     where local mail goes, one Maildir per name (serve's\n"
	"                         mailroot setting; default /var/lib/rawmail/mail, as the\n"
	"                         installed serve's)\n"
	"      --aliases FILE     /etc/aliases-format file for local names (default\n"
	"                         /etc/aliases if it exists; \"\" for none)\n"
	"  -h, --help             this text\n"
	"\n"
	"Options come before the recipients; \"--\" ends them.\n"
	"\n"
	"The message is written to the queue before the first attempt, which happens at\n"
	"once; what fails temporarily stays queued for `rawmail queue run`.\n"
	"A recipient without a domain (root), at localhost or at this host is local: after\n"
	"the aliases it goes into the mail root's Maildir, written as the mail root's owner\n"
	"(run as root or as that owner; anyone else's message stays queued for root's run).\n"
	"\n"
	"Exit status: 0 delivered to every recipient; 75 a temporary failure (queued,\n"
	"a line \"queued as ID\" says so; with --no-queue not delivered and not queued),\n"
	"or the message could not be queued; 69 a permanent failure (reported here, not\n"
	"bounced); 64 a usage error; 65 bad message data; 78 a bad settings file.\n";

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
	{ "no-queue", no_argument, NULL, OPT_NO_QUEUE },
	{ "retry-schedule", required_argument, NULL, OPT_RETRY_SCHEDULE },
	{ "max-queue-lifetime", required_argument, NULL, OPT_MAX_QUEUE_LIFETIME },
	{ "delay-warning", required_argument, NULL, OPT_DELAY_WARNING },
	{ "mailroot", required_argument, NULL, OPT_MAILROOT },
	{ "aliases", required_argument, NULL, OPT_ALIASES },
	{ "gather", no_argument, NULL, OPT_GATHER },
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
	case OPT_SPOOL:
		if (!arg[0]) {
			fprintf(stderr, "%s: --spool: expected a directory\n", o->prog);
			return -1;
		}
		o->spool = arg;
		return 0;
	case OPT_NO_QUEUE:
		o->no_queue = true;
		return 0;
	/* Kept as text (a flag replaces [queue]'s value), checked by
	 * send_opts_check, passed on as given to a background runner. */
	case OPT_RETRY_SCHEDULE:
		o->queue.retry_schedule = arg;
		return 0;
	case OPT_MAX_QUEUE_LIFETIME:
		o->queue.max_queue_lifetime = arg;
		return 0;
	case OPT_DELAY_WARNING:
		o->queue.delay_warning = arg;
		return 0;
	case OPT_MAILROOT:
		if (!arg[0]) {
			fprintf(stderr, "%s: --mailroot: expected a directory\n", o->prog);
			return -1;
		}
		o->mailroot = arg;
		return 0;
	case OPT_ALIASES:
		o->aliases = arg;   /* "": no aliases file */
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
	queue_policy_default(&o->policy);
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
	const struct cli_delivery *d = &o->delivery;
	if (d->npins > 0 && d->tls == CLI_TLS_NONE && d->pins_source == CLI_FROM_FILE &&
	    d->tls_source == CLI_FROM_FILE) {
		/* Both from the file: its fault, not the command line's. */
		fprintf(stderr, "%s: %s: [delivery] tls-fingerprint needs TLS; not with tls = none\n",
		        o->prog, o->config ? o->config : "settings file");
		return SEND_EXIT_CONFIG;
	}
	if (!cli_delivery_finish(&o->delivery, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return SEND_EXIT_USAGE;
	}
	/* The queue's texts, from the flags or [queue] (whose values were
	 * already checked when the file was read): checked here, by the
	 * queue's own parsers. */
	const struct send_queue_settings *q = &o->queue;
	if (q->retry_schedule &&
	    queue_schedule_parse(q->retry_schedule, &o->policy.schedule, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: retry-schedule: %s\n", o->prog, err);
		return SEND_EXIT_USAGE;
	}
	if (q->max_queue_lifetime &&
	    (queue_duration_parse(q->max_queue_lifetime, &o->policy.lifetime, err, sizeof(err)) != 0 ||
	     o->policy.lifetime < 1)) {
		fprintf(stderr, "%s: max-queue-lifetime: %s\n", o->prog,
		        o->policy.lifetime < 1 ? "at least 1 second" : err);
		return SEND_EXIT_USAGE;
	}
	if (q->delay_warning &&
	    queue_duration_parse(q->delay_warning, &o->policy.delay_warning, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: delay-warning: %s\n", o->prog, err);
		return SEND_EXIT_USAGE;
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
	if ((rc = send_opts_check(&o)) != 0)
		goto out;
	o.rcpts = argv + optind;
	o.nrcpts = (size_t)(argc - optind);
	rc = send_run(&o);
out:
	free(o.attach);
	send_opts_free(&o);
	return rc;
}
