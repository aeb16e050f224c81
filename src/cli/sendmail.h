/* rawmail called as `sendmail`: the command line cron, mail(1), git,
 * PHP's mail() and mutt pass to /usr/sbin/sendmail (sendmail_options.c
 * says what each flag means).  Two programs read it: rawmail itself
 * (sendmail.c, every mode) and the small one the sendmail link runs
 * (sendmail_main.c: a message it queues itself, every other mode it hands
 * over to rawmail). */
#ifndef RAWMAIL_CLI_SENDMAIL_H
#define RAWMAIL_CLI_SENDMAIL_H

#include "cli/send.h"

/* What the command line asks for. */
enum sendmail_mode {
	SENDMAIL_SEND,     /* a message on stdin (with --no-queue or --dry-run:
	                    * o->background false, rawmail send's delivery) */
	SENDMAIL_HELP,     /* --help */
	SENDMAIL_ALIASES,  /* -bi, -I: newaliases */
	SENDMAIL_LIST,     /* -bp: mailq */
	SENDMAIL_SMTP,     /* -bs: SMTP on stdin and stdout */
	SENDMAIL_FLUSH,    /* -q */
};

/* Initialises o for the entry, reads the settings file, then the command
 * line (options end at the first recipient: o->rcpts).  0 and *mode, or
 * the exit status (said why).  send_opts_free(o) in every case. */
int sendmail_options(struct send_opts *o, int argc, char **argv, enum sendmail_mode *mode);
/* The usage line on stdout; 0. */
int sendmail_help(void);

#endif
