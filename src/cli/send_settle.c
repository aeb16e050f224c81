/* What the first attempt's results do to the queue (send.h): a client
 * result as the queue records it, and rawmail send's entry settled after
 * its foreground attempt.  Apart from send_queue.c, which the sendmail
 * entry's small program links without the delivery engine and runner. */
#include "cli/send.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/maildrop.h"
#include "util/id.h"
#include "util/log.h"

void send_result_to_queue(const struct client_result *r, struct queue_result *q, char *buf,
                          size_t buflen)
{
	switch (r->state) {
	case CLIENT_RCPT_DELIVERED:
		q->outcome = QUEUE_OUTCOME_DELIVERED;
		break;
	case CLIENT_RCPT_PERMFAIL:
		q->outcome = QUEUE_OUTCOME_PERMANENT;
		break;
	default:
		q->outcome = QUEUE_OUTCOME_TEMPORARY;
		break;
	}
	struct buf b;
	buf_init(&b, buflen > 0 ? buflen - 1 : 0);
	/* "host [ip]: " first, as queue_last_split reads it back for a
	 * DSN's Remote-MTA. */
	if (r->host[0] == '[')
		buf_printf(&b, "%s: ", r->host);   /* an address literal is its own name */
	else if (r->host[0] && r->ip[0])
		buf_printf(&b, "%s [%s]: ", r->host, r->ip);
	if (r->code > 0) {
		/* The reply as the peer sent it, line by line. */
		const char *p = r->text ? r->text : "";
		do {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);
			buf_printf(&b, "%s%03d%c%.*s", p == (r->text ? r->text : "") ? "" : "\n",
			           r->code, nl ? '-' : ' ', (int)n, p);
			p = nl ? nl + 1 : NULL;
		} while (p);
		/* A relay's refused login: the reply alone does not say whose
		 * setting to fix (queue show, the logs, a late DSN). */
		if (r->auth_failed && r->reason[0])
			buf_printf(&b, " (%s)", r->reason);
	} else {
		buf_append_str(&b, r->reason[0] ? r->reason : "no reason given");
	}
	size_t n = b.len < buflen ? b.len : buflen - 1;
	if (buflen > 0) {
		memcpy(buf, b.data ? b.data : "", n);
		buf[n] = '\0';
	}
	buf_free(&b);
	q->last = buf;
}

/* rawmail send's results when its queue is the system's: what is still
 * to try goes into the maildrop, with the reasons said as for a queued
 * entry. */
static int send_entry_settle_drop(const struct send_opts *o, struct send_entry *e,
                                  const struct client_result *res, size_t n, int rc)
{
	struct queue_envelope left = { 0 };
	left.origin = QUEUE_ORIGIN_SEND;
	left.flags = e->env.flags;
	size_t k = 0;
	if (queue_envelope_set_sender(&left, e->env.sender) != 0)
		goto nomem;
	for (size_t i = 0; i < n && i < e->env.nrcpts; i++) {
		if (res[i].state != CLIENT_RCPT_TEMPFAIL && res[i].state != CLIENT_RCPT_DEFERRED)
			continue;
		if (queue_envelope_add_rcpt(&left, e->env.rcpts[i].addr, e->env.rcpts[i].orcpt) != 0)
			goto nomem;
		k++;
	}
	if (k == 0) {
		queue_envelope_free(&left);
		return rc;
	}
	char name[ID_LEN + 1], why[512];
	id_init();
	const struct buf *msg = e->msg;
	enum queue_status st = queue_maildrop_submit(e->drop, &left, msg->data ? msg->data : "",
	                                             msg->len, name, why, sizeof(why));
	queue_envelope_free(&left);
	if (st != QUEUE_OK) {
		fprintf(stderr, "%s: %zu recipient%s not delivered and not queued: %s\n", o->prog, k,
		        k == 1 ? "" : "s", why);
		return SEND_EXIT_TEMPFAIL;
	}
	fprintf(stderr, "%s: queued as %s in %s/%s: %zu recipient%s not delivered yet (the "
	                "reason is above); the system's queue retries\n",
	        o->prog, name, e->drop, QUEUE_MAILDROP_DIR, k, k == 1 ? "" : "s");
	return SEND_EXIT_TEMPFAIL;
nomem:
	queue_envelope_free(&left);
	fprintf(stderr, "%s: out of memory: not queued\n", o->prog);
	return SEND_EXIT_OSERR;
}

