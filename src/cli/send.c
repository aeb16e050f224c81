/* rawmail send's command line (the options it shares with the sendmail
 * entry are send_opts.c's); send_run.c does the rest.  See rawmail(1)
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
	"      --relay [smtps://]HOST[:PORT]  send every message through this smarthost\n"
	"                         instead of the recipients' MX (not local names, address\n"
	"                         literals or domains with a route); port 587 with STARTTLS,\n"
	"                         or smtps:// for TLS from the start on 465; its certificate\n"
	"                         is verified (--cafile, --tls-fingerprint; --tls require: not\n"
	"                         verified); \"none\" drops the settings file's relay (and\n"
	"                         its login)\n"
	"      --auth-user USER   log in to the relay (AUTH PLAIN or LOGIN, only over TLS or\n"
	"                         to 127.0.0.1 / ::1)\n"
	"      --auth-password-file FILE  its first line is the relay password\n"
	"      --route DOMAIN=HOST[:PORT]  mail for DOMAIN (exactly, not its subdomains) goes\n"
	"                         to HOST (an address, or a name's A/AAAA; port 25, TLS as for\n"
	"                         an MX), not its MX; repeatable; wins over --relay\n"
	"      --dkim-key FILE --dkim-selector S --dkim-domain D  DKIM-sign the message\n"
	"                         (rsa-sha256 or ed25519-sha256 by the key's type) when D is\n"
	"                         its From domain or a parent of it; once, before it is\n"
	"                         queued; repeat the three for a second key (rawmail dkim\n"
	"                         keygen makes one; [dkim] in the settings file)\n"
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
