/* The first attempt of a message the sendmail entry queued, in the
 * background (issue 9, QUEUE.md "Wave 2 decisions"): cron, PHP and mailx
 * must not wait for a slow MX, and their stderr is thrown away, so the
 * attempt is a detached `rawmail queue run ID` whose failures become
 * bounces. */
#ifndef RAWMAIL_CLI_QUEUE_KICK_H
#define RAWMAIL_CLI_QUEUE_KICK_H

#include <stdbool.h>

#include "cli/send.h"

/* Nothing when rawmail serve's queue process runs this spool (below): it
 * picks the entry up by itself.  Otherwise starts (posix_spawn, in a session of its own) rawmail queue run
 * --spool DIR [the delivery and queue options given to this process] ID
 * with stdin, stdout and stderr on /dev/null, and does not wait for it
 * (reaped without waiting at a later kick, or adopted by init when this
 * process exits).  false when it could not be started. */
bool cli_queue_kick(const struct send_opts *o, const char *spool, const char *id);
/* The program the kick starts: "/proc/self/exe" (this rawmail) unless
 * set.  The sendmail link's small program (sendmail_main.c) sets the full
 * rawmail's path: it cannot run a queue itself. */
void cli_queue_kick_program_set(const char *path);

/* Bursts (a PHP loop, a cron minute, mailx to a list) gather into one
 * runner instead of one per message: the sendmail entry that starts a
 * runner first takes an exclusive flock on SPOOL/kick.lock and hands it
 * to the runner on descriptor 3 (`queue run --gather`); the runner holds
 * it CLI_QUEUE_GATHER_MS, then lets go and makes one pass over what is
 * due.  A sendmail entry that finds the lock held starts nothing: its
 * entry was renamed into env/ before it looked, so before the runner
 * lets go, so before that runner's pass lists the spool. */
#define CLI_QUEUE_KICK_LOCK "kick.lock"
#define CLI_QUEUE_GATHER_MS 200
#define CLI_QUEUE_GATHER_FD 3
/* queue run --gather: waits the gathering time, then closes descriptor 3
 * if it is SPOOL's kick lock (a hand-started --gather has none). */
void cli_queue_gather(const char *spool);

/* rawmail serve's queue process (cli/serve_queue.c) holds an exclusive
 * flock on SPOOL/runner.lock for as long as it watches the spool: it
 * starts a pass by itself when an entry arrives, so the sendmail entry
 * need not start one.  A killed process's lock dies with it. */
#define CLI_QUEUE_DAEMON_LOCK "runner.lock"
/* Takes that lock (creating the file); the descriptor, or -1 with errno
 * (EWOULDBLOCK: another process holds it).  Kept open for the process's
 * life. */
int cli_queue_daemon_hold(const char *spool);
/* Whether a live process holds that lock on spool. */
bool cli_queue_daemon_running(const char *spool);

#endif
