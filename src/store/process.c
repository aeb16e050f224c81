/* store_process_run: the store process's event loop.  Frames are handled
 * as they arrive; a message whose COMMIT arrived waits in the queue, and
 * the batch runs from an event of lower priority than the socket's, so it
 * runs only once every readable frame has been handled: whatever committed
 * meanwhile shares the batch's two syncs.  No timer delays a commit. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "store/commit.h"
#include "store/frame.h"
#include "store/memory.h"
#include "store/message.h"
#include "store/newbox.h"
#include "store/txnmap.h"
#include "util/limits.h"
#include "util/log.h"

/* Messages per batch: bounds the work between two looks at the socket. */
#define STORE_BATCH_MAX 256
/* A client that never lets the socket run dry (a long stream of DATA)
 * would starve the low-priority batch: past this wait, or STORE_BATCH_MAX
 * messages, the batch runs from the read callback. */
#define STORE_BATCH_WAIT_MS 50
/* SPACE at least this often (store.h promises once a second). */
#define STORE_SPACE_INTERVAL_S 1
/* Read more than libevent's 16 KiB default per callback: DATA frames are
 * up to 64 KiB. */
#define STORE_READ_MAX (256 * 1024)

enum { PRIO_IO = 0, PRIO_BATCH = 1, PRIO_COUNT = 2 };

