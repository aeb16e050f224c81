/* What an attempt's results mean for an envelope (runner.h): pure, the
 * clock passed in, tested by tests/unit/test_queue_runner.c. */
#include "queue/runner.h"

#include <stdlib.h>
#include <string.h>

void queue_policy_default(struct queue_policy *p)
{
	*p = (struct queue_policy){ .lifetime = QUEUE_LIFETIME_DEFAULT, .bounce = true };
	queue_schedule_default(&p->schedule);
}

void queue_decision_free(struct queue_decision *d)
{
	free(d->failed);
	free(d->status);
	free(d->delayed);
	*d = (struct queue_decision){ 0 };
}

/* RFC 5321 §4.5.5: a message with the null reverse-path (a notification)
 * never gets a notification; nor does one we flagged as a bounce. */
static bool bounceable(const struct queue_envelope *env, const struct queue_policy *pol)
{
	return pol->bounce && env->sender && env->sender[0] && !(env->flags & QUEUE_FLAG_BOUNCE);
}

int queue_runner_decide(struct queue_envelope *env, const size_t *idx,
                        const struct queue_result *results, size_t n, int64_t now,
                        const struct queue_policy *pol, struct queue_decision *d)
{
	*d = (struct queue_decision){ 0 };
	bool bounce = bounceable(env, pol);
	d->failed = calloc(n ? n : 1, sizeof(*d->failed));
	d->status = calloc(n ? n : 1, sizeof(*d->status));
	if (!d->failed || !d->status)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= env->nrcpts)
			continue;
		struct queue_rcpt *r = &env->rcpts[idx[i]];
		if (r->state != QUEUE_RCPT_QUEUED)
			continue;
		r->attempts++;
		r->last_attempt = now;
		if (results[i].last && queue_rcpt_set_last(r, results[i].last) != 0)
			goto nomem;
		const char *status = NULL;
		switch (results[i].outcome) {
		case QUEUE_OUTCOME_DELIVERED:
			r->state = QUEUE_RCPT_DELIVERED;
			r->next = 0;
			d->delivered++;
			continue;
		case QUEUE_OUTCOME_TEMPORARY:
			if (!queue_expired(env->created, pol->lifetime, now)) {
				r->next = queue_schedule_next(&pol->schedule, r->attempts, now);
				d->deferred++;
				continue;
			}
			/* RFC 3463 §3.5 X.4.7: delivery time expired. */
			status = "4.4.7";
			break;
		case QUEUE_OUTCOME_PERMANENT:
			break;
		}
		r->state = QUEUE_RCPT_FAILED;
		r->next = 0;
		d->failed_now++;
		if (bounce) {
			r->state = QUEUE_RCPT_BOUNCED;
			d->failed[d->nfailed] = idx[i];
			d->status[d->nfailed++] = status;
		}
	}
	size_t queued = 0;
	for (size_t i = 0; i < env->nrcpts; i++)
		queued += env->rcpts[i].state == QUEUE_RCPT_QUEUED;
	d->finished = queued == 0;
	if (queued > 0 && bounceable(env, pol) && pol->delay_warning > 0 &&
	    queue_delay_warning_due(env->created, pol->delay_warning,
	                            (env->flags & QUEUE_FLAG_WARNED) != 0, now)) {
		d->delayed = calloc(queued, sizeof(*d->delayed));
		if (!d->delayed)
			goto nomem;
		for (size_t i = 0; i < env->nrcpts; i++)
			if (env->rcpts[i].state == QUEUE_RCPT_QUEUED)
				d->delayed[d->ndelayed++] = i;
		env->flags |= QUEUE_FLAG_WARNED;
	}
	return 0;
nomem:
	queue_decision_free(d);
	return -1;
}

void queue_runner_unbounce(struct queue_envelope *env, const struct queue_decision *d,
                           bool failed_too, bool warning_too, int64_t now,
                           const struct queue_policy *pol)
{
	for (size_t i = 0; failed_too && i < d->nfailed; i++) {
		struct queue_rcpt *r = &env->rcpts[d->failed[i]];
		r->state = QUEUE_RCPT_QUEUED;
		r->next = queue_schedule_next(&pol->schedule, r->attempts, now);
	}
	if (warning_too && d->ndelayed > 0)
		env->flags &= ~(unsigned)QUEUE_FLAG_WARNED;
}

void queue_last_split(const char *last, char *host, size_t hostlen, const char **rest,
                      bool *is_reply)
{
	host[0] = '\0';
	*rest = last ? last : "";
	*is_reply = false;
	if (!last)
		return;
	/* "host [ip]: " before the text (the deliverer's form): the host
	 * is what comes before the first space; or "[ip]: " for an address
	 * literal. */
	const char *nl = strchr(last, '\n');
	const char *end = strstr(last, "]: ");
	const char *sp = strchr(last, ' ');
	bool literal = last[0] == '[' && end && sp == end + 2;
	if (end && (!nl || end < nl) && sp && (literal || (sp < end && sp[1] == '['))) {
		size_t hn = literal ? (size_t)(end + 1 - last) : (size_t)(sp - last);
		if (hn >= hostlen)
			hn = hostlen - 1;
		memcpy(host, last, hn);
		host[hn] = '\0';
		*rest = end + 3;
	}
	const char *t = *rest;
	*is_reply = t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' && t[2] >= '0' &&
	            t[2] <= '9' && (t[3] == ' ' || t[3] == '-' || t[3] == '\0');
}
