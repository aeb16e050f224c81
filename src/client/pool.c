/* The engine's connections per peer (client/pool.h). */
#include "client/pool.h"

#include <stdlib.h>
#include <string.h>

enum ticket_state {
	T_WAITING,      /* in the peer's queue: the address is at its limit */
	T_GRANTING,     /* granted; the grant callback runs from the loop */
	T_IN_USE,       /* a route holds it */
	T_IDLE,         /* the pool holds it with an idle connection */
};

struct peer;

struct client_pool_ticket {
	struct client_pool *p;
	struct peer *peer;
	enum ticket_state state;
	struct client_peer_key key;
	const void *owner;
	struct client_delivery *d;   /* GRANTING with a connection, or IDLE */
	client_pool_grant_fn grant;
	void *arg;
	struct event *ev;            /* the grant (active) or the idle limit (timer) */
	struct client_pool_ticket *prev, *next;   /* in the peer's waiting, idle or busy list */
};

struct ticket_list {
	struct client_pool_ticket *head, *tail;
};

/* One address and port: the limit counts here. */
struct peer {
	int family;
	unsigned char addr[16];
	unsigned short port;
	size_t active;               /* tickets out (granting, in use, idle) */
	size_t limit;                /* connections allowed now (grows: pool.h) */
	size_t credit;               /* clean transactions since the last change */
	bool no_reuse;               /* refused RSET once */
	struct ticket_list waiting;  /* oldest first */
	struct ticket_list idle;     /* oldest first */
	struct ticket_list busy;     /* granting or in use */
	struct peer *next;
};

struct client_pool {
	struct event_base *base;
	size_t per_address;
	int idle_ms;
	client_pool_busy_fn busy;
	void *busy_arg;
	struct peer *peers;
	size_t connections, reused, nidle;
	bool stopping;               /* client_pool_stop: no connection granted */
	size_t peak;                 /* most tickets out at once to one address */
};

static void list_add(struct ticket_list *l, struct client_pool_ticket *t)
{
	t->prev = l->tail;
	t->next = NULL;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

static void list_remove(struct ticket_list *l, struct client_pool_ticket *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->prev = t->next = NULL;
}

static bool key_same_peer(const struct peer *pe, const struct client_peer_key *k)
{
	return pe->family == k->family && pe->port == k->port &&
	       !memcmp(pe->addr, k->addr, k->family == AF_INET6 ? 16 : 4);
}

static bool key_equal(const struct client_peer_key *a, const struct client_peer_key *b)
{
	return a->family == b->family && a->port == b->port && a->tls == b->tls &&
	       a->implicit_tls == b->implicit_tls && a->auth == b->auth &&
	       !memcmp(a->addr, b->addr, a->family == AF_INET6 ? 16 : 4) &&
	       !strcmp(a->servername, b->servername);
}

static struct peer *peer_find(struct client_pool *p, const struct client_peer_key *k, bool add)
{
	for (struct peer *pe = p->peers; pe; pe = pe->next)
		if (key_same_peer(pe, k))
			return pe;
	if (!add)
		return NULL;
	struct peer *pe = calloc(1, sizeof(*pe));
	if (!pe)
		return NULL;
	pe->family = k->family;
	memcpy(pe->addr, k->addr, k->family == AF_INET6 ? 16 : 4);
	pe->port = k->port;
	pe->limit = p->per_address ? p->per_address : CLIENT_POOL_PER_ADDRESS;
	pe->next = p->peers;
	p->peers = pe;
	return pe;
}

/* A peer with nothing out and nobody waiting is forgotten (its no_reuse
 * with it: a later run may find a fixed server). */
static void peer_gc(struct client_pool *p, struct peer *pe)
{
	if (pe->active > 0 || pe->waiting.head || pe->idle.head || pe->busy.head)
		return;
	for (struct peer **pp = &p->peers; *pp; pp = &(*pp)->next) {
		if (*pp == pe) {
			*pp = pe->next;
			free(pe);
			return;
		}
	}
}

static void ticket_free(struct client_pool_ticket *t)
{
	if (t->ev)
		event_free(t->ev);
	free(t);
}

static size_t peer_limit(const struct peer *pe)
{
	return pe->limit;
}

/* The limit's feedback (pool.h), only when the caller set none: a clean
 * transaction is 1/limit of a connection more (so the limit grows by one
 * after as many clean transactions as it allows connections, Postfix's
 * 1/concurrency positive feedback), a failed connection one less. */
static void peer_success(struct client_pool *p, struct peer *pe)
{
	if (p->per_address || pe->limit >= CLIENT_POOL_PER_ADDRESS_MAX)
		return;
	if (++pe->credit >= pe->limit) {
		pe->limit++;
		pe->credit = 0;
	}
}

static void peer_dispatch(struct client_pool *p, struct peer *pe);

static void grant_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct client_pool_ticket *t = arg;
	if (t->state == T_IDLE) {
		/* The idle limit: nobody wanted it in time. */
		struct client_pool *p = t->p;
		struct peer *pe = t->peer;
		list_remove(&pe->idle, t);
		p->nidle--;
		client_deliver_close(t->d);
		pe->active--;
		ticket_free(t);
		peer_dispatch(p, pe);
		peer_gc(p, pe);
		return;
	}
	struct client_delivery *d = t->d;
	t->d = NULL;
	t->state = T_IN_USE;
	if (d && !client_deliver_usable(d)) {
		/* It broke while handed over: the ticket stays, the route
		 * connects anew. */
		client_deliver_close(d);
		d = NULL;
	}
	if (d)
		t->p->reused++;
	else
		t->p->connections++;
	t->grant(t->arg, t, d);
}

