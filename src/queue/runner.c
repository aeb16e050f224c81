/* One pass of the queue over the spool, on the caller's event loop
 * (runner.h).  The pass collects the ids to try first (a listing reads
 * ahead in threads and is closed before anything is delivered), then
 * keeps up to messages_max entries locked, loaded and in delivery at
 * once; each result is settled (queue_runner_settle) as it comes, and
 * the DSNs that queues are tried in the same pass. */
#include "queue/runner.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define QUEUE_LOG_VALUE 1024
/* The largest message a runner loads (rawmail send takes 64 MiB). */
#define QUEUE_RUNNER_MESSAGE_MAX (256u * 1024u * 1024u)

struct queue_runner {
	struct event_base *base;
	struct queue_spool *sp;
	struct queue_deliverer dl;
	struct queue_runner_config cfg;
	char *reporting;
	struct event *kick;
	char (*ids)[QUEUE_ID_MAX + 1];
	size_t nids, cap, next;
	size_t in_flight;
	bool all_now;            /* one id or a flush: every queued recipient now */
	enum queue_run_mode mode;
	queue_runner_done_fn done;
	void *arg;
	bool running;
	bool stopping;
	struct queue_run_stats stats;
};

/* One entry in delivery: locked, loaded, its due recipients handed out. */
struct queue_job {
	struct queue_runner *r;
	struct queue_lock lk;
	struct queue_envelope env;
	struct buf msg;
	size_t *idx;
	const char **rcpts;
	const char **originals;
	size_t n;
};

static const char *quote(char *dst, size_t len, const char *s)
{
	return log_quote(dst, len, s ? s : "", s ? strlen(s) : 0);
}

static const char *rcpt_result(const struct queue_rcpt *r)
{
	switch (r->state) {
	case QUEUE_RCPT_QUEUED:
		return "deferred";
	case QUEUE_RCPT_DELIVERED:
		return "delivered";
	case QUEUE_RCPT_FAILED:
		return "failed";
	case QUEUE_RCPT_BOUNCED:
		return "bounced";
	}
	return "?";
}

static size_t count_queued(const struct queue_envelope *env)
{
	size_t q = 0;
	for (size_t i = 0; i < env->nrcpts; i++)
		q += env->rcpts[i].state == QUEUE_RCPT_QUEUED;
	return q;
}

/* The earliest next attempt of what env still has queued, into the
 * pass's stats (serve's runner sleeps until then). */
static void next_note(struct queue_run_stats *st, const struct queue_envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *rc = &env->rcpts[i];
		if (rc->state == QUEUE_RCPT_QUEUED && (st->next == 0 || rc->next < st->next))
			st->next = rc->next > 0 ? rc->next : 1;
	}
}

static void next_note_at(struct queue_run_stats *st, int64_t when)
{
	if (st->next == 0 || when < st->next)
		st->next = when;
}

void queue_run_stats_format(const struct queue_run_stats *s, char *out, size_t outlen)
{
	int n = snprintf(out, outlen,
	                 "seen=%zu due=%zu attempted=%zu delivered=%zu deferred=%zu failed=%zu "
	                 "bounces=%zu set_aside=%zu busy=%zu removed=%zu errors=%zu",
	                 s->seen, s->due, s->attempted, s->delivered, s->deferred, s->failed,
	                 s->bounces, s->corrupt, s->busy, s->removed, s->errors);
	if (s->stopped && n >= 0 && (size_t)n < outlen)
		snprintf(out + n, outlen - (size_t)n, " stopped=yes not_started=%zu", s->not_started);
}

/* An MQTT request's outcomes (issue 12): the recipients of this attempt
 * whose outcome is now final, for the bridge to publish.  A failure to
 * write it is logged and delivery goes on: the mail matters more than its
 * report. */
