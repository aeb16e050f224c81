#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/id.h"
#include "util/sha256.h"

struct queue_spool {
	int dirfd, tmpfd, msgfd, envfd, corruptfd;
	bool sync;
	unsigned counter;    /* tmp names of updates */
	/* env/ changes not synced yet (queue_spool_sync_pending): removals,
	 * whose msg/ files are unlinked after the sync, and updates. */
	char (*removed)[QUEUE_ID_MAX + 1];
	size_t nremoved, nupdated;
	struct timespec pending_since;   /* the oldest of them, CLOCK_MONOTONIC */
	bool lazy_removals;              /* queue_spool_lazy_removals */
	char dir[4096];
};

static const char *const status_names[] = { "ok", "temporary", "permanent", "busy", "gone",
	                                    "corrupt" };

const char *queue_status_name(enum queue_status st)
{
	return (unsigned)st < sizeof(status_names) / sizeof(status_names[0]) ? status_names[st] : "?";
}

/* Temporary unless retrying cannot help without a person: the spool's
 * permissions, a read-only filesystem, a path that is not a directory.
 * A full disk (ENOSPC, EDQUOT), an I/O error or no memory may pass. */
static enum queue_status errno_status(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EINVAL:
	case EFBIG:
		return QUEUE_PERM;
	default:
		return QUEUE_TEMP;
	}
}

__attribute__((format(printf, 4, 5)))
static enum queue_status say(enum queue_status st, char *why, size_t whylen, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return st;
}

/* A failed system call on a spool file: "spool DIR: STEP NAME: strerror". */
static enum queue_status sys_fail(const struct queue_spool *sp, int err, char *why, size_t whylen,
                                  const char *step, const char *sub, const char *name)
{
	return say(errno_status(err), why, whylen, "spool %s: %s %s/%s: %s", sp->dir, step, sub,
	           name, strerror(err));
}