static void grant(struct client_pool_ticket *t, struct client_delivery *d)
{
	list_add(&t->peer->busy, t);
	t->state = T_GRANTING;
	t->d = d;
	event_active(t->ev, EV_TIMEOUT, 0);
}

/* Takes an idle connection off its list (still counted: it goes to a ticket
 * or is closed by the caller). */
static struct client_delivery *idle_take(struct client_pool *p, struct client_pool_ticket *i)
{
	struct client_delivery *d = i->d;
	list_remove(&i->peer->idle, i);
	p->nidle--;
	evtimer_del(i->ev);
	ticket_free(i);
	return d;
}

/* Idle connections that the peer closed meanwhile are no use to anyone. */
static void idle_prune(struct client_pool *p, struct peer *pe)
{
	struct client_pool_ticket *i = pe->idle.head;
	while (i) {
		struct client_pool_ticket *next = i->next;
		if (!client_deliver_usable(i->d)) {
			client_deliver_close(idle_take(p, i));
			pe->active--;
		}
		i = next;
	}
}

/* Another route of the same message holds a connection to this peer with
 * the same requirements: wait for it rather than open another. */
static bool owner_busy(const struct peer *pe, const struct client_pool_ticket *w)
{
	for (const struct client_pool_ticket *t = pe->busy.head; t; t = t->next)
		if (t->owner == w->owner && key_equal(&t->key, &w->key))
			return true;
	return false;
}

/* Grants, in order, what the limit and the owners allow now. */
static void peer_dispatch(struct client_pool *p, struct peer *pe)
{
	if (p->stopping)
		return;
	struct client_pool_ticket *w = pe->waiting.head;
	while (w && pe->active < peer_limit(pe)) {
		struct client_pool_ticket *next = w->next;
		if (!owner_busy(pe, w)) {
			list_remove(&pe->waiting, w);
			pe->active++;
			if (pe->active > p->peak)
				p->peak = pe->active;
			grant(w, NULL);
		}
		w = next;
	}
}

/* A route gives its ticket back: out of the busy list. */
static void busy_leave(struct client_pool_ticket *t)
{
	list_remove(&t->peer->busy, t);
}

bool client_pool_acquire(struct client_pool *p, const struct client_peer_key *key,
                         const void *owner, client_pool_grant_fn grantfn, void *arg,
                         bool *queued)
{
	*queued = false;
	struct peer *pe = peer_find(p, key, true);
	struct client_pool_ticket *t = pe ? calloc(1, sizeof(*t)) : NULL;
	if (t) {
		t->ev = event_new(p->base, -1, 0, grant_cb, t);
		if (!t->ev) {
			free(t);
			t = NULL;
		}
	}
	if (!t) {
		if (pe)
			peer_gc(p, pe);
		return false;
	}
	t->p = p;
	t->peer = pe;
	t->key = *key;
	t->owner = owner;
	t->grant = grantfn;
	t->arg = arg;
	idle_prune(p, pe);
	if (p->stopping) {
		/* Stopping: nothing new starts; the route waits, and its
		 * message stays queued when the caller exits. */
		t->state = T_WAITING;
		list_add(&pe->waiting, t);
		*queued = true;
		return true;
	}
	for (struct client_pool_ticket *i = pe->idle.head; i; i = i->next) {
		if (key_equal(&i->key, key)) {
			grant(t, idle_take(p, i));   /* the idle one's count passes on */
			return true;
		}
	}
	if (owner_busy(pe, t)) {
		t->state = T_WAITING;
		list_add(&pe->waiting, t);
		*queued = true;
		return true;
	}
	if (pe->active < peer_limit(pe)) {
		pe->active++;
		if (pe->active > p->peak)
			p->peak = pe->active;
		grant(t, NULL);
		return true;
	}
	if (pe->idle.head) {
		/* At the limit with idle connections made for another TLS
		 * requirement: the oldest gives way. */
		client_deliver_close(idle_take(p, pe->idle.head));
		grant(t, NULL);
		return true;
	}
	t->state = T_WAITING;
	list_add(&pe->waiting, t);
	*queued = true;
	return true;
}

