#include "store/message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/limits.h"
#include "util/log.h"

const char *store_result_name(enum store_result r)
{
	switch (r) {
	case STORE_OK:
		return "ok";
	case STORE_TEMPFAIL:
		return "tempfail";
	case STORE_NOSPACE:
		return "nospace";
	}
	return "unknown";
}

static char *copy_str(char **arena, const struct frame_str *s)
{
	char *p = *arena;
	memcpy(p, s->p, s->len);
	p[s->len] = '\0';
	*arena += s->len + 1;
	return p;
}

static int file_cmp(const void *a, const void *b)
{
	const struct store_file *x = a, *y = b;
	int c = strcmp(x->mailbox, y->mailbox);
	return c ? c : strcmp(x->address, y->address);
}

/* One file per distinct (mailbox, address): the same recipient given twice
 * gets one copy, two addresses for one mailbox get one each.  Sorting makes
 * this O(n log n) for a peer that sends thousands of recipients. */
static void files_dedupe(struct store_msg *m)
{
	qsort(m->files, m->nfiles, sizeof(m->files[0]), file_cmp);
	size_t out = 0;
	for (size_t i = 0; i < m->nfiles; i++)
		if (out == 0 || file_cmp(&m->files[out - 1], &m->files[i]) != 0)
			m->files[out++] = m->files[i];
	m->nfiles = out;
	for (size_t i = 0; i < m->nfiles;) {
		size_t j = i + 1;
		while (j < m->nfiles && strcmp(m->files[j].mailbox, m->files[i].mailbox) == 0)
			j++;
		if (j - i > 1)
			for (size_t k = i; k < j; k++)
				m->files[k].seq = (unsigned)(k - i + 1);
		i = j;
	}
}

struct store_msg *store_msg_new(const struct frame_begin *b)
{
	struct store_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->node.id = b->txn;
	m->stream_fd = -1;
	buf_init(&m->mem, STORE_MEMORY_MESSAGE_MAX);

	/* One allocation for every string of the envelope. */
	size_t total = b->qid.len + 1 + b->sender.len + 1 + b->received.len + 1;
	size_t pos = 0;
	for (uint32_t i = 0; i < b->nrcpts; i++) {
		struct frame_str a, mb;
		frame_begin_rcpt(b, &pos, &a, &mb);
		total += a.len + 1 + mb.len + 1;
	}
	char *arena = malloc(total);
	m->files = calloc(b->nrcpts, sizeof(m->files[0]));
	if (!arena || !m->files) {
		free(arena);
		free(m->files);
		free(m);
		return NULL;
	}
	m->qid = copy_str(&arena, &b->qid); /* the arena's start: freed through qid */
	m->sender = copy_str(&arena, &b->sender);
	m->received = copy_str(&arena, &b->received);
	m->received_len = b->received.len;
	m->received_lfs = maildir_count_lf(m->received, m->received_len);

	const char *why = frame_begin_check(b);
	if (why) {
		/* The smtp process validates all of this: reaching here means it
		 * has a bug or is compromised, and a bad name must never become
		 * a path. */
		char q[FRAME_QID_MAX * 4 + 8];
		log_event(LOG_ERROR, "store_bug", "qid=%s reason=\"%s\" result=tempfail",
		          log_quote(q, sizeof(q), b->qid.p, b->qid.len), why);
		m->result = STORE_TEMPFAIL;
		m->nfiles = 0;
		return m;
	}
	pos = 0;
	for (uint32_t i = 0; i < b->nrcpts; i++) {
		struct frame_str a, mb;
		frame_begin_rcpt(b, &pos, &a, &mb);
		m->files[i].address = copy_str(&arena, &a);
		m->files[i].mailbox = copy_str(&arena, &mb);
	}
	m->nfiles = b->nrcpts;
	files_dedupe(m);
	return m;
}

void store_msg_free(struct store_msg *m)
{
	if (!m)
		return;
	if (m->stream_fd >= 0)
		close(m->stream_fd);
	buf_free(&m->mem);
	free(m->qid);
	free(m->files);
	free(m);
}

#define HEADER_IOV 6

