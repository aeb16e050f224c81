/* Walking one destination's addresses (client/route.h). */
#include "client/route.h"

#include "client/relay.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct route_addr {
	char host[256];
	int family;
	unsigned char addr[16];
};

struct route {
	struct client_route_request req;
	struct client_session_config cfg;  /* a copy: tls drops to NONE on fallback */
	size_t naddrs;
	struct route_addr addrs[CLIENT_ROUTE_ADDRS_MAX];
	size_t idx;                 /* address being tried */
	bool plaintext_retry;       /* this attempt is the opportunistic fallback */
	bool all_connect_timeouts;  /* every attempt so far timed out connecting */
	bool last_certificate_refused;  /* the last attempt: our check refused the certificate */
	bool last_auth_failed;      /* the last attempt: AUTH could not be done */
	bool all_5xx;               /* every attempt so far was refused with 5xx */
	size_t attempts;
	/* The recipients of the attempt running now: rcpts[k] is results[map[k]]. */
	struct client_rcpt *rcpts;
	size_t *map;
	size_t nrcpts;
	/* The last failure that was not a recipient's own outcome. */
	int last_code;
	char last_enhanced[16];
	char *last_text;
	char last_reason[512];
	char last_host[256];
	char last_ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	socklen_t sslen;
	char helo[64];              /* our address literal, when we have no name */
	struct event *kick;         /* the next step, run from the loop */
	/* With a pool: the right to a connection at addrs[idx], the
	 * connection running a transaction, and the one kept after a clean
	 * transaction (for deferred recipients, or given back at the end). */
	struct client_pool_ticket *ticket;
	struct client_delivery *d;
	struct client_delivery *held;
	struct client_peer_key held_key;
	bool queued;                /* waiting for the pool */
};

void client_result_clear(struct client_result *r)
{
	free(r->text);
	r->text = NULL;
}

void client_result_set(struct client_result *r, enum client_rcpt_state state, int code,
                       const char *enhanced, const char *reason)
{
	r->state = state;
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced ? enhanced : "");
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
}

static void note(struct route *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct route *rt, const char *fmt, ...)
{
	if (!rt->req.transcript)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	rt->req.transcript(rt->req.arg, line);
}

static void addr_text(const struct route_addr *a, char *out, size_t outlen)
{
	if (!inet_ntop(a->family, a->addr, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
}

static char *copy_text(const char *text)
{
	return text ? strdup(text) : NULL;
}

static void route_free(struct route *rt)
{
	if (rt->kick)
		event_free(rt->kick);
	free(rt->rcpts);
	free(rt->map);
	free(rt->last_text);
	free(rt);
}

/* The connection (or the right to one) goes back to the pool: another
 * route may use it.  Its QUIT, if the pool closes it, is still in our
 * transcript. */
static void ticket_return(struct route *rt)
{
	if (rt->held)
		client_pool_release(rt->req.pool, rt->ticket, &rt->held_key, rt->held);
	else if (rt->ticket)
		client_pool_closed(rt->req.pool, rt->ticket);
	rt->held = NULL;
	rt->ticket = NULL;
}

static void finish(struct route *rt)
{
	ticket_return(rt);
	void (*done)(void *) = rt->req.done;
	void *arg = rt->req.arg;
	route_free(rt);
	done(arg);
}

static void route_via(const struct route *rt, struct client_result *r, bool tried)
{
	snprintf(r->via, sizeof(r->via), "%s", rt->req.via ? rt->req.via : "");
	r->port = tried ? rt->req.port : 0;
}

/* Every recipient still open gets the last failure as its outcome. */
static void settle_rest(struct route *rt)
{
	bool perm = rt->all_5xx && rt->attempts > 0;
	for (size_t i = 0; i < rt->req.nresults; i++) {
		struct client_result *r = &rt->req.results[i];
		if (r->state != CLIENT_RCPT_PENDING && r->state != CLIENT_RCPT_DEFERRED)
			continue;
		if (r->state == CLIENT_RCPT_DEFERRED && r->code) {
			/* Refused for "too many recipients" with nothing delivered
			 * in that transaction: its own reply says it best. */
			r->state = CLIENT_RCPT_TEMPFAIL;
			continue;
		}
		client_result_set(r, perm ? CLIENT_RCPT_PERMFAIL : CLIENT_RCPT_TEMPFAIL, rt->last_code,
		                  rt->last_enhanced, rt->last_reason);
		client_result_clear(r);
		r->text = copy_text(rt->last_text);
		snprintf(r->host, sizeof(r->host), "%s", rt->last_host);
		snprintf(r->ip, sizeof(r->ip), "%s", rt->last_ip);
		r->connect_timeouts_only = rt->all_connect_timeouts && rt->attempts > 0;
		r->certificate_refused = rt->last_certificate_refused;
		r->auth_failed = rt->last_auth_failed;
		route_via(rt, r, rt->last_ip[0] != '\0');
	}
}

static void deliver_done(void *arg, const struct client_deliver_result *res);
static void start_cb(evutil_socket_t fd, short what, void *arg);

/* RFC 5321 §4.1.4: a host without a name greets with its address literal,
 * the address the peer will see, which is the source the kernel picks
 * toward it (a UDP connect() sends nothing and tells us). */
static void helo_literal(const struct sockaddr *to, socklen_t tolen, char *out, size_t outlen)
{
	struct sockaddr_storage me;
	socklen_t melen = sizeof(me);
	char ip[INET6_ADDRSTRLEN] = "";
	int fd = socket(to->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, to, tolen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &melen) == 0) {
		if (me.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&me)->sin6_addr, ip, sizeof(ip));
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&me)->sin_addr, ip, sizeof(ip));
	}
	if (fd >= 0)
		close(fd);
	if (!ip[0])
		snprintf(out, outlen, "localhost");
	else if (to->sa_family == AF_INET6)
		snprintf(out, outlen, "[IPv6:%s]", ip);
	else
		snprintf(out, outlen, "[%s]", ip);
}

