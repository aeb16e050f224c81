#include "store/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/log.h"

const char *maildir_host_escape(const char *host, char *out, size_t outlen)
{
	size_t o = 0;
	size_t max = outlen ? outlen - 1 : 0;
	if (max > MAILDIR_HOST_MAX)
		max = MAILDIR_HOST_MAX;
	for (const char *p = host; *p; p++) {
		/* cr.yp.to/proto/maildir.html: '/' and ':' cannot appear in the
		 * host part (one is the path separator, the other starts the
		 * info part in cur/). */
		const char *esc = *p == '/' ? "\\057" : *p == ':' ? "\\072" : NULL;
		size_t n = esc ? 4 : 1;
		if (o + n > max)
			break;
		if (esc)
			memcpy(out + o, esc, 4);
		else
			out[o] = *p;
		o += n;
	}
	if (outlen)
		out[o] = '\0';
	return out;
}

int maildir_name(char *out, size_t outlen, const struct maildir_unique *u, bool sizes,
                 uint64_t size, uint64_t wsize)
{
	char seq[16] = "";
	if (u->seq)
		snprintf(seq, sizeof(seq), "_%u", u->seq);
	int n;
	if (sizes)
		n = snprintf(out, outlen, "%" PRId64 ".M%ldP%ldQ%s%s.%s,S=%" PRIu64 ",W=%" PRIu64,
		             u->sec, u->usec, u->pid, u->qid, seq, u->host, size, wsize);
	else
		n = snprintf(out, outlen, "%" PRId64 ".M%ldP%ldQ%s%s.%s", u->sec, u->usec, u->pid,
		             u->qid, seq, u->host);
	if (n < 0 || (size_t)n >= outlen || n > MAILDIR_NAME_MAX)
		return -1;
	return n;
}