/* The header lines of file f as HEADER_IOV iovecs; returns their length. */
static size_t header_iov(const struct store_msg *m, const struct store_file *f, struct iovec *iov)
{
	static const char rp[] = "Return-Path: <", dt[] = ">\nDelivered-To: ";
	iov[0] = (struct iovec){ (void *)rp, sizeof(rp) - 1 };
	iov[1] = (struct iovec){ m->sender, strlen(m->sender) };
	iov[2] = (struct iovec){ (void *)dt, sizeof(dt) - 1 };
	iov[3] = (struct iovec){ (void *)f->address, strlen(f->address) };
	iov[4] = (struct iovec){ (void *)"\n", 1 };
	iov[5] = (struct iovec){ m->received, m->received_len };
	size_t n = 0;
	for (int i = 0; i < HEADER_IOV; i++)
		n += iov[i].iov_len;
	return n;
}

uint64_t store_msg_file_size(const struct store_msg *m, const struct store_file *f)
{
	struct iovec iov[HEADER_IOV];
	return header_iov(m, f, iov) + m->content_len;
}

uint64_t store_msg_file_wsize(const struct store_msg *m, const struct store_file *f)
{
	/* Two LFs end Return-Path and Delivered-To; sender and address hold
	 * none (frame_begin_check). */
	return store_msg_file_size(m, f) + 2 + m->received_lfs + m->content_lfs;
}

static void name_init(struct store_msg *m)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->sec = ts.tv_sec;
	m->usec = ts.tv_nsec / 1000;
	m->named = true;
}

/* tmp/ names carry the sizes only when they are known at creation, that is
 * for a message kept in memory; new/ names always carry them. */