static int open_dir_at(int dirfd, const char *name)
{
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

void queue_spool_close(struct queue_spool *sp)
{
	if (!sp)
		return;
	/* Nobody to tell of a failure here: the removals stay as durable as
	 * the kernel makes them (at worst a second delivery after a crash). */
	queue_spool_sync_pending(sp, NULL, 0);
	free(sp->removed);
	int fds[] = { sp->dirfd, sp->tmpfd, sp->msgfd, sp->envfd, sp->corruptfd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(sp);
}

enum queue_status queue_spool_open(const char *dir, unsigned flags, struct queue_spool **out,
                                   char *why, size_t whylen)
{
	static const char *const subs[] = { "tmp", "msg", "env", "corrupt" };
	*out = NULL;
	struct queue_spool *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return say(QUEUE_TEMP, why, whylen, "spool %s: out of memory", dir);
	sp->dirfd = sp->tmpfd = sp->msgfd = sp->envfd = sp->corruptfd = -1;
	sp->sync = !(flags & QUEUE_SPOOL_NOSYNC);
	if (strlen(dir) >= sizeof(sp->dir)) {
		free(sp);
		return say(QUEUE_PERM, why, whylen, "spool directory name too long");
	}
	memcpy(sp->dir, dir, strlen(dir) + 1);
	bool made = false;
	if ((flags & QUEUE_SPOOL_CREATE) && durable_mkdir(AT_FDCWD, dir, 0700, &made) < 0) {
		int err = errno;
		queue_spool_close(sp);
		return say(errno_status(err), why, whylen, "spool %s: cannot create it: %s", dir,
		           strerror(err));
	}
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0) {
		int err = errno;
		queue_spool_close(sp);
		/* A missing spool is the admin's to create (or --spool to fix). */
		return say(err == ENOENT ? QUEUE_PERM : errno_status(err), why, whylen,
		           "spool %s: cannot open it: %s", dir, strerror(err));
	}
	int *fds[] = { &sp->tmpfd, &sp->msgfd, &sp->envfd, &sp->corruptfd };
	bool made_sub = false;
	for (size_t i = 0; i < 4; i++) {
		bool m = false;
		/* Opened first: a spool in use has them all (each command that
		 * queues opens one, so mkdir's EEXIST and its stat cost every
		 * rawmail send ten system calls). */
		*fds[i] = open_dir_at(sp->dirfd, subs[i]);
		if (*fds[i] < 0 && errno == ENOENT && (flags & QUEUE_SPOOL_CREATE) &&
		    durable_mkdir(sp->dirfd, subs[i], 0700, &m) == 0)
			*fds[i] = open_dir_at(sp->dirfd, subs[i]);
		if (*fds[i] < 0) {
			int err = errno;
			enum queue_status st = say(err == ENOENT ? QUEUE_PERM : errno_status(err), why,
			                           whylen, "spool %s: %s/: %s%s", dir, subs[i],
			                           strerror(err),
			                           err == ENOENT ? " (not a spool: create it first)" : "");
			queue_spool_close(sp);
			return st;
		}
		made_sub |= m;
	}
	/* New directories are durable once their parent is synced. */
	if (sp->sync && made_sub && durable_dir_sync(sp->dirfd) < 0) {
		int err = errno;
		queue_spool_close(sp);
		return say(errno_status(err), why, whylen, "spool %s: fsync: %s", dir, strerror(err));
	}
	*out = sp;
	return QUEUE_OK;
}

/* Root writing into a spool another user owns (serve's queue process runs
 * as that user): a file just written in tmp/ goes to the spool's owner,
 * else the unprivileged runner could not read it.  The owner is looked at
 * for each file, not once at open: serve gives a spool it finds root's to
 * its queue user at start, maybe while a rawmail send has it open. */
static int spool_give(const struct queue_spool *sp, const char *name)
{
	struct stat st;
	if (geteuid() != 0 || fstat(sp->dirfd, &st) != 0 || st.st_uid == 0)
		return 0;
	return fchownat(sp->tmpfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
}

/* ---- enqueue ---- */

static int dir_sync(const struct queue_spool *sp, int fd)
{
	return sp->sync ? durable_dir_sync(fd) : 0;
}

/* Durability of an enqueue (what "queued" promises: the entry is on disk
 * and survives a crash).  Both files are written under tmp/ without an
 * fsync each, both renamed into place (the message first), and then one
 * syncfs(2) of the spool's filesystem makes the data of both files and
 * both renames durable together: one journal commit where an fsync of
 * each file and of msg/ and env/ made four (0.3-0.5 ms against 0.9-1.1 ms
 * here, ext4 on a virtual disk).  tmp/, msg/ and env/ are on one
 * filesystem (a rename across two fails with EXDEV), so syncing tmp/'s is
 * enough.  The entry counts as queued only once syncfs returned 0; it
 * reports a write-back error of this filesystem since the spool was
 * opened (Linux 5.8 and later), and then the entry is removed again and
 * the caller told it is not queued.
 * A crash before syncfs returned may leave the renames on disk without
 * all of the data (delayed allocation: a file of zeros or cut short).
 * The caller was not told "queued", so its sender tries again, and the
 * left-over entry cannot be delivered: load checks the message's size and
 * SHA-256 against the envelope and sets it aside into corrupt/ (an
 * envelope that does not parse likewise).  That is why the data need not
 * be synced before the renames here, unlike update, which replaces an
 * envelope that must survive (write, fsync, rename, fsync).
 * A full disk is refused at write(2) (ext4 reserves delayed blocks at the
 * write, tmpfs allocates), or at the latest by syncfs: either way nothing
 * is left behind. */
enum queue_status queue_spool_enqueue(struct queue_spool *sp, struct queue_envelope *env,
                                      const void *message, size_t len, char *why, size_t whylen)
{
	enum queue_status st = queue_spool_enqueue_unsynced(sp, env, message, len, why, whylen);
	if (st != QUEUE_OK)
		return st;
	if (queue_spool_fs_sync(sp) < 0) {
		int err = errno;
		st = sys_fail(sp, err, why, whylen, "syncfs", "env", env->id);
		queue_spool_enqueue_undo(sp, env);
		errno = err;
	}
	return st;
}

int queue_spool_fs_sync(const struct queue_spool *sp)
{
	return sp->sync ? durable_fs_sync(sp->tmpfd) : 0;
}

void queue_spool_enqueue_undo(struct queue_spool *sp, const struct queue_envelope *env)
{
	/* Not durable, so not queued: the caller reports a failure, and a
	 * later runner must not deliver it a second time. */
	unlinkat(sp->envfd, env->id, 0);
	unlinkat(sp->msgfd, env->id, 0);
}

enum queue_status queue_spool_enqueue_unsynced(struct queue_spool *sp, struct queue_envelope *env,
                                               const void *message, size_t len, char *why,
                                               size_t whylen)
{
	char msgtmp[QUEUE_ID_MAX + 8], envtmp[QUEUE_ID_MAX + 8];
	struct buf text;
	const char *err_text;
	enum queue_status st = QUEUE_OK;
	int err;

	sha256_digest(message, len, env->sha256);
	env->size = len;
	if (env->created == 0)
		env->created = time(NULL);
	/* An id clash with another process (same microsecond, same salt) is
	 * caught by O_EXCL in tmp/ and RENAME_NOREPLACE: take another id. */
	for (int tries = 0;; tries++) {
		id_new(env->id);
		snprintf(msgtmp, sizeof(msgtmp), "%s.msg", env->id);
		if (durable_file_write(sp->tmpfd, msgtmp, 0600, message, len, false) == 0) {
			if (spool_give(sp, msgtmp) == 0)
				break;
			err = errno;
			unlinkat(sp->tmpfd, msgtmp, 0);
			st = sys_fail(sp, err, why, whylen, "chown", "tmp", msgtmp);
			errno = err;
			return st;
		}
		err = errno;
		if (err != EEXIST || tries == 8) {
			st = sys_fail(sp, err, why, whylen, "write", "tmp", msgtmp);
			errno = err;
			return st;
		}
	}
	snprintf(envtmp, sizeof(envtmp), "%s.env", env->id);
	buf_init(&text, QUEUE_ENV_FILE_MAX);
	if (queue_envelope_format(env, &text, &err_text) < 0) {
		st = say(QUEUE_PERM, why, whylen, "spool %s: envelope of %s: %s", sp->dir, env->id,
		         err_text);
		err = EINVAL;
		goto drop_tmp;
	}
	if (durable_file_write(sp->tmpfd, envtmp, 0600, text.data, text.len, false) < 0 ||
	    spool_give(sp, envtmp) < 0) {
		st = sys_fail(sp, err = errno, why, whylen, "write", "tmp", envtmp);
		unlinkat(sp->tmpfd, envtmp, 0);
		goto drop_tmp;
	}
	if (renameat2(sp->tmpfd, msgtmp, sp->msgfd, env->id, RENAME_NOREPLACE) < 0) {
		st = sys_fail(sp, err = errno, why, whylen, "rename into", "msg", env->id);
		unlinkat(sp->tmpfd, envtmp, 0);
		goto drop_tmp;
	}
	if (renameat2(sp->tmpfd, envtmp, sp->envfd, env->id, RENAME_NOREPLACE) < 0) {
		st = sys_fail(sp, err = errno, why, whylen, "rename into", "env", env->id);
		unlinkat(sp->tmpfd, envtmp, 0);
		goto drop_msg;
	}
	buf_free(&text);
	return QUEUE_OK;

drop_msg:
	unlinkat(sp->msgfd, env->id, 0);
drop_tmp:
	unlinkat(sp->tmpfd, msgtmp, 0);
	buf_free(&text);
	errno = err;
	return st;
}

/* ---- lock, load, update, remove, set aside ---- */

void queue_spool_unlock(struct queue_lock *lk)
{
	if (lk->fd >= 0)
		close(lk->fd);   /* releases the flock */
	lk->fd = -1;
}

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int rename_aside(struct queue_spool *sp, int fromfd, const char *id, const char *ext)
{
	char to[QUEUE_ID_MAX + 8];
	snprintf(to, sizeof(to), "%s.%s", id, ext);
	/* A second set-aside of the same id replaces the first's leftovers. */
	if (renameat(fromfd, id, sp->corruptfd, to) < 0)
		return errno == ENOENT ? 0 : -1;
	return 1;
}

enum queue_status queue_spool_set_aside(struct queue_spool *sp, const char *id, char *why,
                                        size_t whylen)
{
	if (!queue_id_valid(id, strlen(id)))
		return say(QUEUE_PERM, why, whylen, "spool %s: not a queue id", sp->dir);
	int m = rename_aside(sp, sp->msgfd, id, "msg");
	if (m < 0)
		return sys_fail(sp, errno, why, whylen, "set aside", "msg", id);
	int e = rename_aside(sp, sp->envfd, id, "env");
	if (e < 0)
		return sys_fail(sp, errno, why, whylen, "set aside", "env", id);
	if (dir_sync(sp, sp->corruptfd) < 0 || dir_sync(sp, sp->msgfd) < 0 ||
	    dir_sync(sp, sp->envfd) < 0)
		return sys_fail(sp, errno, why, whylen, "fsync", "corrupt", "");
	return m == 0 && e == 0 ? QUEUE_GONE : QUEUE_OK;
}

/* Sets the entry aside and says why (the reason comes first: it is what a
 * log line names). */
__attribute__((format(printf, 5, 6)))
static enum queue_status corrupt(struct queue_spool *sp, const char *id, char *why, size_t whylen,
                                 const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	char aside[512];
	enum queue_status st = queue_spool_set_aside(sp, id, aside, sizeof(aside));
	if (st == QUEUE_TEMP || st == QUEUE_PERM)
		return say(st, why, whylen, "%s; and it could not be set aside: %s", reason, aside);
	return say(QUEUE_CORRUPT, why, whylen, "%s (set aside in %s/corrupt/)", reason, sp->dir);
}

enum queue_status queue_spool_lock(struct queue_spool *sp, const char *id, struct queue_lock *lk,
                                   char *why, size_t whylen)
{
	lk->fd = -1;
	size_t idlen = strlen(id);
	if (!queue_id_valid(id, idlen))
		return say(QUEUE_GONE, why, whylen, "spool %s: not a queue id", sp->dir);
	memcpy(lk->id, id, idlen + 1);
	int fd = openat(sp->msgfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err != ENOENT)
			return sys_fail(sp, err, why, whylen, "open", "msg", id);
		/* Enqueue renames the message before the envelope and remove
		 * unlinks the envelope first: an envelope without its message is
		 * damage, not a step in progress. */
		if (exists_at(sp->envfd, id))
			return corrupt(sp, id, why, whylen, "entry %s: msg/%s is missing", id, id);
		return say(QUEUE_GONE, why, whylen, "entry %s: not in the queue", id);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(fd);
		if (err == EWOULDBLOCK)
			return say(QUEUE_BUSY, why, whylen, "entry %s: another runner has it", id);
		return sys_fail(sp, err, why, whylen, "lock", "msg", id);
	}
	/* Removed between our open and our lock: the lock is on a file that
	 * is no longer the entry's. */
	struct stat a, b;
	if (fstat(fd, &a) < 0 || fstatat(sp->msgfd, id, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		return say(QUEUE_GONE, why, whylen, "entry %s: not in the queue", id);
	}
	lk->fd = fd;
	return QUEUE_OK;
}

/* Reads dirfd/name whole into b (at most max octets).  0, -1 with errno,
 * or -2 when it is larger than max. */
static int read_file_at(int dirfd, const char *name, struct buf *b, size_t max)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		if (n == 0)
			break;
		if (b->len + (size_t)n > max) {
			close(fd);
			return -2;
		}
		if (buf_append(b, chunk, (size_t)n) < 0) {
			close(fd);
			errno = ENOMEM;
			return -1;
		}
	}
	close(fd);
	return 0;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char digit[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digit[p[i] >> 4];
		out[2 * i + 1] = digit[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Reads the locked message, hashing it; appends it to message if given. */
static enum queue_status check_message(struct queue_spool *sp, const struct queue_lock *lk,
                                       const struct queue_envelope *env, struct buf *message,
                                       char *why, size_t whylen)
{
	struct stat st;
	if (fstat(lk->fd, &st) < 0)
		return sys_fail(sp, errno, why, whylen, "stat", "msg", lk->id);
	if ((uint64_t)st.st_size != env->size)
		return corrupt(sp, lk->id, why, whylen,
		               "entry %s: msg/%s has %lld octets, its envelope says %llu", lk->id,
		               lk->id, (long long)st.st_size, (unsigned long long)env->size);
	struct sha256 ctx;
	sha256_init(&ctx);
	size_t start = message ? message->len : 0;
	uint64_t off = 0;
	char chunk[65536];
	for (;;) {
		ssize_t n = pread(lk->fd, chunk, sizeof(chunk), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			return sys_fail(sp, err, why, whylen, "read", "msg", lk->id);
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		if (off > env->size)
			break;   /* grew under us: the digest will say so */
		sha256_update(&ctx, chunk, (size_t)n);
		if (message && buf_append(message, chunk, (size_t)n) < 0) {
			message->len = start;
			return say(QUEUE_TEMP, why, whylen, "entry %s: out of memory reading msg/%s",
			           lk->id, lk->id);
		}
	}
	uint8_t d[QUEUE_SHA256_LEN];
	sha256_final(&ctx, d);
	if (off != env->size || memcmp(d, env->sha256, QUEUE_SHA256_LEN) != 0) {
		if (message) {
			message->len = start;
			if (message->data)
				message->data[start] = '\0';
		}
		char got[2 * QUEUE_SHA256_LEN + 1];
		hex(got, d, QUEUE_SHA256_LEN);
		return corrupt(sp, lk->id, why, whylen,
		               "entry %s: msg/%s does not match its envelope's SHA-256 (it has %s)",
		               lk->id, lk->id, got);
	}
	return QUEUE_OK;
}

enum queue_status queue_spool_load(struct queue_spool *sp, const struct queue_lock *lk,
                                   struct queue_envelope *env, struct buf *message, char *why,
                                   size_t whylen)
{
	memset(env, 0, sizeof(*env));
	struct buf text;
	buf_init(&text, QUEUE_ENV_FILE_MAX);
	int rc = read_file_at(sp->envfd, lk->id, &text, QUEUE_ENV_FILE_MAX);
	if (rc == -1) {
		int err = errno;
		buf_free(&text);
		if (err == ENOENT)
			return say(QUEUE_GONE, why, whylen, "entry %s: not in the queue", lk->id);
		return sys_fail(sp, err, why, whylen, "read", "env", lk->id);
	}
	if (rc == -2) {
		buf_free(&text);
		return corrupt(sp, lk->id, why, whylen, "entry %s: env/%s is larger than %u octets",
		               lk->id, lk->id, QUEUE_ENV_FILE_MAX);
	}
	char reason[256];
	if (queue_envelope_parse(text.data ? text.data : "", text.len, env, reason,
	                         sizeof(reason)) < 0) {
		buf_free(&text);
		queue_envelope_free(env);
		return corrupt(sp, lk->id, why, whylen, "entry %s: env/%s: %s", lk->id, lk->id, reason);
	}
	buf_free(&text);
	if (strcmp(env->id, lk->id) != 0) {
		queue_envelope_free(env);
		return corrupt(sp, lk->id, why, whylen, "entry %s: env/%s names another id", lk->id,
		               lk->id);
	}
	enum queue_status st = check_message(sp, lk, env, message, why, whylen);
	if (st != QUEUE_OK)
		queue_envelope_free(env);
	return st;
}

/* Removals and updates, synced in a group (issue 9, "Performance"): a
 * runner removes each entry it has delivered and rewrites each it has
 * deferred, and an fsync of env/ for each (0.25-0.3 ms here) was half of
 * the time of flushing 10,000 messages.  So env/ID is unlinked (or
 * replaced) at once, under the entry's lock (every listing, lock and load
 * sees the change from then on), and env/ is synced once for every change
 * of the last QUEUE_REMOVE_SYNC_MS, or QUEUE_REMOVE_PENDING_MAX of them,
 * at the end of each runner pass, and at close.  A change not synced yet
 * when the machine crashes may be undone: a removed entry comes back and
 * its message is delivered a second time, as when a crash cuts a delivery
 * off between its 250 and its removal; a deferred one is attempted again
 * sooner (the queue delivers at least once, never loses).  msg/ID is
 * unlinked only after that sync, so a crash can never leave an envelope
 * without its message; a msg/ID left by a crash or a failed sync is an
 * orphan that cleanup removes. */
static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void pending_add(struct queue_spool *sp)
{
	if (sp->nremoved == 0 && sp->nupdated == 0)
		clock_gettime(CLOCK_MONOTONIC, &sp->pending_since);
}

static bool pending_due(const struct queue_spool *sp)
{
	return sp->nremoved == QUEUE_REMOVE_PENDING_MAX || sp->nupdated >= QUEUE_REMOVE_PENDING_MAX ||
	       ms_since(&sp->pending_since) >= QUEUE_REMOVE_SYNC_MS;
}

enum queue_status queue_spool_sync_pending(struct queue_spool *sp, char *why, size_t whylen)
{
	if (sp->nremoved == 0 && sp->nupdated == 0)
		return QUEUE_OK;
	size_t n = sp->nremoved;
	sp->nremoved = sp->nupdated = 0;
	if (dir_sync(sp, sp->envfd) < 0)
		return sys_fail(sp, errno, why, whylen, "fsync", "env", "");
	for (size_t i = 0; i < n; i++)
		unlinkat(sp->msgfd, sp->removed[i], 0);   /* gone already: nothing to do */
	return QUEUE_OK;
}

enum queue_status queue_spool_update(struct queue_spool *sp, const struct queue_envelope *env,
                                     char *why, size_t whylen)
{
	struct buf text;
	const char *err_text;
	if (!queue_id_valid(env->id, strlen(env->id)))
		return say(QUEUE_PERM, why, whylen, "spool %s: not a queue id", sp->dir);
	buf_init(&text, QUEUE_ENV_FILE_MAX);
	if (queue_envelope_format(env, &text, &err_text) < 0) {
		buf_free(&text);
		return say(QUEUE_PERM, why, whylen, "entry %s: %s", env->id, err_text);
	}
	char tmp[QUEUE_ID_MAX + 40];
	snprintf(tmp, sizeof(tmp), "%s.env.%ld.%u", env->id, (long)getpid(), sp->counter++);
	enum queue_status st = QUEUE_OK;
	if (durable_file_write(sp->tmpfd, tmp, 0600, text.data, text.len, sp->sync) < 0)
		st = sys_fail(sp, errno, why, whylen, "write", "tmp", tmp);
	else if (spool_give(sp, tmp) < 0) {
		st = sys_fail(sp, errno, why, whylen, "chown", "tmp", tmp);
		unlinkat(sp->tmpfd, tmp, 0);
	}
	else if (renameat(sp->tmpfd, tmp, sp->envfd, env->id) < 0) {
		st = sys_fail(sp, errno, why, whylen, "rename into", "env", env->id);
		unlinkat(sp->tmpfd, tmp, 0);
	} else {
		/* The rename is made durable with the group's sync of env/
		 * (below): until then a crash may bring the old envelope back,
		 * which is a valid state of the entry too (an attempt made
		 * again: at least once, never lost).  The new envelope's data
		 * was synced before the rename, so it is never a torn file. */
		pending_add(sp);
		sp->nupdated++;
		if (pending_due(sp))
			st = queue_spool_sync_pending(sp, why, whylen);
	}
	buf_free(&text);
	return st;
}

/* Outcomes of an MQTT request (issue 12): results/ID.TIME (.end when the
 * entry is finished), an envelope holding only the recipients whose
 * outcome became final, for the MQTT bridge to publish and unlink.  Made
 * durable before the caller goes on: the outcome is said once it is
 * final, also after a crash. */
enum queue_status queue_spool_result(struct queue_spool *sp, const struct queue_envelope *env,
                                     const size_t *idx, size_t n, bool end, char *why,
                                     size_t whylen)
{
	if (n == 0 && !end)
		return QUEUE_OK;
	struct queue_rcpt *rcpts = calloc(n ? n : 1, sizeof(*rcpts));
	if (!rcpts)
		return say(QUEUE_TEMP, why, whylen, "spool %s: out of memory", sp->dir);
	struct queue_envelope part = *env;
	for (size_t i = 0; i < n; i++)
		rcpts[i] = env->rcpts[idx[i]];
	part.rcpts = rcpts;
	part.nrcpts = n;
	struct buf text;
	const char *err_text = NULL;
	buf_init(&text, QUEUE_ENV_FILE_MAX);
	enum queue_status st = QUEUE_OK;
	int rfd = -1;
	char name[QUEUE_ID_MAX + 48], tmp[QUEUE_ID_MAX + 64];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "%s.%016llx%s", env->id,
	         (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
	         end ? ".end" : "");
	snprintf(tmp, sizeof(tmp), "%s.result.%ld.%u", env->id, (long)getpid(), sp->counter++);
	/* An envelope without recipients does not parse: the last result
	 * of an entry whose outcomes were all said already still names one. */
	if (n == 0) {
		part.rcpts = env->rcpts;
		part.nrcpts = env->nrcpts ? 1 : 0;
	}
	if (queue_envelope_format(&part, &text, &err_text) < 0) {
		st = say(QUEUE_PERM, why, whylen, "entry %s: %s", env->id, err_text);
		goto out;
	}
	if ((mkdirat(sp->dirfd, "results", 0700) != 0 && errno != EEXIST) ||
	    (rfd = open_dir_at(sp->dirfd, "results")) < 0) {
		st = sys_fail(sp, errno, why, whylen, "open", "results", "");
		goto out;
	}
	if (durable_file_write(sp->tmpfd, tmp, 0600, text.data, text.len, sp->sync) < 0) {
		st = sys_fail(sp, errno, why, whylen, "write", "tmp", tmp);
	} else if (spool_give(sp, tmp) < 0 || renameat(sp->tmpfd, tmp, rfd, name) < 0) {
		st = sys_fail(sp, errno, why, whylen, "rename into", "results", name);
		unlinkat(sp->tmpfd, tmp, 0);
	} else if (dir_sync(sp, rfd) < 0) {
		st = sys_fail(sp, errno, why, whylen, "fsync", "results", "");
	}
out:
	if (rfd >= 0)
		close(rfd);
	buf_free(&text);
	free(rcpts);
	return st;
}

void queue_spool_lazy_removals(struct queue_spool *sp)
{
	sp->lazy_removals = true;
}

enum queue_status queue_spool_remove(struct queue_spool *sp, const char *id, char *why,
                                     size_t whylen)
{
	if (!queue_id_valid(id, strlen(id)))
		return say(QUEUE_GONE, why, whylen, "spool %s: not a queue id", sp->dir);
	if (!sp->removed) {
		sp->removed = calloc(QUEUE_REMOVE_PENDING_MAX, sizeof(*sp->removed));
		if (!sp->removed)
			return say(QUEUE_TEMP, why, whylen, "spool %s: out of memory", sp->dir);
	}
	if (unlinkat(sp->envfd, id, 0) < 0) {
		if (errno == ENOENT)
			return say(QUEUE_GONE, why, whylen, "entry %s: not in the queue", id);
		return sys_fail(sp, errno, why, whylen, "unlink", "env", id);
	}
	if (sp->lazy_removals) {
		/* env/ID first: a crash that keeps only one of the two unlinks
		 * leaves an orphan msg/ID (cleanup's), or the whole entry. */
		unlinkat(sp->msgfd, id, 0);
		return QUEUE_OK;
	}
	pending_add(sp);
	snprintf(sp->removed[sp->nremoved++], QUEUE_ID_MAX + 1, "%s", id);
	if (pending_due(sp))
		return queue_spool_sync_pending(sp, why, whylen);
	return QUEUE_OK;
}

/* ---- list ---- */

/* Reading 100,000 envelopes one after the other is one random read at a
 * time when they are not cached (8.6 s here), where 16 readers in parallel
 * (a disk serves several requests at once) read them in 1.8 s.  So a long
 * listing starts readers that read and parse entries ahead of the caller,
 * at most LIST_WINDOW of them, into slots the caller takes in order; they
 * are joined when the listing closes.  Short listings read inline. */
#define LIST_PREFETCH_MIN 512
#define LIST_THREADS 16
#define LIST_WINDOW 1024
#define LIST_WHY 200

struct list_slot {
	bool ready;
	int rc;                        /* as queue_spool_list_next */
	struct queue_envelope env;
	char why[LIST_WHY];
};

struct queue_spool_list {
	struct queue_spool *sp;
	char (*names)[QUEUE_ID_MAX + 1];
	size_t n, next;
	struct buf text;
	/* the readers, when started */
	pthread_t threads[LIST_THREADS];
	size_t nthreads;
	pthread_mutex_t mu;
	pthread_cond_t ready_cv;       /* the caller waits for its slot */
	pthread_cond_t space_cv;       /* readers wait for the window */
	struct list_slot *slots;       /* LIST_WINDOW, entry i in slot i % LIST_WINDOW */
	size_t claim;                  /* the next entry a reader takes */
	bool stop;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Reads the names of dirfd's entries that are queue ids into *names. */
static int read_names(int dirfd, char (**names)[QUEUE_ID_MAX + 1], size_t *count)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	rewinddir(d);
	size_t n = 0, cap = 0;
	char (*v)[QUEUE_ID_MAX + 1] = NULL;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (!queue_id_valid(e->d_name, len))
			continue;   /* ".", "..", and anything not ours */
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			char (*nv)[QUEUE_ID_MAX + 1] = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			v = nv;
			cap = ncap;
		}
		memcpy(v[n++], e->d_name, len + 1);
		errno = 0;
	}
	int err = errno;
	closedir(d);
	if (err) {
		free(v);
		errno = err;
		return -1;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), name_cmp);
	*names = v;
	*count = n;
	return 0;
}

/* One entry: 1 and env, 0 when it has gone since readdir, -1 and why. */
static int list_read_one(struct queue_spool *sp, const char *name, struct buf *text,
                         struct queue_envelope *env, char *why, size_t whylen)
{
	memset(env, 0, sizeof(*env));
	buf_reset(text);
	int rc = read_file_at(sp->envfd, name, text, QUEUE_ENV_FILE_MAX);
	if (rc == -1 && errno == ENOENT)
		return 0;   /* delivered or removed since readdir */
	if (rc == -1) {
		say(QUEUE_TEMP, why, whylen, "env/%s: %s", name, strerror(errno));
		return -1;
	}
	if (rc == -2) {
		say(QUEUE_CORRUPT, why, whylen, "env/%s: larger than %u octets", name,
		    QUEUE_ENV_FILE_MAX);
		return -1;
	}
	char reason[256];
	if (queue_envelope_parse(text->data ? text->data : "", text->len, env, reason,
	                         sizeof(reason)) < 0) {
		queue_envelope_free(env);
		say(QUEUE_CORRUPT, why, whylen, "env/%s: %s", name, reason);
		return -1;
	}
	if (strcmp(env->id, name) != 0) {
		queue_envelope_free(env);
		say(QUEUE_CORRUPT, why, whylen, "env/%s: names another id", name);
		return -1;
	}
	return 1;
}

static void *list_reader(void *arg)
{
	struct queue_spool_list *l = arg;
	struct buf text;
	buf_init(&text, QUEUE_ENV_FILE_MAX);
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->stop && l->claim < l->n && l->claim >= l->next + LIST_WINDOW)
			pthread_cond_wait(&l->space_cv, &l->mu);
		if (l->stop || l->claim >= l->n)
			break;
		size_t i = l->claim++;
		pthread_mutex_unlock(&l->mu);
		struct list_slot *slot = &l->slots[i % LIST_WINDOW];
		struct queue_envelope env;
		char why[LIST_WHY] = "";
		int rc = list_read_one(l->sp, l->names[i], &text, &env, why, sizeof(why));
		pthread_mutex_lock(&l->mu);
		slot->rc = rc;
		slot->env = env;
		memcpy(slot->why, why, sizeof(why));
		slot->ready = true;
		if (i == l->next)
			pthread_cond_signal(&l->ready_cv);
	}
	pthread_mutex_unlock(&l->mu);
	buf_free(&text);
	return NULL;
}

