/* The publishing connection: libmosquitto in the bridge's libevent loop
 * (see link.h).  The library is driven the way its own mosquitto_loop()
 * drives it, without its thread: the socket readable -> loop_read, the
 * library wanting to write -> loop_write, a tick each second ->
 * loop_misc (keepalive).  Its callbacks run inside those calls; they only
 * record what happened, and after each call `settle` tells the bridge
 * (up, down, acked) and re-arms the events, so that the bridge may
 * publish, or destroy the object, from its handlers. */
#include "mqtt/link.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <mosquitto.h>

#include "util/log.h"

/* MQTT's keepalive, seconds: the broker drops us after 1.5 times it
 * without a packet, and loop_misc notices a silent broker after it. */
#define LINK_KEEPALIVE 30
/* An attempt that has not reached CONNACK by then is abandoned. */
#define LINK_CONNECT_TIMEOUT 10
/* Packet ids are 16 bits: a publish's context is found by its id. */
#define LINK_MIDS 65536
/* QoS 1 messages libmosquitto may have awaiting PUBACK (MQTT 5: at most
 * what the broker's Receive Maximum allows); the bridge's window keeps
 * far fewer in flight, beyond this the library queues them. */
#define LINK_SEND_MAXIMUM 1024

enum link_state { LINK_IDLE, LINK_CONNECTING, LINK_UP };

struct link_ack {
	uint64_t ctx;
	bool ok;
};

struct mqtt_link {
	struct event_base *base;
	struct mqtt_link_options o;
	struct mqtt_link_events ev;
	void *arg;
	struct mosquitto *m;            /* this attempt's, NULL when idle */
	int fd;                         /* its socket while events watch it */
	struct event *rd, *wr, *tick, *later;
	enum link_state state;
	time_t started;                 /* the attempt's start */
	uint64_t *ctx;                  /* packet id -> publish context */
	/* What the callbacks saw, for settle. */
	bool connack_ok;
	int refused;                    /* CONNACK's refusal code, 0 none */
	int lib_rc;                     /* the last failing call's MOSQ_ERR_* */
	char lib_error[256];            /* the library's last error log line */
	struct link_ack *acks;          /* PUBACKs seen in this call */
	size_t nacks, capacks;
	bool acks_lost;                 /* one did not fit: the connection must go */
	/* mqtt_link_close: the PUBACK it waits for. */
	int close_mid;
	bool close_acked;
};

static void settle(struct mqtt_link *l);

/* ---- the library's callbacks: record only ---- */

static void on_connect(struct mosquitto *m, void *arg, int rc, int flags,
                       const mosquitto_property *props)
{
	struct mqtt_link *l = arg;
	if (rc == 0)
		l->connack_ok = true;
	else
		l->refused = rc;
}

static void on_disconnect(struct mosquitto *m, void *arg, int rc, const mosquitto_property *p)
{
	struct mqtt_link *l = arg;
	if (rc != 0 && !l->lib_rc)
		l->lib_rc = rc;
}

static void on_publish(struct mosquitto *m, void *arg, int mid, int reason,
                       const mosquitto_property *props)
{
	struct mqtt_link *l = arg;
	if (l->close_mid && mid == l->close_mid) {
		l->close_acked = true;
		return;
	}
	if (l->nacks == l->capacks) {
		size_t cap = l->capacks ? l->capacks * 2 : 64;
		struct link_ack *na = realloc(l->acks, cap * sizeof(*na));
		if (!na) {
			/* The PUBACK is lost to us: the bridge starts over, and the
			 * event goes out twice rather than never. */
			l->acks_lost = true;
			if (!l->lib_rc)
				l->lib_rc = MOSQ_ERR_NOMEM;
			return;
		}
		l->acks = na;
		l->capacks = cap;
	}
	/* MQTT 5 §3.4.2.1: a reason code of 0x80 or more is a refusal. */
	l->acks[l->nacks++] = (struct link_ack){ .ctx = l->ctx[(unsigned)mid % LINK_MIDS],
		                                     .ok = reason < 0x80 };
}

