#include "store/relay.h"

#include <errno.h>
#include <string.h>

#include "queue/spool.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/log.h"

void store_relay_init(struct store_relay *r, const char *dir)
{
	r->dir = dir && *dir ? dir : NULL;
	r->sp = NULL;
	r->dkim = NULL;
	r->ndkim = 0;
}

void store_relay_close(struct store_relay *r)
{
	if (r->sp)
		queue_spool_close(r->sp);
	r->sp = NULL;
}

/* Opens the spool if it is not open yet.  Without QUEUE_SPOOL_CREATE: the
 * queue process makes it (as root, then gives it to this user), and a
 * store that made it first would make it with the wrong owner when run by
 * hand.  A failure is logged each time, since each time a message waits
 * on it. */
static int relay_open(struct store_relay *r, const char *qid)
{
	if (r->sp)
		return 0;
	char why[512];
	enum queue_status st = queue_spool_open(r->dir, 0, &r->sp, why, sizeof(why));
	if (st == QUEUE_OK) {
		log_event(LOG_INFO, "relay_spool", "spool=%s", r->dir);
		return 0;
	}
	int err = errno ? errno : ENOENT;
	r->sp = NULL;
	log_event(LOG_ERROR, "relay_spool", "qid=%s spool=%s status=%s reason=\"%s\" result=tempfail",
	          qid, r->dir, queue_status_name(st), why);
	errno = err;
	return -1;
}

enum store_result store_relay_enqueue(struct store_relay *r, const char *qid, const char *sender,
                                      const char *const *rcpts, size_t n, const char *message,
                                      size_t len, const char *signer, char *id)
{
	id[0] = '\0';
	if (!r || !r->dir) {
		/* The smtp process refuses to relay without a spool; a relayed
		 * recipient here is its mistake, not the client's. */
		log_event(LOG_ERROR, "relay_failed",
		          "qid=%s reason=\"relayed recipients but serve has no spool\" result=tempfail",
		          qid);
		errno = ENOENT;
		return STORE_TEMPFAIL;
	}
	errno = 0;
	if (relay_open(r, qid) < 0)
		return STORE_TEMPFAIL;
	struct queue_envelope env = { .origin = QUEUE_ORIGIN_SUBMISSION };
	enum store_result res = STORE_TEMPFAIL;
	char why[512] = "out of memory";
	int err = ENOMEM;
	/* ENOMEM until the enqueue says otherwise. */
	if (queue_envelope_set_sender(&env, sender) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (queue_envelope_add_rcpt(&env, rcpts[i], NULL) != 0)
			goto out;
	if (queue_envelope_wants_smtputf8(&env))
		env.flags |= QUEUE_FLAG_SMTPUTF8;
	/* Signed once, here, before the first attempt: every attempt sends
	 * the same bytes (issue 11).  The fields go in front (RFC 6376 §5.6). */
	struct buf signed_msg;
	buf_init(&signed_msg, STORE_RELAY_SIGNED_MAX);
	if (signer && *signer && store_relay_dkim_sign(r, qid, signer, message, len, &signed_msg) > 0) {
		if (buf_append(&signed_msg, message, len) < 0) {
			buf_free(&signed_msg);
			goto out;
		}
		message = signed_msg.data;
		len = signed_msg.len;
	}
	enum queue_status st = queue_spool_enqueue(r->sp, &env, message, len, why, sizeof(why));
	err = errno;
	buf_free(&signed_msg);
	if (st == QUEUE_OK) {
		memcpy(id, env.id, sizeof(env.id));
		log_event(LOG_INFO, "relayed", "qid=%s id=%s rcpts=%zu size=%zu", qid, env.id, n, len);
		res = STORE_OK;
		goto done;
	}
	/* The spool's directory may have been replaced (a restarted queue
	 * process, an operator): open it again next time. */
	if (st == QUEUE_PERM)
		store_relay_close(r);
	res = err == ENOSPC || err == EDQUOT ? STORE_NOSPACE : STORE_TEMPFAIL;
out:
	if (res != STORE_OK)
		log_event(LOG_WARN, "relay_failed", "qid=%s rcpts=%zu reason=\"%s\" result=%s", qid, n,
		          why, res == STORE_NOSPACE ? "nospace" : "tempfail");
done:
	queue_envelope_free(&env);
	errno = err;
	return res;
}