void client_pool_closed(struct client_pool *p, struct client_pool_ticket *t)
{
	struct peer *pe = t->peer;
	busy_leave(t);
	ticket_free(t);
	pe->active--;
	peer_dispatch(p, pe);
	peer_gc(p, pe);
}

void client_pool_release(struct client_pool *p, struct client_pool_ticket *t,
                         const struct client_peer_key *key, struct client_delivery *d)
{
	struct peer *pe = t->peer;
	peer_success(p, pe);
	bool reusable = client_deliver_usable(d) && !pe->no_reuse && !p->stopping;
	/* The same message's next domain first, then the oldest waiter. */
	struct client_pool_ticket *to = NULL;
	for (struct client_pool_ticket *w = pe->waiting.head; reusable && w && !to; w = w->next)
		if (w->owner == t->owner && key_equal(&w->key, key))
			to = w;
	for (struct client_pool_ticket *w = pe->waiting.head; reusable && w && !to; w = w->next)
		if (key_equal(&w->key, key))
			to = w;
	if (to) {
		busy_leave(t);
		ticket_free(t);
		list_remove(&pe->waiting, to);
		client_deliver_detach(d);
		grant(to, d);   /* the count passes on */
		peer_dispatch(p, pe);
		return;
	}
	if (reusable && !pe->waiting.head && p->busy && p->busy(p->busy_arg)) {
		busy_leave(t);
		client_deliver_detach(d);
		t->key = *key;
		t->d = d;
		t->state = T_IDLE;
		list_add(&pe->idle, t);
		p->nidle++;
		int ms = p->idle_ms > 0 ? p->idle_ms : CLIENT_POOL_IDLE_MS;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(t->ev, &tv);
		return;
	}
	/* Nobody else will want it, or it is not to be reused, or someone
	 * waits here for another TLS requirement (the slot goes to them). */
	client_deliver_close(d);
	client_pool_closed(p, t);
}

void client_pool_failed(struct client_pool *p, const struct client_peer_key *key)
{
	struct peer *pe = peer_find(p, key, false);
	if (!pe || p->per_address)
		return;
	pe->credit = 0;
	if (pe->limit > CLIENT_POOL_PER_ADDRESS_MIN)
		pe->limit--;
}

void client_pool_no_reuse(struct client_pool *p, const struct client_peer_key *key)
{
	struct peer *pe = peer_find(p, key, false);
	if (pe)
		pe->no_reuse = true;
}

void client_pool_close_idle(struct client_pool *p)
{
	struct peer *pe = p->peers;
	while (pe) {
		struct peer *next = pe->next;
		while (pe->idle.head) {
			client_deliver_close(idle_take(p, pe->idle.head));
			pe->active--;
		}
		peer_dispatch(p, pe);
		peer_gc(p, pe);
		pe = next;
	}
}

void client_pool_stop(struct client_pool *p)
{
	client_pool_close_idle(p);
	p->stopping = true;
}

void client_pool_stats(const struct client_pool *p, struct client_pool_stats *out)
{
	out->connections = p->connections;
	out->reused = p->reused;
	out->idle = p->nidle;
	out->peak = p->peak;
}

struct client_pool *client_pool_new(struct event_base *base, size_t per_addr, int idle_ms,
                                    client_pool_busy_fn busy, void *busy_arg)
{
	struct client_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->base = base;
	p->per_address = per_addr;
	p->idle_ms = idle_ms;
	p->busy = busy;
	p->busy_arg = busy_arg;
	return p;
}

void client_pool_free(struct client_pool *p)
{
	if (!p)
		return;
	client_pool_close_idle(p);
	while (p->peers) {
		struct peer *pe = p->peers;
		p->peers = pe->next;
		while (pe->waiting.head) {
			struct client_pool_ticket *w = pe->waiting.head;
			list_remove(&pe->waiting, w);
			ticket_free(w);
		}
		free(pe);
	}
	free(p);
}