static void on_log(struct mosquitto *m, void *arg, int level, const char *text)
{
	struct mqtt_link *l = arg;
	if (level == MOSQ_LOG_ERR)
		snprintf(l->lib_error, sizeof(l->lib_error), "%s", text);
}

/* ---- the loop ---- */

static void unwatch(struct mqtt_link *l)
{
	if (l->rd) {
		event_free(l->rd);
		l->rd = NULL;
	}
	if (l->wr) {
		event_free(l->wr);
		l->wr = NULL;
	}
	l->fd = -1;
}

/* The attempt's library object and socket are gone; settle reports it
 * (the state says whether it was up). */
static void drop_object(struct mqtt_link *l)
{
	unwatch(l);
	if (l->m) {
		mosquitto_destroy(l->m);
		l->m = NULL;
	}
}

static void drop(struct mqtt_link *l)
{
	drop_object(l);
	l->state = LINK_IDLE;
}

/* After a loop_* call: its failure is the first cause, if none yet. */
static void called(struct mqtt_link *l, int rc)
{
	if (rc != MOSQ_ERR_SUCCESS && !l->lib_rc)
		l->lib_rc = rc;
	settle(l);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_link *l = arg;
	called(l, mosquitto_loop_read(l->m, 1));
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_link *l = arg;
	called(l, mosquitto_loop_write(l->m, 1));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_link *l = arg;
	if (!l->m)
		return;
	if (l->state == LINK_CONNECTING && time(NULL) - l->started >= LINK_CONNECT_TIMEOUT) {
		if (!l->lib_rc)
			l->lib_rc = MOSQ_ERR_TIMEOUT;
		drop_object(l);      /* settle sees the attempt over */
	} else {
		mosquitto_loop_misc(l->m);
	}
	settle(l);
}

/* Why the attempt or the connection ended, for the log. */
static void down_reason(struct mqtt_link *l, char *why, size_t len)
{
	const char *what = l->lib_rc == MOSQ_ERR_TIMEOUT ? "timed out"
	                   : l->lib_rc == MOSQ_ERR_ERRNO ? strerror(errno)
	                   : l->lib_rc ? mosquitto_strerror(l->lib_rc)
	                   : "connection closed";
	if (l->refused)
		what = l->o.s->protocol == 5 ? mosquitto_reason_string(l->refused)
		                             : mosquitto_connack_string(l->refused);
	if (l->lib_error[0] && !l->refused)
		snprintf(why, len, "%s (%s)", what, l->lib_error);
	else
		snprintf(why, len, "%s", what);
}

/* Watches the socket as the library now needs: false when memory ran
 * out for the events. */
static bool watch(struct mqtt_link *l)
{
	int fd = mosquitto_socket(l->m);
	if (fd != l->fd) {
		unwatch(l);
		l->rd = event_new(l->base, fd, EV_READ | EV_PERSIST, on_readable, l);
		l->wr = event_new(l->base, fd, EV_WRITE, on_writable, l);
		if (!l->rd || !l->wr || event_add(l->rd, NULL) != 0)
			return false;
		l->fd = fd;
	}
	if (mosquitto_want_write(l->m))
		event_add(l->wr, NULL);
	return true;
}

/* After every library call: tell the bridge what happened, then watch
 * the socket, or report the attempt or the connection over. */
