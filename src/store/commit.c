#include "store/commit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static size_t count_ok(struct store_msg **msgs, size_t n, size_t *nfiles);

static void fail_all(const struct store_env *env, struct store_msg **msgs, size_t n, int err)
{
	/* A failed sync: none of the round's messages is answered 250, so
	 * its outbox file goes too (kept, it would only announce mail that
	 * is not there). */
	if (env->outbox)
		outbox_writer_drop(env->outbox);
	for (size_t i = 0; i < n; i++)
		if (msgs[i]->result == STORE_OK)
			store_msg_fail(env, msgs[i], STORE_TEMPFAIL, "sync", err);
}

/* The outbox (issue 12), after the renames of msgs[0..n): one record per
 * copy now in new/, in answer order, into the round's NAME.tmp, before the
 * sync that makes the renames durable (outbox_write.c).  A message whose
 * records cannot be made, or all of them if the file cannot be written,
 * fail with 451 as for a sync error: a 250 is never given without its
 * event on disk. */
static void outbox_write_round(const struct store_env *env, struct store_msg **msgs, size_t n)
{
	struct outbox_writer *w = env->outbox;
	if (!w)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	outbox_writer_begin(w);
	for (size_t i = 0; i < n; i++) {
		if (msgs[i]->result != STORE_OK)
			continue;
		size_t mark = w->records.len;
		if (store_msg_outbox_add(env, msgs[i], now.tv_sec) < 0) {
			w->records.len = mark;
			if (w->records.data)
				w->records.data[mark] = '\0';
			store_msg_fail(env, msgs[i], STORE_TEMPFAIL, "outbox", ENOMEM);
		}
	}
	if (outbox_writer_write(w) < 0) {
		int err = errno;
		log_event(LOG_ERROR, "outbox_write", "error=\"%s\"", strerror(err));
		for (size_t i = 0; i < n; i++)
			if (msgs[i]->result == STORE_OK)
				store_msg_fail(env, msgs[i], maildir_errno_result(err), "outbox", err);
	}
}

/* After the relayed parts: messages that failed there left new/, so their
 * records leave the file (outbox_writer_rewrite); a round that failed
 * whole drops it. */