static void transcript_cb(void *arg, const char *line)
{
	struct route *rt = arg;
	rt->req.transcript(rt->req.arg, line);
}

static void key_make(const struct route *rt, struct client_peer_key *k)
{
	const struct route_addr *a = &rt->addrs[rt->idx];
	memset(k, 0, sizeof(*k));
	k->family = a->family;
	memcpy(k->addr, a->addr, a->family == AF_INET6 ? 16 : 4);
	k->port = rt->req.port;
	k->tls = rt->cfg.tls;
	/* An authenticated connection is not for mail that is not relayed,
	 * nor the other way round. */
	k->implicit_tls = rt->req.implicit_tls;
	k->auth = rt->cfg.auth_user != NULL;
	/* A verified certificate was checked for this name: another name at
	 * the same address needs its own connection. */
	if (rt->req.tls_verify && !rt->req.literal)
		snprintf(k->servername, sizeof(k->servername), "%s", a->host);
}

static void request_make(struct route *rt, struct client_deliver_request *d)
{
	const struct route_addr *a = &rt->addrs[rt->idx];
	*d = (struct client_deliver_request){
		.base = rt->req.base,
		.tls_ctx = rt->req.tls_ctx,
		.tls_lazy = rt->req.tls_lazy,
		.tls_servername = rt->req.literal ? NULL : a->host,
		.tls_verify = rt->req.tls_verify,
		.tls_pins = rt->req.tls_pins,
		.tls_npins = rt->req.tls_npins,
		.implicit_tls = rt->req.implicit_tls,
		.addr = (const struct sockaddr *)&rt->ss,
		.addrlen = rt->sslen,
		.cfg = &rt->cfg,
		.sender = rt->req.sender,
		.rcpts = rt->rcpts,
		.nrcpts = rt->nrcpts,
		.message = rt->req.message,
		.message_len = rt->req.message_len,
		.timeout = rt->req.timeout,
		.final_timeout = rt->req.final_timeout,
		.transcript = rt->req.transcript ? transcript_cb : NULL,
		.transcript_body = rt->req.transcript_body,
		.done = deliver_done,
		.arg = rt,
	};
}

static void out_of_memory(struct route *rt)
{
	snprintf(rt->last_reason, sizeof(rt->last_reason), "out of memory");
	rt->all_5xx = false;
	rt->all_connect_timeouts = false;
	settle_rest(rt);
	finish(rt);
}

