/* The store: owner of the mail.  It runs in its own process (DESIGN.md,
 * "Processes and privileges"), receives messages from the smtp process over
 * a socketpair, writes one Maildir file per recipient and commits them in
 * batches (group commit), and answers "committed" or "failed" per message.
 *
 * Two halves:
 *   - store_process_run(): the store process's main loop;
 *   - store_client_*():    the smtp process's side of the socket.
 * The wire format between them is private to this module. */
#ifndef RAWMAIL_STORE_STORE_H
#define RAWMAIL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct queue_spool;

enum store_sync_mode {
	STORE_SYNC_SYNCFS = 0, /* syncfs(mailroot) per batch: two syncs whatever N is */
	STORE_SYNC_FSYNC,      /* fsync each file and each distinct new/ */
};

/* A DKIM signing key for relayed submission mail (issue 11): loaded by
 * the caller (serve's store child, as root, before its privilege drop) and
 * kept by it; domain is lower case. */
struct dkim_key;
struct store_dkim_key {
	struct dkim_key *key;
	const char *domain;        /* d= */
	const char *selector;      /* s= */
};

struct store_config {
	const char *mailroot;      /* directory holding one Maildir per mailbox (for logs) */
	int rootfd;                /* that directory, opened by the caller before any
	                              privilege drop: the store works beneath it with
	                              *at() calls, so its path need not be reachable
	                              by the store's user; closed by the store */
	const char *hostname;      /* for Maildir file names */
	enum store_sync_mode sync;
	/* New Maildirs granted at RCPT per hour (store_mailbox_ask): per
	 * client address (IPv6: per /64), and in all. */
	unsigned new_mailboxes_per_client;
	unsigned new_mailboxes_total;
	/* The outgoing queue's spool (issue 10: relayed recipients), or NULL
	 * (serve has none: a relayed recipient fails the message with
	 * STORE_TEMPFAIL).  Opened at the first relayed message, without
	 * creating it (serve's queue process does, for this same user), and
	 * again at the next one while that fails. */
	const char *spool;
	/* That spool already opened by the caller before the privilege drop
	 * (its path may be out of the store user's reach, as the mail
	 * root's may), or NULL.  Taken over by the store. */
	struct queue_spool *spool_open;
	/* DKIM keys ([dkim] of the settings file), or none: relayed mail from
	 * a login whose senders field allows its From is signed with each key
	 * whose domain is the From domain or a parent (store/relay_dkim.c). */
	const struct store_dkim_key *dkim;
	size_t ndkim;
	/* The events outbox (issue 12, store/outbox.h): with outbox, every
	 * commit round that stores copies also writes their records under
	 * MAILROOT/.rawmail/outbox, durably with them.  outbox_fd: that
	 * directory opened by a caller that was root (outbox_dir_open, which
	 * gives it to the store's user), taken over by the store; or -1: the
	 * store makes and opens it beneath rootfd itself.  Set both. */
	bool outbox;
	int outbox_fd;
};

/* Runs the store process's event loop on fd (its end of the socketpair)
 * until the peer closes it and every pending commit is answered.  Returns
 * 0, or -1 after logging why it could not start (mailroot unusable) or why
 * it stopped early (the peer broke the protocol).  fd and cfg->rootfd are
 * closed on return. */
int store_process_run(const struct store_config *cfg, int fd);

enum store_result {
	STORE_OK = 0,      /* on disk in every recipient's new/, synced, and
	                      queued in the spool for the relayed ones */
	STORE_TEMPFAIL,    /* I/O or sync error: 451 4.3.0 */
	STORE_NOSPACE,     /* ENOSPC or EDQUOT: 452 4.3.1 */
};

struct store_client;
struct store_txn;
struct store_query;
struct sockaddr;

/* The store's answer about a mailbox at RCPT (issue 8, item 4). */
enum store_mailbox_answer {
	STORE_MAILBOX_EXISTS = 0,     /* its Maildir is there */
	STORE_MAILBOX_GRANTED,        /* not yet: it may be created (counted) */
	STORE_MAILBOX_LIMIT_CLIENT,   /* not yet, and this client made too many this hour */
	STORE_MAILBOX_LIMIT_TOTAL,    /* not yet, and too many were made this hour */
	STORE_MAILBOX_ERROR,          /* cannot tell (I/O error, store gone) */
};

