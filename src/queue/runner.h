/* The queue runner (issue 9, QUEUE.md "Wave 2 decisions"): one pass over
 * the spool on the caller's libevent event_base.  It lists what is due
 * (or one given entry, or everything for a flush), locks each entry
 * (one another runner holds is skipped), loads it (a damaged one is set
 * aside with one log line), hands the due recipients to a deliverer and,
 * from the per-recipient results, rewrites the envelope: delivered,
 * retried later on the schedule, failed (bounced to the sender with an
 * RFC 3464 DSN), and the entry is removed once nothing is left to do.
 *
 * queue/ never calls client/: the caller gives the runner a deliverer,
 * a struct of function pointers (cli/ wires it to client_outbound_submit),
 * so the same runner can serve `rawmail queue run` and serve's runner.
 *
 * The decision part (queue_runner_decide) is pure: envelope + results +
 * clock in, new envelope + what to bounce out; it is what the unit tests
 * check (tests/unit/test_queue_runner.c). */
#ifndef RAWMAIL_QUEUE_RUNNER_H
#define RAWMAIL_QUEUE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "queue/envelope.h"
#include "queue/schedule.h"
#include "queue/spool.h"

/* Messages loaded and in delivery at once in one pass (their bytes are
 * in memory); destinations at once are the deliverer's own limit. */
#define QUEUE_RUNNER_MESSAGES_MAX 64

/* One recipient's outcome, as the deliverer reports it. */
enum queue_outcome {
	QUEUE_OUTCOME_DELIVERED = 0,
	QUEUE_OUTCOME_TEMPORARY,   /* 4xx, no connection, no answer: retry */
	QUEUE_OUTCOME_PERMANENT,   /* 5xx or a refusal that retrying cannot change */
};

struct queue_result {
	enum queue_outcome outcome;
	/* What to record as the recipient's last reply: "host [ip]: " and the
	 * reply lines as the peer sent them ("550-5.1.1 a\n550 5.1.1 b"), or
	 * our reason in words; NULL: none.  Valid during the call only. */
	const char *last;
};

/* One message for the deliverer.  Every pointer stays valid until its
 * done callback has returned. */
struct queue_delivery {
	const char *id;
	const char *sender;               /* "" for the null sender */
	const char *data;                 /* the bytes of msg/ID */
	size_t len;
	const char *const *rcpts;
	const char *const *originals;     /* ORCPT or the address itself */
	size_t n;
};

typedef void (*queue_deliver_done_fn)(void *arg, const struct queue_result *results, size_t n);

struct queue_deliverer {
	/* Starts delivering d: 0, and done runs once later from the loop
	 * (never from inside submit) with results[i] for d->rcpts[i]; or -1
	 * with why, nothing started, and the runner counts every recipient
	 * as a temporary failure for that reason. */
	int (*submit)(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
	              void *arg, char *why, size_t whylen);
	void *ctx;
};

/* The clock rules for what the results mean. */
struct queue_policy {
	struct queue_schedule schedule;
	int64_t lifetime;        /* --max-queue-lifetime, seconds */
	int64_t delay_warning;   /* --delay-warning, seconds, 0: none */
	/* Permanent failures become bounces (a runner); false for rawmail
	 * send's own first attempt, which reports them to its user instead
	 * (they are marked failed, not bounced). */
	bool bounce;
};
void queue_policy_default(struct queue_policy *p);

/* What queue_runner_decide concluded, beyond the envelope it updated. */
struct queue_decision {
	/* Recipients (indexes into env->rcpts) that failed now and get a
	 * DSN with Action: failed; status[i] is "4.4.7" for an expired one,
	 * else NULL (the DSN takes the reply's own code). */
	size_t *failed;
	const char **status;
	size_t nfailed;
	/* Recipients still queued that a delay warning names (then the
	 * envelope's warned flag has been set). */
	size_t *delayed;
	size_t ndelayed;
	/* Every recipient is delivered, failed or bounced: remove the entry. */
	bool finished;
	/* Set by queue_runner_settle: the ids of the DSNs it queued ("" none). */
	char bounce_id[QUEUE_ID_MAX + 1];
	char warning_id[QUEUE_ID_MAX + 1];
	size_t delivered, deferred, failed_now;   /* counts, for the log */
};
void queue_decision_free(struct queue_decision *d);

/* Applies results[i] to env->rcpts[idx[i]] (each must be queued; others
 * are left alone) for an attempt made at now:
 * - delivered: state delivered;
 * - permanent: failed;
 * - temporary: attempts+1 and next on the schedule, unless the entry is
 *   older than the lifetime: then failed with status 4.4.7 (RFC 3463
 *   §3.5), the last reply kept;
 * every attempted recipient gets attempts+1, last_attempt = now and last.
 * Newly failed recipients are bounced when the policy says so, the sender
 * is not null and the entry is not itself a bounce (RFC 5321 §4.5.5):
 * they are listed in d->failed and set to bounced (the caller enqueues
 * the DSN, and on failure calls queue_runner_unbounce).  A delay warning
 * is due once (policy delay_warning) for what is still queued.
 * 0, or -1 out of memory (env may be partly updated: do not save it). */
int queue_runner_decide(struct queue_envelope *env, const size_t *idx,
                        const struct queue_result *results, size_t n, int64_t now,
                        const struct queue_policy *pol, struct queue_decision *d);