static int file_name(const struct store_env *env, const struct store_msg *m,
                     const struct store_file *f, bool in_new, char *out, size_t outlen)
{
	struct maildir_unique u = {
		.sec = m->sec, .usec = m->usec, .pid = env->pid, .qid = m->qid, .seq = f->seq,
		.host = env->host,
	};
	bool sizes = in_new || !m->streaming;
	if (maildir_name(out, outlen, &u, sizes, store_msg_file_size(m, f),
	                 store_msg_file_wsize(m, f)) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Creates f in tmp/; marks it so that a failure removes it. */
static int file_create(const struct store_env *env, struct store_msg *m, struct store_file *f)
{
	char name[MAILDIR_NAME_MAX + 1];
	if (file_name(env, m, f, false, name, sizeof(name)) < 0)
		return -1;
	int fd = maildir_create_tmp(env->rootfd, f->mailbox, name, env->sync == STORE_SYNC_FSYNC);
	if (fd >= 0)
		f->in_tmp = true;
	return fd;
}

/* On a network filesystem close may report a write error that write did
 * not, so its result counts like write's. */
static int close_checked(int fd)
{
	return close(fd);
}

void store_msg_fail(const struct store_env *env, struct store_msg *m, enum store_result r,
                    const char *what, int err)
{
	if (m->result == STORE_OK) {
		m->result = r == STORE_OK ? STORE_TEMPFAIL : r;
		log_event(LOG_WARN, "store_failed", "qid=%s result=%s step=%s error=\"%s\"", m->qid,
		          store_result_name(m->result), what, strerror(err));
	}
	store_msg_discard(env, m);
}

/* Starts streaming: the first file gets its header, what was in memory and
 * data; the rest of the content will follow it directly. */
static int stream_start(const struct store_env *env, struct store_msg *m, const char *data,
                        size_t len)
{
	if (!m->named)
		name_init(m);
	m->streaming = true;
	struct store_file *f = &m->files[0];
	int fd = file_create(env, m, f);
	if (fd < 0)
		return -1;
	m->stream_fd = fd;
	struct iovec iov[HEADER_IOV + 2];
	header_iov(m, f, iov);
	iov[HEADER_IOV] = (struct iovec){ m->mem.data, m->mem.len };
	iov[HEADER_IOV + 1] = (struct iovec){ (void *)data, len };
	if (maildir_write_all(fd, iov, HEADER_IOV + 2) < 0)
		return -1;
	buf_free(&m->mem);
	return 0;
}

void store_msg_append(const struct store_env *env, struct store_msg *m, const char *data,
                      size_t len)
{
	if (m->result != STORE_OK)
		return; /* already failed: the content goes nowhere */
	m->content_len += len;
	m->content_lfs += maildir_count_lf(data, len);
	if (m->streaming) {
		struct iovec iov = { (void *)data, len };
		if (maildir_write_all(m->stream_fd, &iov, 1) < 0)
			store_msg_fail(env, m, maildir_errno_result(errno), "write", errno);
		return;
	}
	if (m->mem.len + len <= STORE_MEMORY_MESSAGE_MAX) {
		if (buf_append(&m->mem, data, len) < 0)
			store_msg_fail(env, m, STORE_TEMPFAIL, "memory", ENOMEM);
		return;
	}
	if (stream_start(env, m, data, len) < 0)
		store_msg_fail(env, m, maildir_errno_result(errno), "write", errno);
}

/* A streamed message's other files: header, then the content copied from
 * the first file, past that file's own header. */
static int write_streamed(const struct store_env *env, struct store_msg *m)
{
	struct iovec iov[HEADER_IOV];
	size_t first_header = header_iov(m, &m->files[0], iov);
	for (size_t i = 1; i < m->nfiles; i++) {
		struct store_file *f = &m->files[i];
		int fd = file_create(env, m, f);
		if (fd < 0)
			return -1;
		header_iov(m, f, iov);
		if (maildir_write_all(fd, iov, HEADER_IOV) < 0 ||
		    maildir_copy(m->stream_fd, (off_t)first_header, fd, m->content_len) < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		if (close_checked(fd) < 0)
			return -1;
	}
	int fd = m->stream_fd;
	m->stream_fd = -1;
	return close_checked(fd);
}

static int write_from_memory(const struct store_env *env, struct store_msg *m)
{
	if (!m->named)
		name_init(m);
	for (size_t i = 0; i < m->nfiles; i++) {
		struct store_file *f = &m->files[i];
		int fd = file_create(env, m, f);
		if (fd < 0)
			return -1;
		struct iovec iov[HEADER_IOV + 1];
		header_iov(m, f, iov);
		iov[HEADER_IOV] = (struct iovec){ m->mem.data, m->mem.len };
		if (maildir_write_all(fd, iov, HEADER_IOV + 1) < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		if (close_checked(fd) < 0)
			return -1;
	}
	buf_free(&m->mem);
	return 0;
}

void store_msg_write(const struct store_env *env, struct store_msg *m)
{
	if (m->result != STORE_OK)
		return;
	int rc = m->streaming ? write_streamed(env, m) : write_from_memory(env, m);
	if (rc < 0)
		store_msg_fail(env, m, maildir_errno_result(errno), "write", errno);
}

int store_msg_fsync(const struct store_env *env, struct store_msg *m)
{
	char name[MAILDIR_NAME_MAX + 1];
	for (size_t i = 0; i < m->nfiles; i++) {
		struct store_file *f = &m->files[i];
		if (!f->in_tmp)
			continue;
		if (file_name(env, m, f, false, name, sizeof(name)) < 0 ||
		    maildir_fsync(env->rootfd, f->mailbox, "tmp", name) < 0)
			return -1;
	}
	return 0;
}

void store_msg_rename(const struct store_env *env, struct store_msg *m)
{
	char from[MAILDIR_NAME_MAX + 1], to[MAILDIR_NAME_MAX + 1];
	if (m->result != STORE_OK)
		return;
	for (size_t i = 0; i < m->nfiles; i++) {
		struct store_file *f = &m->files[i];
		if (file_name(env, m, f, false, from, sizeof(from)) < 0 ||
		    file_name(env, m, f, true, to, sizeof(to)) < 0 ||
		    maildir_rename(env->rootfd, f->mailbox, from, to, env->sync == STORE_SYNC_FSYNC) < 0) {
			/* All or none: the files already in new/ go too, since the
			 * message will not be acknowledged and the client retries. */
			store_msg_fail(env, m, maildir_errno_result(errno), "rename", errno);
			return;
		}
		f->in_tmp = false;
		f->in_new = true;
	}
}

void store_msg_discard(const struct store_env *env, struct store_msg *m)
{
	char name[MAILDIR_NAME_MAX + 1];
	if (m->stream_fd >= 0) {
		close(m->stream_fd);
		m->stream_fd = -1;
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		struct store_file *f = &m->files[i];
		if (f->in_new && file_name(env, m, f, true, name, sizeof(name)) == 0)
			maildir_unlink(env->rootfd, f->mailbox, "new", name);
		if (f->in_tmp && file_name(env, m, f, false, name, sizeof(name)) == 0)
			maildir_unlink(env->rootfd, f->mailbox, "tmp", name);
		f->in_new = false;
		f->in_tmp = false;
	}
	buf_free(&m->mem);
}