struct store_proc {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *ev_batch;
	struct event *ev_space;
	struct store_env env;
	struct store_memory memory;    /* content of the messages in memory */
	struct newbox newbox;          /* Maildirs granted in the last hour */
	struct store_relay relay;      /* the spool, for relayed recipients */
	struct outbox_writer outbox;   /* the events outbox, when env.outbox */
	struct txnmap txns;            /* every message from BEGIN to its answer */
	struct store_msg *queue_head;  /* committed, waiting for a batch */
	struct store_msg **queue_tail;
	size_t queue_len;
	struct timespec queue_since;
	/* syncfs mode: written and synced in tmp/, to be renamed next round */
	struct store_msg *synced[STORE_BATCH_MAX];
	size_t nsynced;
	uint64_t last_txn;
	bool eof;                      /* no frame will come any more */
	bool out_dead;                 /* the socket refuses writes */
	bool fatal;                    /* the client broke the protocol */
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void send_frame(struct store_proc *p, const void *frame, size_t len)
{
	if (p->out_dead)
		return;
	if (bufferevent_write(p->bev, frame, len) < 0) {
		log_event(LOG_ERROR, "store_output", "reason=\"out of memory\"");
		p->out_dead = true;
	}
}

static void send_space(struct store_proc *p)
{
	struct statvfs sv;
	if (fstatvfs(p->env.rootfd, &sv) < 0) {
		log_event(LOG_WARN, "statvfs_failed", "error=\"%s\"", strerror(errno));
		return;
	}
	uint8_t frame[FRAME_SPACE_LEN];
	frame_encode_space(frame, (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize);
	send_frame(p, frame, sizeof(frame));
}

/* Sends m's result and forgets m. */
static void answer(struct store_proc *p, struct store_msg *m)
{
	uint8_t frame[FRAME_RESULT_LEN];
	frame_encode_result(frame, m->node.id, m->result);
	send_frame(p, frame, sizeof(frame));
	txnmap_remove(&p->txns, &m->node);
	store_msg_free(m);
}

/* The round's outbox file becomes visible to the bridge once its messages
 * are answered (issue 12: no event before the 250).  The answers are
 * pushed to the socket first, so that the smtp process has them before
 * the bridge can see the file; what the socket cannot take now still goes
 * out in order.  Either way the copies are durable in new/ for good by
 * now: nothing after this point removes them. */
static void outbox_publish(struct store_proc *p)
{
	if (!p->env.outbox || !p->env.outbox->pending)
		return;
	struct evbuffer *out = bufferevent_get_output(p->bev);
	if (!p->out_dead && evbuffer_get_length(out) > 0)
		evbuffer_write(out, bufferevent_getfd(p->bev));
	outbox_writer_publish(p->env.outbox);
}

static void maybe_finish(struct store_proc *p)
{
	if (!p->eof || p->queue_len > 0 || p->nsynced > 0)
		return;
	if (!p->out_dead && evbuffer_get_length(bufferevent_get_output(p->bev)) > 0)
		return; /* the write callback comes back when it has drained */
	event_base_loopexit(p->base, NULL);
}

/* Issue 8, item 4: a message is written only if all its copies fit in the
 * space left, counting what the batch's earlier messages take, so that one
 * message to many mailboxes is refused (452 4.3.1) before it fills the
 * disk rather than after.  Each file may take one more block than its
 * size. */
static void check_space(struct store_proc *p, struct store_msg **batch, size_t n)
{
	struct statvfs sv;
	if (n == 0 || fstatvfs(p->env.rootfd, &sv) < 0)
		return; /* writing will tell */
	uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	for (size_t i = 0; i < n; i++) {
		struct store_msg *m = batch[i];
		if (m->result != STORE_OK)
			continue;
		uint64_t need = store_msg_disk_pending(m) + (uint64_t)m->nfiles * sv.f_frsize;
		if (need > avail) {
			log_event(LOG_WARN, "store_space", "qid=%s files=%zu need=%" PRIu64
			          " avail=%" PRIu64, m->qid, m->nfiles, need, avail);
			store_msg_fail(&p->env, m, STORE_NOSPACE, "space", ENOSPC);
			continue;
		}
		avail -= need;
	}
}

static void run_batch(struct store_proc *p)
{
	struct store_msg *batch[STORE_BATCH_MAX];
	size_t n = 0;
	while (p->queue_head && n < STORE_BATCH_MAX) {
		struct store_msg *m = p->queue_head;
		p->queue_head = m->next;
		m->next = NULL;
		batch[n++] = m;
	}
	if (!p->queue_head)
		p->queue_tail = &p->queue_head;
	p->queue_len -= n;
	if (p->queue_len > 0) {
		/* The rest waits for the socket to be looked at again. */
		clock_gettime(CLOCK_MONOTONIC, &p->queue_since);
		event_active(p->ev_batch, EV_TIMEOUT, 0);
	}
	check_space(p, batch, n);
	if (p->env.sync == STORE_SYNC_FSYNC) {
		if (n == 0)
			return;
		store_commit_batch(&p->env, batch, n);
		for (size_t i = 0; i < n; i++)
			answer(p, batch[i]);
		outbox_publish(p);
		send_space(p);
		return;
	}
	if (n == 0 && p->nsynced == 0)
		return;
	store_commit_round(&p->env, p->synced, p->nsynced, batch, n);
	for (size_t i = 0; i < p->nsynced; i++)
		answer(p, p->synced[i]);
	p->nsynced = 0;
	outbox_publish(p);
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->result == STORE_OK)
			p->synced[p->nsynced++] = batch[i];
		else
			answer(p, batch[i]);
	}
	/* What was just written and synced is renamed in the next round,
	 * which runs at once if nothing else arrives. */
	if (p->nsynced > 0)
		event_active(p->ev_batch, EV_TIMEOUT, 0);
	send_space(p);
}

static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_proc *p = arg;
	run_batch(p);
	maybe_finish(p);
}

static void space_cb(evutil_socket_t fd, short what, void *arg)
{
	send_space(arg);
}

static void enqueue(struct store_proc *p, struct store_msg *m)
{
	if (p->queue_len == 0)
		clock_gettime(CLOCK_MONOTONIC, &p->queue_since);
	m->next = NULL;
	*p->queue_tail = m;
	p->queue_tail = &m->next;
	p->queue_len++;
	event_active(p->ev_batch, EV_TIMEOUT, 0);
}

/* Drops every message not committed (ABORT, EOF) or, after a protocol
 * error, every message. */
static void drop_messages(struct store_proc *p, bool committed_too)
{
	struct txnmap_node *keep = NULL, *node;
	while ((node = txnmap_pop(&p->txns)) != NULL) {
		struct store_msg *m = store_msg_of(node);
		if (m->committed && !committed_too) {
			node->next = keep; /* free for use once popped */
			keep = node;
			continue;
		}
		store_msg_discard(&p->env, m);
		store_msg_free(m);
	}
	while ((node = keep) != NULL) {
		keep = node->next;
		/* Cannot fail: the buckets it had are still there. */
		txnmap_insert(&p->txns, node);
	}
	if (committed_too) {
		p->queue_head = NULL;
		p->queue_tail = &p->queue_head;
		p->queue_len = 0;
		p->nsynced = 0;
	}
}

