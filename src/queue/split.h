/* Local and remote recipients (issue 9, local mail): a deliverer for the
 * runner that sends each recipient of a message to one of two others.
 * A recipient is local when it has no domain (`root`, cron's MAILTO) or
 * when the is_local callback says its domain is this host (localhost,
 * the host's name and FQDN); a local name is first expanded through the
 * aliases (msg/aliases.h), and its targets go to the local deliverer
 * (local names, for the mail root's Maildirs) or to the remote one
 * (forwarded addresses).  Remote recipients go to the remote deliverer
 * as they are.
 *
 * Each recipient of the message gets one result, the merge of its
 * targets': delivered when all were; a temporary failure when any was
 * (the whole recipient is tried again: a target already delivered may
 * get a second copy, never none); else permanent.  With a forward
 * callback (what the runners use), an alias's remote targets are not
 * delivered in this attempt: once its local targets are all delivered
 * they are queued as a new entry of their own (Postfix's local(8) does
 * the same), so a greylisting or a down server behind a forward retries
 * that entry alone and never brings a second copy to the local ones.  An alias loop or one
 * nested too deep is a permanent failure naming the loop (it is bounced
 * like any refusal).
 *
 * Forwarding loops through other hosts (msg/loop.h), as Postfix's
 * local(8) catches them: a forward carries "Delivered-To: NAME@host" for
 * the local name it was forwarded for, as the local store writes it for
 * a mailbox; a message that comes back to a local name (or one of its
 * local targets) with that field already in it, or any message with
 * more than MSG_HOPS_MAX Received: fields, fails permanently with 5.4.6
 * ("mail forwarding loop") instead of being delivered or forwarded
 * again.
 *
 * queue/ still never calls client/ or store/: both deliverers come from
 * the caller (cli/ wires the outbound engine and the local Maildir
 * deliverer). */
#ifndef RAWMAIL_QUEUE_SPLIT_H
#define RAWMAIL_QUEUE_SPLIT_H

#include <event2/event.h>

#include "msg/aliases.h"
#include "queue/runner.h"

/* Queues a new entry for d's message (same sender and bytes) to rcpts
 * (originals: their ORCPT) and gets it delivered (the runner's pass):
 * 0 with its id in id, or -1 with why. */
typedef int (*queue_split_forward_fn)(void *ctx, const struct queue_delivery *d,
                                      const char *const *rcpts, const char *const *originals,
                                      size_t n, char *id, size_t idlen, char *why,
                                      size_t whylen);

struct queue_split {
	struct event_base *base;            /* for results owed without a submit */
	struct queue_deliverer local, remote;
	const struct msg_aliases *aliases;  /* NULL: none */
	msg_aliases_local_fn is_local;      /* NULL: only names without a domain */
	void *is_local_arg;
	queue_split_forward_fn forward;     /* NULL: remote targets go to remote */
	void *forward_ctx;
	/* This host's name, as in the Delivered-To: the local store writes
	 * (NAME@host): forwards get it, and a message that has it for the
	 * name being delivered is a loop.  NULL: neither. */
	const char *host;
};

/* Fills out with a deliverer backed by s (which must outlive it). */
void queue_split_deliverer(struct queue_split *s, struct queue_deliverer *out);

/* Whether addr is local, and its local name (lower case) in name. */
bool queue_split_is_local(const struct queue_split *s, const char *addr, char *name,
                          size_t namelen);

#endif
