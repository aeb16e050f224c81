/* Reading an attachment: the module's only I/O, kept in this one file so
 * everything else stays pure and testable with bytes. */
#include "msg/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int msg_attach_read_file(const char *path, struct buf *out, struct msg_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return msg_error_set(err, MSG_ERR_FILE, 0, "cannot open attachment %.160s: %s",
		                     path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
		close(fd);
		return msg_error_set(err, MSG_ERR_FILE, 0, "cannot read attachment %.160s: %s",
		                     path, strerror(e));
	}
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return msg_error_set(err, MSG_ERR_FILE, 0, "cannot read attachment %.160s: %s",
			                     path, strerror(e));
		}
		if (n == 0)
			break;
		if (buf_append(out, chunk, (size_t)n) < 0) {
			close(fd);
			return msg_error_set(err, MSG_ERR_TOO_BIG, 0,
			                     "attachment %.160s makes the message too big", path);
		}
	}
	close(fd);
	return 0;
}