uint64_t maildir_count_lf(const char *p, size_t len)
{
	uint64_t n = 0;
	const char *end = p + len;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

enum store_result maildir_errno_result(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return STORE_NOSPACE;
	return STORE_TEMPFAIL;
}

/* "mailbox" or "mailbox/dir" or "mailbox/dir/name" into out. */
static int maildir_path(char *out, size_t outlen, const char *mailbox, const char *dir,
                        const char *name)
{
	int n;
	if (!dir)
		n = snprintf(out, outlen, "%s", mailbox);
	else if (!name)
		n = snprintf(out, outlen, "%s/%s", mailbox, dir);
	else
		n = snprintf(out, outlen, "%s/%s/%s", mailbox, dir, name);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Issue 8 item 9: a symbolic link inside the mail root (mail/bob ->
 * /elsewhere, or bob/tmp -> /elsewhere) must not take a write outside it.
 * Every path is resolved beneath rootfd without following any link:
 * openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (Linux 5.6), or where
 * the kernel lacks it, one component at a time with O_NOFOLLOW.  Mount
 * points are crossed (no RESOLVE_NO_XDEV): a mailbox may be its own
 * filesystem.  A link gives ELOOP. */
static bool resolve_walk_only;

void maildir_resolve_walk(bool walk)
{
	resolve_walk_only = walk;
}

static void log_refused(const char *mailbox, int err)
{
	if (err != ELOOP && err != EXDEV)
		return;
	char q[300];
	log_event(LOG_WARN, "mailbox_refused", "mailbox=%s reason=\"symbolic link (or a path out of the mail root) on the way\"",
	          log_quote(q, sizeof(q), mailbox, strlen(mailbox)));
}

/* The fallback: every directory on the way opened with O_NOFOLLOW, so a
 * link fails with ELOOP.  Names are never "." or ".." (frame_mailbox_safe
 * and this module's own), but ".." is refused here too so that nothing
 * climbs out whatever the caller passes. */
static int open_walk(int dirfd, const char *path, int flags, mode_t mode)
{
	char part[NAME_MAX + 1];
	const char *p = path;
	int cur = dirfd, fd = -1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n >= sizeof(part)) {
			errno = n ? ENAMETOOLONG : ENOENT;
			break;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		if (!strcmp(part, "..")) {
			errno = EXDEV;
			break;
		}
		int next = slash ? openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
		                 : openat(cur, part, flags, mode);
		/* O_DIRECTORY | O_NOFOLLOW on a link says ENOTDIR: name it. */
		struct stat st;
		if (next < 0 && errno == ENOTDIR &&
		    fstatat(cur, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			errno = ELOOP;
		if (!slash || next < 0) {
			fd = next;
			break;
		}
		if (cur != dirfd)
			close(cur);
		cur = next;
		p = slash + 1;
	}
	int err = errno;
	if (cur != dirfd)
		close(cur);
	errno = err;
	return fd;
}

/* openat beneath dirfd, never following a link on the way; path has at most
 * three components (mailbox/dir/name), each from this module. */
static int open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	flags |= O_CLOEXEC;
	if (!resolve_walk_only) {
		/* RESOLVE_NO_SYMLINKS covers the last component too (ELOOP). */
		struct open_how how = {
			.flags = (uint64_t)flags,
			.mode = (flags & O_CREAT) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
		};
		long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return (int)fd;
		resolve_walk_only = true; /* the kernel will not grow it */
	}
	return open_walk(dirfd, path, flags | O_NOFOLLOW, mode);
}

int maildir_open_dir(int rootfd, const char *mailbox, const char *dir)
{
	char path[PATH_MAX];
	if (maildir_path(path, sizeof(path), mailbox, dir, NULL) < 0)
		return -1;
	int fd = open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		log_refused(mailbox, errno);
	return fd;
}

static int fsync_fd(int fd)
{
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static int ensure_in(int rootfd, const char *mailbox, bool sync_dirs)
{
	static const char *const subdirs[] = { "tmp", "new", "cur" };
	bool made_box = false, made_sub = false;

	/* util/durable.h: an existing directory counts, a link there is ELOOP. */
	if (durable_mkdir(rootfd, mailbox, 0700, &made_box) < 0)
		return -1;
	int boxfd = open_beneath(rootfd, mailbox, O_RDONLY | O_DIRECTORY, 0);
	if (boxfd < 0)
		return -1;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		bool made = false;
		if (durable_mkdir(boxfd, subdirs[i], 0700, &made) < 0) {
			int err = errno;
			close(boxfd);
			errno = err;
			return -1;
		}
		made_sub |= made;
	}
	if (made_box) {
		char q[300];
		log_event(LOG_INFO, "maildir_created", "mailbox=%s",
		          log_quote(q, sizeof(q), mailbox, strlen(mailbox)));
	}
	/* A new directory entry is durable only once its parent is synced;
	 * the syncfs mode gets that from the batch's syncfs. */
	if (sync_dirs && made_box && fsync(rootfd) < 0) {
		int err = errno;
		close(boxfd);
		errno = err;
		return -1;
	}
	if (sync_dirs && (made_box || made_sub))
		return fsync_fd(boxfd);
	close(boxfd);
	return 0;
}

int maildir_ensure(int rootfd, const char *mailbox, bool sync_dirs)
{
	int rc = ensure_in(rootfd, mailbox, sync_dirs);
	if (rc < 0)
		log_refused(mailbox, errno);
	return rc;
}

int maildir_create_tmp(int rootfd, const char *mailbox, const char *name, bool sync_dirs)
{
	char path[PATH_MAX];
	if (maildir_path(path, sizeof(path), mailbox, "tmp", name) < 0)
		return -1;
	/* Read access too: a streamed message's first file is the source its
	 * copies are made from. */
	int flags = O_RDWR | O_CREAT | O_EXCL;
	int fd = open_beneath(rootfd, path, flags, 0600);
	/* Trying first and creating the Maildir on ENOENT keeps the common
	 * case at one system call. */
	if (fd < 0 && errno == ENOENT) {
		if (maildir_ensure(rootfd, mailbox, sync_dirs) < 0)
			return -1;
		fd = open_beneath(rootfd, path, flags, 0600);
	}
	if (fd < 0)
		log_refused(mailbox, errno);
	return fd;
}

int maildir_write_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		size_t left = (size_t)n;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int maildir_copy_rw(int src, off_t off, int dst, uint64_t len)
{
	char chunk[64 * 1024];
	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		ssize_t n = pread(src, chunk, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the file is shorter than we wrote */
			return -1;
		}
		struct iovec iov = { chunk, (size_t)n };
		if (maildir_write_all(dst, &iov, 1) < 0)
			return -1;
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

int maildir_copy(int src, off_t off, int dst, uint64_t len)
{
	/* In-kernel copy: no trip through user space for a large message
	 * delivered to many mailboxes. */
	while (len > 0) {
		size_t want = len < (1u << 30) ? (size_t)len : (1u << 30);
		ssize_t n = copy_file_range(src, &off, dst, NULL, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
		              errno == EOPNOTSUPP))
			return maildir_copy_rw(src, off, dst, len);
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		len -= (uint64_t)n;
	}
	return 0;
}

/* renameat2 has no resolve flags: the two directories are opened beneath
 * the root first, and the names moved are plain names inside them. */
static int rename_in(int rootfd, const char *mailbox, const char *tmpname, const char *newname)
{
	int from = maildir_open_dir(rootfd, mailbox, "tmp");
	if (from < 0)
		return -1;
	int to = maildir_open_dir(rootfd, mailbox, "new");
	if (to < 0) {
		int err = errno;
		close(from);
		errno = err;
		return -1;
	}
	/* Never replace a file already in new/: that would lose mail already
	 * acknowledged. */
	int rc = renameat2(from, tmpname, to, newname, RENAME_NOREPLACE);
	if (rc < 0 && errno == EINVAL) {
		/* A filesystem without RENAME_NOREPLACE: link fails on an
		 * existing target, so link then unlink keeps the rule. */
		rc = linkat(from, tmpname, to, newname, 0);
		if (rc == 0)
			unlinkat(from, tmpname, 0);
	}
	int err = errno;
	close(from);
	close(to);
	errno = err;
	return rc;
}

int maildir_rename(int rootfd, const char *mailbox, const char *tmpname, const char *newname,
                   bool sync_dirs)
{
	for (int attempt = 0;; attempt++) {
		int rc = rename_in(rootfd, mailbox, tmpname, newname);
		if (rc == 0)
			return 0;
		/* new/ removed under us: recreate it once. */
		if (errno != ENOENT || attempt > 0)
			return -1;
		if (maildir_ensure(rootfd, mailbox, sync_dirs) < 0)
			return -1;
	}
}

void maildir_unlink(int rootfd, const char *mailbox, const char *dir, const char *name)
{
	int dirfd = maildir_open_dir(rootfd, mailbox, dir);
	if (dirfd < 0 && errno == ENOENT)
		return;
	if (dirfd < 0 || (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)) {
		int err = errno;
		char path[PATH_MAX], q[PATH_MAX + 16];
		if (maildir_path(path, sizeof(path), mailbox, dir, name) == 0)
			log_event(LOG_WARN, "unlink_failed", "path=%s error=\"%s\"",
			          log_quote(q, sizeof(q), path, strlen(path)), strerror(err));
	}
	if (dirfd >= 0)
		close(dirfd);
}

int maildir_fsync(int rootfd, const char *mailbox, const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (maildir_path(path, sizeof(path), mailbox, dir, name) < 0)
		return -1;
	int fd = open_beneath(rootfd, path, O_RDONLY, 0);
	if (fd < 0) {
		log_refused(mailbox, errno);
		return -1;
	}
	return fsync_fd(fd);
}
