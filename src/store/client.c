/* store_client: the smtp process's side of the store socket.  Every call
 * returns at once (frames go to a bufferevent's output); results come back
 * through the event loop.  Callbacks run only from this module's own event
 * callbacks, never from inside a store_txn_* call, so a session can call us
 * from anywhere without being re-entered. */
#include "store/store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "store/frame.h"
#include "store/known.h"
#include "store/newbox.h"
#include "store/txnmap.h"
#include "util/buf.h"
#include "util/log.h"

struct store_txn {
	struct txnmap_node node;        /* node.id is the txn id */
	struct store_client *sc;        /* NULL if the client was freed first */
	void (*done)(void *arg, enum store_result r);
	void *arg;
	struct store_txn *next_failed;
	bool in_map;                    /* the store knows it and may answer */
	bool committed;
	bool forgotten;
	bool dead;                      /* cannot reach the store: fails at commit */
};

/* A question about a mailbox, from ASK to its ANSWER. */
struct store_query {
	struct txnmap_node node;        /* node.id is the query id */
	void (*cb)(void *arg, enum store_mailbox_answer a); /* NULL once cancelled */
	void *arg;
	char mailbox[];                 /* remembered if it exists */
};

struct store_client {
	struct event_base *base;
	struct bufferevent *bev;        /* NULL once the store is lost */
	struct event *ev_deferred;      /* delivers failures outside our callers */
	struct store_txn *failed_head;  /* committed while dead: TEMPFAIL */
	struct store_txn **failed_tail;
	struct txnmap txns;             /* BEGIN sent, no RESULT yet */
	struct txnmap queries;          /* ASK sent, no ANSWER yet */
	struct known known;             /* mailboxes the store said exist */
	uint64_t next_query;
	void (*on_lost)(void *arg);
	void *arg;
	void (*on_drain)(void *arg);    /* output fell to STORE_CLIENT_LOW_WATER */
	void *drain_arg;
	uint64_t next_txn;
	uint64_t free_space;
	int busy;                       /* depth of our callbacks in progress */
	bool freeing;                   /* store_client_free called while busy */
	bool lost;                      /* lost, failures not yet delivered */
};

static struct store_txn *txn_of(struct txnmap_node *n)
{
	return n ? (struct store_txn *)((char *)n - offsetof(struct store_txn, node)) : NULL;
}

static struct store_query *query_of(struct txnmap_node *n)
{
	return n ? (struct store_query *)((char *)n - offsetof(struct store_query, node)) : NULL;
}

static void client_destroy(struct store_client *sc)
{
	if (sc->bev)
		bufferevent_free(sc->bev);
	if (sc->ev_deferred)
		event_free(sc->ev_deferred);
	while (sc->failed_head) {
		struct store_txn *t = sc->failed_head;
		sc->failed_head = t->next_failed;
		free(t);
	}
	struct txnmap_node *n;
	while ((n = txnmap_pop(&sc->txns)) != NULL) {
		struct store_txn *t = txn_of(n);
		if (t->committed) {
			free(t); /* ours: its callback will not be called */
		} else {
			/* The caller still holds it; later calls see sc NULL. */
			t->in_map = false;
			t->sc = NULL;
			t->dead = true;
		}
	}
	txnmap_free(&sc->txns);
	while ((n = txnmap_pop(&sc->queries)) != NULL)
		free(query_of(n));
	txnmap_free(&sc->queries);
	known_free(&sc->known);
	free(sc);
}

/* Our callbacks end here: a store_client_free from inside one of them
 * takes effect once none is on the stack. */
static void leave(struct store_client *sc)
{
	if (--sc->busy == 0 && sc->freeing)
		client_destroy(sc);
}

/* The store is gone (EOF, error, or a frame we cannot trust): stop using
 * the socket now, deliver the failures from the event loop. */
static void client_lost(struct store_client *sc, const char *why)
{
	if (!sc->bev)
		return;
	log_event(LOG_ERROR, "store_lost", "reason=\"%s\" pending=%zu", why, sc->txns.count);
	bufferevent_free(sc->bev);
	sc->bev = NULL;
	sc->lost = true;
	event_active(sc->ev_deferred, EV_TIMEOUT, 0);
}