static void protocol_error(struct store_proc *p, const char *why, uint64_t txn)
{
	log_event(LOG_ERROR, "store_protocol", "reason=\"%s\" txn=%" PRIu64, why, txn);
	p->fatal = true;
	p->eof = true;
	bufferevent_disable(p->bev, EV_READ);
	drop_messages(p, true);
	event_base_loopexit(p->base, NULL);
}

static struct store_msg *find(struct store_proc *p, uint64_t txn, const char *what)
{
	struct store_msg *m = store_msg_of(txnmap_find(&p->txns, txn));
	if (!m) {
		protocol_error(p, what, txn);
		return NULL;
	}
	if (m->committed) {
		protocol_error(p, "frame for a committed txn", txn);
		return NULL;
	}
	return m;
}

static void handle_begin(struct store_proc *p, const uint8_t *body, size_t len)
{
	struct frame_begin b;
	const char *why;
	if (frame_decode_begin(body, len, &b, &why) != FRAME_OK) {
		protocol_error(p, why, 0);
		return;
	}
	/* Increasing ids make a replayed or reused id an error at once. */
	if (b.txn <= p->last_txn) {
		protocol_error(p, "txn id not increasing", b.txn);
		return;
	}
	p->last_txn = b.txn;
	struct store_msg *m = store_msg_new(&b);
	if (!m || txnmap_insert(&p->txns, &m->node) < 0) {
		store_msg_free(m);
		protocol_error(p, "out of memory", b.txn);
	}
}

/* ASK (issue 8, item 4): does this mailbox exist, and if not, may the
 * client make it?  The file system answers the first; newbox the second.
 * A name the smtp process should never have sent is its bug: ERROR, and
 * the RCPT gets a 451. */