static void settle(struct mqtt_link *l)
{
	if (l->connack_ok && l->state == LINK_CONNECTING) {
		l->connack_ok = false;
		l->state = LINK_UP;
		l->lib_error[0] = '\0';
		/* The library formats a log line for every packet while a log
		 * callback is set; its errors matter only while connecting
		 * (TLS, the socket): later a closed socket says enough. */
		mosquitto_log_callback_set(l->m, NULL);
		l->ev.up(l->arg);
	}
	/* PUBACKs, in arrival order (acked may publish: new ones wait). */
	for (size_t i = 0; i < l->nacks; i++)
		l->ev.acked(l->arg, l->acks[i].ctx, l->acks[i].ok);
	l->nacks = 0;
	bool open = l->m && mosquitto_socket(l->m) >= 0 && !l->refused && !l->acks_lost;
	if (open && !watch(l)) {
		l->lib_rc = MOSQ_ERR_NOMEM;
		open = false;
	}
	if (open || l->state == LINK_IDLE)
		return;
	char why[400];
	down_reason(l, why, sizeof(why));
	bool was_up = l->state == LINK_UP;
	drop(l);
	l->ev.down(l->arg, was_up, l->refused ? l->refused : -1, why);
}

/* An attempt that failed before it had a socket reports from the loop,
 * never from inside mqtt_link_connect. */
static void on_later(evutil_socket_t fd, short what, void *arg)
{
	settle(arg);
}

/* ---- the bridge's side ---- */

struct mqtt_link *mqtt_link_new(struct event_base *base, const struct mqtt_link_options *o,
                                const struct mqtt_link_events *ev, void *arg)
{
	mosquitto_lib_init();
	struct mqtt_link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	*l = (struct mqtt_link){ .base = base, .o = *o, .ev = *ev, .arg = arg, .fd = -1 };
	l->ctx = calloc(LINK_MIDS, sizeof(*l->ctx));
	l->tick = event_new(base, -1, EV_PERSIST, on_tick, l);
	l->later = evtimer_new(base, on_later, l);
	struct timeval second = { 1, 0 };
	if (!l->ctx || !l->tick || !l->later || event_add(l->tick, &second) != 0) {
		mqtt_link_free(l);
		return NULL;
	}
	return l;
}

void mqtt_link_free(struct mqtt_link *l)
{
	if (!l)
		return;
	drop(l);
	if (l->tick)
		event_free(l->tick);
	if (l->later)
		event_free(l->later);
	free(l->ctx);
	free(l->acks);
	free(l);
	mosquitto_lib_cleanup();
}

static bool configure(struct mqtt_link *l)
{
	const struct mqtt_settings *s = l->o.s;
	struct mosquitto *m = l->m;
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_disconnect_v5_callback_set(m, on_disconnect);
	mosquitto_publish_v5_callback_set(m, on_publish);
	mosquitto_log_callback_set(m, on_log);
	if (mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
	                         s->protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311) ||
	    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, LINK_SEND_MAXIMUM) ||
	    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1))
		return false;
	if ((s->user || l->o.password) &&
	    mosquitto_username_pw_set(m, s->user ? s->user : "", l->o.password))
		return false;
	/* The last will: the broker says "offline" for us when we vanish. */
	if (mosquitto_will_set(m, l->o.will_topic, 7, "offline", 1, true))
		return false;
	if (s->tls) {
		/* Verified, host name included (libmosquitto checks the name
		 * unless told it is insecure); the system's CAs without a file. */
		if (s->cafile ? mosquitto_tls_set(m, s->cafile, NULL, NULL, NULL, NULL)
		              : mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1))
			return false;
	}
	return true;
}