static void deliver(struct store_client *sc, struct store_txn *t, enum store_result r)
{
	if (!t->forgotten && !sc->freeing && t->done)
		t->done(t->arg, r);
	free(t);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_client *sc = arg;
	sc->busy++;
	while (sc->failed_head) {
		struct store_txn *t = sc->failed_head;
		sc->failed_head = t->next_failed;
		if (!sc->failed_head)
			sc->failed_tail = &sc->failed_head;
		deliver(sc, t, STORE_TEMPFAIL);
	}
	if (sc->lost) {
		sc->lost = false;
		/* One at a time: a callback may abort or forget another txn,
		 * which must then still be in the map or already out of it. */
		struct txnmap_node *n;
		while ((n = txnmap_pop(&sc->txns)) != NULL) {
			struct store_txn *t = txn_of(n);
			t->in_map = false;
			if (t->committed)
				deliver(sc, t, STORE_TEMPFAIL);
			else
				t->dead = true; /* the caller still holds it */
		}
		/* The questions fail too; popped one at a time for the same
		 * reason. */
		while ((n = txnmap_pop(&sc->queries)) != NULL) {
			struct store_query *q = query_of(n);
			if (q->cb && !sc->freeing)
				q->cb(q->arg, STORE_MAILBOX_ERROR);
			free(q);
		}
		if (sc->on_lost && !sc->freeing)
			sc->on_lost(sc->arg);
	}
	leave(sc);
}

static void fail_later(struct store_client *sc, struct store_txn *t)
{
	t->next_failed = NULL;
	*sc->failed_tail = t;
	sc->failed_tail = &t->next_failed;
	event_active(sc->ev_deferred, EV_TIMEOUT, 0);
}

static void handle_result(struct store_client *sc, const uint8_t *body, size_t len)
{
	uint64_t id;
	enum store_result r;
	const char *why;
	if (frame_decode_result(body, len, &id, &r, &why) != FRAME_OK) {
		client_lost(sc, why);
		return;
	}
	struct store_txn *t = txn_of(txnmap_find(&sc->txns, id));
	if (!t || !t->committed) {
		/* The store answers only what was committed. */
		client_lost(sc, t ? "RESULT before COMMIT" : "RESULT for an unknown txn");
		return;
	}
	txnmap_remove(&sc->txns, &t->node);
	t->in_map = false;
	deliver(sc, t, r);
}

static int64_t now_s(const struct store_client *sc)
{
	struct timeval tv;
	event_base_gettimeofday_cached(sc->base, &tv);
	return (int64_t)tv.tv_sec;
}