static void result_write(struct queue_spool *sp, const struct queue_envelope *env,
                         const size_t *idx, size_t n, bool finished)
{
	size_t *fin = calloc(n ? n : 1, sizeof(*fin));
	size_t k = 0;
	for (size_t i = 0; fin && i < n; i++)
		if (idx[i] < env->nrcpts && env->rcpts[idx[i]].state != QUEUE_RCPT_QUEUED)
			fin[k++] = idx[i];
	char why[512] = "out of memory", q[QUEUE_LOG_VALUE];
	if (!fin || queue_spool_result(sp, env, fin, k, finished, why, sizeof(why)) != QUEUE_OK)
		log_event(LOG_ERROR, "mqtt_result_lost", "id=%s why=%s", env->id,
		          quote(q, sizeof(q), why));
	free(fin);
}

enum queue_status queue_runner_settle(struct queue_spool *sp, struct queue_envelope *env,
                                      const char *msg, size_t len, const size_t *idx,
                                      const struct queue_result *results, size_t n, int64_t now,
                                      const struct queue_policy *pol, const char *reporting,
                                      struct queue_decision *d, bool *removed, char *why,
                                      size_t whylen)
{
	*removed = false;
	if (queue_runner_decide(env, idx, results, n, now, pol, d) != 0) {
		snprintf(why, whylen, "out of memory deciding on %s", env->id);
		return QUEUE_TEMP;
	}
	char rcpt[QUEUE_LOG_VALUE], last[QUEUE_LOG_VALUE];
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= env->nrcpts)
			continue;
		const struct queue_rcpt *r = &env->rcpts[idx[i]];
		log_event(r->state == QUEUE_RCPT_DELIVERED ? LOG_INFO : LOG_WARN, "delivery",
		          "id=%s rcpt=%s result=%s attempts=%u next=%lld reply=%s", env->id,
		          quote(rcpt, sizeof(rcpt), r->addr), rcpt_result(r), r->attempts,
		          (long long)r->next, quote(last, sizeof(last), r->last));
	}
	char dsn_why[512];
	if (d->nfailed > 0) {
		enum queue_status st = queue_bounce_enqueue(sp, env, msg, len, d->failed, d->status,
		                                            d->nfailed, false, pol, reporting, now,
		                                            d->bounce_id, dsn_why, sizeof(dsn_why));
		if (st == QUEUE_OK) {
			log_event(LOG_INFO, "bounce", "id=%s dsn=%s rcpts=%zu", env->id, d->bounce_id,
			          d->nfailed);
		} else if (st == QUEUE_PERM) {
			/* No DSN can ever be built (a sender it cannot be addressed
			 * to): the recipients stay failed, said in the log. */
			for (size_t i = 0; i < d->nfailed; i++)
				env->rcpts[d->failed[i]].state = QUEUE_RCPT_FAILED;
			log_event(LOG_ERROR, "bounce", "id=%s result=impossible why=%s", env->id,
			          quote(last, sizeof(last), dsn_why));
		} else {
			queue_runner_unbounce(env, d, true, false, now, pol);
			log_event(LOG_ERROR, "bounce", "id=%s result=retry why=%s", env->id,
			          quote(last, sizeof(last), dsn_why));
		}
	}
	if (d->ndelayed > 0) {
		enum queue_status st = queue_bounce_enqueue(sp, env, msg, len, d->delayed, NULL,
		                                            d->ndelayed, true, pol, reporting, now,
		                                            d->warning_id, dsn_why, sizeof(dsn_why));
		if (st == QUEUE_OK)
			log_event(LOG_INFO, "delay-warning", "id=%s dsn=%s rcpts=%zu", env->id,
			          d->warning_id, d->ndelayed);
		else {
			if (st != QUEUE_PERM)
				queue_runner_unbounce(env, d, false, true, now, pol);
			log_event(LOG_ERROR, "delay-warning", "id=%s result=%s why=%s", env->id,
			          st == QUEUE_PERM ? "impossible" : "retry",
			          quote(last, sizeof(last), dsn_why));
		}
	}
	d->finished = count_queued(env) == 0;
	if (env->origin == QUEUE_ORIGIN_MQTT)
		result_write(sp, env, idx, n, d->finished);
	if (d->finished) {
		enum queue_status st = queue_spool_remove(sp, env->id, why, whylen);
		*removed = st == QUEUE_OK;
		if (st == QUEUE_OK)
			log_event(LOG_INFO, "removed", "id=%s", env->id);
		return st;
	}
	return queue_spool_update(sp, env, why, whylen);
}