static void list_readers_start(struct queue_spool_list *l)
{
	if (l->n < LIST_PREFETCH_MIN)
		return;
	l->slots = calloc(LIST_WINDOW, sizeof(*l->slots));
	if (!l->slots)
		return;
	if (pthread_mutex_init(&l->mu, NULL) != 0)
		goto free_slots;
	if (pthread_cond_init(&l->ready_cv, NULL) != 0)
		goto free_mu;
	if (pthread_cond_init(&l->space_cv, NULL) != 0)
		goto free_ready;
	for (size_t i = 0; i < LIST_THREADS; i++)
		if (pthread_create(&l->threads[l->nthreads], NULL, list_reader, l) == 0)
			l->nthreads++;
	if (l->nthreads > 0)
		return;
	pthread_cond_destroy(&l->space_cv);
free_ready:
	pthread_cond_destroy(&l->ready_cv);
free_mu:
	pthread_mutex_destroy(&l->mu);
free_slots:
	free(l->slots);
	l->slots = NULL;
}

static void list_readers_stop(struct queue_spool_list *l)
{
	if (l->nthreads == 0)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->space_cv);
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
	/* Envelopes read ahead that the caller never took. */
	for (size_t i = 0; i < LIST_WINDOW; i++)
		if (l->slots[i].ready && l->slots[i].rc == 1)
			queue_envelope_free(&l->slots[i].env);
	free(l->slots);
	pthread_cond_destroy(&l->space_cv);
	pthread_cond_destroy(&l->ready_cv);
	pthread_mutex_destroy(&l->mu);
	l->nthreads = 0;
}