static void handle_answer(struct store_client *sc, const uint8_t *body, size_t len)
{
	uint64_t id;
	enum store_mailbox_answer a;
	const char *why;
	if (frame_decode_answer(body, len, &id, &a, &why) != FRAME_OK) {
		client_lost(sc, why);
		return;
	}
	struct store_query *q = query_of(txnmap_find(&sc->queries, id));
	if (!q) {
		client_lost(sc, "ANSWER for an unknown query");
		return;
	}
	txnmap_remove(&sc->queries, &q->node);
	if (a == STORE_MAILBOX_EXISTS || a == STORE_MAILBOX_GRANTED)
		known_add(&sc->known, q->mailbox, now_s(sc));
	if (q->cb)
		q->cb(q->arg, a);
	free(q);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct store_client *sc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	sc->busy++;
	while (sc->bev && !sc->freeing) {
		enum frame_type type;
		const uint8_t *pulled;
		size_t body_len;
		const char *why;
		enum frame_status st = frame_next(in, FRAME_FROM_STORE, &type, &pulled, &body_len, &why);
		if (st == FRAME_ERROR)
			client_lost(sc, why);
		if (st != FRAME_OK)
			break;
		/* Copied out first: a callback below may free the buffer. */
		uint8_t body[9]; /* RESULT, SPACE and ANSWER are tiny */
		memcpy(body, pulled, body_len);
		evbuffer_drain(in, FRAME_HEADER_LEN + body_len);
		if (type == FRAME_RESULT) {
			handle_result(sc, body, body_len);
		} else if (type == FRAME_ANSWER) {
			handle_answer(sc, body, body_len);
		} else {
			uint64_t space;
			if (frame_decode_space(body, body_len, &space, &why) != FRAME_OK)
				client_lost(sc, why);
			else
				sc->free_space = space;
		}
	}
	leave(sc);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct store_client *sc = arg;
	if (sc->on_drain)
		sc->on_drain(sc->drain_arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct store_client *sc = arg;
	if (what & BEV_EVENT_EOF)
		client_lost(sc, "store closed the connection");
	else if (what & BEV_EVENT_ERROR)
		client_lost(sc, "socket error");
}

struct store_client *store_client_new(struct event_base *base, int fd,
                                      void (*on_lost)(void *arg), void *arg)
{
	struct store_client *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		close(fd);
		return NULL;
	}
	sc->base = base;
	sc->on_lost = on_lost;
	sc->arg = arg;
	sc->free_space = UINT64_MAX;
	sc->failed_tail = &sc->failed_head;
	txnmap_init(&sc->txns);
	txnmap_init(&sc->queries);
	known_init(&sc->known);
	if (evutil_make_socket_nonblocking(fd) < 0)
		log_event(LOG_WARN, "store_socket", "reason=\"cannot make non-blocking\"");
	sc->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	sc->ev_deferred = event_new(base, -1, 0, deferred_cb, sc);
	if (!sc->bev || !sc->ev_deferred) {
		if (!sc->bev)
			close(fd);
		client_destroy(sc);
		return NULL;
	}
	bufferevent_setcb(sc->bev, read_cb, write_cb, event_cb, sc);
	bufferevent_setwatermark(sc->bev, EV_WRITE, STORE_CLIENT_LOW_WATER, 0);
	if (bufferevent_enable(sc->bev, EV_READ | EV_WRITE) < 0) {
		client_destroy(sc);
		return NULL;
	}
	return sc;
}

void store_client_free(struct store_client *sc)
{
	if (!sc)
		return;
	sc->freeing = true;
	if (sc->busy == 0)
		client_destroy(sc);
}

size_t store_client_pending(const struct store_client *sc)
{
	return sc->bev ? evbuffer_get_length(bufferevent_get_output(sc->bev)) : 0;
}

void store_client_on_drain(struct store_client *sc, void (*cb)(void *arg), void *arg)
{
	sc->on_drain = cb;
	sc->drain_arg = arg;
}

uint64_t store_client_free_space(const struct store_client *sc)
{
	return sc->free_space;
}

bool store_mailbox_known(struct store_client *sc, const char *mailbox)
{
	return known_has(&sc->known, mailbox, now_s(sc));
}

struct store_query *store_mailbox_ask(struct store_client *sc, const char *mailbox,
                                      const struct sockaddr *client,
                                      void (*cb)(void *arg, enum store_mailbox_answer a),
                                      void *arg)
{
	if (!sc->bev)
		return NULL;
	size_t len = strlen(mailbox);
	struct store_query *q = calloc(1, sizeof(*q) + len + 1);
	if (!q)
		return NULL;
	memcpy(q->mailbox, mailbox, len + 1);
	q->cb = cb;
	q->arg = arg;
	q->node.id = ++sc->next_query;
	uint8_t key[NEWBOX_KEY_LEN];
	newbox_client_key(client, key);
	struct buf frame;
	buf_init(&frame, FRAME_HEADER_LEN + FRAME_ASK_MAX);
	if (frame_encode_ask(&frame, q->node.id, key, mailbox) < 0 ||
	    txnmap_insert(&sc->queries, &q->node) < 0) {
		buf_free(&frame);
		free(q);
		return NULL;
	}
	if (bufferevent_write(sc->bev, frame.data, frame.len) < 0) {
		txnmap_remove(&sc->queries, &q->node);
		buf_free(&frame);
		free(q);
		return NULL;
	}
	buf_free(&frame);
	return q;
}

void store_mailbox_cancel(struct store_query *q)
{
	/* Kept until its ANSWER, which must still match a question. */
	q->cb = NULL;
}

bool store_client_alive(const struct store_client *sc)
{
	return sc->bev != NULL;
}