static void connect_new(struct route *rt)
{
	const struct route_addr *a = &rt->addrs[rt->idx];
	char ip[INET6_ADDRSTRLEN];
	addr_text(a, ip, sizeof(ip));
	const char *via = rt->req.via ? rt->req.via : "";
	const char *tls = rt->req.implicit_tls ? " (implicit TLS)"
	                  : rt->plaintext_retry ? " (again, without TLS)" : "";
	if (rt->req.literal && !via[0])
		note(rt, "-- connecting to %s:%u%s", a->host, rt->req.port, tls);
	else if (rt->req.literal)
		note(rt, "-- connecting to %s [%s]:%u%s", via, ip, rt->req.port, tls);
	else
		note(rt, "-- connecting to %s%s%s [%s]:%u%s", via, via[0] ? " " : "", a->host, ip,
		     rt->req.port, tls);
	struct client_deliver_request d;
	request_make(rt, &d);
	rt->attempts++;
	rt->d = client_deliver_start(&d);
	if (!rt->d)
		out_of_memory(rt);   /* nothing more can be tried */
}

/* The next transaction on a connection that finished one cleanly. */
static void reuse(struct route *rt, struct client_delivery *conn)
{
	const struct route_addr *a = &rt->addrs[rt->idx];
	char ip[INET6_ADDRSTRLEN];
	addr_text(a, ip, sizeof(ip));
	if (rt->req.literal)
		note(rt, "-- reusing the connection to %s:%u", a->host, rt->req.port);
	else
		note(rt, "-- reusing the connection to %s [%s]:%u", a->host, ip, rt->req.port);
	struct client_deliver_request d;
	request_make(rt, &d);
	rt->attempts++;
	rt->d = conn;
	if (!client_deliver_next(conn, &d)) {
		/* Closed meanwhile: a new connection on the same ticket. */
		note(rt, "-- the connection was closed meanwhile");
		connect_new(rt);
	}
}

static void granted(void *arg, struct client_pool_ticket *t, struct client_delivery *conn)
{
	struct route *rt = arg;
	rt->ticket = t;
	if (rt->queued) {
		rt->queued = false;
		if (rt->req.waiting)
			rt->req.waiting(rt->req.arg, false);
	}
	if (conn)
		reuse(rt, conn);
	else
		connect_new(rt);
}

/* Starts the next connection or transaction, or finishes.  Never calls
 * done directly from client_route_start's caller: client_deliver_start
 * reports even an immediate failure from the loop. */
