/* The local/remote split (split.h): one call per submitted message, which
 * hands a sub-message to each deliverer that has recipients and merges
 * their results back onto the message's recipients once both are in. */
#include "queue/split.h"

#include <stdlib.h>
#include <string.h>

#include "msg/loop.h"
#include "util/limits.h"
#include "util/buf.h"

/* One target: which recipient of the message it serves. */
struct split_part {
	const char **rcpts;
	const char **originals;
	size_t *owner;
	size_t n;
	bool pending;
};

struct split_call {
	struct queue_split *s;
	queue_deliver_done_fn done;
	void *arg;
	size_t n;                      /* the message's recipients */
	enum queue_outcome *outcome;
	char **last;
	bool *seen;                    /* a target's result has been merged */
	char **owned;                  /* strings the parts point at */
	size_t nowned;
	struct split_part local, remote;
	struct split_part fwd;         /* alias targets to forward (forward set) */
	const char **lname;            /* each recipient's local name, or NULL */
	struct queue_delivery d;       /* for the forward, valid until done */
};

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool queue_split_is_local(const struct queue_split *s, const char *addr, char *name,
                          size_t namelen)
{
	if (!strchr(addr, '@')) {
		snprintf(name, namelen, "%s", addr);
		for (char *c = name; *c; c++)
			*c = lower(*c);
		return name[0] != '\0';
	}
	return s->is_local && s->is_local(s->is_local_arg, addr, name, namelen);
}

static void part_free(struct split_part *p)
{
	free(p->rcpts);
	free(p->originals);
	free(p->owner);
}

static void call_free(struct split_call *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->last[i]);
	for (size_t i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	free(c->outcome);
	free(c->last);
	free(c->seen);
	free(c->lname);
	part_free(&c->local);
	part_free(&c->remote);
	part_free(&c->fwd);
	free(c);
}

/* Severity for the merge: a temporary failure wins (retry the
 * recipient), then a permanent one, then delivered. */
static int rank(enum queue_outcome o)
{
	return o == QUEUE_OUTCOME_TEMPORARY ? 2 : o == QUEUE_OUTCOME_PERMANENT ? 1 : 0;
}

static void merge(struct split_call *c, size_t i, enum queue_outcome o, const char *last)
{
	if (c->seen[i] && rank(o) <= rank(c->outcome[i]))
		return;
	c->seen[i] = true;
	c->outcome[i] = o;
	free(c->last[i]);
	c->last[i] = last ? strdup(last) : NULL;
}

static int part_add(struct split_part *p, const char *rcpt, const char *original, size_t owner)
{
	const char **r = realloc(p->rcpts, (p->n + 1) * sizeof(*r));
	if (!r)
		return -1;
	p->rcpts = r;
	const char **o = realloc(p->originals, (p->n + 1) * sizeof(*o));
	if (!o)
		return -1;
	p->originals = o;
	size_t *w = realloc(p->owner, (p->n + 1) * sizeof(*w));
	if (!w)
		return -1;
	p->owner = w;
	r[p->n] = rcpt;
	o[p->n] = original;
	w[p->n++] = owner;
	return 0;
}

/* The forwards of every recipient whose local targets were all
 * delivered (or that had none) go into one new entry; the others wait
 * for the recipient's next attempt.  Before the results, so that a
 * forward that cannot be queued is a temporary failure. */
