/* The send requests' connection (--mqtt-send): Paho's asynchronous client,
 * subscribed at QoS 1 to PREFIX/send and PREFIX/send/+ under its own
 * client id (the bridge's + "-send") with a persistent session, so that
 * the broker keeps the requests that arrive while rawmail is away and
 * sends again those it got no PUBACK for.  Nothing is published here
 * (the results go out on the publishing connection, link.c).
 *
 * Why Paho here and not libmosquitto: libmosquitto 2.0 (Debian's 2.0.11,
 * lib/handle_publish.c) sends the PUBACK of a QoS 1 message before it
 * runs the message callback, so a crash in between loses a request the
 * broker believes delivered.  Paho's asynchronous client (1.3.12,
 * MQTTProtocol_handlePublishes) runs messageArrived first and sends the
 * PUBACK after it returns: bridge_send.c queues the request durably before
 * returning. */
#include "mqtt/bridge_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"

/* ---- Paho's threads: notes into the pipe ---- */

static void note_text(struct mqtt_note *n, const char *text)
{
	snprintf(n->text, sizeof(n->text), "%s", text ? text : "");
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *d)
{
	struct mqtt_note n = { .kind = MQTT_NOTE_CONNECTED };
	mqtt_bridge_note(ctx, &n);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *d)
{
	struct mqtt_note n = { .kind = MQTT_NOTE_CONNECTED };
	mqtt_bridge_note(ctx, &n);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData *d)
{
	struct mqtt_note n = { .kind = MQTT_NOTE_CONNECT_FAILED, .code = d ? d->code : -1 };
	note_text(&n, d ? d->message : NULL);
	mqtt_bridge_note(ctx, &n);
}

static void on_connect_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	/* A CONNACK refusal is a reason code (MQTT 5 §3.2.2.2); a network
	 * failure is Paho's code. */
	struct mqtt_note n = { .kind = MQTT_NOTE_CONNECT_FAILED,
		                   .code = d ? (d->reasonCode ? (int)d->reasonCode : d->code) : -1 };
	note_text(&n, d ? d->message : NULL);
	mqtt_bridge_note(ctx, &n);
}

static void on_lost(void *ctx, char *cause)
{
	struct mqtt_note n = { .kind = MQTT_NOTE_LOST };
	note_text(&n, cause);
	mqtt_bridge_note(ctx, &n);
	free(cause);
}

/* ---- the main loop ---- */

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	mqtt_receiver_connect(arg);
}

static void retry_later(struct mqtt_bridge *b)
{
	mqtt_retry_arm(b->rcv.retry, &b->rcv.retry_ms);
}

static void subscribe(struct mqtt_bridge *b)
{
	char t1[600], t2[600];
	snprintf(t1, sizeof(t1), "%s/send", b->s->topic);
	snprintf(t2, sizeof(t2), "%s/send/+", b->s->topic);
	char *const topics[2] = { t1, t2 };
	int qos[2] = { 1, 1 };
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	int rc = MQTTAsync_subscribeMany(b->rcv.client, 2, topics, qos, &ro);
	if (rc != MQTTASYNC_SUCCESS)
		log_event(LOG_ERROR, "mqtt_subscribe_failed", "topic=%s reason=\"%s\"", t1,
		          MQTTAsync_strerror(rc));
}

void mqtt_receiver_note(struct mqtt_bridge *b, const struct mqtt_note *n)
{
	struct mqtt_receiver *r = &b->rcv;
	switch (n->kind) {
	case MQTT_NOTE_CONNECTED:
		r->connected = true;
		r->connecting = false;
		r->retry_ms = MQTT_RETRY_MIN_MS;
		r->auth_failed_logged = false;
		log_event(LOG_INFO, "mqtt_requests_connected", "broker=%s client_id=%s",
		          b->server_uri, r->client_id);
		subscribe(b);
		break;
	case MQTT_NOTE_CONNECT_FAILED:
		r->connecting = false;
		/* One line per cause, not one per retry. */
		if (!r->auth_failed_logged || !mqtt_login_refused(n->code))
			log_event(LOG_ERROR, "mqtt_requests_connect_failed",
			          "broker=%s client_id=%s code=%d reason=\"%s\" hint=\"%s\" retry_ms=%u",
			          b->server_uri, r->client_id, n->code, n->text[0] ? n->text : "refused",
			          mqtt_connect_hint(n->code), r->retry_ms);
		r->auth_failed_logged = mqtt_login_refused(n->code);
		retry_later(b);
		break;
	case MQTT_NOTE_LOST:
		if (!r->connected)
			break;
		r->connected = false;
		log_event(LOG_WARN, "mqtt_requests_lost", "broker=%s cause=\"%s\" retry_ms=%u",
		          b->server_uri, n->text[0] ? n->text : "connection closed", r->retry_ms);
		retry_later(b);
		break;
	}
}