static void job_free(struct queue_job *j)
{
	queue_spool_unlock(&j->lk);
	queue_envelope_free(&j->env);
	buf_free(&j->msg);
	free(j->idx);
	free(j->rcpts);
	free(j->originals);
	free(j);
}

static int ids_add(struct queue_runner *r, const char *id)
{
	if (r->nids == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		void *p = realloc(r->ids, cap * sizeof(*r->ids));
		if (!p)
			return -1;
		r->ids = p;
		r->cap = cap;
	}
	snprintf(r->ids[r->nids++], QUEUE_ID_MAX + 1, "%s", id);
	return 0;
}

static void job_settle(struct queue_job *j, const struct queue_result *results, size_t n)
{
	struct queue_runner *r = j->r;
	struct queue_decision d;
	bool removed = false;
	char why[512], q[QUEUE_LOG_VALUE];
	enum queue_status st = queue_runner_settle(r->sp, &j->env, j->msg.data, j->msg.len, j->idx,
	                                           results, n, (int64_t)time(NULL),
	                                           &r->cfg.policy, r->reporting, &d, &removed, why,
	                                           sizeof(why));
	r->stats.delivered += d.delivered;
	r->stats.deferred += d.deferred;
	r->stats.failed += d.failed_now;
	r->stats.removed += removed;
	r->stats.bounces += (d.bounce_id[0] != 0) + (d.warning_id[0] != 0);
	if (!removed)
		next_note(&r->stats, &j->env);
	if (st != QUEUE_OK) {
		r->stats.errors++;
		log_event(LOG_ERROR, "spool", "id=%s result=%s why=%s", j->env.id,
		          queue_status_name(st), quote(q, sizeof(q), why));
	}
	/* A DSN queued now goes out in this same pass. */
	if (d.bounce_id[0] && ids_add(r, d.bounce_id) != 0)
		r->stats.errors++;
	if (d.warning_id[0] && ids_add(r, d.warning_id) != 0)
		r->stats.errors++;
	r->stats.due += (d.bounce_id[0] != 0) + (d.warning_id[0] != 0);
	queue_decision_free(&d);
}

static void runner_pump(struct queue_runner *r);

static void job_done(void *arg, const struct queue_result *results, size_t n)
{
	struct queue_job *j = arg;
	struct queue_runner *r = j->r;
	job_settle(j, results, n < j->n ? n : j->n);
	job_free(j);
	r->in_flight--;
	/* Not from inside the deliverer's callback: from the loop. */
	event_active(r->kick, EV_TIMEOUT, 0);
}

static bool rcpt_due(const struct queue_runner *r, const struct queue_rcpt *rc, int64_t now)
{
	return rc->state == QUEUE_RCPT_QUEUED && (r->all_now || rc->next <= now);
}

