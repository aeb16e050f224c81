/* Relayed recipients (issue 10): the store puts a message for recipients
 * without a mailbox into the outgoing queue's spool, where serve's queue
 * process finds it (inotify) and delivers it as it delivers rawmail send's.
 *
 * The store runs as the mail user, which owns the spool too (serve's queue
 * process creates it and gives it to that user), so it writes entries with
 * queue_spool_enqueue like any other producer.  The spool is opened at the
 * first relayed message, never created here, and opened again at the next
 * one while that fails: the queue process may not have made it yet. */
#ifndef RAWMAIL_STORE_RELAY_H
#define RAWMAIL_STORE_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "queue/envelope.h"
#include "store/store.h"

struct queue_spool;

struct store_relay {
	const char *dir;          /* NULL: serve has no spool */
	struct queue_spool *sp;   /* NULL until opened */
	const struct store_dkim_key *dkim;   /* store_config's keys */
	size_t ndkim;
};

void store_relay_init(struct store_relay *r, const char *dir);
void store_relay_close(struct store_relay *r);

/* Queues message[0..len) (CR LF line endings: the bytes to send) from
 * sender ("" for <>) to rcpts[0..n), origin submission, SMTPUTF8 when an
 * address needs it.  STORE_OK with the entry's id in id (room for
 * QUEUE_ID_MAX + 1), or STORE_NOSPACE (ENOSPC, EDQUOT) or STORE_TEMPFAIL,
 * logged with qid and the reason: no spool, spool not openable, write or
 * sync error, with errno the cause.  On failure nothing is left in the
 * spool.  r NULL is a
 * store without a spool.  signer: NULL or a login's senders field; the
 * message is then DKIM-signed first when store_relay_dkim_sign says so. */
enum store_result store_relay_enqueue(struct store_relay *r, const char *qid, const char *sender,
                                      const char *const *rcpts, size_t n, const char *message,
                                      size_t len, const char *signer, char *id);

/* DKIM for a relayed message (relay_dkim.c): appends to sigs one
 * DKIM-Signature field per key of r whose domain is the From domain or a
 * parent of it, when signer (a login's senders field) is not empty and
 * allows the message's From, which must be one From field with one
 * address.  Returns the number of fields appended; 0 is logged as
 * dkim_skipped with the reason when signer is not empty, a signing
 * failure as dkim_failed (the message then goes unsigned). */
struct buf;
size_t store_relay_dkim_sign(const struct store_relay *r, const char *qid, const char *signer,
                             const char *message, size_t len, struct buf *sigs);

#endif