static void outbox_after_relay(const struct store_env *env, struct store_msg **msgs, size_t n,
                               size_t ok_before)
{
	struct outbox_writer *w = env->outbox;
	size_t nfiles;
	if (!w || !w->pending)
		return;
	size_t ok = count_ok(msgs, n, &nfiles);
	if (ok == ok_before)
		return;
	if (ok == 0) {
		outbox_writer_drop(w);
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	outbox_writer_begin(w);
	for (size_t i = 0; i < n; i++)
		if (msgs[i]->result == STORE_OK)
			store_msg_outbox_add(env, msgs[i], now.tv_sec); /* fitted before */
	if (outbox_writer_rewrite(w) < 0)
		log_event(LOG_ERROR, "outbox_write", "step=rewrite error=\"%s\"", strerror(errno));
}

/* Step 2 in fsync mode: every file, since each is its own inode. */
static int fsync_files(const struct store_env *env, struct store_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (msgs[i]->result == STORE_OK && store_msg_fsync(env, msgs[i]) < 0)
			return -1;
	return 0;
}

static int mailbox_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The mailbox of every file of every message still STORE_OK in msgs[0..n),
 * appended to boxes (room for all of them), sorted, duplicates kept. */
static size_t collect_mailboxes(struct store_msg **msgs, size_t n, const char **boxes, size_t k)
{
	for (size_t i = 0; i < n; i++) {
		if (msgs[i]->result != STORE_OK)
			continue;
		for (size_t j = 0; j < msgs[i]->nfiles; j++)
			boxes[k++] = msgs[i]->files[j].mailbox;
	}
	return k;
}

static size_t files_ok(struct store_msg **msgs, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (msgs[i]->result == STORE_OK)
			k += msgs[i]->nfiles;
	return k;
}

/* Step 4 in fsync mode: each new/ that received a file, once. */
static int fsync_new_dirs(const struct store_env *env, struct store_msg **msgs, size_t n,
                          size_t nfiles)
{
	const char **boxes = malloc((nfiles ? nfiles : 1) * sizeof(*boxes));
	if (!boxes)
		return -1;
	size_t k = collect_mailboxes(msgs, n, boxes, 0);
	qsort(boxes, k, sizeof(*boxes), mailbox_cmp);
	int rc = 0;
	for (size_t i = 0; i < k && rc == 0; i++)
		if (i == 0 || strcmp(boxes[i], boxes[i - 1]) != 0)
			rc = maildir_fsync(env->rootfd, boxes[i], "new", NULL);
	int err = errno;
	free(boxes);
	errno = err;
	return rc;
}

/* The syncfs mode's sync (issue 8 item 8).  syncfs flushes one filesystem,
 * and a mailbox may be a mount point of another: its file and rename would
 * still be in memory after a syncfs of the mail root alone.  So every
 * filesystem holding a file of msgs (the messages of both sets of a round)
 * is synced once: the mail root's, if any file is on it, and one syncfs per
 * other device, through a descriptor of a mailbox's tmp/ on it.  With every
 * mailbox on the mail root's filesystem (the common case) this is the one
 * syncfs(mailroot) it always was.  0, or -1 with errno. */
static int sync_filesystems(const struct store_env *env, struct store_msg **a, size_t na,
                            struct store_msg **b, size_t nb, size_t *nfs)
{
	size_t nfiles = files_ok(a, na) + files_ok(b, nb);
	*nfs = 0;
	if (nfiles == 0)
		return 0;
	const char **boxes = malloc(nfiles * sizeof(*boxes));
	int *fds = malloc(nfiles * sizeof(*fds));
	dev_t *devs = malloc(nfiles * sizeof(*devs));
	struct stat root_st;
	int rc = -1;
	size_t nother = 0;
	bool root_used = false;
	if (!boxes || !fds || !devs || fstat(env->rootfd, &root_st) < 0)
		goto out;
	size_t k = collect_mailboxes(b, nb, boxes, collect_mailboxes(a, na, boxes, 0));
	qsort(boxes, k, sizeof(*boxes), mailbox_cmp);
	for (size_t i = 0; i < k; i++) {
		if (i > 0 && strcmp(boxes[i], boxes[i - 1]) == 0)
			continue;
		/* Its tmp/: a file's data is there before its rename, and new/
		 * is on the same mount or the rename failed (EXDEV). */
		int fd = maildir_open_dir(env->rootfd, boxes[i], "tmp");
		struct stat st;
		if (fd < 0)
			goto out;
		if (fstat(fd, &st) < 0) {
			int err = errno;
			close(fd);
			errno = err;
			goto out;
		}
		bool known = st.st_dev == root_st.st_dev;
		root_used |= known;
		for (size_t j = 0; j < nother && !known; j++)
			known = devs[j] == st.st_dev;
		if (known) {
			close(fd);
			continue;
		}
		devs[nother] = st.st_dev;
		fds[nother++] = fd;
	}
	/* The outbox's NAME.tmp is made durable by the same sync: its
	 * filesystem is synced too, even when no mail file is on it. */
	int extra = -1;
	if (env->outbox && env->outbox->pending) {
		dev_t dev = (dev_t)env->outbox->dev;
		bool known = dev == root_st.st_dev;
		root_used |= known;
		for (size_t j = 0; j < nother && !known; j++)
			known = devs[j] == dev;
		if (!known)
			extra = env->outbox->dirfd;
	}
	rc = 0;
	if (extra >= 0) {
		rc = syncfs(extra);
		++*nfs;
	}
	if (root_used && rc == 0) {
		rc = syncfs(env->rootfd);
		++*nfs;
	}
	for (size_t j = 0; j < nother && rc == 0; j++) {
		rc = syncfs(fds[j]);
		++*nfs;
	}
out:;
	int err = errno;
	for (size_t j = 0; j < nother; j++)
		close(fds[j]);
	free(boxes);
	free(fds);
	free(devs);
	errno = err;
	return rc;
}

static size_t count_ok(struct store_msg **msgs, size_t n, size_t *nfiles)
{
	size_t ok = 0;
	*nfiles = 0;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i]->result == STORE_OK) {
			ok++;
			*nfiles += msgs[i]->nfiles;
		}
	}
	return ok;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void log_stored(struct store_msg **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct store_msg *m = msgs[i];
		if (m->result != STORE_OK)
			continue;
		if (m->nrelay > 0)
			log_event(LOG_INFO, "stored", "qid=%s files=%zu relayed=%zu id=%s size=%" PRIu64,
			          m->qid, m->nfiles, m->nrelay, m->relay_id, m->content_len);
		else
			log_event(LOG_INFO, "stored", "qid=%s files=%zu size=%" PRIu64, m->qid, m->nfiles,
			          m->content_len);
	}
}

