/* rawmail called as `sendmail`: the command line cron, mail(1), git,
 * PHP's mail() and mutt pass to /usr/sbin/sendmail, mapped onto rawmail
 * send.  What the flags mean follows Postfix's sendmail(1), the one most
 * of these programs meet today:
 *   -t           recipients from To, Cc, Bcc, added to the arguments'
 *   -i, -oi      a line holding only "." is message text; without either,
 *                it ends the input (the old convention mail(1) relies on)
 *   -f, -r ADDR  envelope sender; -F NAME its full name
 *   -v           "queued as ID" on stderr;  -B TYPE, -N DSN, -R RET, -V ENVID, -U, -n,
 *                -m, -L, -h, -X, -C and other -o options: accepted, no
 *                effect, as -A, -G and -O (mode options like -odi, -oem
 *                change nothing: the message is always queued first)
 *   -q           flush the queue (rawmail queue flush), Postfix's sendmail -q
 * The message is queued durably, then the command exits 0 at once and
 * says nothing (cron, PHP and mailx treat any other status as "not sent"
 * and throw stderr away): the first attempt is a detached `rawmail queue
 * run ID` (queue_kick.h), and every failure becomes a bounce.  75 when it
 * cannot be queued.  --no-queue: rawmail send's try-once in the
 * foreground instead.
 * -bp lists the queue (queue_list.c) and -bs speaks SMTP on stdin and
 * stdout (sendmail_bs.c), both on the spool of --spool DIR (or of the
 * settings file).  -bi and -I (newaliases) check the aliases file
 * (newaliases.c).  Other modes (-bd daemon, -bv verify) are refused with
 * exit 64 and a sentence saying so.  rawmail send's long
 * options (--dns, --port, --tls, ...) work here too.  Options end at the
 * first recipient, as with Postfix's sendmail: programs pass addresses
 * they were given, and "-fevil@example.com" after a recipient must be an
 * (invalid) recipient, not a new sender. */
#include "cli/sendmail.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define SENDMAIL_OPTSTRING "+tif:r:F:vB:o:N:R:V:UnmL:h:X:C:q::b:I46A:GO:"

static int refuse_mode(const char *what)
{
	fprintf(stderr, "sendmail: %s is not supported by rawmail; only sending a message "
	                "and -q are\n",
	        what);
	return SEND_EXIT_USAGE;
}

/* The command line after the settings file. */
static int options_parse(struct send_opts *o, int argc, char **argv, enum sendmail_mode *mode)
{
	bool smtp_mode = false;     /* -bs */
	bool list_mode = false;     /* -bp */
	bool aliases_mode = false;  /* -bi, -I: newaliases */
	bool flush = false;
	int c;
	opterr = 1;
	while ((c = getopt_long(argc, argv, SENDMAIL_OPTSTRING, send_long_opts, NULL)) != -1) {
		int r = send_option(o, c, optarg);
		if (r < 0)
			return SEND_EXIT_USAGE;
		if (r == 0)
			continue;
		switch (c) {
		case 't':
			o->extract = true;
			break;
		case 'i':
			o->dot_ends = false;
			break;
		case 'f':
		case 'r':
			o->from = optarg;
			o->from_where = c == 'f' ? "-f" : "-r";
			o->from_file = false;
			break;
		case 'o':
			/* -oi is -i; -oXvalue are sendmail.cf options: none apply. */
			if (!strcmp(optarg, "i"))
				o->dot_ends = false;
			break;
		case 'b':
			if (!strcmp(optarg, "m"))
				break;   /* deliver mail: the default */
			if (!strcmp(optarg, "p")) {
				list_mode = true;
				break;
			}
			if (!strcmp(optarg, "s")) {
				smtp_mode = true;
				break;
			}
			if (!strcmp(optarg, "d") || !strcmp(optarg, "D"))
				return refuse_mode("-bd (run as a daemon; use rawmail serve)");
			if (!strcmp(optarg, "i")) {
				aliases_mode = true;
				break;
			}
			if (!strcmp(optarg, "v"))
				return refuse_mode("-bv (verify addresses)");
			fprintf(stderr, "sendmail: unknown mode -b%s\n", optarg);
			return SEND_EXIT_USAGE;
		case 'q':
			/* -q: the queue now; -q30m (a daemon's interval) is not
			 * for a one-shot run. */
			if (optarg && optarg[0]) {
				fprintf(stderr, "sendmail: -q%s: only -q (flush the queue once) is "
				                "supported; run rawmail queue run from cron or a timer\n",
				        optarg);
				return SEND_EXIT_USAGE;
			}
			flush = true;
			break;
		case 'I':
			aliases_mode = true;
			break;
		case 'h':
			if (!optarg) {   /* --help; -h N is the hop count */
				*mode = SENDMAIL_HELP;
				return 0;
			}
			break;
		case 'B':
		case 'N':
		case 'R':
		case 'V':
		case 'U':
		case 'n':
		case 'm':
		case 'L':
		case 'X':
		case 'C':
		case 'A':
		case 'G':
		case 'O':
			break;
		default:
			fprintf(stderr, "sendmail: usage: sendmail [-t] [-i] [-f sender] [-F name] "
			                "[recipient ...] < message\n");
			return SEND_EXIT_USAGE;
		}
	}
	int checked = send_opts_check(o);
	if (checked != 0)
		return checked;
	*mode = aliases_mode ? SENDMAIL_ALIASES
	        : list_mode  ? SENDMAIL_LIST
	        : smtp_mode  ? SENDMAIL_SMTP
	        : flush      ? SENDMAIL_FLUSH
	                     : SENDMAIL_SEND;
	if (*mode == SENDMAIL_FLUSH && optind < argc) {
		fprintf(stderr, "sendmail: -q takes no recipients\n");
		return SEND_EXIT_USAGE;
	}
	if (o->no_queue || o->dry_run) {
		o->background = false;
		if ((checked = send_opts_password(o)) != 0)
			return checked;
	}
	o->rcpts = argv + optind;
	o->nrcpts = (size_t)(argc - optind);
	return 0;
}

int sendmail_options(struct send_opts *o, int argc, char **argv, enum sendmail_mode *mode)
{
	send_opts_init(o, "sendmail");
	o->dot_ends = true;
	o->quiet = true;
	o->background = true;
	*mode = SENDMAIL_SEND;
	/* The settings file: --config, $RAWMAIL_CONF or /etc/rawmail.conf
	 * (cron and PHP pass no options: this is where the site's are). */
	int rc = send_config_load(o, send_config_flag(argc, argv, SENDMAIL_OPTSTRING));
	if (rc == 0)
		rc = options_parse(o, argc, argv, mode);
	return rc;
}

int sendmail_help(void)
{
	printf("usage: sendmail [-t] [-i] [-f sender] [-F name] [recipient ...] "
	       "< message\n(rawmail's sendmail entry: see rawmail(1), "
	       "section SENDING)\n");
	return 0;
}
