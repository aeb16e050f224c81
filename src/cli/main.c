/* rawmail: one program, subcommands.  main() only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/send.h"
#include "net/ossl_lazy.h"
#include "util/proctitle.h"

#ifndef RAWMAIL_VERSION
#define RAWMAIL_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
	fputs("usage: rawmail COMMAND [options]\n"
	      "\n"
	      "Send and receive email without an account at a mail provider.\n"
	      "\n"
	      "commands:\n"
	      "  send      deliver a message straight to the recipients' mail servers\n"
	      "            (rawmail send --help)\n"
	      "  queue     what is queued for delivery, and running the queue\n"
	      "            (rawmail queue --help)\n"
	      "  serve     receive mail over SMTP for your domains and IP addresses,\n"
	      "            stored in Maildir (rawmail serve --help)\n"
	      "  check     why mail from this machine would be refused, and the fix\n"
	      "            (rawmail check --help)\n"
	      "  passwd    add a user of authenticated submission or change their\n"
	      "            password (rawmail passwd --help)\n"
	      "  dkim      make a DKIM signing key and its DNS record\n"
	      "            (rawmail dkim --help)\n"
	      "\n"
	      "options:\n"
	      "  -h, --help      this text\n"
	      "  -V, --version   the version\n"
	      "\n"
	      "See rawmail(1) and rawmail.conf(5).\n",
	      out);
}

/* The last component of argv[0]: how we were called. */
static const char *called_as(const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
	return slash ? slash + 1 : argv0 ? argv0 : "";
}

int main(int argc, char **argv)
{
	/* Only this program signs (it links OpenSSL): see send.h. */
	send_dkim_hook = send_dkim_sign;
	/* A link named sendmail is the sendmail(8) interface that cron,
	 * mail(1), git and PHP call. */
	if (!strcmp(called_as(argv[0]), "sendmail"))
		return cli_sendmail(argc, argv);
	/* mailq: Postfix's and sendmail's name for listing the queue. */
	if (!strcmp(called_as(argv[0]), "mailq"))
		return cli_queue_list(argc, argv);
	/* newaliases: check the aliases file (there is no database). */
	if (!strcmp(called_as(argv[0]), "newaliases"))
		return cli_newaliases(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("rawmail %s\n", RAWMAIL_VERSION);
		return 0;
	}
	/* OpenSSL now for every command but send, whose plaintext path never
	 * needs it (net/ossl_lazy.h): serve's processes chroot, and a missing
	 * library is better said at start than at the first STARTTLS. */
	char why[512];
	if (strcmp(cmd, "send") != 0 && !ossl_lazy_load(why, sizeof(why))) {
		fprintf(stderr, "rawmail: %s\n", why);
		return 72;
	}
	if (!strcmp(cmd, "serve")) {
		/* Its processes name themselves in ps (rawmail: parent, smtp,
		 * store): free the memory of argv and the environment first. */
		proctitle_init(argc, argv);
		return cli_serve(argc - 1, argv + 1);
	}
	if (!strcmp(cmd, "send"))
		return cli_send(argc - 1, argv + 1);
	if (!strcmp(cmd, "queue"))
		return cli_queue(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return cli_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "passwd"))
		return cli_passwd(argc - 1, argv + 1);
	if (!strcmp(cmd, "dkim"))
		return cli_dkim(argc - 1, argv + 1);
	fprintf(stderr, "rawmail: unknown command '%s' (try rawmail --help)\n", cmd);
	return EXIT_USAGE;
}