/* Lock, load, hand out; false when nothing went to the deliverer. */
static bool job_start(struct queue_runner *r, const char *id)
{
	char why[512], q[QUEUE_LOG_VALUE];
	struct queue_job *j = calloc(1, sizeof(*j));
	if (!j) {
		r->stats.errors++;
		return false;
	}
	j->r = r;
	j->lk.fd = -1;
	buf_init(&j->msg, QUEUE_RUNNER_MESSAGE_MAX);
	r->stats.entries++;
	enum queue_status st = queue_spool_lock(r->sp, id, &j->lk, why, sizeof(why));
	if (st == QUEUE_OK)
		st = queue_spool_load(r->sp, &j->lk, &j->env, &j->msg, why, sizeof(why));
	switch (st) {
	case QUEUE_OK:
		break;
	case QUEUE_BUSY:
		r->stats.busy++;
		/* Looked at again a moment later (serve's runner: a second). */
		next_note_at(&r->stats, (int64_t)time(NULL));
		log_event(LOG_DEBUG, "busy", "id=%s", id);
		goto skip;
	case QUEUE_GONE:
		goto skip;
	case QUEUE_CORRUPT:
		r->stats.corrupt++;
		log_event(LOG_ERROR, "corrupt", "id=%s result=set-aside why=%s", id,
		          quote(q, sizeof(q), why));
		goto skip;
	default:
		r->stats.errors++;
		log_event(LOG_ERROR, "spool", "id=%s result=%s why=%s", id, queue_status_name(st),
		          quote(q, sizeof(q), why));
		goto skip;
	}
	int64_t now = (int64_t)time(NULL);
	size_t n = j->env.nrcpts;
	j->idx = calloc(n ? n : 1, sizeof(*j->idx));
	j->rcpts = calloc(n ? n : 1, sizeof(*j->rcpts));
	j->originals = calloc(n ? n : 1, sizeof(*j->originals));
	if (!j->idx || !j->rcpts || !j->originals) {
		r->stats.errors++;
		goto skip;
	}
	for (size_t i = 0; i < n; i++) {
		const struct queue_rcpt *rc = &j->env.rcpts[i];
		if (!rcpt_due(r, rc, now))
			continue;
		j->idx[j->n] = i;
		j->rcpts[j->n] = rc->addr;
		j->originals[j->n++] = rc->orcpt ? rc->orcpt : rc->addr;
	}
	if (j->n == 0) {
		next_note(&r->stats, &j->env);
		/* Nothing due; an entry with nothing queued at all (a runner
		 * died between a DSN and the removal) is finished now. */
		if (count_queued(&j->env) == 0 &&
		    queue_spool_remove(r->sp, j->env.id, why, sizeof(why)) == QUEUE_OK) {
			r->stats.removed++;
			log_event(LOG_INFO, "removed", "id=%s", j->env.id);
		}
		goto skip;
	}
	struct queue_delivery dv = {
		.id = j->env.id,
		.sender = j->env.sender ? j->env.sender : "",
		.data = j->msg.data ? j->msg.data : "",
		.len = j->msg.len,
		.rcpts = j->rcpts,
		.originals = j->originals,
		.n = j->n,
	};
	r->stats.attempted++;
	if (r->dl.submit(r->dl.ctx, &dv, job_done, j, why, sizeof(why)) != 0) {
		struct queue_result *res = calloc(j->n, sizeof(*res));
		if (res) {
			for (size_t i = 0; i < j->n; i++)
				res[i] = (struct queue_result){ QUEUE_OUTCOME_TEMPORARY, why };
			job_settle(j, res, j->n);
			free(res);
		} else {
			r->stats.errors++;
		}
		goto skip;
	}
	r->in_flight++;
	return true;
skip:
	job_free(j);
	return false;
}

static void runner_pump(struct queue_runner *r)
{
	size_t max = r->cfg.messages_max ? r->cfg.messages_max : QUEUE_RUNNER_MESSAGES_MAX;
	while (!r->stopping && r->in_flight < max && r->next < r->nids) {
		char id[QUEUE_ID_MAX + 1];
		snprintf(id, sizeof(id), "%s", r->ids[r->next++]);
		job_start(r, id);
	}
	if (r->running && r->in_flight == 0 && (r->stopping || r->next >= r->nids)) {
		r->running = false;
		/* The pass's last removals and updates are synced as a group
		 * (spool.c). */
		char why[512], q[QUEUE_LOG_VALUE];
		if (queue_spool_sync_pending(r->sp, why, sizeof(why)) != QUEUE_OK) {
			r->stats.errors++;
			log_event(LOG_ERROR, "spool", "result=temporary why=%s",
			          quote(q, sizeof(q), why));
		}
		if (r->stopping) {
			r->stats.stopped = true;
			r->stats.not_started = r->nids - r->next;
		}
		char summary[512];
		queue_run_stats_format(&r->stats, summary, sizeof(summary));
		log_event(LOG_INFO, "pass", "%s", summary);
		r->done(r->arg, &r->stats);
	}
}

