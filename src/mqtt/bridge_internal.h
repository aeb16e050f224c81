/* What the bridge's files share (bridge.c the process and its publishing
 * connection, link.c that connection, bridge_outbox.c the outbox,
 * bridge_results.c the results, bridge_receiver.c the send requests'
 * connection, bridge_send.c the requests).  Threads: the main thread runs
 * a libevent loop and owns everything below except what bridge_send.c
 * touches.  libmosquitto (link.c) runs inside that loop.  Paho (the
 * requests' connection, only with --mqtt-send) calls back on its own
 * threads; those callbacks only write notes into a pipe the main loop
 * reads, except messageArrived, which must queue a request before it
 * returns (Paho sends the PUBACK after it), so it runs bridge_send.c on
 * Paho's thread with state of its own (the spool, the rate limit), and
 * hands its results to the loop as notes. */
#ifndef RAWMAIL_MQTT_BRIDGE_INTERNAL_H
#define RAWMAIL_MQTT_BRIDGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <MQTTAsync.h>

#include "mqtt/bridge.h"

struct event_base;
struct event;
struct queue_spool;
struct dkim_key;

/* Published messages in flight at once (QoS 1, awaiting PUBACK): enough
 * to keep a loopback or LAN broker busy, small enough that a lost
 * connection sends little twice. */
#define MQTT_WINDOW 64
/* Reconnection: 1 s, doubling up to a minute. */
#define MQTT_RETRY_MIN_MS 1000
#define MQTT_RETRY_MAX_MS 60000
/* The bridge's nice value: below the processes that answer clients. */
#define MQTT_NICE 10
/* A clean stop waits this long for the broker to take "offline". */
#define MQTT_STOP_WAIT_MS 2000

/* One outbox file known to the publisher. */
struct mqtt_ob_file {
	char name[64];
	size_t nevents;        /* its records (counted when first seen) */
	uint32_t serial;       /* names it in the PUBACK ring */
	size_t outstanding;    /* PUBACKs awaited */
	bool sent_all;         /* every record published (this connection) */
};

/* One record of the file being published, copied out of the parser. */
struct mqtt_ob_event;

/* Publish sequence numbers -> the file they belong to; larger than any
 * number of messages in flight (the window, plus one event's attachments
 * at most MQTT_EVENT_PARTS_MAX). */
#define MQTT_RING 16384

struct mqtt_publisher {
	struct mqtt_ob_file *files;     /* sorted by name: commit order */
	size_t nfiles, cap;
	size_t total;                   /* events in all files */
	size_t loaded;                  /* files[0..loaded) are being published */
	struct mqtt_ob_event *events;   /* the records of files[loaded - 1] */
	size_t nev, next;
	size_t inflight;                /* messages awaiting PUBACK */
	unsigned burst;                 /* publishes in this pump (bridge_outbox.c) */
	uint64_t seq;                   /* the last publish's number, this connection */
	uint32_t serial;                /* the last file serial given */
	uint32_t ring[MQTT_RING];       /* seq % MQTT_RING -> file serial */
	int inotify_fd;
	struct event *notify;
	struct event *again;            /* a publish that failed: start over soon */
	int outbox_fd;                  /* MAILROOT/.rawmail/outbox */
	int rootfd;                     /* the mail root */
};

struct mqtt_requests;

/* Outcomes of queued requests (bridge_results.c): SPOOL/results files, one
 * published at a time (they are rare), each unlinked after its PUBACK. */
struct mqtt_results {
	int dirfd;                      /* SPOOL/results, -1 without --mqtt-send */
	int inotify_fd;
	struct event *notify;
	char inflight[128];             /* the file whose result awaits its PUBACK */
	uint64_t seq;
};
/* Publish contexts: bit 39 marks a result's (the rest is the publisher's). */
#define MQTT_CTX_RESULT (UINT64_C(1) << 39)

/* The send requests' connection (bridge_receiver.c): Paho, its own
 * client id (the bridge's + "-send") and a persistent session. */
struct mqtt_receiver {
	MQTTAsync client;
	char *client_id;
	bool connected, connecting;
	bool auth_failed_logged;
	unsigned retry_ms;
	struct event *retry;
};

struct mqtt_link;