static void next_attempt(struct route *rt)
{
	rt->nrcpts = 0;
	for (size_t i = 0; i < rt->req.nresults; i++) {
		struct client_result *r = &rt->req.results[i];
		if (r->state != CLIENT_RCPT_PENDING && r->state != CLIENT_RCPT_DEFERRED)
			continue;
		rt->rcpts[rt->nrcpts] = (struct client_rcpt){ .address = r->address };
		rt->map[rt->nrcpts++] = i;
	}
	if (rt->nrcpts == 0) {
		finish(rt);
		return;
	}
	if (rt->idx >= rt->naddrs) {
		settle_rest(rt);
		finish(rt);
		return;
	}
	const struct route_addr *a = &rt->addrs[rt->idx];
	memset(&rt->ss, 0, sizeof(rt->ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&rt->ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(rt->req.port);
		memcpy(&s6->sin6_addr, a->addr, 16);
		rt->sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&rt->ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(rt->req.port);
		memcpy(&s4->sin_addr, a->addr, 4);
		rt->sslen = sizeof(*s4);
	}
	rt->cfg = *rt->req.cfg;
	rt->cfg.keep_open = rt->req.pool != NULL;
	/* RFC 4954 §4 leaves plaintext AUTH to policy; ours: only to this
	 * machine's own address. */
	rt->cfg.auth_plaintext_ok = client_relay_is_loopback(a->family, a->addr);
	if (rt->plaintext_retry)
		rt->cfg.tls = CLIENT_TLS_NONE;
	if (!rt->cfg.helo || !rt->cfg.helo[0]) {
		helo_literal((const struct sockaddr *)&rt->ss, rt->sslen, rt->helo, sizeof(rt->helo));
		rt->cfg.helo = rt->helo;
	}
	if (rt->held) {
		struct client_delivery *conn = rt->held;
		rt->held = NULL;
		reuse(rt, conn);
		return;
	}
	if (rt->req.pool && !rt->ticket) {
		struct client_peer_key key;
		key_make(rt, &key);
		bool queued;
		if (!client_pool_acquire(rt->req.pool, &key, rt->req.owner, granted, rt, &queued)) {
			out_of_memory(rt);
			return;
		}
		if (queued) {
			note(rt, "-- waiting for a free connection to %s (limit per address)",
			     rt->addrs[rt->idx].host);
			rt->queued = true;
			if (rt->req.waiting)
				rt->req.waiting(rt->req.arg, true);
		}
		return;
	}
	connect_new(rt);
}

/* Records why this attempt failed, for the recipients nobody else takes. */
static void remember_failure(struct route *rt, const struct client_deliver_result *res)
{
	const struct route_addr *a = &rt->addrs[rt->idx];
	rt->last_code = res->fail_code;
	snprintf(rt->last_enhanced, sizeof(rt->last_enhanced), "%s",
	         res->fail_enhanced ? res->fail_enhanced : "");
	free(rt->last_text);
	rt->last_text = res->fail_code ? copy_text(res->fail_text) : NULL;
	snprintf(rt->last_reason, sizeof(rt->last_reason), "%s",
	         res->fail_reason ? res->fail_reason : "failed");
	snprintf(rt->last_host, sizeof(rt->last_host), "%s", a->host);
	addr_text(a, rt->last_ip, sizeof(rt->last_ip));
	if (!res->connect_timeout)
		rt->all_connect_timeouts = false;
	rt->last_certificate_refused = res->certificate_refused;
	rt->last_auth_failed = res->auth_failed;
	/* A refused AUTH (535) is the sender's configuration, not the
	 * recipient's: the message waits in the queue for a fixed password
	 * (Postfix's smtp_sasl_auth_soft_bounce). */
	if (!(res->fail_code >= 500 && res->fail_code <= 599) || res->auth_failed)
		rt->all_5xx = false;
}

/* This address is done with (moving on): its ticket goes back. */
static void address_leave(struct route *rt)
{
	if (rt->ticket)
		client_pool_closed(rt->req.pool, rt->ticket);
	rt->ticket = NULL;
	rt->idx++;
	rt->plaintext_retry = false;
}

static void deliver_done(void *arg, const struct client_deliver_result *res)
{
	struct route *rt = arg;
	const struct route_addr *a = &rt->addrs[rt->idx];
	size_t settled = 0;
	bool deferred = false;

	if (res->reusable) {
		rt->held = rt->d;
		key_make(rt, &rt->held_key);
	}
	rt->d = NULL;

	for (size_t k = 0; k < rt->nrcpts; k++) {
		struct client_rcpt *c = &rt->rcpts[k];
		struct client_result *r = &rt->req.results[rt->map[k]];
		if (c->state == CLIENT_RCPT_PENDING)
			continue;
		r->state = c->state;
		r->code = c->code;
		memcpy(r->enhanced, c->enhanced, sizeof(r->enhanced));
		client_result_clear(r);
		r->text = copy_text(c->text);
		r->reason[0] = '\0';
		if (c->state == CLIENT_RCPT_TEMPFAIL && c->code == 0)
			snprintf(r->reason, sizeof(r->reason),
			         "%s after the message was sent: it may have been delivered",
			         res->fail_reason ? res->fail_reason : "connection lost");
		snprintf(r->host, sizeof(r->host), "%s", a->host);
		addr_text(a, r->ip, sizeof(r->ip));
		r->connect_timeouts_only = false;
		r->certificate_refused = false;
		r->auth_failed = false;
		route_via(rt, r, true);
		if (c->state == CLIENT_RCPT_DEFERRED)
			deferred = true;
		else
			settled++;
	}

	if (res->end != CLIENT_DELIVER_DONE && res->reused) {
		/* The connection carried an earlier transaction: the peer may
		 * have timed it out or refused RSET.  Whatever was not sent is
		 * tried on a new connection to the same address, on the same
		 * ticket; a failure there counts as usual. */
		note(rt, "-- the reused connection failed (%s): trying a new one",
		     res->fail_reason ? res->fail_reason : "lost");
		/* A refused RSET (not a 421, which only closes this one): the
		 * peer's later connections are not kept for reuse. */
		if (res->fail_reason && !strcmp(res->fail_reason, "RSET refused") &&
		    res->fail_code != 421 && rt->req.pool) {
			struct client_peer_key key;
			key_make(rt, &key);
			client_pool_no_reuse(rt->req.pool, &key);
		}
		event_active(rt->kick, EV_TIMEOUT, 0);
		return;
	}
	if (res->end != CLIENT_DELIVER_DONE && !res->tls_failed && rt->req.pool) {
		/* The peer's per-address limit follows its failures (pool.h). */
		struct client_peer_key key;
		key_make(rt, &key);
		client_pool_failed(rt->req.pool, &key);
	}
	switch (res->end) {
	case CLIENT_DELIVER_DONE:
		rt->all_connect_timeouts = false;
		rt->all_5xx = false;
		if (deferred && settled == 0) {
			/* No progress: sending the same recipients again would
			 * loop.  Each keeps its 452/552 as a temporary failure. */
			rt->idx = rt->naddrs;
		} else if (deferred) {
			note(rt, "-- sending the recipients the server deferred in another transaction");
		}
		break;
	case CLIENT_DELIVER_NEXT_HOST:
		remember_failure(rt, res);
		note(rt, "-- %s%s%s%s will not take the message now: %s", a->host,
		     rt->req.literal ? "" : " [", rt->req.literal ? "" : rt->last_ip,
		     rt->req.literal ? "" : "]", rt->last_reason);
		address_leave(rt);
		break;
	case CLIENT_DELIVER_LOST:
		remember_failure(rt, res);
		if (res->tls_failed && rt->req.cfg->tls == CLIENT_TLS_OPPORTUNISTIC &&
		    !rt->plaintext_retry && !rt->req.tls_verify && rt->req.tls_npins == 0) {
			note(rt, "-- %s; opportunistic TLS: trying again without it", rt->last_reason);
			rt->plaintext_retry = true;
		} else {
			note(rt, "-- %s%s%s%s: %s", a->host, rt->req.literal ? "" : " [",
			     rt->req.literal ? "" : rt->last_ip, rt->req.literal ? "" : "]",
			     rt->last_reason);
			address_leave(rt);
		}
		break;
	}
	/* The delivery still owns rt->rcpts until this callback returns
	 * (client_session_free runs after it): go on from the loop. */
	event_active(rt->kick, EV_TIMEOUT, 0);
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	next_attempt(arg);
}

bool client_route_start(const struct client_route_request *req)
{
	struct route *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return false;
	rt->req = *req;
	rt->all_connect_timeouts = true;
	rt->all_5xx = true;
	rt->rcpts = calloc(req->nresults ? req->nresults : 1, sizeof(*rt->rcpts));
	rt->map = calloc(req->nresults ? req->nresults : 1, sizeof(*rt->map));
	if (!rt->rcpts || !rt->map) {
		route_free(rt);
		return false;
	}
	for (size_t i = 0; i < req->naddrs && rt->naddrs < CLIENT_ROUTE_ADDRS_MAX; i++) {
		struct route_addr *a = &rt->addrs[rt->naddrs++];
		snprintf(a->host, sizeof(a->host), "%s", req->addrs[i].host);
		a->family = req->addrs[i].family;
		memcpy(a->addr, req->addrs[i].addr, a->family == AF_INET6 ? 16 : 4);
	}
	snprintf(rt->last_reason, sizeof(rt->last_reason), "no address to try");
	/* Starting from the loop keeps the promise that done never runs
	 * inside this call, even when there is nothing to do. */
	rt->kick = evtimer_new(req->base, start_cb, rt);
	if (!rt->kick) {
		route_free(rt);
		return false;
	}
	event_active(rt->kick, EV_TIMEOUT, 0);
	return true;
}