static void forward_ready(struct split_call *c)
{
	struct split_part p = { 0 };
	bool oom = false;
	for (size_t t = 0; t < c->fwd.n; t++) {
		size_t i = c->fwd.owner[t];
		if (c->seen[i] && c->outcome[i] != QUEUE_OUTCOME_DELIVERED)
			continue;
		oom = oom || part_add(&p, c->fwd.rcpts[t], c->fwd.originals[t], i) != 0;
	}
	char id[64] = "", why[512], text[600];
	int rc = -1;
	/* The forward says where it has been: one Delivered-To per local
	 * name it goes out for (RFC 9228; Postfix's local(8) does the same),
	 * so that it is known again if it comes back. */
	struct buf data;
	buf_init(&data, (size_t)-1);
	struct queue_delivery d = c->d;
	for (size_t t = 0; !oom && c->s->host && t < p.n; t++) {
		const char *name = c->lname[p.owner[t]];
		bool again = false;
		for (size_t u = 0; u < t; u++)
			again |= p.owner[u] == p.owner[t];
		if (name && !again)
			oom = buf_append(&data, "Delivered-To: ", 14) != 0 ||
			      buf_append(&data, name, strlen(name)) != 0 ||
			      buf_append(&data, "@", 1) != 0 ||
			      buf_append(&data, c->s->host, strlen(c->s->host)) != 0 ||
			      buf_append(&data, "\r\n", 2) != 0;
	}
	if (!oom && data.len > 0) {
		oom = buf_append(&data, c->d.data, c->d.len) != 0;
		d.data = data.data;
		d.len = data.len;
	}
	if (oom)
		snprintf(why, sizeof(why), "out of memory forwarding");
	else if (p.n > 0)
		rc = c->s->forward(c->s->forward_ctx, &d, p.rcpts, p.originals, p.n, id, sizeof(id),
		                   why, sizeof(why));
	buf_free(&data);
	if (rc == 0)
		snprintf(text, sizeof(text), "forwarded as %s", id);
	for (size_t t = 0; t < p.n; t++)
		merge(c, p.owner[t], rc == 0 ? QUEUE_OUTCOME_DELIVERED : QUEUE_OUTCOME_TEMPORARY,
		      rc == 0 ? text : why);
	part_free(&p);
}

static void call_finish(struct split_call *c)
{
	if (c->local.pending || c->remote.pending)
		return;
	if (c->fwd.n > 0)
		forward_ready(c);
	struct queue_result *res = calloc(c->n ? c->n : 1, sizeof(*res));
	if (res)
		for (size_t i = 0; i < c->n; i++)
			res[i] = (struct queue_result){ c->outcome[i], c->last[i] };
	/* Out of memory: no results, the entry stays as it was. */
	c->done(c->arg, res, res ? c->n : 0);
	free(res);
	call_free(c);
}

static void part_done(struct split_call *c, struct split_part *p,
                      const struct queue_result *results, size_t n)
{
	for (size_t t = 0; t < p->n; t++) {
		if (t < n)
			merge(c, p->owner[t], results[t].outcome, results[t].last);
		else
			merge(c, p->owner[t], QUEUE_OUTCOME_TEMPORARY, "no result from the deliverer");
	}
	p->pending = false;
	call_finish(c);
}

static void local_done(void *arg, const struct queue_result *results, size_t n)
{
	struct split_call *c = arg;
	part_done(c, &c->local, results, n);
}

static void remote_done(void *arg, const struct queue_result *results, size_t n)
{
	struct split_call *c = arg;
	part_done(c, &c->remote, results, n);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	call_finish(arg);
}

static const char *own(struct split_call *c, const char *s)
{
	char **v = realloc(c->owned, (c->nowned + 1) * sizeof(*v));
	if (!v)
		return NULL;
	c->owned = v;
	if (!(v[c->nowned] = strdup(s)))
		return NULL;
	return v[c->nowned++];
}

/* The local name (a recipient or an alias's local target) was delivered
 * here before: the message carries its Delivered-To.  Recipient i then
 * fails permanently, as Postfix's local(8) bounces it. */
static bool split_loop(struct split_call *c, const struct queue_delivery *d, size_t i,
                       const char *name)
{
	if (!c->s->host)
		return false;
	char addr[SMTP_PATH_MAX + 300], text[SMTP_PATH_MAX + 400];
	snprintf(addr, sizeof(addr), "%s@%s", name, c->s->host);
	if (!msg_loop_delivered_to(d->data, d->len, addr))
		return false;
	snprintf(text, sizeof(text), "local delivery: 554 5.4.6 mail forwarding loop for %s "
	                             "(the message already has Delivered-To: %s)", addr, addr);
	merge(c, i, QUEUE_OUTCOME_PERMANENT, text);
	return true;
}

/* Recipient i: local (expanded) or remote, into the parts.  -1: out of
 * memory. */