enum queue_status queue_spool_list_open(struct queue_spool *sp, struct queue_spool_list **out,
                                        char *why, size_t whylen)
{
	*out = NULL;
	struct queue_spool_list *l = calloc(1, sizeof(*l));
	if (!l)
		return say(QUEUE_TEMP, why, whylen, "spool %s: out of memory", sp->dir);
	l->sp = sp;
	if (read_names(sp->envfd, &l->names, &l->n) < 0) {
		int err = errno;
		free(l);
		return sys_fail(sp, err, why, whylen, "read", "env", "");
	}
	buf_init(&l->text, QUEUE_ENV_FILE_MAX);
	list_readers_start(l);
	*out = l;
	return QUEUE_OK;
}

size_t queue_spool_list_count(const struct queue_spool_list *l)
{
	return l->n;
}

int queue_spool_list_next(struct queue_spool_list *l, struct queue_envelope *env, const char **id,
                          char *why, size_t whylen)
{
	memset(env, 0, sizeof(*env));
	while (l->next < l->n) {
		size_t i = l->next;
		*id = l->names[i];
		int rc;
		if (l->nthreads == 0) {
			l->next++;
			rc = list_read_one(l->sp, l->names[i], &l->text, env, why, whylen);
		} else {
			struct list_slot *slot = &l->slots[i % LIST_WINDOW];
			pthread_mutex_lock(&l->mu);
			while (!slot->ready)
				pthread_cond_wait(&l->ready_cv, &l->mu);
			rc = slot->rc;
			*env = slot->env;
			if (rc < 0)
				say(QUEUE_CORRUPT, why, whylen, "%s", slot->why);
			memset(slot, 0, sizeof(*slot));
			l->next++;
			/* One slot freed: one more entry may be claimed. */
			pthread_cond_signal(&l->space_cv);
			pthread_mutex_unlock(&l->mu);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

void queue_spool_list_close(struct queue_spool_list *l)
{
	if (!l)
		return;
	list_readers_stop(l);
	buf_free(&l->text);
	free(l->names);
	free(l);
}

/* ---- peek ---- */

/* Appends msg/ID's first octets through its first empty line. */
static enum queue_status peek_head(struct queue_spool *sp, const char *id, struct buf *head,
                                   size_t head_max, char *why, size_t whylen)
{
	int fd = openat(sp->msgfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return say(QUEUE_CORRUPT, why, whylen, "entry %s: msg/%s is missing", id, id);
		return sys_fail(sp, errno, why, whylen, "open", "msg", id);
	}
	size_t start = head->len;
	char chunk[4096];
	enum queue_status st = QUEUE_OK;
	while (head->len - start < head_max) {
		size_t want = head_max - (head->len - start);
		ssize_t n = read(fd, chunk, want < sizeof(chunk) ? want : sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st = sys_fail(sp, errno, why, whylen, "read", "msg", id);
			break;
		}
		if (n == 0)
			break;
		size_t from = head->len > start + 3 ? head->len - 3 : start;
		if (buf_append(head, chunk, (size_t)n) < 0) {
			st = say(QUEUE_TEMP, why, whylen, "entry %s: out of memory", id);
			break;
		}
		/* The header section ends at the first empty line (RFC 5322
		 * §2.1): an LF, or CR LF, at the start of a line. */
		const char *d = head->data;
		size_t end = 0;
		for (size_t i = from; i < head->len && !end; i++)
			if (d[i] == '\n' &&
			    (i == start || d[i - 1] == '\n' ||
			     (d[i - 1] == '\r' && (i - 1 == start || d[i - 2] == '\n'))))
				end = i + 1;
		if (end) {
			head->len = end;
			head->data[end] = '\0';
			break;
		}
	}
	close(fd);
	return st;
}

enum queue_status queue_spool_peek(struct queue_spool *sp, const char *id,
                                   struct queue_envelope *env, struct buf *head, size_t head_max,
                                   char *why, size_t whylen)
{
	memset(env, 0, sizeof(*env));
	if (!queue_id_valid(id, strlen(id)))
		return say(QUEUE_GONE, why, whylen, "'%.64s' is not a queue id", id);
	struct buf text;
	buf_init(&text, QUEUE_ENV_FILE_MAX);
	int rc = read_file_at(sp->envfd, id, &text, QUEUE_ENV_FILE_MAX);
	if (rc == -1) {
		int err = errno;
		buf_free(&text);
		if (err == ENOENT)
			return say(QUEUE_GONE, why, whylen, "entry %s: not in the queue", id);
		return sys_fail(sp, err, why, whylen, "read", "env", id);
	}
	if (rc == -2) {
		buf_free(&text);
		return say(QUEUE_CORRUPT, why, whylen, "entry %s: env/%s is larger than %u octets", id,
		           id, QUEUE_ENV_FILE_MAX);
	}
	char reason[256];
	rc = queue_envelope_parse(text.data ? text.data : "", text.len, env, reason,
	                          sizeof(reason));
	buf_free(&text);
	if (rc < 0 || strcmp(env->id, id) != 0) {
		queue_envelope_free(env);
		return say(QUEUE_CORRUPT, why, whylen, "entry %s: env/%s: %s", id, id,
		           rc < 0 ? reason : "names another id");
	}
	if (!head)
		return QUEUE_OK;
	enum queue_status st = peek_head(sp, id, head, head_max, why, whylen);
	if (st != QUEUE_OK)
		queue_envelope_free(env);
	return st;
}

/* ---- cleanup ---- */

static bool older_than(int dirfd, const char *name, int64_t now, int64_t age)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	       (int64_t)st.st_mtim.tv_sec < now - age;
}

enum queue_status queue_spool_cleanup(struct queue_spool *sp, int64_t now,
                                      struct queue_cleanup_counts *counts, char *why,
                                      size_t whylen)
{
	memset(counts, 0, sizeof(*counts));
	/* tmp/ names carry suffixes (ID.msg, ID.env.PID.N): walk it raw. */
	int fd = dup(sp->tmpfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return sys_fail(sp, err, why, whylen, "read", "tmp", "");
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (older_than(sp->tmpfd, e->d_name, now, QUEUE_TMP_MAX_AGE) &&
		    unlinkat(sp->tmpfd, e->d_name, 0) == 0)
			counts->tmp_removed++;
	}
	closedir(d);

	char (*names)[QUEUE_ID_MAX + 1];
	size_t n;
	if (read_names(sp->msgfd, &names, &n) < 0)
		return sys_fail(sp, errno, why, whylen, "read", "msg", "");
	for (size_t i = 0; i < n; i++) {
		if (exists_at(sp->envfd, names[i]) ||
		    !older_than(sp->msgfd, names[i], now, QUEUE_ORPHAN_MAX_AGE))
			continue;
		struct queue_lock lk;
		char ignored[256];
		if (queue_spool_lock(sp, names[i], &lk, ignored, sizeof(ignored)) != QUEUE_OK)
			continue;
		/* Checked again under the lock: an env/ that appeared meanwhile
		 * makes it a live entry. */
		if (!exists_at(sp->envfd, names[i]) && unlinkat(sp->msgfd, names[i], 0) == 0)
			counts->orphans_removed++;
		queue_spool_unlock(&lk);
	}
	free(names);
	return QUEUE_OK;
}

const char *queue_spool_dir(const struct queue_spool *sp)
{
	return sp->dir;
}