struct mqtt_bridge {
	const struct mqtt_bridge_child *child;
	const struct mqtt_settings *s;
	struct event_base *base;
	struct mqtt_link *link;         /* the publishing connection (link.c) */
	char *server_uri;               /* mqtt[s]://HOST:PORT: logs, Paho */
	char *client_id;
	char *password;                 /* read as root, wiped at exit */
	char topic_status[512];
	char topic_received[512];       /* PREFIX/received */
	char topic_result[512];
	int pipe_rd, pipe_wr;           /* notes from Paho's threads */
	struct event *pipe_ev;
	struct event *retry;            /* the link's next connection attempt */
	struct mqtt_receiver rcv;       /* with --mqtt-send */
	struct event *sigterm, *sigint;
	unsigned retry_ms;
	unsigned epoch;                 /* connections made: stale callbacks are ignored */
	bool connected, stopping;
	bool auth_failed_logged;
	struct mqtt_publisher pub;
	struct mqtt_requests *req;      /* NULL without --mqtt-send */
	struct mqtt_results res;
	/* MAILROOT/.rawmail/mqtt-requests: QUEUE_ID -> the request's id,
	 * written by bridge_send.c, read and removed by bridge_results.c. */
	int ids_fd;
};

/* Notes from Paho's threads to the main loop. */
enum mqtt_note_kind {
	MQTT_NOTE_CONNECTED = 1,        /* the requests' connection */
	MQTT_NOTE_CONNECT_FAILED,
	MQTT_NOTE_LOST,
	MQTT_NOTE_RESULT,               /* data: a request's result (JSON), to publish */
};
struct mqtt_note {
	uint8_t kind;
	int code;
	char *data;                     /* malloc'd: the reader frees it */
	char text[200];
};
/* false when the pipe would not take it (the caller still owns data). */
bool mqtt_bridge_note(struct mqtt_bridge *b, const struct mqtt_note *n);

/* Sends one QoS 1 message on the publishing connection; its PUBACK comes
 * back to mqtt_publisher_acked or mqtt_results_acked by ctx (0: none).
 * 0, or -1 (not connected, or refused: logged). */
int mqtt_bridge_publish(struct mqtt_bridge *b, const char *topic, const void *payload,
                        size_t len, bool retained, uint64_t ctx);

/* What a CONNACK refusal code means for the operator (bridge.c). */
const char *mqtt_connect_hint(int code);
/* Whether code refuses the login (bad user name or password, not
 * authorized: MQTT 3.1.1 4 and 5, MQTT 5 134 and 135); a repeat of such a
 * refusal is not logged again at every retry. */
bool mqtt_login_refused(int code);
/* Arms timer for *ms, then doubles *ms up to MQTT_RETRY_MAX_MS: the
 * reconnection backoff of both connections. */
void mqtt_retry_arm(struct event *timer, unsigned *ms);

/* bridge_receiver.c: _new after the loop exists (with --mqtt-send);
 * _note for the notes its callbacks wrote; _stop disconnects. */
int mqtt_receiver_new(struct mqtt_bridge *b);
void mqtt_receiver_connect(struct mqtt_bridge *b);
void mqtt_receiver_note(struct mqtt_bridge *b, const struct mqtt_note *n);
void mqtt_receiver_stop(struct mqtt_bridge *b);
void mqtt_receiver_free(struct mqtt_bridge *b);

/* bridge_outbox.c */
int mqtt_publisher_init(struct mqtt_bridge *b);
void mqtt_publisher_free(struct mqtt_bridge *b);
/* The connection is up (start from the oldest file) or down (forget
 * what was in flight: it is sent again). */
void mqtt_publisher_connected(struct mqtt_bridge *b);
void mqtt_publisher_lost(struct mqtt_bridge *b);
void mqtt_publisher_acked(struct mqtt_bridge *b, uint64_t seq, bool ok);

/* bridge_results.c: _open as root (the spool), _init once the loop exists */
int mqtt_results_open(struct mqtt_bridge *b);
int mqtt_results_init(struct mqtt_bridge *b);
void mqtt_results_free(struct mqtt_bridge *b);
void mqtt_results_connected(struct mqtt_bridge *b);
void mqtt_results_lost(struct mqtt_bridge *b);
void mqtt_results_acked(struct mqtt_bridge *b, uint64_t seq, bool ok);

/* bridge_send.c */
struct mqtt_requests *mqtt_requests_new(struct mqtt_bridge *b);
void mqtt_requests_free(struct mqtt_requests *r);
/* Paho's messageArrived (its thread). */
int mqtt_requests_arrived(void *ctx, char *topic, int topiclen, MQTTAsync_message *m);

#endif
