#include "store/message.h"

#include <errno.h>
#include <stdio.h>
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
	if (s->len)
		memcpy(p, s->p, s->len);
	p[s->len] = '\0';
	*arena += s->len + 1;
	return p;
}

/* A recipient while the files are worked out. */
struct rcpt {
	const char *address;
	const char *mailbox;
	size_t index;          /* order of RCPT */
};

static int rcpt_cmp(const void *a, const void *b)
{
	const struct rcpt *x = a, *y = b;
	int c = strcmp(x->mailbox, y->mailbox);
	if (!c)
		c = strcmp(x->address, y->address);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

static const char xot[] = "X-Original-To: ", dto[] = "Delivered-To: ";

/* The domain of an address as smtp_address_format wrote it (after its last
 * '@'; policy never accepts an '@' in a local part), NULL for a bare
 * <postmaster>. */
static const char *address_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : NULL;
}

/* "Delivered-To: mailbox@domain\n" into out (NULL: only measures).  A
 * domain name is folded to lower case, as the mailbox is; a literal keeps
 * its form ("IPv6:" tag). */
static size_t delivered_to(char *out, const char *mailbox, const char *domain)
{
	size_t mlen = strlen(mailbox), dlen = domain ? strlen(domain) : 0;
	size_t n = sizeof(dto) - 1 + mlen + (domain ? 1 + dlen : 0) + 1;
	if (!out)
		return n;
	memcpy(out, dto, sizeof(dto) - 1);
	out += sizeof(dto) - 1;
	memcpy(out, mailbox, mlen);
	out += mlen;
	if (domain) {
		*out++ = '@';
		bool literal = domain[0] == '[';
		for (size_t i = 0; i < dlen; i++) {
			char c = domain[i];
			*out++ = !literal && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
	}
	*out = '\n';
	return n;
}

/* One file per distinct mailbox (issue 8, item 4): a message to bob,
 * bob+1 ... bob+1000 and BOB is one copy, not a thousand.  Each file names
 * every distinct address given for its mailbox in an X-Original-To line
 * (and no other mailbox's: they would leak Bcc recipients), and the mailbox
 * in Delivered-To, with the domain of its first recipient.  Sorting makes
 * this O(n log n) for a peer that sends thousands of recipients. */
/* The head of the file for r[i..j) (one mailbox) into out, or with out
 * NULL only its length. */
static size_t head_write(char *out, const struct rcpt *r, size_t i, size_t j, size_t *lfs)
{
	size_t n = 0, first = i;
	*lfs = 0;
	for (size_t k = i; k < j; k++) {
		if (r[k].index < r[first].index)
			first = k;
		if (k > i && strcmp(r[k].address, r[k - 1].address) == 0)
			continue; /* the same recipient twice */
		size_t alen = strlen(r[k].address);
		if (out) {
			memcpy(out + n, xot, sizeof(xot) - 1);
			memcpy(out + n + sizeof(xot) - 1, r[k].address, alen);
			out[n + sizeof(xot) - 1 + alen] = '\n';
		}
		n += sizeof(xot) - 1 + alen + 1;
		++*lfs;
	}
	n += delivered_to(out ? out + n : NULL, r[i].mailbox, address_domain(r[first].address));
	++*lfs;
	return n;
}

static int rcpt_index_cmp(const void *a, const void *b)
{
	const struct rcpt *x = *(const struct rcpt *const *)a, *y = *(const struct rcpt *const *)b;
	return (x->index > y->index) - (x->index < y->index);
}

/* The copy's recipients for its event (r[i..j), sorted by address then
 * index): each distinct address once, at its first RCPT, in RCPT order. */
static void to_build(struct store_msg *m, struct store_file *f, const struct rcpt *r, size_t i,
                     size_t j, const char **out)
{
	const struct rcpt **first = (const struct rcpt **)out;
	size_t k = 0;
	for (size_t x = i; x < j; x++)
		if (x == i || strcmp(r[x].address, r[x - 1].address) != 0)
			first[k++] = &r[x];
	qsort(first, k, sizeof(first[0]), rcpt_index_cmp);
	for (size_t x = 0; x < k; x++)
		out[x] = first[x]->address;
	f->to = out;
	f->nto = k;
}

/* One file per distinct mailbox (issue 8, item 4): a message to bob,
 * bob+1 ... bob+1000 and BOB is one copy, not a thousand.  Each file names
 * every distinct address given for its mailbox in an X-Original-To line
 * (and no other mailbox's: they would leak Bcc recipients), and the mailbox
 * in Delivered-To, with the domain of its first recipient.  Sorting makes
 * this O(n log n) for a peer that sends thousands of recipients. */
static int files_build(struct store_msg *m, struct rcpt *r, size_t n)
{
	qsort(r, n, sizeof(r[0]), rcpt_cmp);
	size_t total = 0, lfs;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(r[j].mailbox, r[i].mailbox) == 0; j++)
			;
		total += head_write(NULL, r, i, j, &lfs);
	}
	char *p = m->heads = malloc(total + 1);
	const char **tos = m->tos = malloc((n ? n : 1) * sizeof(*tos));
	if (!p || !tos)
		return -1;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(r[j].mailbox, r[i].mailbox) == 0; j++)
			;
		struct store_file *f = &m->files[m->nfiles++];
		f->mailbox = r[i].mailbox;
		f->head = p;
		f->head_len = head_write(p, r, i, j, &lfs);
		f->head_lfs = lfs;
		p += f->head_len;
		to_build(m, f, r, i, j, tos);
		tos += f->nto;
	}
	*p = '\0';
	return 0;
}