void mqtt_link_connect(struct mqtt_link *l)
{
	if (l->state != LINK_IDLE)
		return;
	l->connack_ok = l->acks_lost = l->close_acked = false;
	l->refused = l->lib_rc = l->close_mid = 0;
	l->lib_error[0] = '\0';
	l->nacks = 0;
	l->state = LINK_CONNECTING;
	l->started = time(NULL);
	/* A clean session: nothing is subscribed on this connection, and what
	 * was in flight is sent again from the outbox. */
	l->m = mosquitto_new(l->o.client_id, true, l);
	if (!l->m) {
		l->lib_rc = MOSQ_ERR_NOMEM;
	} else if (!configure(l)) {
		l->lib_rc = MOSQ_ERR_INVAL;
		if (!l->lib_error[0])
			snprintf(l->lib_error, sizeof(l->lib_error), "the library refused a setting "
			         "(is --mqtt-cafile readable?)");
	} else {
		int rc = mosquitto_connect_async(l->m, l->o.s->host, (int)l->o.s->port,
		                                 LINK_KEEPALIVE);
		if (rc != MOSQ_ERR_SUCCESS)
			l->lib_rc = rc;
	}
	if (l->lib_rc) {
		/* No socket to watch: settle from the loop reports the failure. */
		drop_object(l);
		struct timeval now = { 0, 0 };
		evtimer_add(l->later, &now);
		return;
	}
	settle(l);
}

int mqtt_link_publish(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
                      bool retained, uint64_t ctx)
{
	if (l->state != LINK_UP || !l->m || len > INT32_MAX)
		return -1;
	int mid = 0;
	int rc = mosquitto_publish(l->m, &mid, topic, (int)len, payload, 1, retained);
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		break;
	case MOSQ_ERR_ERRNO:
	case MOSQ_ERR_CONN_LOST:
	case MOSQ_ERR_NO_CONN:
		/* Queued, but the write failed: the read event sees the socket
		 * closed, settle reports it, and the message goes out again from
		 * the outbox after the reconnection. */
		if (!l->lib_rc)
			l->lib_rc = rc;
		break;
	default:
		/* Refused before it was queued (a bad topic, no memory). */
		log_event(LOG_WARN, "mqtt_publish_failed", "topic=%s reason=\"%s\"", topic,
		          mosquitto_strerror(rc));
		return -1;
	}
	l->ctx[(unsigned)mid % LINK_MIDS] = ctx;
	/* What the socket did not take at once goes when it is writable. */
	if (l->wr && mosquitto_want_write(l->m))
		event_add(l->wr, NULL);
	return 0;
}

static void cork(struct mqtt_link *l, int on)
{
	int fd = l->m && l->state == LINK_UP ? mosquitto_socket(l->m) : -1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

void mqtt_link_hold(struct mqtt_link *l)
{
	cork(l, 1);
}

void mqtt_link_flush(struct mqtt_link *l)
{
	cork(l, 0);
}

void mqtt_link_close(struct mqtt_link *l, const char *topic, const char *payload, int wait_ms)
{
	if (l->state != LINK_UP || !l->m) {
		drop(l);
		return;
	}
	int mid = 0;
	if (mosquitto_publish(l->m, &mid, topic, (int)strlen(payload), payload, 1, true) ==
	    MOSQ_ERR_SUCCESS) {
		l->close_mid = mid;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			int fd = mosquitto_socket(l->m);
			struct timespec t;
			clock_gettime(CLOCK_MONOTONIC, &t);
			long left = wait_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
			                       (t.tv_nsec - t0.tv_nsec) / 1000000);
			if (l->close_acked || fd < 0 || left <= 0)
				break;
			struct pollfd p = { .fd = fd,
				                .events = POLLIN | (mosquitto_want_write(l->m) ? POLLOUT : 0) };
			if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
				break;
			if (p.revents & POLLOUT)
				mosquitto_loop_write(l->m, 1);
			if (p.revents & (POLLIN | POLLHUP | POLLERR))
				mosquitto_loop_read(l->m, 1);
		}
	}
	/* DISCONNECT: the broker discards the will. */
	if (mosquitto_socket(l->m) >= 0 && mosquitto_disconnect(l->m) == MOSQ_ERR_SUCCESS)
		for (int i = 0; i < 10 && mosquitto_socket(l->m) >= 0 && mosquitto_want_write(l->m);
		     i++)
			if (mosquitto_loop_write(l->m, 1) != MOSQ_ERR_SUCCESS)
				break;
	drop(l);
}
