/* The durable file steps shared by anything that must not lose a file
 * across a crash: write it whole under a temporary name, fsync it, rename
 * it into place, fsync the directory (a rename is durable only once its
 * directory is), or several files written and renamed, then one syncfs
 * of their filesystem.  Used by the queue's spool (src/queue/spool.c); the
 * store's Maildir path does the same steps in its own batch form
 * (src/store/maildir.c, commit.c) and could use these too.
 * Each returns 0, or -1 with errno kept from the step that failed. */
#ifndef RAWMAIL_UTIL_DURABLE_H
#define RAWMAIL_UTIL_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* write(2) until all of data is written (short writes and EINTR retried). */
int durable_write_all(int fd, const void *data, size_t len);
/* Creates dirfd/name exclusively (O_EXCL, O_NOFOLLOW) with mode, writes
 * data, fsyncs it when sync, closes it.  On any failure the file is
 * unlinked: nothing half-written is left behind. */
int durable_file_write(int dirfd, const char *name, mode_t mode, const void *data, size_t len,
                       bool sync);
/* mkdirat(dirfd, name, mode); an existing directory counts as success (a
 * symbolic link or a file there does not: ELOOP, ENOTDIR).  *created (may
 * be NULL) tells whether this call made it. */
int durable_mkdir(int dirfd, const char *name, mode_t mode, bool *created);
/* fsync(fd), for a directory after a rename, link or unlink in it. */
int durable_dir_sync(int dirfd);
/* syncfs(fd): every file, rename and unlink on fd's filesystem so far is
 * on disk when it returns 0 (one journal commit for many files, where an
 * fsync per file and per directory is one each).  Its failure reports a
 * write-back error of any file on that filesystem since fd was opened
 * (Linux 5.8 and later; before, syncfs always returned 0). */
int durable_fs_sync(int fd);

#endif
