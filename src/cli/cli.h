/* Subcommands of the rawmail program, one file each. */
#ifndef RAWMAIL_CLI_CLI_H
#define RAWMAIL_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

int cli_serve(int argc, char **argv);
int cli_send(int argc, char **argv);
int cli_sendmail(int argc, char **argv);
/* newaliases.c: `newaliases` (argv[0]), and `sendmail -bi` / `-I` through
 * cli_aliases_check: the aliases file (NULL: the default) checked, nothing
 * printed when it is good.  0, or 78 (EX_CONFIG) said why as FILE:LINE. */
int cli_newaliases(int argc, char **argv);
int cli_aliases_check(const char *prog, const char *path);
/* passwd.c: `rawmail passwd --users FILE [--senders LIST] USER`, a
 * user of authenticated submission added or their password changed. */
int cli_passwd(int argc, char **argv);
/* check.c: `rawmail check`, the deliverability tests (src/check/). */
int cli_check(int argc, char **argv);
/* dkim.c: `rawmail dkim keygen --domain D --selector S [--type rsa|ed25519]
 * [--out FILE]`, a DKIM key written (0600, never replaced) and its TXT
 * record printed. */
int cli_dkim(int argc, char **argv);
/* rawmail queue (queue.c): run and flush there; list, show and delete in
 * queue_list.c, which the dispatcher calls with argv[0] the subcommand. */
int cli_queue(int argc, char **argv);

/* queue_list.c: `rawmail queue list` (also `mailq`, `sendmail -bp`),
 * `queue show ID`, `queue delete ID...`.  argv[0] is the subcommand's
 * name (list, show, delete, mailq). */
int cli_queue_list(int argc, char **argv);
int cli_queue_show(int argc, char **argv);
int cli_queue_delete(int argc, char **argv);

/* sendmail_bs.c: `sendmail -bs`, SMTP on standard input and output, each
 * accepted message queued in the spool (spool_dir NULL: the default). */
struct send_opts;
int cli_sendmail_bs(const struct send_opts *o, const char *spool_dir);

/* spool_dir.c: the spool directory: given (--spool), else the default,
 * /var/spool/rawmail for root, $XDG_STATE_HOME/rawmail/spool or
 * ~/.local/state/rawmail/spool for others (send_spool_open, send.h, makes
 * the missing parents of a user's for writers).  out, or NULL with why. */
const char *cli_spool_dir(const char *given, char *out, size_t outlen, char *why, size_t whylen);
/* For a user who is not root: the system's spool whose maildrop takes
 * their mail (queue/maildrop.h) -- the spool given (--spool or the
 * settings) unless it is their own, else /var/spool/rawmail -- or NULL
 * when there is none they can write (their own spool then). */
const char *cli_maildrop_spool(const char *given);

/* sysexits.h codes used by every subcommand. */
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69

#endif
