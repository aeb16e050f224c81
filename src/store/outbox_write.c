/* The outbox's writer (outbox.h, issue 12): one file per commit round.
 *
 * A round's file is written as NAME.tmp before the round's sync, so the
 * one syncfs (or, with --sync fsync, an fsync of the file and of the
 * outbox directory) makes it durable together with the renames into new/
 * it describes; it becomes NAME, the only form the bridge reads
 * (outbox_name_ok), after the round's messages were answered, so no event
 * goes out before its 250.  That rename is not synced: it is redone after
 * a crash.
 *
 * Crash cases, and why each is safe:
 *   - before the round's sync returned: NAME.tmp may be on disk, whole or
 *     cut short (its tail then fails the record CRC and is skipped), and
 *     some of its copies may be in new/ or not; none of its messages was
 *     answered, so the client sends them again.  Publishing such a file is
 *     harmless (at least once: an event the client's retry will repeat
 *     under another id, or one whose file is gone, which the event builder
 *     reports with the record's fields only);
 *   - after the sync, before NAME.tmp became NAME: the messages may have
 *     been answered 250.  So a store at start renames to NAME every
 *     NAME.tmp whose writer (the pid in its name) is no longer alive
 *     (outbox_writer_open), whichever case it was;
 *   - after the rename: the bridge has it.
 * Two stores run at once across a reload (the old one drains): each
 * touches only its own NAME.tmp files and those of dead pids, so neither
 * renames a file the other is still writing.  A dead writer's pid taken
 * by a live process leaves its files waiting for a later start. */
#include "store/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/log.h"

/* Records of one round: each copy's record is small, but a message to
 * thousands of mailboxes makes as many; bounded all the same. */
#define OUTBOX_ROUND_MAX (256u * 1024u * 1024u)

static bool pid_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Renames the leftover NAME.tmp files of dead writers (see above).
 * Errors are logged: the files wait for the next start. */
static void recover(struct outbox_writer *w)
{
	int fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		log_event(LOG_WARN, "outbox_recover", "error=\"%s\"", strerror(errno));
		return;
	}
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d)) != NULL) {
		long pid = outbox_tmp_pid(e->d_name);
		if (pid <= 0 || (pid != w->pid && pid_alive(pid)))
			continue;
		char final[OUTBOX_NAME_MAX];
		size_t len = strlen(e->d_name) - 4;
		memcpy(final, e->d_name, len);
		final[len] = '\0';
		if (renameat(w->dirfd, e->d_name, w->dirfd, final) < 0) {
			log_event(LOG_WARN, "outbox_recover", "file=%s error=\"%s\"", e->d_name,
			          strerror(errno));
			continue;
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		log_event(LOG_INFO, "outbox_recovered", "files=%zu", n);
}

int outbox_dir_open(int rootfd, long uid, long gid)
{
	int rawfd = -1, fd = -1;
	bool made;
	if (durable_mkdir(rootfd, ".rawmail", 0700, &made) < 0 ||
	    (made && durable_dir_sync(rootfd) < 0))
		return -1;
	rawfd = openat(rootfd, ".rawmail", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rawfd < 0)
		return -1;
	if (durable_mkdir(rawfd, "outbox", 0700, &made) < 0 || (made && durable_dir_sync(rawfd) < 0))
		goto fail;
	fd = openat(rawfd, "outbox", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	/* Made by root for the store's user: the store writes it, and the
	 * bridge (its user too) removes what it published. */
	if (uid >= 0 && fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
		goto fail;
	close(rawfd);
	return fd;
fail:;
	int err = errno;
	if (fd >= 0)
		close(fd);
	close(rawfd);
	errno = err;
	return -1;
}

int outbox_writer_open(struct outbox_writer *w, int dirfd, bool fsync, long pid)
{
	*w = (struct outbox_writer){ .dirfd = dirfd, .fsync = fsync, .pid = pid };
	buf_init(&w->records, OUTBOX_ROUND_MAX);
	struct stat st;
	if (fstat(dirfd, &st) < 0)
		return -1;
	w->dev = (uint64_t)st.st_dev;
	recover(w);
	return 0;
}

void outbox_writer_close(struct outbox_writer *w)
{
	if (w->pending)
		outbox_writer_publish(w);
	buf_free(&w->records);
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
}

void outbox_writer_begin(struct outbox_writer *w)
{
	buf_reset(&w->records);
}

int outbox_writer_add(struct outbox_writer *w, const struct outbox_event *ev)
{
	return outbox_record_append(&w->records, ev);
}

/* The next name: the clock in ns, never less than the last one's + 1, so
 * one store's files sort in its commit order even if the clock steps
 * back. */
static void next_name(struct outbox_writer *w, bool tmp, char *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (ns <= w->last_ns)
		ns = w->last_ns + 1;
	w->last_ns = ns;
	outbox_name_format(out, ns, w->pid, tmp);
}

static int write_file(struct outbox_writer *w, const char *tmpname, bool sync)
{
	if (durable_file_write(w->dirfd, tmpname, 0600, w->records.data, w->records.len, sync) < 0)
		return -1;
	return sync ? durable_dir_sync(w->dirfd) : 0;
}

int outbox_writer_write(struct outbox_writer *w)
{
	if (w->pending)
		outbox_writer_publish(w); /* the caller's bug: never lose a file */
	if (w->records.len == 0)
		return 0;
	char tmp[OUTBOX_NAME_MAX];
	next_name(w, true, tmp);
	if (write_file(w, tmp, w->fsync) < 0) {
		int err = errno;
		unlinkat(w->dirfd, tmp, 0);
		errno = err;
		return -1;
	}
	memcpy(w->name, tmp, sizeof(tmp));
	w->pending = true;
	return 0;
}

/* Messages of the round failed after its sync (their spool entry): the
 * file must lose their records, but the synced NAME.tmp is the only
 * durable record of the others, already answered or about to be.  So the
 * new content goes to a new NAME.tmp, made durable on its own (fsync of
 * it and of the directory: rare, a spool failure), and only then is the
 * old one removed.  A crash in between leaves both (duplicates: at least
 * once); one after it may still bring back the old (its unlink is not
 * synced): an event for a message answered 451, whose file is gone. */
int outbox_writer_rewrite(struct outbox_writer *w)
{
	if (!w->pending)
		return outbox_writer_write(w);
	if (w->records.len == 0) {
		outbox_writer_drop(w);
		return 0;
	}
	char tmp[OUTBOX_NAME_MAX];
	next_name(w, true, tmp);
	if (write_file(w, tmp, true) < 0) {
		int err = errno;
		unlinkat(w->dirfd, tmp, 0);
		errno = err;
		return -1; /* the old file stays: spurious events, none lost */
	}
	unlinkat(w->dirfd, w->name, 0);
	memcpy(w->name, tmp, sizeof(tmp));
	return 0;
}

void outbox_writer_drop(struct outbox_writer *w)
{
	if (w->pending)
		unlinkat(w->dirfd, w->name, 0);
	w->pending = false;
}

int outbox_writer_publish(struct outbox_writer *w)
{
	if (!w->pending)
		return 0;
	w->pending = false;
	char final[OUTBOX_NAME_MAX];
	size_t len = strlen(w->name) - 4;
	memcpy(final, w->name, len);
	final[len] = '\0';
	if (renameat(w->dirfd, w->name, w->dirfd, final) < 0) {
		/* Left as NAME.tmp: the next store start publishes it. */
		log_event(LOG_ERROR, "outbox_publish", "file=%s error=\"%s\"", w->name, strerror(errno));
		return -1;
	}
	return 0;
}
