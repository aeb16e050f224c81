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

/* ---- The writer's side (the store: outbox_write.c) ---- */

/* A file's name: 16 lower-case hex digits of the commit's CLOCK_REALTIME
 * in ns, '-', the writer's pid; with tmp, ".tmp" after it (the name while
 * it is written, which outbox_name_ok refuses).  "-" + 10 digits + ".tmp"
 * + NUL fits OUTBOX_NAME_MAX. */
#define OUTBOX_NAME_MAX 40
void outbox_name_format(char out[OUTBOX_NAME_MAX], uint64_t ns, long pid, bool tmp);

/* The pid in a temporary name (NAME.tmp with NAME outbox_name_ok), or 0
 * for any other name: the crash recovery's test. */
long outbox_tmp_pid(const char *name);

struct outbox_writer {
	int dirfd;                 /* MAILROOT/.rawmail/outbox, or -1 */
	uint64_t dev;              /* its filesystem (st_dev), for the round's syncfs */
	bool fsync;                /* --sync fsync: fsync the file and the directory */
	long pid;
	uint64_t last_ns;          /* names only increase, even if the clock steps back */
	struct buf records;        /* the round's records */
	char name[OUTBOX_NAME_MAX];/* the round's file, while it is NAME.tmp */
	bool pending;              /* name exists as NAME.tmp, to rename */
};

/* Makes MAILROOT/.rawmail and .rawmail/outbox (mode 0700, durably) beneath
 * rootfd and opens the outbox: its descriptor, or -1 with errno.  uid and
 * gid >= 0 (a caller still root): the outbox is given to them. */
int outbox_dir_open(int rootfd, long uid, long gid);
/* Takes over dirfd (the outbox) and renames the NAME.tmp files of writers
 * no longer alive to NAME (see outbox_write.c).  0, or -1 with errno (w
 * still owns dirfd: outbox_writer_close). */
int outbox_writer_open(struct outbox_writer *w, int dirfd, bool fsync, long pid);
void outbox_writer_close(struct outbox_writer *w);

/* A round: begin (empties the records), add each stored copy's record,
 * then write (creates NAME.tmp with the records: before the round's sync;
 * with fsync, fsyncs it and the directory), then, after the round's
 * messages were answered, publish (renames NAME.tmp to NAME).  write does
 * nothing and returns 0 when no record was added.  write: 0, or -1 with
 * errno (NAME.tmp is then gone).  drop: the round failed after write:
 * NAME.tmp is removed.  rewrite: some messages failed after write (their
 * spool entry): NAME.tmp is written again with the records now in w->records
 * (without syncing: see outbox_write.c). */
void outbox_writer_begin(struct outbox_writer *w);
int outbox_writer_add(struct outbox_writer *w, const struct outbox_event *ev);
int outbox_writer_write(struct outbox_writer *w);
int outbox_writer_rewrite(struct outbox_writer *w);
void outbox_writer_drop(struct outbox_writer *w);
int outbox_writer_publish(struct outbox_writer *w);

#endif
