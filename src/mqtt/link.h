/* The bridge's publishing connection (issue 12): libmosquitto driven by
 * the bridge's libevent loop, with no thread of its own.  It carries all
 * that rawmail publishes: the status and its last will, the events and
 * their attachments, the results of send requests.
 *
 * Why libmosquitto here and Paho for the send requests (bridge_receiver.c):
 * publishing through Paho's asynchronous client wakes its send thread and
 * its receive thread for every message; measured on the 2-core machine
 * (doc/DESIGN.md, "The MQTT bridge"), a 4 KiB QoS 1 message paced like
 * mail cost 103 us of CPU with Paho and 42 with libmosquitto in one loop,
 * 33 and 4 in bursts.  Receiving is the other way round: libmosquitto 2.0
 * acknowledges a QoS 1 message before its callback runs, Paho after.
 *
 * One connection attempt at a time; each attempt is a fresh libmosquitto
 * object (nothing is kept in the library between connections: the
 * outbox, not the library, holds what is still to send). */
#ifndef RAWMAIL_MQTT_LINK_H
#define RAWMAIL_MQTT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt/settings.h"

struct event_base;
struct mqtt_link;

/* Called from the loop, never from inside another link call. */
struct mqtt_link_events {
	/* The broker accepted the connection (CONNACK 0). */
	void (*up)(void *arg);
	/* The attempt failed (was_up false) or the connection ended (was_up
	 * true).  code: the CONNACK's return code (MQTT 3.1.1) or reason
	 * code (MQTT 5) when the broker refused, else -1; why: a sentence. */
	void (*down)(void *arg, bool was_up, int code, const char *why);
	/* A publish's PUBACK: ok, or a refusal (an MQTT 5 reason >= 0x80). */
	void (*acked)(void *arg, uint64_t ctx, bool ok);
};

struct mqtt_link_options {
	const struct mqtt_settings *s;   /* host, port, tls, cafile, user, protocol */
	const char *client_id;
	const char *password;            /* NULL: none */
	const char *will_topic;          /* its payload "offline", retained, QoS 1 */
};

struct mqtt_link *mqtt_link_new(struct event_base *base, const struct mqtt_link_options *o,
                                const struct mqtt_link_events *ev, void *arg);
void mqtt_link_free(struct mqtt_link *l);

/* Starts an attempt: its outcome comes through up or down (also when it
 * fails at once: from the loop, soon). */
void mqtt_link_connect(struct mqtt_link *l);

/* A QoS 1 message; its PUBACK comes through acked with ctx.  0, or -1 when
 * the connection is not up or the library would not take it (the caller
 * forgets what is in flight: down follows, or it starts over). */
int mqtt_link_publish(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
                      bool retained, uint64_t ctx);

/* Around a burst of publishes: held (TCP_CORK) until _flush, the burst
 * leaves in as few segments as fit, and the broker wakes once for it
 * rather than once a message.  Harmless when not connected. */
void mqtt_link_hold(struct mqtt_link *l);
void mqtt_link_flush(struct mqtt_link *l);

/* The clean stop: publishes payload on topic (retained, QoS 1), waits up
 * to wait_ms for its PUBACK, then disconnects (no last will). */
void mqtt_link_close(struct mqtt_link *l, const char *topic, const char *payload, int wait_ms);

#endif