void store_commit_batch(const struct store_env *env, struct store_msg **msgs, size_t n)
{
	/* Per-step times in the batch line: where a batch's time goes is
	 * what the benchmarks need to see (file creation or syncing). */
	struct timespec t0;
	double ms[4];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool fsync_mode = env->sync == STORE_SYNC_FSYNC;
	size_t nfiles, nfs = 0;

	for (size_t i = 0; i < n; i++)
		store_msg_write(env, msgs[i]);
	ms[0] = ms_since(&t0);

	if (count_ok(msgs, n, &nfiles) > 0) {
		int rc = fsync_mode ? fsync_files(env, msgs, n)
		                    : sync_filesystems(env, msgs, n, NULL, 0, &nfs);
		if (rc < 0)
			fail_all(env, msgs, n, errno);
	}
	ms[1] = ms_since(&t0);

	for (size_t i = 0; i < n; i++)
		store_msg_rename(env, msgs[i]);
	outbox_write_round(env, msgs, n);
	ms[2] = ms_since(&t0);

	if (count_ok(msgs, n, &nfiles) > 0) {
		int rc = fsync_mode ? fsync_new_dirs(env, msgs, n, nfiles)
		                    : sync_filesystems(env, msgs, n, NULL, 0, &nfs);
		if (rc < 0)
			fail_all(env, msgs, n, errno);
	}
	ms[3] = ms_since(&t0);

	size_t ok_before = count_ok(msgs, n, &nfiles);
	for (size_t i = 0; i < n; i++)
		store_msg_relay(env, msgs[i]);
	outbox_after_relay(env, msgs, n, ok_before);
	log_stored(msgs, n);
	size_t ok = count_ok(msgs, n, &nfiles);
	log_event(LOG_DEBUG, "batch",
	          "n=%zu ok=%zu files=%zu sync=%s ms=%.3f "
	          "write_ms=%.3f sync1_ms=%.3f rename_ms=%.3f sync2_ms=%.3f filesystems=%zu",
	          n, ok, nfiles, fsync_mode ? "fsync" : "syncfs", ms[3], ms[0], ms[1] - ms[0],
	          ms[2] - ms[1], ms[3] - ms[2], nfs);
}

void store_commit_round(const struct store_env *env, struct store_msg **renaming, size_t nr,
                        struct store_msg **writing, size_t nw)
{
	struct timespec t0;
	double ms[3];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t nfs;
	for (size_t i = 0; i < nw; i++)
		store_msg_write(env, writing[i]);
	ms[0] = ms_since(&t0);
	for (size_t i = 0; i < nr; i++)
		store_msg_rename(env, renaming[i]);
	outbox_write_round(env, renaming, nr);
	ms[1] = ms_since(&t0);
	if (sync_filesystems(env, writing, nw, renaming, nr, &nfs) < 0) {
		int err = errno;
		fail_all(env, writing, nw, err);
		fail_all(env, renaming, nr, err);
	}
	ms[2] = ms_since(&t0);
	size_t nfiles, ok_before = count_ok(renaming, nr, &nfiles);
	for (size_t i = 0; i < nr; i++)
		store_msg_relay(env, renaming[i]);
	outbox_after_relay(env, renaming, nr, ok_before);
	log_stored(renaming, nr);
	/* The same fields as a two-phase batch line: the one sync of a round
	 * is reported as sync1, so bench/ reads both alike. */
	log_event(LOG_DEBUG, "batch",
	          "n=%zu renamed=%zu sync=syncfs-pipelined ms=%.3f "
	          "write_ms=%.3f sync1_ms=%.3f rename_ms=%.3f sync2_ms=0 filesystems=%zu",
	          nw, nr, ms[2], ms[0], ms[2] - ms[1], ms[1] - ms[0], nfs);
}