/* LF-form text onto the relayed part, each LF as CR LF: the spool keeps
 * the bytes the queue sends (QUEUE.md), as rawmail send and sendmail -bs
 * queue them.  The text holds no CR LF pair (the smtp process decoded
 * them), so each LF is a line end of its own. */
static int relay_append(struct store_msg *m, const char *data, size_t len)
{
	const char *end = data + len;
	while (data < end) {
		const char *nl = memchr(data, '\n', (size_t)(end - data));
		size_t n = nl ? (size_t)(nl - data) : (size_t)(end - data);
		if (buf_append(&m->relay_msg, data, n) < 0 ||
		    (nl && buf_append(&m->relay_msg, "\r\n", 2) < 0))
			return -1;
		data += n + (nl != NULL);
	}
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A relayed address given twice is queued once (as a mailbox given twice
 * gets one file): the spool entry would deliver it twice.  Sorted, so
 * thousands of recipients cost O(n log n); the order of an envelope's
 * recipients means nothing to the queue. */
static void relay_unique(struct store_msg *m)
{
	if (m->nrelay < 2)
		return;
	qsort(m->relay, m->nrelay, sizeof(m->relay[0]), str_cmp);
	size_t k = 1;
	for (size_t i = 1; i < m->nrelay; i++)
		if (strcmp(m->relay[i], m->relay[k - 1]) != 0)
			m->relay[k++] = m->relay[i];
	m->nrelay = k;
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
	size_t total = b->qid.len + 1 + b->sender.len + 1 + b->received.len + 1 + b->signer.len + 1 +
	               b->client_ip.len + 1 + b->helo.len + 1;
	size_t pos = 0;
	for (uint32_t i = 0; i < b->nrcpts; i++) {
		struct frame_str a, mb;
		frame_begin_rcpt(b, &pos, &a, &mb);
		total += a.len + 1 + mb.len + 1;
	}
	char *arena = malloc(total);
	m->files = calloc(b->nrcpts, sizeof(m->files[0]));
	struct rcpt *r = calloc(b->nrcpts, sizeof(*r));
	m->relay = calloc(b->nrcpts, sizeof(m->relay[0]));
	if (!arena || !m->files || !r || !m->relay) {
		free(arena);
		free(m->files);
		free(m->relay);
		free(r);
		free(m);
		return NULL;
	}
	buf_init(&m->relay_msg, STORE_RELAY_MESSAGE_MAX);
	m->qid = copy_str(&arena, &b->qid); /* the arena's start: freed through qid */
	m->sender = copy_str(&arena, &b->sender);
	m->received = copy_str(&arena, &b->received);
	m->signer = copy_str(&arena, &b->signer);
	m->client_ip = copy_str(&arena, &b->client_ip);
	m->helo = copy_str(&arena, &b->helo);
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
		free(r);
		return m;
	}
	pos = 0;
	size_t nlocal = 0;
	for (uint32_t i = 0; i < b->nrcpts; i++) {
		struct frame_str a, mb;
		frame_begin_rcpt(b, &pos, &a, &mb);
		const char *address = copy_str(&arena, &a);
		const char *mailbox = copy_str(&arena, &mb);
		if (!*mailbox) {
			m->relay[m->nrelay++] = address; /* relayed: no file */
			continue;
		}
		r[nlocal].address = address;
		r[nlocal].mailbox = mailbox;
		r[nlocal].index = nlocal;
		nlocal++;
	}
	int rc = files_build(m, r, nlocal);
	free(r);
	relay_unique(m);
	if (rc < 0 || (m->nrelay > 0 && relay_append(m, m->received, m->received_len) < 0)) {
		store_msg_free(m);
		return NULL;
	}
	return m;
}

