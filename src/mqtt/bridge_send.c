/* The bridge's send requests (--mqtt-send): PREFIX/send and PREFIX/send/ADDR
 * at QoS 1.  Paho calls mqtt_requests_arrived on its own thread and sends
 * the PUBACK only after it returns (bridge.c says why Paho), so a request
 * is parsed (mqtt/request.c), signed (DKIM, issue 11) and queued in the
 * spool, durably, before the broker hears that rawmail has it: a crash in
 * between makes the broker send it again (the mail may go out twice,
 * never zero times).  When the spool cannot take it, the process exits
 * without acknowledging: the broker keeps the request for the next
 * connection, and serve's parent starts the bridge again.
 *
 * Everything here runs on Paho's thread only: the spool, the keys and the
 * rate limit are this thread's. */
#include "mqtt/bridge_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mqtt/event.h"
#include "mqtt/request.h"
#include "msg/dkim.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/durable.h"
#include "util/log.h"

#define EXIT_TEMPFAIL 75
#define MQTT_DKIM_MAX 8

struct mqtt_requests {
	struct mqtt_bridge *b;
	struct queue_spool *sp;
	struct dkim_key *keys[MQTT_DKIM_MAX];
	size_t nkeys;
	/* The rate limit: a bucket of --mqtt-send-rate tokens, refilled at
	 * that rate per minute. */
	double tokens;
	struct timespec last;
	char send_topic[600];        /* PREFIX/send */
};

struct mqtt_requests *mqtt_requests_new(struct mqtt_bridge *b)
{
	const struct mqtt_bridge_child *c = b->child;
	struct mqtt_requests *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->b = b;
	r->tokens = b->s->send_rate;
	clock_gettime(CLOCK_MONOTONIC, &r->last);
	snprintf(r->send_topic, sizeof(r->send_topic), "%s/send", b->s->topic);
	char why[512];
	if (!c->spool) {
		log_event(LOG_ERROR, "mqtt_config", "reason=\"--mqtt-send queues mail: give --spool DIR\"");
		goto fail;
	}
	if (queue_spool_open(c->spool, 0, &r->sp, why, sizeof(why)) != QUEUE_OK) {
		log_event(LOG_ERROR, "mqtt_config", "reason=\"%s\"", why);
		goto fail;
	}
	for (size_t i = 0; i < c->ndkim && i < MQTT_DKIM_MAX; i++) {
		if (dkim_key_load(c->dkim[i].key, &r->keys[i], why, sizeof(why)) < 0) {
			log_event(LOG_ERROR, "dkim_key", "file=%s reason=\"%s\"", c->dkim[i].key, why);
			goto fail;
		}
		r->nkeys++;
	}
	return r;
fail:
	mqtt_requests_free(r);
	return NULL;
}

void mqtt_requests_free(struct mqtt_requests *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nkeys; i++)
		dkim_key_free(r->keys[i]);
	if (r->sp)
		queue_spool_close(r->sp);
	free(r);
}

static bool rate_take(struct mqtt_requests *r)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double dt = (double)(now.tv_sec - r->last.tv_sec) + (now.tv_nsec - r->last.tv_nsec) / 1e9;
	r->last = now;
	double rate = r->b->s->send_rate;
	r->tokens += dt * rate / 60.0;
	if (r->tokens > rate)
		r->tokens = rate;
	if (r->tokens < 1.0)
		return false;
	r->tokens -= 1.0;
	return true;
}

static void result_publish(struct mqtt_requests *r, const char *id, const char *qid,
                           const char *status, const char *reason,
                           const struct mqtt_result_rcpt *rc, size_t n)
{
	char *json = mqtt_result_json(id, qid, status, reason, rc, n);
	if (!json) {
		log_event(LOG_ERROR, "mqtt_result", "status=%s error=\"out of memory\"", status);
		return;
	}
	/* Published by the main loop, which owns the publishing connection
	 * (this runs on Paho's thread). */
	struct mqtt_note note = { .kind = MQTT_NOTE_RESULT, .data = json };
	if (!mqtt_bridge_note(r->b, &note)) {
		log_event(LOG_WARN, "mqtt_result", "status=%s reason=\"%s\"", status,
		          strerror(errno));
		free(json);
	}
}

/* DKIM signatures for the From domain's keys, in front of the message
 * (RFC 6376 §5.6); sigs stays empty when no key covers it. */
static void sign(struct mqtt_requests *r, const struct mqtt_request *q, struct buf *sigs)
{
	const struct mqtt_bridge_child *c = r->b->child;
	struct dkim_from f;
	dkim_from_find(q->message, q->message_len, &f);
	const char *at = f.fields == 1 && f.addresses == 1 ? strrchr(f.address, '@') : NULL;
	if (!at || at[1] == '[')
		return;
	for (size_t i = 0; i < r->nkeys; i++) {
		if (!dkim_domain_covers(c->dkim[i].domain, at + 1))
			continue;
		char err[600];
		if (dkim_sign(r->keys[i], c->dkim[i].domain, c->dkim[i].selector, time(NULL),
		              q->message, q->message_len, sigs, err, sizeof(err)) < 0)
			log_event(LOG_ERROR, "dkim_failed", "domain=%s selector=%s reason=\"%s\"",
			          c->dkim[i].domain, c->dkim[i].selector, err);
		else
			log_event(LOG_INFO, "dkim_signed", "domain=%s selector=%s alg=%s",
			          c->dkim[i].domain, c->dkim[i].selector, dkim_key_type_name(r->keys[i]));
	}
}

