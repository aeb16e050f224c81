/* rawmail serve's outbound delivery process (issue 9): the queue runner
 * (queue/runner.h) on the outbound engine (client/outbound.h), run by
 * serve's parent in a child of its own.  It lives in cli/ because
 * server/ never calls client/: serve_main is handed serve_queue_main as a
 * function pointer (server/serve.h, struct serve_args). */
#ifndef RAWMAIL_CLI_SERVE_QUEUE_H
#define RAWMAIL_CLI_SERVE_QUEUE_H

#include "cli/send.h"
#include "server/serve.h"

/* The most a pass waits for: new entries are noticed through inotify at
 * once, and this periodic pass is the fallback (a spool on a filesystem
 * without inotify events, a missed event). */
#define SERVE_QUEUE_PASS_MAX_WAIT 60

/* After an arrival, the pause before the pass (milliseconds): room for
 * rawmail send to lock its new entry for its own first attempt. */
#define SERVE_QUEUE_SETTLE_MS 300

/* arg: the struct send_opts with the delivery and queue settings (its
 * spool set).  As root: creates the spool if needed and gives it to the
 * queue user (the mail root's owner, the store's user: its local
 * deliveries need it; --queue-user must name that user), reads
 * the resolver and TLS settings, then becomes that user.  Runs passes at
 * start, when an entry arrives (inotify on env/), and when the earliest
 * next attempt is due; SIGTERM: lets the in-flight deliveries finish, at
 * most timeout_shutdown seconds.  Returns the exit status. */
int serve_queue_main(void *arg, const struct serve_queue_child *child);

#endif
