/* auth_client: see auth_client.h.  Built like store/client.c: a
 * bufferevent on the socketpair, queries by id in a txnmap, failures
 * delivered from a deferred event so that no callback runs inside a
 * caller's call. */
#include "server/auth_client.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth/wire.h"
#include "store/txnmap.h"
#include "util/log.h"

struct auth_query {
	struct txnmap_node node;        /* node.id is the query id */
	void (*cb)(void *arg, enum auth_answer a, const char *senders); /* NULL once cancelled */
	void *arg;
};

struct auth_client {
	struct bufferevent *bev;        /* NULL once the auth process is lost */
	struct event *ev_deferred;      /* delivers the failures of a loss */
	struct txnmap queries;          /* CHECK sent, no ANSWER yet */
	uint64_t next_id;
	void (*on_lost)(void *arg);
	void *arg;
	int busy;                       /* depth of our callbacks in progress */
	bool freeing;                   /* auth_client_free called while busy */
	bool lost;                      /* lost, failures not yet delivered */
};

static struct auth_query *query_of(struct txnmap_node *n)
{
	return n ? (struct auth_query *)((char *)n - offsetof(struct auth_query, node)) : NULL;
}

static void client_destroy(struct auth_client *ac)
{
	/* Frees an unwritten frame too, through wipe_frame. */
	if (ac->bev)
		bufferevent_free(ac->bev);
	if (ac->ev_deferred)
		event_free(ac->ev_deferred);
	struct txnmap_node *n;
	while ((n = txnmap_pop(&ac->queries)) != NULL)
		free(query_of(n));
	txnmap_free(&ac->queries);
	free(ac);
}

static void leave(struct auth_client *ac)
{
	if (--ac->busy == 0 && ac->freeing)
		client_destroy(ac);
}

static void client_lost(struct auth_client *ac, const char *why)
{
	if (!ac->bev)
		return;
	log_event(LOG_ERROR, "auth_lost", "reason=\"%s\" pending=%zu", why, ac->queries.count);
	bufferevent_free(ac->bev);
	ac->bev = NULL;
	ac->lost = true;
	event_active(ac->ev_deferred, EV_TIMEOUT, 0);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_client *ac = arg;
	ac->busy++;
	if (ac->lost) {
		ac->lost = false;
		/* One at a time: a callback may cancel another query, which
		 * must then still be in the map or already out of it. */
		struct txnmap_node *n;
		while (!ac->freeing && (n = txnmap_pop(&ac->queries)) != NULL) {
			struct auth_query *q = query_of(n);
			if (q->cb)
				q->cb(q->arg, AUTH_ANSWER_TEMPFAIL, NULL);
			free(q);
		}
		if (ac->on_lost && !ac->freeing)
			ac->on_lost(ac->arg);
	}
	leave(ac);
}

static void handle_answer(struct auth_client *ac, const uint8_t *body, size_t len)
{
	struct auth_wire_answer a;
	const char *why;
	if (auth_wire_decode_answer(body, len, &a, &why) != AUTH_WIRE_DONE) {
		client_lost(ac, why);
		return;
	}
	struct auth_query *q = query_of(txnmap_find(&ac->queries, a.id));
	if (!q) {
		client_lost(ac, "ANSWER for an unknown query");
		return;
	}
	txnmap_remove(&ac->queries, &q->node);
	char senders[AUTH_WIRE_SENDERS_MAX + 1];
	memcpy(senders, a.senders, a.senders_len);
	senders[a.senders_len] = '\0';
	enum auth_answer r = a.result == AUTH_WIRE_OK     ? AUTH_ANSWER_OK
	                     : a.result == AUTH_WIRE_FAIL ? AUTH_ANSWER_FAIL
	                                                  : AUTH_ANSWER_TEMPFAIL;
	if (q->cb)
		q->cb(q->arg, r, r == AUTH_ANSWER_OK ? senders : NULL);
	free(q);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct auth_client *ac = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	ac->busy++;
	while (ac->bev && !ac->freeing) {
		uint8_t hdr[AUTH_WIRE_HEADER_LEN];
		size_t avail = evbuffer_get_length(in), body_len;
		const char *why;
		if (avail < AUTH_WIRE_HEADER_LEN)
			break;
		evbuffer_copyout(in, hdr, sizeof(hdr));
		if (auth_wire_header_decode(hdr, sizeof(hdr), AUTH_WIRE_ANSWER, &body_len, &why) !=
		    AUTH_WIRE_DONE) {
			client_lost(ac, why);
			break;
		}
		if (avail - AUTH_WIRE_HEADER_LEN < body_len)
			break; /* the rest of the frame has not arrived */
		/* Copied out first: a callback below may free the buffer. */
		uint8_t body[AUTH_WIRE_ANSWER_MAX];
		evbuffer_drain(in, AUTH_WIRE_HEADER_LEN);
		evbuffer_remove(in, body, body_len);
		handle_answer(ac, body, body_len);
	}
	leave(ac);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct auth_client *ac = arg;
	if (what & BEV_EVENT_EOF)
		client_lost(ac, "auth process closed the connection");
	else if (what & BEV_EVENT_ERROR)
		client_lost(ac, "socket error");
}