void mqtt_receiver_connect(struct mqtt_bridge *b)
{
	struct mqtt_receiver *r = &b->rcv;
	if (b->stopping || r->connected || r->connecting)
		return;
	const struct mqtt_settings *s = b->s;
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTAsync_connectOptions *o = s->protocol == 5 ? &co5 : &co;
	o->keepAliveInterval = 30;
	o->connectTimeout = 10;
	o->context = b;
	if (s->protocol == 5) {
		o->cleanstart = 0;
		o->onSuccess5 = on_connect_ok5;
		o->onFailure5 = on_connect_failed5;
		MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
			               .value.integer4 = 7 * 24 * 3600 };
		MQTTProperties_add(&props, &p);
		o->connectProperties = &props;
	} else {
		o->cleansession = 0;
		o->onSuccess = on_connect_ok;
		o->onFailure = on_connect_failed;
	}
	o->username = s->user;
	o->password = b->password;
	if (s->tls) {
		ssl.trustStore = s->cafile;
		ssl.enableServerCertAuth = 1;
		ssl.verify = 1;            /* the host name too */
		o->ssl = &ssl;
	}
	r->connecting = true;
	int rc = MQTTAsync_connect(r->client, o);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		r->connecting = false;
		log_event(LOG_ERROR, "mqtt_requests_connect_failed", "broker=%s reason=\"%s\" "
		          "retry_ms=%u", b->server_uri, MQTTAsync_strerror(rc), r->retry_ms);
		retry_later(b);
	}
}

int mqtt_receiver_new(struct mqtt_bridge *b)
{
	struct mqtt_receiver *r = &b->rcv;
	const struct mqtt_settings *s = b->s;
	r->retry_ms = MQTT_RETRY_MIN_MS;
	size_t n = strlen(b->client_id) + 8;
	if (!(r->client_id = malloc(n)) || !(r->retry = evtimer_new(b->base, retry_cb, b)))
		return -1;
	snprintf(r->client_id, n, "%s-send", b->client_id);
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	co.MQTTVersion = s->protocol == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	co.sendWhileDisconnected = 0;
	/* Paho (1.3.12) reads the bridge's mqtt:// and mqtts:// URIs. */
	int rc = MQTTAsync_createWithOptions(&r->client, b->server_uri, r->client_id,
	                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc == MQTTASYNC_SUCCESS)
		rc = MQTTAsync_setCallbacks(r->client, b, on_lost, mqtt_requests_arrived, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		log_event(LOG_ERROR, "mqtt_create_failed", "broker=%s reason=\"%s\"", b->server_uri,
		          MQTTAsync_strerror(rc));
		return -1;
	}
	return 0;
}

void mqtt_receiver_stop(struct mqtt_bridge *b)
{
	struct mqtt_receiver *r = &b->rcv;
	if (!r->client || !MQTTAsync_isConnected(r->client))
		return;
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
	d.timeout = 1000;
	MQTTAsync_disconnect(r->client, &d);
	/* disconnect is asynchronous: let it finish. */
	for (int i = 0; i < 20 && MQTTAsync_isConnected(r->client); i++)
		usleep(50 * 1000);
}

void mqtt_receiver_free(struct mqtt_bridge *b)
{
	struct mqtt_receiver *r = &b->rcv;
	if (r->client)
		MQTTAsync_destroy(&r->client);
	if (r->retry)
		event_free(r->retry);
	free(r->client_id);
	memset(r, 0, sizeof(*r));
}
