#include "store/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int fsync_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* mkdir that counts an existing directory as success; *created tells
 * whether this call made it. */
static int mkdir_at(int rootfd, const char *path, bool *created)
{
	if (mkdirat(rootfd, path, 0700) == 0) {
		*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (fstatat(rootfd, path, &st, 0) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int maildir_ensure(int rootfd, const char *mailbox, bool sync_dirs)
{
	static const char *const subdirs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	bool made_box = false, made_sub = false;

	if (mkdir_at(rootfd, mailbox, &made_box) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (maildir_path(path, sizeof(path), mailbox, subdirs[i], NULL) < 0)
			return -1;
		if (mkdir_at(rootfd, path, &made_sub) < 0)
			return -1;
	}
	if (made_box) {
		char q[300];
		log_event(LOG_INFO, "maildir_created", "mailbox=%s",
		          log_quote(q, sizeof(q), mailbox, strlen(mailbox)));
	}
	/* A new directory entry is durable only once its parent is synced;
	 * the syncfs mode gets that from the batch's syncfs. */
	if (sync_dirs && made_box && fsync_at(rootfd, ".") < 0)
		return -1;
	if (sync_dirs && (made_box || made_sub) && fsync_at(rootfd, mailbox) < 0)
		return -1;
	return 0;
}

int maildir_create_tmp(int rootfd, const char *mailbox, const char *name, bool sync_dirs)
{
	char path[PATH_MAX];
	if (maildir_path(path, sizeof(path), mailbox, "tmp", name) < 0)
		return -1;
	/* Read access too: a streamed message's first file is the source its
	 * copies are made from. */
	int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(rootfd, path, flags, 0600);
	/* Trying first and creating the Maildir on ENOENT keeps the common
	 * case at one system call. */
	if (fd < 0 && errno == ENOENT) {
		if (maildir_ensure(rootfd, mailbox, sync_dirs) < 0)
			return -1;
		fd = openat(rootfd, path, flags, 0600);
	}
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

int maildir_rename(int rootfd, const char *mailbox, const char *tmpname, const char *newname,
                   bool sync_dirs)
{
	char from[PATH_MAX], to[PATH_MAX];
	if (maildir_path(from, sizeof(from), mailbox, "tmp", tmpname) < 0 ||
	    maildir_path(to, sizeof(to), mailbox, "new", newname) < 0)
		return -1;
	for (int attempt = 0;; attempt++) {
		/* Never replace a file already in new/: that would lose mail
		 * already acknowledged. */
		int rc = renameat2(rootfd, from, rootfd, to, RENAME_NOREPLACE);
		if (rc < 0 && errno == EINVAL) {
			/* A filesystem without RENAME_NOREPLACE: link fails on an
			 * existing target, so link then unlink keeps the rule. */
			rc = linkat(rootfd, from, rootfd, to, 0);
			if (rc == 0)
				unlinkat(rootfd, from, 0);
		}
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
	char path[PATH_MAX];
	if (maildir_path(path, sizeof(path), mailbox, dir, name) < 0)
		return;
	if (unlinkat(rootfd, path, 0) < 0 && errno != ENOENT) {
		int err = errno;
		char q[PATH_MAX + 16];
		log_event(LOG_WARN, "unlink_failed", "path=%s error=\"%s\"",
		          log_quote(q, sizeof(q), path, strlen(path)), strerror(err));
	}
}

int maildir_fsync(int rootfd, const char *mailbox, const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (maildir_path(path, sizeof(path), mailbox, dir, name) < 0)
		return -1;
	return fsync_at(rootfd, path);
}