static void handle_ask(struct store_proc *p, const uint8_t *body, size_t len)
{
	uint64_t query;
	const uint8_t *key;
	struct frame_str name;
	const char *why;
	if (frame_decode_ask(body, len, &query, &key, &name, &why) != FRAME_OK) {
		protocol_error(p, why, 0);
		return;
	}
	enum store_mailbox_answer a = STORE_MAILBOX_ERROR;
	char mailbox[FRAME_MAILBOX_MAX + 1], q[FRAME_MAILBOX_MAX * 4 + 8];
	memcpy(mailbox, name.p, name.len);
	mailbox[name.len] = '\0';
	log_quote(q, sizeof(q), name.p, name.len);
	struct stat st;
	if (!frame_mailbox_safe(name.p, name.len)) {
		log_event(LOG_ERROR, "store_bug", "reason=\"unsafe mailbox name asked\"");
	} else if (fstatat(p->env.rootfd, mailbox, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		a = STORE_MAILBOX_EXISTS;
		log_event(LOG_DEBUG, "mailbox_asked", "mailbox=%s result=exists", q);
	} else if (errno != ENOENT) {
		log_event(LOG_WARN, "mailbox_check", "mailbox=%s error=\"%s\"", q, strerror(errno));
	} else {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		a = newbox_decide(&p->newbox, now.tv_sec, key, name.p, name.len);
		char client[64];
		log_event(a == STORE_MAILBOX_GRANTED ? LOG_INFO : LOG_WARN, "new_mailbox",
		          "mailbox=%s client=%s result=%s", q,
		          newbox_key_text(key, client, sizeof(client)),
		          a == STORE_MAILBOX_GRANTED ? "granted"
		          : a == STORE_MAILBOX_LIMIT_CLIENT ? "client_limit"
		          : a == STORE_MAILBOX_LIMIT_TOTAL ? "total_limit" : "error");
	}
	uint8_t frame[FRAME_ANSWER_LEN];
	frame_encode_answer(frame, query, a);
	send_frame(p, frame, sizeof(frame));
}

static void handle_frame(struct store_proc *p, enum frame_type type, const uint8_t *body,
                         size_t len)
{
	const char *why = NULL;
	uint64_t txn = 0;
	struct store_msg *m;

	switch (type) {
	case FRAME_BEGIN:
		handle_begin(p, body, len);
		return;
	case FRAME_ASK:
		handle_ask(p, body, len);
		return;
	case FRAME_DATA: {
		const char *data;
		size_t data_len;
		if (frame_decode_data(body, len, &txn, &data, &data_len, &why) != FRAME_OK)
			break;
		if ((m = find(p, txn, "DATA for an unknown txn")) != NULL)
			store_msg_append(&p->env, m, data, data_len);
		return;
	}
	case FRAME_COMMIT:
		if (frame_decode_txn(body, len, &txn, &why) != FRAME_OK)
			break;
		if ((m = find(p, txn, "COMMIT for an unknown txn")) == NULL)
			return;
		m->committed = true;
		if (m->result != STORE_OK)
			answer(p, m); /* failed already: nothing to sync */
		else
			enqueue(p, m);
		return;
	case FRAME_ABORT:
		if (frame_decode_txn(body, len, &txn, &why) != FRAME_OK)
			break;
		if ((m = find(p, txn, "ABORT for an unknown txn")) == NULL)
			return;
		store_msg_discard(&p->env, m);
		txnmap_remove(&p->txns, &m->node);
		store_msg_free(m);
		return;
	default:
		why = "unexpected frame type";
		break;
	}
	protocol_error(p, why ? why : "malformed frame", txn);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct store_proc *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!p->fatal) {
		enum frame_type type;
		const uint8_t *body;
		size_t body_len;
		const char *why;
		enum frame_status st = frame_next(in, FRAME_FROM_CLIENT, &type, &body, &body_len, &why);
		if (st == FRAME_ERROR)
			protocol_error(p, why, 0);
		if (st != FRAME_OK)
			break;
		handle_frame(p, type, body, body_len);
		evbuffer_drain(in, FRAME_HEADER_LEN + body_len);
	}
	if (!p->fatal && p->queue_len > 0 &&
	    (p->queue_len >= STORE_BATCH_MAX || ms_since(&p->queue_since) >= STORE_BATCH_WAIT_MS))
		run_batch(p);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	maybe_finish(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct store_proc *p = arg;
	if (what & BEV_EVENT_ERROR) {
		if (what & BEV_EVENT_WRITING)
			p->out_dead = true;
		log_event(LOG_WARN, "store_socket", "error=\"%s\"", strerror(EVUTIL_SOCKET_ERROR()));
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (!p->eof) {
		/* The smtp process is gone or done: what it did not commit
		 * will never be, and what it committed is still stored and
		 * answered (it may be reading after a shutdown). */
		size_t partial = evbuffer_get_length(bufferevent_get_input(bev));
		if (partial > 0)
			log_event(LOG_WARN, "store_protocol", "reason=\"truncated frame at EOF\" octets=%zu",
			          partial);
		p->eof = true;
		bufferevent_disable(bev, EV_READ);
		drop_messages(p, false);
	}
	if (what & BEV_EVENT_ERROR)
		p->out_dead = true;
	maybe_finish(p);
}

static int proc_setup(struct store_proc *p, const struct store_config *cfg, int fd)
{
	char host[256];
	const char *hostname = cfg->hostname;
	if (!hostname || !*hostname) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		hostname = host;
	}
	maildir_host_escape(hostname, p->env.host, sizeof(p->env.host));
	p->env.sync = cfg->sync;
	p->env.pid = (long)getpid();
	txnmap_init(&p->txns);
	p->queue_tail = &p->queue_head;
	store_memory_init(&p->memory, STORE_MEMORY_TOTAL_MAX);
	newbox_init(&p->newbox, cfg->new_mailboxes_per_client, cfg->new_mailboxes_total);
	p->env.memory = &p->memory;
	store_relay_init(&p->relay, cfg->spool);
	p->relay.sp = cfg->spool_open;
	p->relay.dkim = cfg->dkim;
	p->relay.ndkim = cfg->ndkim;
	p->env.relay = &p->relay;

	if (cfg->outbox) {
		int dirfd = cfg->outbox_fd >= 0 ? cfg->outbox_fd : outbox_dir_open(p->env.rootfd, -1, -1);
		if (dirfd < 0) {
			/* No store without it: every 250 must have its event. */
			log_event(LOG_ERROR, "outbox_unusable", "dir=%s/%s error=\"%s\"", cfg->mailroot,
			          OUTBOX_DIR, strerror(errno));
			return -1;
		}
		int rc = outbox_writer_open(&p->outbox, dirfd, cfg->sync == STORE_SYNC_FSYNC, p->env.pid);
		p->env.outbox = &p->outbox;
		if (rc < 0) {
			log_event(LOG_ERROR, "outbox_unusable", "dir=%s/%s error=\"%s\"", cfg->mailroot,
			          OUTBOX_DIR, strerror(errno));
			return -1;
		}
	}

	if (evutil_make_socket_nonblocking(fd) < 0)
		return -1;
	/* One thread per process (DESIGN.md): no locking in libevent. */
	struct event_config *ec = event_config_new();
	if (!ec)
		return -1;
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	p->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!p->base || event_base_priority_init(p->base, PRIO_COUNT) < 0)
		return -1;
	p->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	p->ev_batch = event_new(p->base, -1, 0, batch_cb, p);
	p->ev_space = event_new(p->base, -1, EV_PERSIST, space_cb, p);
	if (!p->bev || !p->ev_batch || !p->ev_space)
		return -1;
	bufferevent_priority_set(p->bev, PRIO_IO);
	event_priority_set(p->ev_batch, PRIO_BATCH);
	event_priority_set(p->ev_space, PRIO_IO);
	bufferevent_set_max_single_read(p->bev, STORE_READ_MAX);
	bufferevent_setcb(p->bev, read_cb, write_cb, event_cb, p);
	struct timeval every = { STORE_SPACE_INTERVAL_S, 0 };
	if (bufferevent_enable(p->bev, EV_READ | EV_WRITE) < 0 || event_add(p->ev_space, &every) < 0)
		return -1;
	return 0;
}