static int split_one(struct split_call *c, const struct queue_delivery *d, size_t i)
{
	struct queue_split *s = c->s;
	char name[SMTP_PATH_MAX + 1];
	if (!queue_split_is_local(s, d->rcpts[i], name, sizeof(name)))
		return part_add(&c->remote, d->rcpts[i], d->originals[i], i);
	if (!(c->lname[i] = own(c, name)))
		return -1;
	if (split_loop(c, d, i, name))
		return 0;
	struct msg_aliases empty = { 0 };
	struct msg_aliases_result r;
	bool oom = false;
	char why[512];
	if (msg_aliases_expand(s->aliases ? s->aliases : &empty, name, s->is_local, s->is_local_arg,
	                       &r, &oom, why, sizeof(why)) != 0) {
		if (oom)
			return -1;
		merge(c, i, QUEUE_OUTCOME_PERMANENT, why);
		return 0;
	}
	int rc = 0;
	for (size_t t = 0; t < r.n && rc == 0; t++) {
		const char *target = own(c, r.addrs[t]);
		if (!target)
			rc = -1;
		else if (!strchr(target, '@') && strcmp(target, name) && split_loop(c, d, i, target))
			continue;
		else if (!strchr(target, '@'))
			rc = part_add(&c->local, target, d->originals[i], i);
		else if (s->forward)
			rc = part_add(&c->fwd, target, d->originals[i], i);
		else
			rc = part_add(&c->remote, target, d->originals[i], i);
	}
	msg_aliases_result_free(&r);
	return rc;
}

static bool part_submit(struct split_call *c, struct split_part *p, const struct queue_deliverer *dl,
                        const struct queue_delivery *d, queue_deliver_done_fn done)
{
	if (p->n == 0)
		return false;
	struct queue_delivery sub = *d;
	sub.rcpts = p->rcpts;
	sub.originals = p->originals;
	sub.n = p->n;
	char why[512];
	p->pending = true;
	if (dl->submit(dl->ctx, &sub, done, c, why, sizeof(why)) == 0)
		return true;
	p->pending = false;
	for (size_t t = 0; t < p->n; t++)
		merge(c, p->owner[t], QUEUE_OUTCOME_TEMPORARY, why);
	return false;
}

static int split_submit(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
                        void *arg, char *why, size_t whylen)
{
	struct queue_split *s = ctx;
	struct split_call *c = calloc(1, sizeof(*c));
	size_t n = d->n ? d->n : 1;
	if (!c || !(c->outcome = calloc(n, sizeof(*c->outcome))) ||
	    !(c->last = calloc(n, sizeof(*c->last))) || !(c->seen = calloc(n, sizeof(*c->seen))) ||
	    !(c->lname = calloc(n, sizeof(*c->lname))))
		goto oom;
	c->s = s;
	c->d = *d;
	c->done = done;
	c->arg = arg;
	c->n = d->n;
	size_t hops = msg_loop_received_count(d->data, d->len);
	if (hops > MSG_HOPS_MAX) {
		/* RFC 5321 §6.3: going round somewhere; neither delivered nor
		 * sent on, every recipient bounced. */
		char text[200];
		snprintf(text, sizeof(text), "554 5.4.6 mail forwarding loop: %zu Received: header "
		                             "fields, more than %d (RFC 5321 section 6.3)",
		         hops, MSG_HOPS_MAX);
		for (size_t i = 0; i < d->n; i++)
			merge(c, i, QUEUE_OUTCOME_PERMANENT, text);
	} else {
		for (size_t i = 0; i < d->n; i++)
			if (split_one(c, d, i) != 0)
				goto oom;
	}
	/* The remote part first: it does not fork, and the local one may. */
	bool any = part_submit(c, &c->remote, &s->remote, d, remote_done);
	any |= part_submit(c, &c->local, &s->local, d, local_done);
	if (any)
		return 0;
	/* Nothing in flight: the results (refusals, failed submits) still
	 * come from the loop, never from inside this call. */
	static const struct timeval now = { 0, 0 };
	if (event_base_once(s->base, -1, EV_TIMEOUT, later_cb, c, &now) == 0)
		return 0;
oom:
	if (c)
		call_free(c);
	snprintf(why, whylen, "out of memory splitting local and remote recipients");
	return -1;
}

void queue_split_deliverer(struct queue_split *s, struct queue_deliverer *out)
{
	*out = (struct queue_deliverer){ split_submit, s };
}
