/* Maildir on disk: names, directories, and the system calls that create,
 * fill, move and remove one file.  Every path is relative to the mailroot's
 * directory fd and made of a mailbox name that frame_mailbox_safe accepted,
 * a subdirectory and a file name this module built, so nothing from the
 * network is ever used as a path by itself.  No path is resolved through
 * a symbolic link or out of the mail root (issue 8: a link mail/bob ->
 * /elsewhere must not take mail elsewhere): such a mailbox fails with
 * ELOOP, which the message reports as 451 4.3.0.
 *
 * Names (DESIGN.md "Formats", Dovecot's fields):
 *     <sec>.M<usec>P<pid>Q<qid>[_<seq>].<host>,S=<size>,W=<size with CRLF>
 * The qid makes the name unique across processes and restarts; _<seq>
 * tells apart the files of one message that land in the same mailbox (two
 * addresses with one mailbox, each with its own Delivered-To).  A message
 * kept in memory has the same name in tmp/ and new/; a streamed one, whose
 * size is unknown when its file is created, gets ",S=..,W=.." at the
 * rename (as Dovecot does). */
#ifndef RAWMAIL_STORE_MAILDIR_H
#define RAWMAIL_STORE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "store/store.h"

/* A file name fits one directory entry. */
#define MAILDIR_NAME_MAX 255
/* The escaped host is cut to this so that the longest name still fits
 * MAILDIR_NAME_MAX (uniqueness comes from the qid, not the host). */
#define MAILDIR_HOST_MAX 80

/* The parts of a name that do not depend on the file's size. */
struct maildir_unique {
	int64_t sec;
	long usec;
	long pid;
	const char *qid;
	unsigned seq;       /* 0: no _<seq> part */
	const char *host;   /* already escaped by maildir_host_escape */
};

/* Copies host into out with '/' as \057 and ':' as \072 (the Maildir
 * convention, which Dovecot follows), cut at a character boundary to fit
 * outlen - 1 octets and MAILDIR_HOST_MAX.  Returns out. */
const char *maildir_host_escape(const char *host, char *out, size_t outlen);

/* Writes the name into out; with sizes false, without ",S=..,W=.." (a
 * streamed message's name in tmp/, before its size is known).  Returns the
 * length, or -1 if it does not fit outlen or MAILDIR_NAME_MAX. */
int maildir_name(char *out, size_t outlen, const struct maildir_unique *u, bool sizes,
                 uint64_t size, uint64_t wsize);

/* Line feeds in p[0..len): W= is S= plus one octet per LF. */
uint64_t maildir_count_lf(const char *p, size_t len);

/* The result a failed system call's errno means for the message: a full
 * disk or quota is STORE_NOSPACE (452 4.3.1), anything else TEMPFAIL. */
enum store_result maildir_errno_result(int err);

/* Creates mailbox/ and its tmp/ new/ cur/ (mode 0700) where missing.  With
 * sync_dirs, a directory created here is made durable at once (fsync of it
 * and its parent): the fsync mode has no syncfs to cover it.  Returns 0 or
 * -1 with errno. */
int maildir_ensure(int rootfd, const char *mailbox, bool sync_dirs);

/* Creates mailbox/tmp/name (O_EXCL, mode 0600) and returns its fd, or -1
 * with errno.  A missing Maildir is created first (maildir_ensure). */
int maildir_create_tmp(int rootfd, const char *mailbox, const char *name, bool sync_dirs);

/* Writes all of iov (retrying short writes and EINTR): 0 or -1 with errno. */
int maildir_write_all(int fd, struct iovec *iov, int iovcnt);

/* Appends len octets of src (from offset off) to dst: copy_file_range,
 * falling back to read and write where the kernel cannot.  0 or -1. */
int maildir_copy(int src, off_t off, int dst, uint64_t len);

/* Moves mailbox/tmp/tmpname to mailbox/new/newname without replacing an
 * existing file.  0 or -1 with errno. */
int maildir_rename(int rootfd, const char *mailbox, const char *tmpname, const char *newname,
                   bool sync_dirs);

/* Removes mailbox/<dir>/name (dir is "tmp" or "new"); errors are ignored
 * but for a log line, since there is nothing better to do. */
void maildir_unlink(int rootfd, const char *mailbox, const char *dir, const char *name);

/* Opens mailbox/<dir>/name or mailbox/<dir> (name NULL) read-only and
 * fsyncs it.  0 or -1 with errno. */
int maildir_fsync(int rootfd, const char *mailbox, const char *dir, const char *name);

/* Opens mailbox/<dir>, or mailbox itself with dir NULL, as O_RDONLY |
 * O_DIRECTORY beneath rootfd without following any symbolic link (mount
 * points are fine).  -1 with errno; a link on the way is ELOOP, and is
 * logged ("mailbox_refused") as every function here does. */
int maildir_open_dir(int rootfd, const char *mailbox, const char *dir);

/* For tests: resolve paths with the per-component O_NOFOLLOW walk that is
 * used where the kernel has no openat2 (before Linux 5.6). */
void maildir_resolve_walk(bool walk);

#endif