struct store_recipient {
	const char *address; /* the full recipient, for Delivered-To (keeps +tag) */
	const char *mailbox; /* the Maildir directory name under mailroot,
	                        already validated by the caller (no '/', no
	                        leading '.', no control bytes, folded); NULL:
	                        relay it (issue 10): the store queues the
	                        message for it in the outgoing spool */
};

/* The smtp process's side.  on_lost is called if the store process goes
 * away (the smtp process then refuses mail with 451 until restarted), after
 * every committed txn got STORE_TEMPFAIL.  The client owns fd from here on
 * (closed by store_client_free, or when the store is lost).
 * store_client_free calls no more callbacks; free it after every txn ended. */
struct store_client *store_client_new(struct event_base *base, int fd,
                                      void (*on_lost)(void *arg), void *arg);
void store_client_free(struct store_client *sc);

/* Starts a message.  sender is the reverse-path without brackets ("" for
 * the null sender); received is the Received: header field(s) with LF line
 * endings, already folded, ending in LF.  The store prepends, per
 * recipient: "Return-Path: <sender>\n", "Delivered-To: address\n", then
 * received, then the content.  The relayed recipients (mailbox NULL) share
 * one spool entry: received then the content, with CR LF line endings (the
 * bytes the queue sends), no Return-Path nor Delivered-To, origin
 * submission; its size is bounded by STORE_RELAY_MESSAGE_MAX.  signer:
 * NULL, or a login's senders field (auth/users.h): that spool entry is
 * DKIM-signed when its From is one the field allows and a key is
 * configured for its domain (store/relay_dkim.c).  client_ip (as
 * inet_ntop writes it) and helo (the HELO/EHLO argument as sent): NULL or
 * "" when unknown (local mail); they go into the outbox's events (issue
 * 12).  Returns NULL if out of memory. */
struct store_txn *store_txn_begin(struct store_client *sc, const char *qid, const char *sender,
                                  const struct store_recipient *rcpts, size_t nrcpts,
                                  const char *received, const char *signer,
                                  const char *client_ip, const char *helo);
/* Appends content (LF line endings, as smtp_content_decode gives it).
 * Never blocks; returns 0, or -1 if the store is gone or memory ran out. */
int store_txn_write(struct store_txn *t, const char *data, size_t len);
/* Ends the message: the store commits it with the next batch and calls
 * done(arg, result) once it is durable or has failed.  The txn is freed by
 * the module after done returns. */
void store_txn_commit(struct store_txn *t, void (*done)(void *arg, enum store_result r), void *arg);
/* Drops a message that will not be committed (client went away mid-DATA,
 * message refused): the store deletes what it had written.  Frees t. */
void store_txn_abort(struct store_txn *t);
/* After store_txn_commit: the session is gone, do not call done; the commit
 * itself still completes (the message is stored). */
void store_txn_forget(struct store_txn *t);

/* Mailboxes at RCPT.  store_mailbox_known: true if the store said
 * recently that mailbox exists (or granted it): no need to ask, which
 * keeps the common case free of a round trip.  Otherwise
 * store_mailbox_ask sends the question for a client (its address counts
 * against the limits) and cb(arg, answer) runs later from the event loop,
 * never inside the call; NULL if the store is gone or memory ran out.
 * store_mailbox_cancel: cb will not be called (the session went away). */
bool store_mailbox_known(struct store_client *sc, const char *mailbox);
struct store_query *store_mailbox_ask(struct store_client *sc, const char *mailbox,
                                      const struct sockaddr *client,
                                      void (*cb)(void *arg, enum store_mailbox_answer a),
                                      void *arg);
void store_mailbox_cancel(struct store_query *q);

/* Free space in the mailroot's filesystem as last reported by the store
 * (bytes available to the store's user), refreshed after every batch and at
 * least once a second; UINT64_MAX until the first report.  Used at MAIL to
 * refuse a SIZE= that cannot fit (452 4.3.1) before the client sends it. */
uint64_t store_client_free_space(const struct store_client *sc);

/* Backpressure: content not yet taken by the store.  A caller that sees
 * more than STORE_CLIENT_HIGH_WATER pending stops reading from its clients
 * until cb runs, which happens whenever the pending bytes fall to
 * STORE_CLIENT_LOW_WATER while the store works through them. */
#define STORE_CLIENT_HIGH_WATER (8u * 1024 * 1024)
#define STORE_CLIENT_LOW_WATER (1u * 1024 * 1024)
size_t store_client_pending(const struct store_client *sc);
void store_client_on_drain(struct store_client *sc, void (*cb)(void *arg), void *arg);
bool store_client_alive(const struct store_client *sc);

#endif