/* Content leaves memory: out of the budget too. */
static void mem_release(struct store_msg *m)
{
	if (m->memory)
		store_memory_set(m->memory, &m->mem_node, 0);
	buf_free(&m->mem);
}

void store_msg_free(struct store_msg *m)
{
	if (!m)
		return;
	if (m->stream_fd >= 0)
		close(m->stream_fd);
	mem_release(m);
	buf_free(&m->relay_msg);
	free(m->relay);
	free(m->qid);
	free(m->heads);
	free(m->tos);
	free(m->files);
	free(m);
}

#define HEADER_IOV 5

/* The header lines of file f as HEADER_IOV iovecs; returns their length. */
static size_t header_iov(const struct store_msg *m, const struct store_file *f, struct iovec *iov)
{
	static const char rp[] = "Return-Path: <", rp_end[] = ">\n";
	iov[0] = (struct iovec){ (void *)rp, sizeof(rp) - 1 };
	iov[1] = (struct iovec){ m->sender, strlen(m->sender) };
	iov[2] = (struct iovec){ (void *)rp_end, sizeof(rp_end) - 1 };
	iov[3] = (struct iovec){ (void *)f->head, f->head_len };
	iov[4] = (struct iovec){ m->received, m->received_len };
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
	/* One LF ends Return-Path; the sender holds none (frame_begin_check). */
	return store_msg_file_size(m, f) + 1 + f->head_lfs + m->received_lfs + m->content_lfs;
}

