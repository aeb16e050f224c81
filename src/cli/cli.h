/* Subcommands of the rawmail program, one file each. */
#ifndef RAWMAIL_CLI_CLI_H
#define RAWMAIL_CLI_CLI_H

int cli_serve(int argc, char **argv);
int cli_send(int argc, char **argv);
int cli_sendmail(int argc, char **argv);

/* sysexits.h codes used by every subcommand. */
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69

#endif
