#include "util/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int durable_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int durable_file_write(int dirfd, const char *name, mode_t mode, const void *data, size_t len,
                       bool sync)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	/* close() reports a delayed write error on some filesystems (NFS):
	 * it counts as a failure too. */
	if (durable_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
		int err = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		errno = err;
		return -1;
	}
	if (close(fd) < 0) {
		int err = errno;
		unlinkat(dirfd, name, 0);
		errno = err;
		return -1;
	}
	return 0;
}

int durable_mkdir(int dirfd, const char *name, mode_t mode, bool *created)
{
	if (created)
		*created = false;
	if (mkdirat(dirfd, name, mode) == 0) {
		if (created)
			*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
		return -1;
	}
	return 0;
}

int durable_dir_sync(int dirfd)
{
	return fsync(dirfd);
}

int durable_fs_sync(int fd)
{
	return syncfs(fd);
}
