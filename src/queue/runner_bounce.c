/* The bounce or delay warning of a queued message (runner.h): a DSN built
 * by msg/dsn.c from what the envelope recorded, queued as a message of
 * its own with the null sender (RFC 5321 §4.5.5) and the bounce flag, so
 * that it is never bounced in turn. */
#include "queue/runner.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "msg/dsn.h"

/* The DSN's whole size: the original's headers are cut at
 * DSN_HEADERS_MAX and each reply at DSN_DIAGNOSTIC_MAX, so this is far
 * more than a DSN of QUEUE_ENV_RCPTS_MAX recipients needs. */
#define QUEUE_DSN_MAX (64u * 1024u * 1024u)

enum queue_status queue_bounce_enqueue(struct queue_spool *sp, const struct queue_envelope *env,
                                       const char *msg, size_t len, const size_t *idx,
                                       const char *const *status, size_t n, bool delayed,
                                       const struct queue_policy *pol, const char *reporting,
                                       int64_t now, char *dsn_id, char *why, size_t whylen)
{
	struct msg_dsn_recipient *rcpts = calloc(n ? n : 1, sizeof(*rcpts));
	char (*hosts)[256] = calloc(n ? n : 1, sizeof(*hosts));
	struct buf out;
	buf_init(&out, QUEUE_DSN_MAX);
	struct queue_envelope dsn_env = { 0 };
	enum queue_status st = QUEUE_TEMP;
	if (!rcpts || !hosts) {
		snprintf(why, whylen, "out of memory building a DSN");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const struct queue_rcpt *r = &env->rcpts[idx[i]];
		const char *rest;
		bool is_reply;
		queue_last_split(r->last, hosts[i], sizeof(hosts[i]), &rest, &is_reply);
		rcpts[i] = (struct msg_dsn_recipient){
			.final_recipient = r->addr,
			.original_recipient = r->orcpt,
			.action = delayed ? MSG_DSN_DELAYED : MSG_DSN_FAILED,
			.status = status ? status[i] : NULL,
			.remote_mta = hosts[i][0] ? hosts[i] : NULL,
			.diagnostic = is_reply ? rest : NULL,
			.diagnostic_len = is_reply ? strlen(rest) : 0,
			.reason = is_reply ? NULL : (rest[0] ? rest : "no reason recorded"),
			.last_attempt = (time_t)r->last_attempt,
			.will_retry_until = delayed ? (time_t)(env->created + pol->lifetime) : 0,
		};
	}
	struct msg_dsn d = {
		.reporting_mta = reporting,
		.sender = env->sender,
		.arrival = (time_t)env->created,
		.original = msg,
		.original_len = len,
		.rcpts = rcpts,
		.rcpt_count = n,
		.stamp = { .date = (time_t)now },
	};
	struct tm tm;
	time_t t = (time_t)now;
	d.stamp.tz_minutes = localtime_r(&t, &tm) ? (int)(tm.tm_gmtoff / 60) : 0;
	if (getrandom(d.stamp.random, sizeof(d.stamp.random), 0) != (ssize_t)sizeof(d.stamp.random)) {
		snprintf(why, whylen, "no random octets for a DSN's Message-ID");
		goto done;
	}
	struct msg_error merr = { 0 };
	if (msg_dsn_build(&d, &out, &merr) != 0) {
		/* A sender the DSN cannot be addressed to: nothing to retry. */
		snprintf(why, whylen, "no DSN can be built: %s", merr.text);
		st = QUEUE_PERM;
		goto done;
	}
	dsn_env.created = now;
	dsn_env.origin = QUEUE_ORIGIN_BOUNCE;
	if (queue_envelope_set_sender(&dsn_env, "") != 0 ||
	    queue_envelope_add_rcpt(&dsn_env, env->sender, NULL) != 0) {
		snprintf(why, whylen, "out of memory building a DSN");
		goto done;
	}
	dsn_env.flags = QUEUE_FLAG_BOUNCE |
	                (queue_envelope_wants_smtputf8(&dsn_env) ? QUEUE_FLAG_SMTPUTF8 : 0);
	st = queue_spool_enqueue(sp, &dsn_env, out.data, out.len, why, whylen);
	if (st == QUEUE_OK)
		snprintf(dsn_id, QUEUE_ID_MAX + 1, "%s", dsn_env.id);
done:
	queue_envelope_free(&dsn_env);
	buf_free(&out);
	free(hosts);
	free(rcpts);
	return st;
}
