/* The mail events outbox (issue 12): for every stored copy the store
 * commits, one record, made durable by the same round's sync as the copy
 * itself, so that nothing acknowledged with 250 can miss its event.  The
 * MQTT bridge (src/mqtt/) reads the records, publishes them and removes a
 * file once the broker has acknowledged every event in it.
 *
 * Layout, under the mail root: .rawmail/outbox/NAME, one file per commit
 * round that stored at least one copy while events are on.  NAME sorts in
 * commit order (names are compared with strcmp): a reader publishes the
 * files in that order, and the records of one file in file order, which is
 * commit order per mailbox.  A file is visible under its final NAME only
 * after the round's sync returned and its messages were answered, so a
 * reader never publishes an event before the 250 (see outbox.c for the
 * crash cases).  The record format is private to outbox.c: text, one
 * record after another, self-delimiting, strictly parsed (fuzzed). */
#ifndef RAWMAIL_STORE_OUTBOX_H
#define RAWMAIL_STORE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Under the mail root. */
#define OUTBOX_DIR ".rawmail/outbox"

/* One stored copy's event.  Strings are NUL-terminated and never NULL
 * ("" when unknown). */
struct outbox_event {
	const char *id;           /* the queue id of the message (Received's id) */
	const char *mailbox;      /* the Maildir's name under the mail root */
	const char *path;         /* the copy's file, relative to the mail root:
	                             MAILBOX/new/NAME */
	const char *from;         /* envelope sender, "" for <> */
	const char *const *to;    /* this copy's envelope recipients (as given) */
	size_t nto;
	const char *client_ip;    /* "" for local mail */
	const char *helo;         /* the client's EHLO/HELO argument, "" if none */
	uint64_t size;            /* the stored file's size in octets */
	int64_t time;             /* commit time, seconds since the epoch */
};

/* Appends ev's record to b: 0, or -1 when b's maximum would be passed. */
int outbox_record_append(struct buf *b, const struct outbox_event *ev);

/* Walks a file's bytes: calls each() for every complete, valid record in
 * order (its fields point into a private copy valid only during the call)
 * and stops early when each() returns false.  A damaged or truncated
 * record is skipped and counted in *bad; the walk goes on at the next
 * record it can find.  Returns the number of records passed to each(). */
typedef bool (*outbox_each_fn)(const struct outbox_event *ev, void *arg);
size_t outbox_parse(const char *data, size_t len, outbox_each_fn each, void *arg, size_t *bad);

/* Whether name is a final outbox file name (not one still being written,
 * not a stranger): the reader ignores everything else. */
bool outbox_name_ok(const char *name);

#endif