/* Queues a parsed request; exits (no PUBACK) when the spool cannot take it. */
static void enqueue(struct mqtt_requests *r, struct mqtt_request *q)
{
	struct queue_envelope env = { .origin = QUEUE_ORIGIN_MQTT };
	char why[512] = "out of memory";
	enum queue_status st = QUEUE_TEMP;
	char qi[200], qw[600];
	struct buf msg;
	buf_init(&msg, (size_t)r->b->child->max_message_size + 64 * 1024);
	if (queue_envelope_set_sender(&env, q->from) != 0)
		goto fail;
	for (size_t i = 0; i < q->nto; i++)
		if (queue_envelope_add_rcpt(&env, q->to[i], NULL) != 0)
			goto fail;
	if (queue_envelope_wants_smtputf8(&env))
		env.flags |= QUEUE_FLAG_SMTPUTF8;
	sign(r, q, &msg);
	if (buf_append(&msg, q->message, q->message_len) != 0)
		goto fail;
	st = queue_spool_enqueue(r->sp, &env, msg.data, msg.len, why, sizeof(why));
	if (st != QUEUE_OK)
		goto fail;
	log_event(LOG_INFO, "mqtt_request_queued", "request=%s queue_id=%s rcpts=%zu size=%zu",
	          q->id ? log_quote(qi, sizeof(qi), q->id, strlen(q->id)) : "-", env.id, q->nto,
	          msg.len);
	/* The request's id, for the final results (bridge_results.c); best effort
	 * beyond the sync: a result without its id still names the queue id
	 * the "queued" result gave. */
	if (q->id && durable_file_write(r->b->ids_fd, env.id, 0600, q->id, strlen(q->id), true) < 0)
		log_event(LOG_WARN, "mqtt_request_id", "queue_id=%s error=\"%s\"", env.id,
		          strerror(errno));
	struct mqtt_result_rcpt *rc = calloc(q->nto, sizeof(*rc));
	for (size_t i = 0; rc && i < q->nto; i++)
		rc[i] = (struct mqtt_result_rcpt){ .address = q->to[i], .status = "queued" };
	result_publish(r, q->id, env.id, "queued", NULL, rc, rc ? q->nto : 0);
	free(rc);
	buf_free(&msg);
	queue_envelope_free(&env);
	return;
fail:
	log_event(LOG_ERROR, "mqtt_request_not_queued",
	          "request=%s status=%s reason=%s action=\"exiting without PUBACK: the broker "
	          "keeps the request and sends it again to the next bridge process\"",
	          q->id ? log_quote(qi, sizeof(qi), q->id, strlen(q->id)) : "-",
	          queue_status_name(st), log_quote(qw, sizeof(qw), why, strlen(why)));
	log_flush();
	_exit(EXIT_TEMPFAIL);
}

int mqtt_requests_arrived(void *ctx, char *topic, int topiclen, MQTTAsync_message *m)
{
	struct mqtt_bridge *b = ctx;
	struct mqtt_requests *r = b->req;
	const struct mqtt_settings *s = b->s;
	char addr[600];
	const char *topic_addr = NULL;
	size_t tl = strlen(r->send_topic);
	bool ours = !strcmp(topic, r->send_topic) ||
	            (!strncmp(topic, r->send_topic, tl) && topic[tl] == '/');
	if (!ours)
		goto done;
	/* A retained request is delivered again at every subscription (MQTT
	 * 3.1.1 §3.3.1.3): it was handled when it was published live, with
	 * the retain flag clear. */
	char qt[600], qr[MQTT_REQUEST_REASON_MAX + 64], qi[200];
	if (m->retained) {
		log_event(LOG_WARN, "mqtt_request_ignored", "topic=%s reason=\"retained: sent "
		          "when it was published; publish requests without retain\"",
		          log_quote(qt, sizeof(qt), topic, strlen(topic)));
		goto done;
	}
	char reason[MQTT_REQUEST_REASON_MAX] = "";
	struct mqtt_request q = { 0 };
	/* Fresh per request: the Message-ID and the MIME boundaries. */
	unsigned char rnd[MQTT_REQUEST_RANDOM_LEN];
	bool have_rnd = getrandom(rnd, sizeof(rnd), 0) == (ssize_t)sizeof(rnd);
	if (topic[tl] == '/' && mqtt_topic_level_decode(topic + tl + 1, addr, sizeof(addr)) == 0) {
		snprintf(reason, sizeof(reason), "the topic's address level is not valid");
	} else {
		if (topic[tl] == '/')
			topic_addr = addr;
		struct mqtt_request_policy pol = {
			.allow = (const char *const *)s->send_allow.items, .nallow = s->send_allow.n,
			.from = s->from, .max_size = (size_t)b->child->max_message_size,
			.hostname = b->child->hostname, .now = time(NULL),
			.random = have_rnd ? rnd : NULL,
		};
		if (mqtt_request_parse(topic_addr, m->payload, (size_t)m->payloadlen, &pol, &q,
		                       reason, sizeof(reason))) {
			if (rate_take(r)) {
				enqueue(r, &q);
				mqtt_request_free(&q);
				goto done;
			}
			snprintf(reason, sizeof(reason), "rate limit: at most %u requests per minute "
			         "(--mqtt-send-rate)", s->send_rate);
		}
	}
	log_event(LOG_WARN, "mqtt_request_refused", "request=%s reason=%s",
	          q.id ? log_quote(qi, sizeof(qi), q.id, strlen(q.id)) : "-",
	          log_quote(qr, sizeof(qr), reason, strlen(reason)));
	result_publish(r, q.id, NULL, "refused", reason, NULL, 0);
	mqtt_request_free(&q);
done:
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}
