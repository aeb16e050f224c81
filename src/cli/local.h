/* Local mail for rawmail send, rawmail queue and the sendmail entry
 * (issue 9): which addresses are this host's, the aliases file, and the
 * deliverer that writes local recipients into the mail root's Maildirs.
 *
 * The mail is written by the store (store/store.h), the same code and
 * durable path as serve's store process (write, fsync, rename, fsync;
 * Return-Path and Delivered-To): each delivery forks a store process on
 * a socketpair and hands it the message as serve's smtp process does.
 * The store never runs as root: run as root, the child drops to the mail
 * root's owner before it touches the mail root (opened by the parent, so
 * the child works beneath that descriptor); run as the owner, it needs
 * no change; anyone else gets a temporary failure that says to run the
 * queue as root, and the message stays queued. */
#ifndef RAWMAIL_CLI_LOCAL_H
#define RAWMAIL_CLI_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>

#include "msg/aliases.h"
#include "queue/runner.h"

/* Where local mail goes when no mailroot is configured: where the
 * installed serve puts it without one (its ./mail in the working
 * directory rawmail.service gives it), so that both write one store. */
#define CLI_MAILROOT_DEFAULT "/var/lib/rawmail/mail"
/* Read when it exists and no aliases file is named. */
#define CLI_ALIASES_DEFAULT "/etc/aliases"

/* This host's names: localhost, the short name and the FQDN. */
struct cli_local_names {
	char host[256];       /* hostname_get: the FQDN when there is one */
	char short_name[256];
};
void cli_local_names_init(struct cli_local_names *n);
/* msg_aliases_local_fn over a struct cli_local_names: addr's domain is
 * one of its names; name gets the local part in lower case. */
bool cli_local_domain(void *names, const char *addr, char *name, size_t namelen);

/* Reads the aliases file: path (NULL: CLI_ALIASES_DEFAULT when it
 * exists; "": none).  Lines left out are logged (event=aliases).  0, or
 * -1 said why on stderr (a named file that cannot be read or parsed). */
int cli_aliases_load(const char *prog, const char *path, struct msg_aliases *out);
/* The same with the lines left out given to warn (newaliases prints them
 * as FILE:LINE); an error of the whole file is said "PROG: FILE:LINE: why"
 * when it has a line.  *path_used: the file read (NULL: none). */
int cli_aliases_read(const char *prog, const char *path, struct msg_aliases *out,
                     msg_aliases_warn_fn warn, void *arg, const char **path_used);

struct cli_local;
/* The deliverer's state for one event loop.  NULL: out of memory. */
struct cli_local *cli_local_new(struct event_base *base, const char *mailroot,
                                const struct cli_local_names *names);
/* Only once every delivery it started is done. */
void cli_local_free(struct cli_local *l);
/* Opens the mail root now and keeps it (serve's queue process, before it
 * drops privileges: the mail root may lie below a directory its user
 * cannot traverse, as serve's own store is handed it opened).  A failure
 * is left to each delivery to say. */
void cli_local_hold(struct cli_local *l);
/* Local mail's MQTT events (issue 12): opens (makes) MAILROOT/.rawmail/
 * outbox beneath the held mail root, given to uid:gid when root, so each
 * store process records its copies' events there.  After cli_local_hold,
 * before the privilege drop (.rawmail may be root's). */
void cli_local_events(struct cli_local *l, uid_t uid, gid_t gid);
/* Local deliveries under way (their store process not yet reaped). */
size_t cli_local_active(const struct cli_local *l);
/* The queue_deliverer submit for local names (queue/split.h gives it
 * only those); ctx is a struct cli_local. */
int cli_local_submit(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
                     void *arg, char *why, size_t whylen);

#endif