/* The DSN of d could not be queued: its recipients go back to queued, to
 * be tried (and bounced) again on the schedule, and the warned flag is
 * cleared when the warning could not be queued. */
void queue_runner_unbounce(struct queue_envelope *env, const struct queue_decision *d,
                           bool failed_too, bool warning_too, int64_t now,
                           const struct queue_policy *pol);

/* Splits a recorded last reply "host [ip]: 550 5.1.1 text" into the host
 * (for Remote-MTA), and the rest, which is a reply when it starts with
 * three digits, else a reason.  host[0] = 0 when there is none. */
void queue_last_split(const char *last, char *host, size_t hostlen, const char **rest,
                      bool *is_reply);

/* Builds the DSN for d (failed and/or delayed recipients) of env and its
 * message, and enqueues it: the null sender, flag bounce, origin bounce,
 * to env->sender.  reporting is our host name.  *dsn_id gets its id. */
enum queue_status queue_bounce_enqueue(struct queue_spool *sp, const struct queue_envelope *env,
                                       const char *msg, size_t len, const size_t *idx,
                                       const char *const *status, size_t n, bool delayed,
                                       const struct queue_policy *pol, const char *reporting,
                                       int64_t now, char *dsn_id, char *why, size_t whylen);

/* Everything after an attempt, under the entry's lock: decide, queue the
 * DSNs, then update env/ID, or remove the entry when it is finished
 * (*removed).  One log line per recipient (event=delivery).  The decision
 * is left in d (the caller frees it). */
enum queue_status queue_runner_settle(struct queue_spool *sp, struct queue_envelope *env,
                                      const char *msg, size_t len, const size_t *idx,
                                      const struct queue_result *results, size_t n, int64_t now,
                                      const struct queue_policy *pol, const char *reporting,
                                      struct queue_decision *d, bool *removed, char *why,
                                      size_t whylen);

enum queue_run_mode {
	QUEUE_RUN_DUE = 0,   /* recipients whose next attempt is due */
	QUEUE_RUN_ALL,       /* every queued recipient now (flush) */
};

struct queue_run_stats {
	size_t seen;         /* entries the pass listed (1 for a pass over one id) */
	size_t due;          /* of those, due (or flushed), plus what the pass queued
	                      * itself (DSNs, forwards): the entries it meant to try */
	size_t entries;      /* looked at: locked and loaded, or tried to */
	size_t attempted;    /* messages handed to the deliverer */
	size_t delivered, deferred, failed;   /* recipients */
	size_t bounces;      /* DSNs queued (failures and delay warnings) */
	size_t busy;         /* skipped: another runner has them */
	size_t corrupt;      /* set aside */
	size_t removed;      /* entries finished */
	size_t errors;       /* spool errors (logged) */
	size_t not_started;  /* due entries left for the next run (queue_runner_stop) */
	bool stopped;        /* queue_runner_stop ended the pass early */
	/* The earliest next attempt of a recipient still queued, among the
	 * entries the pass saw (epoch; 0: none), so that serve's runner knows
	 * when to look again without listing the spool a second time.
	 * next_known: the pass listed the whole spool (not one id). */
	int64_t next;
	bool next_known;
};

/* The pass's summary for a log line: "seen=N due=N attempted=N
 * delivered=N deferred=N failed=N bounces=N set_aside=N busy=N
 * removed=N errors=N" (and "stopped=yes not_started=N" when stopped),
 * the same words for queue run, flush and serve's queue process. */
void queue_run_stats_format(const struct queue_run_stats *s, char *out, size_t outlen);

typedef void (*queue_runner_done_fn)(void *arg, const struct queue_run_stats *stats);

struct queue_runner_config {
	struct queue_policy policy;
	const char *reporting;       /* our host name, for DSNs */
	size_t messages_max;         /* 0: QUEUE_RUNNER_MESSAGES_MAX */
};

struct queue_runner;

/* The config is copied (not the deliverer's ctx).  NULL: out of memory. */
struct queue_runner *queue_runner_new(struct event_base *base, struct queue_spool *sp,
                                      const struct queue_deliverer *dl,
                                      const struct queue_runner_config *cfg);
/* Starts one pass: every entry (mode), or only id (NULL: all) whose
 * queued recipients are all tried now.  done runs once from the loop
 * when the pass is over.  0, or -1 with why (the listing failed). */
int queue_runner_start(struct queue_runner *r, enum queue_run_mode mode, const char *id,
                       queue_runner_done_fn done, void *arg, char *why, size_t whylen);
/* Adds entry id to the pass under way (a deliverer queued it: local
 * mail forwarded through an alias), to be tried in it.  0, or -1 out of
 * memory (it waits for the next pass). */
int queue_runner_add(struct queue_runner *r, const char *id);
/* Stop starting (SIGTERM): no further entry is locked or handed to the
 * deliverer in this pass; the deliveries already handed over finish and
 * are settled as usual, then done runs (stats.stopped, not_started).  The
 * caller bounds the wait: what is still in flight when it gives up stays
 * queued, unchanged, and is tried again by the next runner (at least
 * once, never lost). */
void queue_runner_stop(struct queue_runner *r);
/* Only once the pass's done has run (or it was never started). */
void queue_runner_free(struct queue_runner *r);

#endif
