/* rawmail called as `sendmail` (sendmail.h): the options
 * (sendmail_options.c), then the mode they ask for.  The small program
 * the sendmail link runs (sendmail_main.c) does the same for a message and
 * hands every other mode over to this one. */
#include "cli/sendmail.h"

#include "cli/cli.h"

static int sendmail_mode_run(struct send_opts *o, enum sendmail_mode mode)
{
	switch (mode) {
	case SENDMAIL_HELP:
		return sendmail_help();
	case SENDMAIL_ALIASES:
		return cli_aliases_check("sendmail", o->aliases);
	case SENDMAIL_LIST: {
		/* -bp is mailq: the queue listing, as Postfix's. */
		char *list_argv[] = { "mailq", "--spool", (char *)o->spool, NULL };
		return cli_queue_list(o->spool ? 3 : 1, list_argv);
	}
	case SENDMAIL_SMTP:
		return cli_sendmail_bs(o, o->spool);
	case SENDMAIL_FLUSH:
		return send_queue_pass(o, QUEUE_RUN_ALL, NULL);
	case SENDMAIL_SEND:
		break;
	}
	return send_run(o);
}

int cli_sendmail(int argc, char **argv)
{
	struct send_opts o;
	enum sendmail_mode mode;
	int rc = sendmail_options(&o, argc, argv, &mode);
	if (rc == 0)
		rc = sendmail_mode_run(&o, mode);
	send_opts_free(&o);
	return rc;
}