struct auth_client *auth_client_new(struct event_base *base, int fd, void (*on_lost)(void *arg),
                                    void *arg)
{
	struct auth_client *ac = calloc(1, sizeof(*ac));
	if (!ac) {
		close(fd);
		return NULL;
	}
	ac->on_lost = on_lost;
	ac->arg = arg;
	txnmap_init(&ac->queries);
	if (evutil_make_socket_nonblocking(fd) < 0)
		log_event(LOG_WARN, "auth_socket", "reason=\"cannot make non-blocking\"");
	ac->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	ac->ev_deferred = event_new(base, -1, 0, deferred_cb, ac);
	if (!ac->bev || !ac->ev_deferred) {
		if (!ac->bev)
			close(fd);
		client_destroy(ac);
		return NULL;
	}
	bufferevent_setcb(ac->bev, read_cb, NULL, event_cb, ac);
	if (bufferevent_enable(ac->bev, EV_READ | EV_WRITE) < 0) {
		client_destroy(ac);
		return NULL;
	}
	return ac;
}

void auth_client_free(struct auth_client *ac)
{
	if (!ac)
		return;
	ac->freeing = true;
	if (ac->busy == 0)
		client_destroy(ac);
}

bool auth_client_alive(const struct auth_client *ac)
{
	return ac->bev != NULL;
}

/* The CHECK frame's one heap copy, given to the output evbuffer by
 * reference: wiped once written (or freed unwritten). */
static void wipe_frame(const void *data, size_t len, void *extra)
{
	explicit_bzero((void *)data, len);
	free((void *)data);
}

struct auth_query *auth_client_check(struct auth_client *ac, const struct sockaddr *client,
                                     const char *user, const char *password,
                                     void (*cb)(void *arg, enum auth_answer a,
                                                const char *senders),
                                     void *arg)
{
	if (!ac->bev || ac->freeing)
		return NULL;
	struct auth_query *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->cb = cb;
	q->arg = arg;
	q->node.id = ++ac->next_id;
	uint8_t key[AUTH_WIRE_KEY_LEN];
	auth_wire_client_key(client, key);
	uint8_t frame[AUTH_WIRE_CHECK_FRAME_MAX];
	size_t n = auth_wire_encode_check(frame, q->node.id, key, user, strlen(user), password,
	                                  strlen(password));
	uint8_t *copy = n ? malloc(n) : NULL;
	if (copy)
		memcpy(copy, frame, n);
	explicit_bzero(frame, sizeof(frame));
	if (!copy || txnmap_insert(&ac->queries, &q->node) < 0) {
		if (copy) {
			explicit_bzero(copy, n);
			free(copy);
		}
		free(q);
		return NULL;
	}
	if (evbuffer_add_reference(bufferevent_get_output(ac->bev), copy, n, wipe_frame, NULL) <
	    0) {
		explicit_bzero(copy, n);
		free(copy);
		txnmap_remove(&ac->queries, &q->node);
		free(q);
		return NULL;
	}
	return q;
}

void auth_query_cancel(struct auth_query *q)
{
	/* Kept until its ANSWER, which must still match a query. */
	q->cb = NULL;
}
