/* The spool (issue 9; QUEUE.md "Spool directory"): the durable directory of
 * queued messages.
 *
 *   DIR/tmp/       files being written (leftovers older than a day removed)
 *   DIR/msg/ID     the message, exactly the bytes to send, never rewritten
 *   DIR/env/ID     its envelope (queue/envelope.h), replaced atomically
 *   DIR/corrupt/   entries set aside: ID.msg, ID.env
 *
 * An entry exists iff env/ID exists.  Enqueue writes tmp/ID.msg and
 * tmp/ID.env, renames the message into msg/ and then the envelope into
 * env/, and syncs the spool's filesystem (syncfs; why that is enough: the
 * comment above queue_spool_enqueue in spool.c): only then is the message
 * queued.  The lock on an entry is flock(2) on msg/ID (which is never replaced), so it
 * holds while env/ID is rewritten and vanishes with a killed process.
 *
 * Every call returns a status that tells temporary from permanent at the
 * source (a full disk is temporary, a read-only or unwritable spool is
 * not), with a sentence in why naming the file and the cause. */
#ifndef RAWMAIL_QUEUE_SPOOL_H
#define RAWMAIL_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/envelope.h"
#include "util/buf.h"

/* Runners remove tmp/ files older than a day (an enqueue or update that
 * died), and msg/ files without an env/ older than an hour (an enqueue
 * that died between its two renames): no live enqueue takes that long. */
#define QUEUE_TMP_MAX_AGE (24 * 3600)
#define QUEUE_ORPHAN_MAX_AGE 3600
/* Removals and updates synced together (queue_spool_remove): at most this
 * many of each, the oldest at most this old (a crash may undo them: a
 * message delivered twice, an attempt made again). */
#define QUEUE_REMOVE_PENDING_MAX 256
#define QUEUE_REMOVE_SYNC_MS 100

enum queue_status {
	QUEUE_OK = 0,
	QUEUE_TEMP,      /* try again later: disk full, I/O error, out of memory */
	QUEUE_PERM,      /* will not work until someone changes something:
	                    permissions, a read-only or missing spool */
	QUEUE_BUSY,      /* another process holds the entry's lock */
	QUEUE_GONE,      /* the entry does not exist (any more) */
	QUEUE_CORRUPT,   /* the entry was bad and has been set aside */
};

enum queue_spool_flags {
	QUEUE_SPOOL_CREATE = 1,   /* make DIR and its subdirectories (0700) */
	QUEUE_SPOOL_NOSYNC = 2,   /* no fsync: bulk writers for benchmarks only */
};

struct queue_spool;

const char *queue_status_name(enum queue_status st);

enum queue_status queue_spool_open(const char *dir, unsigned flags, struct queue_spool **out,
                                   char *why, size_t whylen);
void queue_spool_close(struct queue_spool *sp);
/* The directory's name, as opened. */
const char *queue_spool_dir(const struct queue_spool *sp);

/* Queues message[0..len): sets env's id, size and sha256, and created to
 * now when it is 0 (its other fields, the recipients included, are the
 * caller's), then writes
 * both files durably.  On failure nothing is left in msg/ or env/ (nor
 * in tmp/), and errno holds the cause (ENOSPC for a full disk: the store
 * answers 452 for it).  The new id is in env->id. */
enum queue_status queue_spool_enqueue(struct queue_spool *sp, struct queue_envelope *env,
                                      const void *message, size_t len, char *why, size_t whylen);
/* The same in two steps, for a caller with something to do meanwhile
 * (rawmail send's first attempt, cli/send_queue.c): the entry written and
 * renamed into place, not yet durable, so not yet queued; then the sync
 * (one system call: safe from another thread), and after a failed sync
 * the undo, which removes the entry.  Nothing may be reported "queued"
 * before the sync returned 0. */
enum queue_status queue_spool_enqueue_unsynced(struct queue_spool *sp, struct queue_envelope *env,
                                               const void *message, size_t len, char *why,
                                               size_t whylen);
int queue_spool_fs_sync(const struct queue_spool *sp);
void queue_spool_enqueue_undo(struct queue_spool *sp, const struct queue_envelope *env);

/* Writes results/ID.TIME[.end]: the recipients env->rcpts[idx[0..n)]
 * whose outcome just became final, for whoever reported on the entry's
 * origin (the MQTT bridge, issue 12: origin mqtt).  end: the entry is
 * finished.  Durable when it returns QUEUE_OK. */
enum queue_status queue_spool_result(struct queue_spool *sp, const struct queue_envelope *env,
                                     const size_t *idx, size_t n, bool end, char *why,
                                     size_t whylen);
/* The results directory under a spool, for the bridge. */
#define QUEUE_RESULTS_DIR "results"

