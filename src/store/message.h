/* One message inside the store process, from BEGIN to its RESULT: its
 * envelope, its content (in memory up to STORE_MEMORY_MESSAGE_MAX while the
 * store's memory budget allows, else streamed into its first file as DATA
 * arrives), and its files, one per distinct mailbox (issue 8, item 4: the
 * plus-addressed and case variants of a mailbox share one copy).
 *
 * A file's bytes are, as Postfix's local delivery writes them,
 *     Return-Path: <sender>
 *     X-Original-To: address        one per distinct recipient given
 *     Delivered-To: mailbox@domain  the mailbox (domain of its first recipient)
 * then the received text and the content.  A streamed message writes the
 * content once, into its first file; the others are copied from it when the
 * batch runs, so a message costs one open descriptor while it streams,
 * whatever its number of recipients.
 *
 * Relayed recipients (mailbox NULL at the client, "" on the wire; issue 10)
 * get no file: the message keeps for them, from BEGIN on, the received
 * text and the content with CR LF line endings (what the queue sends), up
 * to STORE_RELAY_MESSAGE_MAX, and queues that as one spool entry after its
 * Maildir part is durable (store_msg_relay). */
#ifndef RAWMAIL_STORE_MESSAGE_H
#define RAWMAIL_STORE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/frame.h"
#include "store/maildir.h"
#include "store/memory.h"
#include "store/outbox.h"
#include "store/relay.h"
#include "store/store.h"
#include "store/txnmap.h"
#include "util/buf.h"

/* What every message of one store process shares. */
struct store_env {
	int rootfd;                        /* the mailroot, O_DIRECTORY */
	enum store_sync_mode sync;
	long pid;
	char host[MAILDIR_HOST_MAX + 1];   /* escaped for file names */
	struct store_memory *memory;       /* content held in memory, all messages */
	struct store_relay *relay;         /* the spool for relayed recipients */
	struct outbox_writer *outbox;      /* the events outbox (issue 12), or NULL */
};

struct store_file {
	const char *mailbox;   /* owned by the message */
	const char *head;      /* X-Original-To lines and Delivered-To, LF ended */
	size_t head_len;
	uint64_t head_lfs;
	const char **to;       /* the distinct recipients of this copy, in RCPT
	                          order (the outbox's events) */
	size_t nto;
	bool in_tmp;           /* exists as tmp/<tmp name> */
	bool in_new;           /* exists as new/<new name> */
};

struct store_msg {
	struct txnmap_node node;       /* node.id is the txn id */
	struct store_msg *next;        /* in the pending batch */
	char *qid;
	char *sender;
	char *received;
	char *signer;                  /* "" or the login's senders field (DKIM) */
	char *client_ip;               /* "" for local mail (the outbox's events) */
	char *helo;
	size_t received_len;
	uint64_t received_lfs;
	struct store_file *files;
	size_t nfiles;
	struct buf mem;                /* the content while it stays in memory */
	struct store_memory_node mem_node; /* mem's capacity in the budget */
	struct store_memory *memory;   /* the budget mem is counted in, once it is */
	char *heads;                   /* every file's head, one allocation */
	const char **tos;              /* every file's to, one allocation */
	uint64_t content_len;
	uint64_t content_lfs;
	int stream_fd;                 /* files[0] while streaming, else -1 */
	bool streaming;
	bool committed;
	bool named;                    /* sec and usec chosen */
	int64_t sec;
	long usec;
	enum store_result result;      /* STORE_OK until something failed */
	/* Relayed recipients (issue 10): their addresses (in the arena), and
	 * the spool entry's bytes while it is built. */
	const char **relay;
	size_t nrelay;
	struct buf relay_msg;
	char relay_id[QUEUE_ID_MAX + 1]; /* once queued */
};

static inline struct store_msg *store_msg_of(struct txnmap_node *n)
{
	return n ? (struct store_msg *)((char *)n - offsetof(struct store_msg, node)) : NULL;
}

/* Makes the message for a decoded BEGIN.  A BEGIN that fails
 * frame_begin_check gives a message already failed with STORE_TEMPFAIL
 * (logged as a bug of the smtp process): it takes DATA and is answered at
 * COMMIT, but nothing is ever written for it.  NULL if memory ran out. */
struct store_msg *store_msg_new(const struct frame_begin *b);

/* Content from a DATA frame.  Past STORE_MEMORY_MESSAGE_MAX the message
 * starts streaming; so does the largest message in memory (this one or
 * another) whenever the sum would pass env->memory's budget.  A write error
 * fails that message (its files are removed and later content is
 * dropped). */
void store_msg_append(const struct store_env *env, struct store_msg *m, const char *data,
                      size_t len);

/* Batch step 1: creates and fills every file of m in tmp/ and closes them. */
void store_msg_write(const struct store_env *env, struct store_msg *m);
/* fsync of every file m has in tmp/: 0, or -1 with errno. */
int store_msg_fsync(const struct store_env *env, struct store_msg *m);
/* Batch step 3: moves every file into new/, all or none. */
void store_msg_rename(const struct store_env *env, struct store_msg *m);

/* Batch step 5, once m's files are durable in new/ (or m has none): queues
 * the relayed part as one spool entry.  If that fails, m fails (NOSPACE
 * for a full spool, else TEMPFAIL) and its files are removed from new/
 * before anyone is answered: the client retries the whole message, and
 * the local recipients must not get it twice. */
void store_msg_relay(const struct store_env *env, struct store_msg *m);

/* The outbox (issue 12): one record per file of m in new/, into
 * env->outbox's round, with the commit time now.  0, or -1 when the
 * round's records would pass their bound or memory ran out. */
int store_msg_outbox_add(const struct store_env *env, const struct store_msg *m, int64_t now);

/* Records the first failure (what failed, errno), logs it, and removes
 * every file of m from tmp/ and new/. */
void store_msg_fail(const struct store_env *env, struct store_msg *m, enum store_result r,
                    const char *what, int err);
/* Removes every file of m (ABORT, or the client went away). */
void store_msg_discard(const struct store_env *env, struct store_msg *m);
void store_msg_free(struct store_msg *m);

/* The octets that writing m's files will still take on disk (all copies;
 * a streamed message's first file is already written): checked against
 * the free space before the batch writes them (issue 8, item 4). */
uint64_t store_msg_disk_pending(const struct store_msg *m);

/* The octets in each of m's files, and the same with CRLF line endings. */
uint64_t store_msg_file_size(const struct store_msg *m, const struct store_file *f);
uint64_t store_msg_file_wsize(const struct store_msg *m, const struct store_file *f);

const char *store_result_name(enum store_result r);

#endif