uint64_t store_msg_disk_pending(const struct store_msg *m)
{
	uint64_t n = 0;
	for (size_t i = m->streaming ? 1 : 0; i < m->nfiles; i++)
		n += store_msg_file_size(m, &m->files[i]);
	return n;
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
		.sec = m->sec, .usec = m->usec, .pid = env->pid, .qid = m->qid, .seq = 0,
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

/* Creates f in tmp/, writes iov to it, appends copy_len octets of the file
 * copy_fd from copy_off (none when copy_fd < 0), and closes it: 0, or -1
 * with errno.  On a network filesystem close may report a write error that
 * write did not, so its result counts like write's.  The one place that
 * fills a whole file, for both the in-memory and the streamed shapes. */
static int file_fill(const struct store_env *env, struct store_msg *m, struct store_file *f,
                     struct iovec *iov, int iovcnt, int copy_fd, off_t copy_off, uint64_t copy_len)
{
	int fd = file_create(env, m, f);
	if (fd < 0)
		return -1;
	if (maildir_write_all(fd, iov, iovcnt) < 0 ||
	    (copy_fd >= 0 && maildir_copy(copy_fd, copy_off, fd, copy_len) < 0)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
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
	mem_release(m);
	return 0;
}

static void stream_or_fail(const struct store_env *env, struct store_msg *m, const char *data,
                           size_t len)
{
	if (stream_start(env, m, data, len) < 0)
		store_msg_fail(env, m, maildir_errno_result(errno), "write", errno);
}

static struct store_msg *msg_of_mem(struct store_memory_node *n)
{
	return (struct store_msg *)((char *)n - offsetof(struct store_msg, mem_node));
}

/* Issue 8, item 5: before m's buffer grows by len, the largest messages in
 * memory (m among them) move to their tmp/ files until the growth fits the
 * budget.  Streaming earlier costs a file creation now instead of at the
 * batch; the content is written once either way. */
static void budget_make_room(const struct store_env *env, struct store_msg *m, size_t len)
{
	if (m->mem.len + len + 1 <= m->mem.cap)
		return; /* no allocation */
	/* buf_append at most doubles the buffer or sizes it to fit. */
	size_t growth = m->mem.cap + len + 1;
	while (!m->streaming && m->result == STORE_OK && store_memory_over(env->memory, growth)) {
		struct store_memory_node *n = store_memory_largest(env->memory);
		if (!n || n == &m->mem_node || n->bytes < growth) {
			/* m is about to be the largest: it goes to disk. */
			stream_or_fail(env, m, NULL, 0);
			return;
		}
		stream_or_fail(env, msg_of_mem(n), NULL, 0);
	}
}

void store_msg_append(const struct store_env *env, struct store_msg *m, const char *data,
                      size_t len)
{
	if (m->result != STORE_OK)
		return; /* already failed: the content goes nowhere */
	m->content_len += len;
	m->content_lfs += maildir_count_lf(data, len);
	if (m->nrelay > 0 && relay_append(m, data, len) < 0) {
		/* Over STORE_RELAY_MESSAGE_MAX, or out of memory. */
		store_msg_fail(env, m, STORE_TEMPFAIL, "relay buffer",
		               m->relay_msg.len + len > m->relay_msg.max ? EFBIG : ENOMEM);
		return;
	}
	if (m->nfiles == 0)
		return; /* relayed only: no Maildir copy */
	if (!m->streaming && m->mem.len + len <= STORE_MEMORY_MESSAGE_MAX) {
		if (env->memory)
			budget_make_room(env, m, len);
		if (m->result != STORE_OK)
			return;
	}
	if (m->streaming) {
		struct iovec iov = { (void *)data, len };
		if (maildir_write_all(m->stream_fd, &iov, 1) < 0)
			store_msg_fail(env, m, maildir_errno_result(errno), "write", errno);
		return;
	}
	if (m->mem.len + len <= STORE_MEMORY_MESSAGE_MAX) {
		if (buf_append(&m->mem, data, len) < 0) {
			store_msg_fail(env, m, STORE_TEMPFAIL, "memory", ENOMEM);
			return;
		}
		if (env->memory) {
			m->memory = env->memory;
			store_memory_set(m->memory, &m->mem_node, m->mem.cap);
		}
		return;
	}
	stream_or_fail(env, m, data, len);
}

/* A streamed message's other files: header, then the content copied from
 * the first file, past that file's own header. */
static int write_streamed(const struct store_env *env, struct store_msg *m)
{
	struct iovec iov[HEADER_IOV];
	size_t first_header = header_iov(m, &m->files[0], iov);
	for (size_t i = 1; i < m->nfiles; i++) {
		header_iov(m, &m->files[i], iov);
		if (file_fill(env, m, &m->files[i], iov, HEADER_IOV, m->stream_fd,
		              (off_t)first_header, m->content_len) < 0)
			return -1;
	}
	int fd = m->stream_fd;
	m->stream_fd = -1;
	return close(fd);
}

static int write_from_memory(const struct store_env *env, struct store_msg *m)
{
	if (!m->named)
		name_init(m);
	struct iovec iov[HEADER_IOV + 1];
	for (size_t i = 0; i < m->nfiles; i++) {
		header_iov(m, &m->files[i], iov);
		iov[HEADER_IOV] = (struct iovec){ m->mem.data, m->mem.len };
		if (file_fill(env, m, &m->files[i], iov, HEADER_IOV + 1, -1, 0, 0) < 0)
			return -1;
	}
	mem_release(m);
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

int store_msg_outbox_add(const struct store_env *env, const struct store_msg *m, int64_t now)
{
	char name[MAILDIR_NAME_MAX + 1];
	char path[FRAME_MAILBOX_MAX + 5 + MAILDIR_NAME_MAX + 1];
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct store_file *f = &m->files[i];
		if (!f->in_new)
			continue;
		if (file_name(env, m, f, true, name, sizeof(name)) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s/new/%s", f->mailbox, name);
		struct outbox_event ev = {
			.id = m->qid, .mailbox = f->mailbox, .path = path, .from = m->sender,
			.to = f->to, .nto = f->nto, .client_ip = m->client_ip, .helo = m->helo,
			.size = store_msg_file_size(m, f), .time = now,
		};
		if (outbox_writer_add(env->outbox, &ev) < 0)
			return -1;
	}
	return 0;
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
	mem_release(m);
	buf_free(&m->relay_msg);
}

void store_msg_relay(const struct store_env *env, struct store_msg *m)
{
	if (m->result != STORE_OK || m->nrelay == 0)
		return;
	enum store_result res =
	        store_relay_enqueue(env->relay, m->qid, m->sender, m->relay, m->nrelay,
	                            m->relay_msg.data ? m->relay_msg.data : "", m->relay_msg.len,
	                            m->signer, m->relay_id);
	int err = errno;
	buf_free(&m->relay_msg);
	if (res != STORE_OK)
		store_msg_fail(env, m, res, "spool", err ? err : EIO);
}