/* The lock of one entry: msg/ID open and flock'ed. */
struct queue_lock {
	char id[QUEUE_ID_MAX + 1];
	int fd;   /* -1 when not held */
};
/* QUEUE_OK (held), QUEUE_BUSY, QUEUE_GONE, or QUEUE_CORRUPT when env/ID
 * exists without its message (then env/ID has been set aside). */
enum queue_status queue_spool_lock(struct queue_spool *sp, const char *id, struct queue_lock *lk,
                                   char *why, size_t whylen);
void queue_spool_unlock(struct queue_lock *lk);

/* Under the lock: reads and parses env/ID and checks the message's size
 * and SHA-256.  A file that does not parse, a size or digest that does not
 * match: both files are set aside into corrupt/ and QUEUE_CORRUPT says
 * why.  When message is not NULL the message's bytes are appended to it. */
enum queue_status queue_spool_load(struct queue_spool *sp, const struct queue_lock *lk,
                                   struct queue_envelope *env, struct buf *message, char *why,
                                   size_t whylen);
/* Under the lock: replaces env/ID atomically (tmp, fsync, rename); env/
 * is synced with the group of pending changes (queue_spool_remove). */
enum queue_status queue_spool_update(struct queue_spool *sp, const struct queue_envelope *env,
                                     char *why, size_t whylen);
/* For a process that removes its one entry and ends (rawmail send after
 * its first attempt): this handle's removals unlink env/ID and msg/ID at
 * once and sync nothing.  The kernel's write-back makes them durable
 * seconds later; a crash before that may bring the entry back, delivered
 * a second time, as a crash between a peer's 250 and any removal may.
 * A sync per removal was 0.9 ms of each rawmail send (bench/send). */
void queue_spool_lazy_removals(struct queue_spool *sp);
/* Under the lock: unlinks env/ID; the entry is gone from then on.  The
 * removal is durable once env/ is synced, which is done for a group of
 * removals and updates (spool.c): by the call that finds the oldest
 * pending one QUEUE_REMOVE_SYNC_MS old or QUEUE_REMOVE_PENDING_MAX
 * pending, else by queue_spool_sync_pending or close; msg/ID is unlinked
 * after that sync.  A failed sync is reported by the call that made it. */
enum queue_status queue_spool_remove(struct queue_spool *sp, const char *id, char *why,
                                     size_t whylen);
/* Makes the pending removals and updates durable (fsync of env/), then
 * unlinks the removed entries' msg/ files.  A runner calls it at the end
 * of each pass. */
enum queue_status queue_spool_sync_pending(struct queue_spool *sp, char *why, size_t whylen);
/* Moves msg/ID and env/ID (whichever exist) to corrupt/ID.msg, ID.env:
 * the message first, so a crash in between leaves an env without its
 * message, which the next lock sets aside too. */
enum queue_status queue_spool_set_aside(struct queue_spool *sp, const char *id, char *why,
                                        size_t whylen);

/* Lists the entries, in id (= queueing time) order.  Each call to next
 * gives 1 and a parsed envelope (the caller frees it), 0 at the end, or -1
 * for an entry whose env could not be read or parsed (id and why say
 * which and why; the entry is left alone: a runner sets it aside through
 * lock and load).  Entries removed meanwhile are skipped. */
struct queue_spool_list;
/* A long listing reads ahead in threads (joined by list_close): do not
 * fork while a listing is open. */
enum queue_status queue_spool_list_open(struct queue_spool *sp, struct queue_spool_list **out,
                                        char *why, size_t whylen);
size_t queue_spool_list_count(const struct queue_spool_list *l);
int queue_spool_list_next(struct queue_spool_list *l, struct queue_envelope *env, const char **id,
                          char *why, size_t whylen);
void queue_spool_list_close(struct queue_spool_list *l);

/* A look without the lock (queue show): reads and parses env/ID into env
 * (the caller frees it) and, when head is not NULL, appends the message's
 * header section to it (through the empty line that ends it, at most
 * head_max octets).  Nothing is checked against the digest and nothing is
 * set aside: QUEUE_CORRUPT says what is wrong and leaves the entry to a
 * runner.  QUEUE_OK, QUEUE_GONE, QUEUE_CORRUPT or QUEUE_TEMP. */
enum queue_status queue_spool_peek(struct queue_spool *sp, const char *id,
                                   struct queue_envelope *env, struct buf *head, size_t head_max,
                                   char *why, size_t whylen);

struct queue_cleanup_counts {
	size_t tmp_removed;
	size_t orphans_removed;
};
/* Removes tmp/ files older than QUEUE_TMP_MAX_AGE and msg/ files with no
 * env/ older than QUEUE_ORPHAN_MAX_AGE (unless locked), at time now. */
enum queue_status queue_spool_cleanup(struct queue_spool *sp, int64_t now,
                                      struct queue_cleanup_counts *counts, char *why,
                                      size_t whylen);

#endif
