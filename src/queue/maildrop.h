/* The maildrop (issue 9, "A non-root user's sendmail"): how a user who is
 * not root queues mail on the system's spool with no setuid or setgid
 * binary, with or without a running `rawmail serve`.
 *
 *   SPOOL/maildrop/     mode 3733 (sticky, setgid, write and search for
 *                       all, no listing), owned by the spool's owner
 *
 * The user's sendmail writes one drop file there: ".NAME" written and
 * fsynced, renamed to "NAME" (an id), then the filesystem synced
 * (syncfs(2): the user cannot open the unreadable directory to fsync it).
 * The file is 0640 and, through the directory's setgid bit, in the spool
 * owner's group, so an unprivileged queue user can read it and no other
 * user can.  A drop file is the envelope's text form (queue/envelope.h)
 * followed by the message, its size and SHA-256 in the envelope.
 *
 * An importer (serve's queue process on inotify and at each pass; `rawmail
 * queue run` and flush, as root from the timer) takes each drop file under
 * flock, trusts nothing in it but the bytes (the kernel's owner uid says
 * who sent it, the envelope is parsed strictly and every address checked
 * again), queues it as a new spool entry with a Received: line naming the
 * user, then unlinks it.  Anything else in the directory (a symbolic link,
 * a FIFO, a hard link, garbage, a truncated file) is moved to
 * SPOOL/corrupt/NAME.drop with a log line naming the owner and the reason.
 * Postfix's postdrop/pickup do the same job with a setgid binary. */
#ifndef RAWMAIL_QUEUE_MAILDROP_H
#define RAWMAIL_QUEUE_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/envelope.h"
#include "queue/spool.h"
#include "util/buf.h"

#define QUEUE_MAILDROP_DIR "maildrop"
#define QUEUE_MAILDROP_MODE 03733
#define QUEUE_MAILDROP_FILE_MODE 0640
/* A drop file holds an envelope and a message of at most the sendmail
 * entry's 64 MiB, grown by its line ends: anything bigger is refused
 * before it is read. */
#define QUEUE_MAILDROP_FILE_MAX (QUEUE_ENV_FILE_MAX + 160u * 1024u * 1024u)

/* ---- the drop file (pure) ---- */

/* Appends the drop file of message[0..len) to out; sets env's size and
 * sha256 first.  0, or -1 with a reason. */
int queue_drop_format(struct queue_envelope *env, const void *message, size_t len,
                      struct buf *out, const char **why);

/* Parses a drop file written by an untrusted user.  On success env holds
 * the sender and the recipients only (every recipient queued, never
 * attempted, no reply; smtputf8 set exactly when an address is not
 * ASCII; origin sendmail; no id, no creation time) and *msg_off is where
 * the message starts.  Refused: a
 * bad envelope, no recipient, an address that is neither a mailbox nor a
 * local name, a message whose size or SHA-256 differs from the envelope's
 * (the message's bytes are the user's, as with rawmail send: the engine
 * writes every line end as CRLF, smtp/dot_encode.h).  0, or -1 with a
 * reason in why (the caller frees env either way). */
int queue_drop_parse(const char *data, size_t len, struct queue_envelope *env, size_t *msg_off,
                     char *why, size_t whylen);

/* ---- the directory ---- */

/* As root: makes SPOOL/maildrop (mode QUEUE_MAILDROP_MODE, owned by
 * uid:gid) and lets every user reach it (SPOOL itself 0711: searchable,
 * not listable).  An existing maildrop gets its owner and mode back. */
enum queue_status queue_maildrop_prepare(const char *spool_dir, uid_t uid, gid_t gid, char *why,
                                         size_t whylen);

/* Whether this process can drop mail into SPOOL/maildrop. */
bool queue_maildrop_usable(const char *spool_dir);

/* The user's side: writes the drop file durably (see above); name gets
 * its name (ID_LEN + 1 octets).  QUEUE_OK, or QUEUE_TEMP / QUEUE_PERM
 * with why, and nothing left behind. */
enum queue_status queue_maildrop_submit(const char *spool_dir, struct queue_envelope *env,
                                        const void *message, size_t len, char *name,
                                        char *why, size_t whylen);

struct queue_maildrop_counts {
	size_t imported;     /* queued as new entries, drop files removed */
	size_t set_aside;    /* moved to corrupt/ */
	size_t busy;         /* locked by another importer (or their writer) */
};

/* Imports every drop file in sp's maildrop (none there: QUEUE_OK), each
 * with "Received: by HOSTNAME (rawmail, from userid UID (NAME))" at now.
 * Stops at the first entry the spool cannot take (a full disk: the drop
 * files wait for the next import) with QUEUE_TEMP and why. */
enum queue_status queue_maildrop_import(struct queue_spool *sp, const char *hostname, int64_t now,
                                        struct queue_maildrop_counts *counts, char *why,
                                        size_t whylen);

#endif
