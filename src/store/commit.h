/* Group commit (DESIGN.md "Durability and group commit"): one batch of
 * committed messages made durable with two syncs whatever their number. */
#ifndef RAWMAIL_STORE_COMMIT_H
#define RAWMAIL_STORE_COMMIT_H

#include <stddef.h>

#include "store/message.h"

/* Runs the batch msgs[0..n) and leaves each message's result set:
 *   1. create and write every file in tmp/ (streamed messages only get
 *      their copies: their first file is already written);
 *   2. syncfs of every filesystem holding one of the files (the mail
 *      root's, and each mailbox mounted from another), or fsync each file;
 *   3. rename every file into new/ (per message all or none), and with
 *      the outbox on (issue 12) write the round's events file as NAME.tmp
 *      (in fsync mode with an fsync of it and of the outbox directory);
 *   4. the same syncfs again (covering the outbox's filesystem), or fsync
 *      each distinct new/;
 *   5. queue each message's relayed part in the spool (store_msg_relay:
 *      one enqueue and its own sync per such message; if it fails, the
 *      message's files leave new/ again);
 * A write or rename error fails that message (ENOSPC/EDQUOT as
 * STORE_NOSPACE); a sync error fails every message still in the batch with
 * STORE_TEMPFAIL and removes their files, since the pages that failed are
 * gone and a second sync would report success over lost data.  Logs one
 * "stored" line per message that made it and one "batch" line. */
void store_commit_batch(const struct store_env *env, struct store_msg **msgs, size_t n);

/* syncfs mode, pipelined: the second sync of one batch is the first sync of
 * the next, so a loaded store makes one syncfs per batch.  One round:
 *   1. create and write the files of writing[0..nw);
 *   2. rename into new/ the files of renaming[0..nr), whose data an
 *      earlier round's syncfs already made durable;
 *   3. one syncfs per filesystem holding a file of either set (the mail
 *      root's alone unless a mailbox is another filesystem's mount
 *      point): covers both, and the events file that step 2 wrote for
 *      the renamed copies when the outbox is on (issue 12).
 *   4. the relayed part of each renaming[] message, as in step 5 above.
 * After it, each renaming[] message is durable in new/ (or failed) and is
 * answered by the caller, who then publishes the outbox file
 * (outbox_writer_publish); each writing[] message still STORE_OK is synced
 * in tmp/ and goes to the next round's renaming[].  A sync error fails
 * every message of both sets, as in store_commit_batch. */
void store_commit_round(const struct store_env *env, struct store_msg **renaming, size_t nr,
                        struct store_msg **writing, size_t nw);

#endif
