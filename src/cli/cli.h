/* Subcommands of the rawmail program, one file each. */
#ifndef RAWMAIL_CLI_CLI_H
#define RAWMAIL_CLI_CLI_H

int cli_serve(int argc, char **argv);
int cli_send(int argc, char **argv);
int cli_sendmail(int argc, char **argv);
/* rawmail queue (queue.c): run and flush there; list, show and delete in
 * queue_list.c, which the dispatcher calls with argv[0] the subcommand. */
int cli_queue(int argc, char **argv);
int cli_queue_list(int argc, char **argv);
int cli_queue_show(int argc, char **argv);
int cli_queue_delete(int argc, char **argv);

/* sysexits.h codes used by every subcommand. */
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69

#endif
