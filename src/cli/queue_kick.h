/* The first attempt of a message the sendmail entry queued, in the
 * background (issue 9, QUEUE.md "Wave 2 decisions"): cron, PHP and mailx
 * must not wait for a slow MX, and their stderr is thrown away, so the
 * attempt is a detached `rawmail queue run ID` whose failures become
 * bounces. */
#ifndef RAWMAIL_CLI_QUEUE_KICK_H
#define RAWMAIL_CLI_QUEUE_KICK_H

#include <stdbool.h>

#include "cli/send.h"

/* Forks; the child setsid()s and forks again, and the grandchild execs
 * /proc/self/exe queue run --spool DIR [the delivery and queue options
 * given to this process] ID with stdin, stdout and stderr on /dev/null.
 * The first child is reaped here at once; the grandchild is not waited
 * for (init adopts it).  false when the first fork failed. */
bool cli_queue_kick(const struct send_opts *o, const char *spool, const char *id);

#endif
