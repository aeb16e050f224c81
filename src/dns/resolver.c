#include "dns/resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

/* c-ares opens a few sockets per server at most: a small table suffices. */
#define DNS_SOCKETS_MAX 16

struct dns_socket {
	ares_socket_t fd;
	struct event *ev;
};

struct dns_resolver {
	ares_channel channel;
	struct event_base *base;
	struct event *timer;
	struct dns_socket socks[DNS_SOCKETS_MAX];
	bool explicit_server;
};

static void dns_process(struct dns_resolver *r, ares_socket_t rfd, ares_socket_t wfd)
{
	ares_process_fd(r->channel, rfd, wfd);
	dns_resolver_kick(r);
}

static void socket_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	dns_process(r, (what & EV_READ) ? fd : ARES_SOCKET_BAD, (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	dns_process(arg, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* c-ares tells which sockets it wants watched (ARES_OPT_SOCK_STATE_CB). */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct dns_socket *slot = NULL, *free_slot = NULL;
	for (int i = 0; i < DNS_SOCKETS_MAX; i++) {
		if (r->socks[i].ev && r->socks[i].fd == fd)
			slot = &r->socks[i];
		else if (!r->socks[i].ev && !free_slot)
			free_slot = &r->socks[i];
	}
	if (slot) {
		event_free(slot->ev);
		slot->ev = NULL;
	}
	if (!readable && !writable)
		return;
	if (!slot)
		slot = free_slot;
	if (!slot || !r->base)
		return; /* the query times out through the timer */
	short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	slot->fd = fd;
	slot->ev = event_new(r->base, fd, what, socket_cb, r);
	if (slot->ev)
		event_add(slot->ev, NULL);
}

struct dns_resolver *dns_resolver_new(const char *server, unsigned timeout_ms, char *err,
                                      size_t errlen)
{
	static bool library_ready;
	if (!library_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
			snprintf(err, errlen, "dns: cannot initialise c-ares");
			return NULL;
		}
		library_ready = true;
	}
	struct dns_resolver *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	struct ares_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = r;
	opts.timeout = (int)timeout_ms;
	opts.tries = 2;
	/* DNS only: /etc/hosts is not the world's view of an address, and
	 * search domains would turn a missing name into someone else's. */
	opts.lookups = (char *)"b";
	opts.flags = ARES_FLAG_NOSEARCH;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
	           ARES_OPT_FLAGS;
	int rc = ares_init_options(&r->channel, &opts, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: cannot create resolver: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	if (server) {
		char csv[80];
		if (!dns_server_parse(server, csv, sizeof(csv), err, errlen)) {
			ares_destroy(r->channel);
			free(r);
			return NULL;
		}
		rc = ares_set_servers_ports_csv(r->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "dns: cannot use server %s: %s", server, ares_strerror(rc));
			ares_destroy(r->channel);
			free(r);
			return NULL;
		}
		r->explicit_server = true;
	}
	return r;
}

bool dns_resolver_attach(struct dns_resolver *r, struct event_base *base)
{
	r->base = base;
	r->timer = evtimer_new(base, timer_cb, r);
	return r->timer != NULL;
}

void dns_resolver_kick(struct dns_resolver *r)
{
	struct timeval tv;
	if (!r->timer)
		return;
	if (ares_timeout(r->channel, NULL, &tv))
		evtimer_add(r->timer, &tv);
	else
		evtimer_del(r->timer);
}

void dns_resolver_free(struct dns_resolver *r)
{
	if (!r)
		return;
	/* Pending callbacks run now with ARES_EDESTRUCTION. */
	ares_destroy(r->channel);
	for (int i = 0; i < DNS_SOCKETS_MAX; i++)
		if (r->socks[i].ev)
			event_free(r->socks[i].ev);
	if (r->timer)
		event_free(r->timer);
	free(r);
}

bool dns_resolver_explicit(const struct dns_resolver *r)
{
	return r->explicit_server;
}

void *dns_resolver_channel(struct dns_resolver *r)
{
	return r->channel;
}

struct event_base *dns_resolver_base(struct dns_resolver *r)
{
	return r->base;
}