/* The first line of a recorded reply, for the "queued as" line. */
static void first_line(char *out, size_t outlen, const char *last)
{
	const char *s = last ? last : "";
	size_t n = strcspn(s, "\n");
	snprintf(out, outlen, "%.*s", (int)n, s);
}

int send_entry_settle(const struct send_opts *o, struct send_entry *e,
                      const struct client_result *res, size_t n, int rc)
{
	if (e->drop)
		return send_entry_settle_drop(o, e, res, n, rc);
	/* What stays queued is durable before "queued as" is said.  An
	 * entry with nothing left (every recipient delivered, or refused for
	 * good and reported) is removed now, while its sync may still run:
	 * send_entry_close waits for that (the process could not end before
	 * it anyway). */
	size_t left = 0;
	for (size_t i = 0; i < n; i++)
		left += res[i].state != CLIENT_RCPT_DELIVERED && res[i].state != CLIENT_RCPT_PERMFAIL;
	if (left > 0 && !send_entry_durable(e)) {
		/* Its sync failed: never queued (the entry is gone again). */
		fprintf(stderr, "%s: %zu recipient%s not delivered and not queued: spool %s: "
		                "syncfs: %s\n",
		        o->prog, left, left == 1 ? "" : "s", e->dir, strerror(e->sync_err));
		return SEND_EXIT_TEMPFAIL;
	}
	e->settled = true;
	struct queue_result *q = calloc(n ? n : 1, sizeof(*q));
	char **lasts = calloc(n ? n : 1, sizeof(*lasts));
	size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	char *one = malloc(QUEUE_ENV_LAST_MAX + 1);
	int out = SEND_EXIT_TEMPFAIL;
	if (!q || !lasts || !idx || !one) {
		fprintf(stderr, "%s: out of memory; the message stays queued as %s\n", o->prog,
		        e->env.id);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		send_result_to_queue(&res[i], &q[i], one, QUEUE_ENV_LAST_MAX + 1);
		lasts[i] = strdup(one);
		q[i].last = lasts[i];
		idx[i] = i;
	}
	/* RFC 5321 §6.1 hands responsibility over to us only for what we
	 * keep: a permanent failure is the user's to hear about now, on
	 * stderr with exit 69 (issue 9), so it is marked failed and never
	 * bounced. */
	struct queue_policy pol = o->policy;
	pol.bounce = false;
	/* The result lines above said it all: only a spool error is logged. */
	log_init("send", LOG_ERROR);
	struct queue_decision d;
	bool removed = false;
	char why[512];
	int64_t now = (int64_t)time(NULL);
	enum queue_status st = queue_runner_settle(e->sp, &e->env, e->msg->data, e->msg->len, idx, q,
	                                           n, now, &pol, "localhost", &d, &removed, why,
	                                           sizeof(why));
	bool finished = d.finished;
	queue_decision_free(&d);
	if (st != QUEUE_OK) {
		fprintf(stderr, "%s: the results could not be recorded in the queue (%s): %s\n",
		        o->prog, e->env.id, why);
		out = finished ? rc : SEND_EXIT_TEMPFAIL;
		goto done;
	}
	out = rc;
	size_t queued = 0, certificate = 0;
	for (size_t i = 0; i < n; i++)
		certificate += e->env.rcpts[i].state == QUEUE_RCPT_QUEUED &&
		               send_result_certificate_refused(&res[i], NULL, 0);
	for (size_t i = 0; i < e->env.nrcpts; i++) {
		const struct queue_rcpt *r = &e->env.rcpts[i];
		if (r->state != QUEUE_RCPT_QUEUED)
			continue;
		char line[1024], text[1400];
		first_line(line, sizeof(line), r->last);
		snprintf(text, sizeof(text), "%s: queued as %s: %s: %s (next attempt in %llds, by "
		                             "rawmail queue run)\n",
		         o->prog, e->env.id, r->addr, line, (long long)(r->next - now));
		send_print_safe(stderr, text, strlen(text));
		out = SEND_EXIT_TEMPFAIL;
		queued++;
	}
	/* A refused certificate stays refused: say that the retries cannot
	 * help until it is dealt with. */
	if (queued > 0 && certificate == queued)
		fprintf(stderr, "%s: the queue's retries will fail the same way until the "
		                "certificate problem above is solved (or rawmail queue delete %s)\n",
		        o->prog, e->env.id);
done:
	for (size_t i = 0; lasts && i < n; i++)
		free(lasts[i]);
	free(lasts);
	free(q);
	free(idx);
	free(one);
	return out;
}