void queue_runner_stop(struct queue_runner *r)
{
	if (!r->running || r->stopping)
		return;
	r->stopping = true;
	log_event(LOG_INFO, "stopping", "in_flight=%zu not_started=%zu", r->in_flight,
	          r->nids - r->next);
	event_active(r->kick, EV_TIMEOUT, 0);
}

static void runner_kick(evutil_socket_t fd, short what, void *arg)
{
	runner_pump(arg);
}

struct queue_runner *queue_runner_new(struct event_base *base, struct queue_spool *sp,
                                      const struct queue_deliverer *dl,
                                      const struct queue_runner_config *cfg)
{
	struct queue_runner *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->base = base;
	r->sp = sp;
	r->dl = *dl;
	r->cfg = *cfg;
	r->reporting = strdup(cfg->reporting ? cfg->reporting : "localhost");
	r->kick = event_new(base, -1, 0, runner_kick, r);
	if (!r->reporting || !r->kick) {
		queue_runner_free(r);
		return NULL;
	}
	r->cfg.reporting = r->reporting;
	return r;
}

int queue_runner_add(struct queue_runner *r, const char *id)
{
	if (ids_add(r, id) != 0)
		return -1;
	r->stats.due++;
	event_active(r->kick, EV_TIMEOUT, 0);
	return 0;
}

void queue_runner_free(struct queue_runner *r)
{
	if (!r)
		return;
	if (r->kick)
		event_free(r->kick);
	free(r->reporting);
	free(r->ids);
	free(r);
}

static bool entry_due(const struct queue_envelope *env, bool all_now, int64_t now)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *rc = &env->rcpts[i];
		if (rc->state == QUEUE_RCPT_QUEUED && (all_now || rc->next <= now))
			return true;
	}
	/* Nothing queued: finished but not removed (a runner died in
	 * between); the pass removes it. */
	return env->nrcpts > 0 && count_queued(env) == 0;
}

int queue_runner_start(struct queue_runner *r, enum queue_run_mode mode, const char *id,
                       queue_runner_done_fn done, void *arg, char *why, size_t whylen)
{
	r->mode = mode;
	r->done = done;
	r->arg = arg;
	r->stats = (struct queue_run_stats){ 0 };
	r->nids = r->next = 0;
	r->stopping = false;
	r->all_now = id != NULL || mode == QUEUE_RUN_ALL;
	int64_t now = (int64_t)time(NULL);
	struct queue_cleanup_counts cc = { 0 };
	char q[QUEUE_LOG_VALUE];
	if (queue_spool_cleanup(r->sp, now, &cc, why, whylen) != QUEUE_OK)
		log_event(LOG_WARN, "cleanup", "why=%s", quote(q, sizeof(q), why));
	else if (cc.tmp_removed || cc.orphans_removed)
		log_event(LOG_INFO, "cleanup", "tmp_removed=%zu orphans_removed=%zu", cc.tmp_removed,
		          cc.orphans_removed);
	if (id) {
		if (ids_add(r, id) != 0) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		r->stats.seen = r->stats.due = 1;
	} else {
		struct queue_spool_list *l;
		if (queue_spool_list_open(r->sp, &l, why, whylen) != QUEUE_OK)
			return -1;
		struct queue_envelope env = { 0 };
		const char *eid;
		int rc;
		char lwhy[512];
		while ((rc = queue_spool_list_next(l, &env, &eid, lwhy, sizeof(lwhy))) != 0) {
			r->stats.seen++;
			/* An envelope that does not parse is tried too: lock and
			 * load set it aside and say so. */
			bool due = rc < 0 || entry_due(&env, r->all_now, now);
			if (due && ids_add(r, eid) != 0) {
				queue_envelope_free(&env);
				queue_spool_list_close(l);
				snprintf(why, whylen, "out of memory");
				return -1;
			}
			if (!due)
				next_note(&r->stats, &env);   /* the pass's own listing: no second one */
			queue_envelope_free(&env);
		}
		queue_spool_list_close(l);
		r->stats.due = r->nids;
		r->stats.next_known = true;
	}
	r->running = true;
	event_active(r->kick, EV_TIMEOUT, 0);
	return 0;
}