struct store_txn *store_txn_begin(struct store_client *sc, const char *qid, const char *sender,
                                  const struct store_recipient *rcpts, size_t nrcpts,
                                  const char *received, const char *signer,
                                  const char *client_ip, const char *helo)
{
	struct store_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->sc = sc;
	t->node.id = ++sc->next_txn;
	if (!sc->bev) {
		t->dead = true;
		return t;
	}
	struct buf frame;
	buf_init(&frame, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	if (frame_encode_begin(&frame, t->node.id, qid, sender, rcpts, nrcpts, received, signer,
	                       client_ip, helo) < 0) {
		/* The smtp process enforces tighter limits than the format's,
		 * so this is its bug or memory running out: fail the message,
		 * keep the connection. */
		char q[FRAME_QID_MAX * 4 + 8];
		log_event(LOG_ERROR, "store_bug",
		          "qid=%s reason=\"envelope does not fit a frame\" nrcpts=%zu",
		          qid ? log_quote(q, sizeof(q), qid, strlen(qid)) : "-", nrcpts);
		buf_free(&frame);
		t->dead = true;
		return t;
	}
	if (txnmap_insert(&sc->txns, &t->node) < 0 ||
	    bufferevent_write(sc->bev, frame.data, frame.len) < 0) {
		if (txnmap_find(&sc->txns, t->node.id))
			txnmap_remove(&sc->txns, &t->node);
		buf_free(&frame);
		free(t);
		return NULL;
	}
	t->in_map = true;
	buf_free(&frame);
	return t;
}

int store_txn_write(struct store_txn *t, const char *data, size_t len)
{
	struct store_client *sc = t->sc;
	if (t->dead || !sc || !sc->bev)
		return -1;
	struct evbuffer *out = bufferevent_get_output(sc->bev);
	while (len > 0) {
		size_t n = len < FRAME_DATA_MAX ? len : FRAME_DATA_MAX;
		uint8_t hdr[FRAME_DATA_HEADER_LEN];
		frame_encode_data_header(hdr, t->node.id, n);
		/* Room first, so that running out of memory never leaves half
		 * a frame on the wire. */
		if (evbuffer_expand(out, sizeof(hdr) + n) < 0)
			return -1;
		if (evbuffer_add(out, hdr, sizeof(hdr)) < 0 || evbuffer_add(out, data, n) < 0) {
			client_lost(sc, "out of memory in the middle of a frame");
			return -1;
		}
		data += n;
		len -= n;
	}
	return 0;
}

void store_txn_commit(struct store_txn *t, void (*done)(void *arg, enum store_result r), void *arg)
{
	struct store_client *sc = t->sc;
	t->done = done;
	t->arg = arg;
	t->committed = true;
	if (!sc) {
		/* The client was freed under this txn: nothing can deliver
		 * the answer later. */
		if (done)
			done(arg, STORE_TEMPFAIL);
		free(t);
		return;
	}
	if (t->dead || !sc->bev || !t->in_map) {
		/* Out of the map first: a loss not yet delivered would
		 * otherwise fail it a second time. */
		if (t->in_map) {
			txnmap_remove(&sc->txns, &t->node);
			t->in_map = false;
		}
		fail_later(sc, t);
		return;
	}
	uint8_t frame[FRAME_TXN_LEN];
	frame_encode_txn(frame, FRAME_COMMIT, t->node.id);
	if (bufferevent_write(sc->bev, frame, sizeof(frame)) < 0)
		client_lost(sc, "out of memory");
	/* If lost just now, the deferred callback fails it with the others. */
}

void store_txn_abort(struct store_txn *t)
{
	struct store_client *sc = t->sc;
	if (sc && t->in_map) {
		txnmap_remove(&sc->txns, &t->node);
		if (sc->bev) {
			uint8_t frame[FRAME_TXN_LEN];
			frame_encode_txn(frame, FRAME_ABORT, t->node.id);
			if (bufferevent_write(sc->bev, frame, sizeof(frame)) < 0)
				client_lost(sc, "out of memory");
		}
	}
	free(t);
}

void store_txn_forget(struct store_txn *t)
{
	t->forgotten = true;
}