static void proc_teardown(struct store_proc *p)
{
	if (p->txns.count)
		drop_messages(p, true);
	txnmap_free(&p->txns);
	newbox_free(&p->newbox);
	store_relay_close(&p->relay);
	if (p->env.outbox)
		outbox_writer_close(p->env.outbox);
	if (p->ev_space)
		event_free(p->ev_space);
	if (p->ev_batch)
		event_free(p->ev_batch);
	if (p->bev)
		bufferevent_free(p->bev);
	if (p->base)
		event_base_free(p->base);
	if (p->env.rootfd >= 0)
		close(p->env.rootfd);
}

int store_process_run(const struct store_config *cfg, int fd)
{
	struct store_proc p = { .env.rootfd = cfg ? cfg->rootfd : -1, .outbox.dirfd = -1 };

	/* Answers written after the smtp process died must give EPIPE, not
	 * kill the store mid-batch.  Blocking SIGPIPE in this thread does
	 * that without changing the process's signal dispositions; a SIGPIPE
	 * left pending by us is consumed before the mask is restored. */
	sigset_t pipe_set, old_mask, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	sigpending(&pending);
	bool pipe_was_pending = sigismember(&pending, SIGPIPE);

	int rc = -1;
	if (!cfg || !cfg->mailroot || cfg->rootfd < 0) {
		log_event(LOG_ERROR, "mailroot_unusable", "reason=\"no mailroot opened\"");
		close(fd);
	} else if (proc_setup(&p, cfg, fd) < 0) {
		if (!p.bev)
			close(fd);
		log_event(LOG_ERROR, "store_start", "reason=\"event loop setup failed\"");
	} else {
		log_event(LOG_INFO, "store_start", "mailroot=%s sync=%s spool=%s outbox=%s",
		          cfg->mailroot, cfg->sync == STORE_SYNC_FSYNC ? "fsync" : "syncfs",
		          cfg->spool ? cfg->spool : "none", cfg->outbox ? "on" : "off");
		send_space(&p);
		event_base_dispatch(p.base);
		rc = p.fatal ? -1 : 0;
	}
	/* Taken over even when the store did not get as far as opening it. */
	if (cfg && cfg->outbox && !p.env.outbox && cfg->outbox_fd >= 0)
		close(cfg->outbox_fd);
	proc_teardown(&p);

	sigpending(&pending);
	if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
