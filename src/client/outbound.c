/* The outbound delivery engine (client/outbound.h): one batch per
 * message, the shared resources made at first need, results handed back
 * from the loop. */
#include "client/outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/resolver.h"
#include "net/tls.h"
#include "util/hostname.h"

/* One submitted message, from submit until its done callback returned. */
struct job {
	struct client_outbound *e;
	struct job *prev, *next;        /* in submission order: older first */
	struct client_result *results;
	size_t n;
	struct client_session_config cfg;
	struct client_batch *batch;
	struct event *finish;           /* hands the results back from the loop */
	client_outbound_done_fn done;
	void *arg;
};

struct client_outbound {
	struct event_base *base;
	struct client_outbound_config cfg;   /* strings and pins: the copies below */
	char *dns, *cafile;
	char helo[256];
	struct client_relay_host relay;
	struct client_relay_route *routes;
	char *auth_user, *auth_password;
	unsigned char (*pins)[32];
	struct dns_resolver *resolver;       /* made at the first domain destination */
	SSL_CTX *tls_ctx;                    /* made at once only for a cafile */
	struct tls_client_lazy tls_lazy;     /* otherwise at the first STARTTLS */
	struct client_batch_slots slots;
	struct client_pool *pool;
	struct job *head, *tail;
	size_t in_flight;
	size_t finishing;            /* batches over whose done has not run yet */
	bool resuming, resume_again;
	bool stopping;               /* client_outbound_stop */
};

static char *copy_string(const char *s, bool *ok)
{
	if (!s)
		return NULL;
	char *c = strdup(s);
	*ok &= c != NULL;
	return c;
}

static bool any_waiting(const struct client_outbound *e)
{
	for (const struct job *j = e->head; j; j = j->next)
		if (j->batch && client_batch_waiting(j->batch))
			return true;
	return false;
}

/* For the pool, while a route gives back its connection (its own
 * destination still counts as active): another destination being
 * resolved or delivered, or one waiting for a slot, may want it. */
static bool engine_busy(void *arg)
{
	struct client_outbound *e = arg;
	return e->slots.active > 1 || any_waiting(e);
}

struct client_outbound *client_outbound_new(struct event_base *base,
                                            const struct client_outbound_config *cfg,
                                            char *err, size_t errlen)
{
	struct client_outbound *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->base = base;
	e->cfg = *cfg;
	bool ok = cfg->tls_npins <= CLIENT_OUTBOUND_PINS_MAX;
	e->dns = copy_string(cfg->dns, &ok);
	e->cafile = copy_string(cfg->cafile, &ok);
	e->auth_user = copy_string(cfg->auth_user, &ok);
	e->auth_password = copy_string(cfg->auth_password, &ok);
	ok &= cfg->nroutes <= CLIENT_RELAY_ROUTES_MAX;
	if (ok && cfg->nroutes > 0) {
		e->routes = calloc(cfg->nroutes, sizeof(*e->routes));
		if (e->routes)
			memcpy(e->routes, cfg->routes, cfg->nroutes * sizeof(*e->routes));
		ok = e->routes != NULL;
	}
	if (cfg->relay)
		e->relay = *cfg->relay;
	if (ok && cfg->tls_npins > 0) {
		e->pins = calloc(cfg->tls_npins, sizeof(*e->pins));
		if (e->pins)
			memcpy(e->pins, cfg->tls_pins, cfg->tls_npins * sizeof(*e->pins));
		ok = e->pins != NULL;
	}
	if (!ok) {
		snprintf(err, errlen, cfg->tls_npins > CLIENT_OUTBOUND_PINS_MAX
		                              ? "too many certificate fingerprints"
		                              : "out of memory");
		client_outbound_free(e);
		return NULL;
	}
	e->cfg.dns = e->dns;
	e->cfg.cafile = e->cafile;
	e->cfg.auth_user = e->auth_user;
	e->cfg.auth_password = e->auth_password;
	e->cfg.routes = e->routes;
	e->cfg.relay = cfg->relay ? &e->relay : NULL;
	e->cfg.tls_pins = (const unsigned char(*)[32])e->pins;
	if (e->cfg.port == 0)
		e->cfg.port = 25;
	if (e->cfg.timeout <= 0)
		e->cfg.timeout = CLIENT_OUTBOUND_TIMEOUT;
	if (e->cfg.dns_timeout_ms == 0)
		e->cfg.dns_timeout_ms = CLIENT_OUTBOUND_DNS_TIMEOUT_MS;
	/* A verified or pinned certificate needs TLS: never a plaintext
	 * fallback (RFC 7435 applies to opportunistic mode only). */
	if ((e->cfg.tls_verify || e->cfg.tls_npins > 0) && e->cfg.tls != CLIENT_TLS_REQUIRE)
		e->cfg.tls = CLIENT_TLS_REQUIRE;
	e->slots.max = cfg->parallel;
	e->pool = client_pool_new(base, cfg->connections_per_address, cfg->idle_ms, engine_busy, e);
	if (!e->pool) {
		snprintf(err, errlen, "out of memory");
		client_outbound_free(e);
		return NULL;
	}

	if (cfg->helo)
		snprintf(e->helo, sizeof(e->helo), "%s", cfg->helo);
	else if (!hostname_get(e->helo, sizeof(e->helo), "/etc/hosts"))
		e->helo[0] = '\0';   /* no dotted name: the route uses our address literal */
	e->cfg.helo = e->helo;

	/* One context for MX and relay: the checks are per connection
	 * (net/tls.h), the trust anchors loaded if either verifies. */
	bool verify = e->cfg.tls_verify || (e->cfg.relay && e->cfg.relay_verify);
	bool tls = e->cfg.tls != CLIENT_TLS_NONE ||
	           (e->cfg.relay && (e->cfg.relay_tls != CLIENT_TLS_NONE || e->relay.implicit_tls));
	e->tls_lazy = (struct tls_client_lazy){ .verify = verify, .cafile = e->cafile };
	/* The context is made at the first STARTTLS, except that a cafile is
	 * read now, so a bad file is an error before anything is sent. */
	if (tls && !e->cfg.dry_run && e->cafile) {
		e->tls_ctx = tls_client_ctx_new(verify, e->cafile, err, errlen);
		if (!e->tls_ctx) {
			client_outbound_free(e);
			return NULL;
		}
	}
	return e;
}

/* The resolver at the first message that needs one; reused after. */
static bool resolver_ensure(struct client_outbound *e, char *err, size_t errlen)
{
	if (e->resolver)
		return true;
	char why[400];
	struct dns_resolver *r = dns_resolver_new(e->dns, e->cfg.dns_timeout_ms, why, sizeof(why));
	if (!r) {
		snprintf(err, errlen, "DNS: %s", why);
		return false;
	}
	if (!dns_resolver_attach(r, e->base)) {
		dns_resolver_free(r);
		snprintf(err, errlen, "DNS: cannot attach");
		return false;
	}
	e->resolver = r;
	return true;
}

static void job_unlink(struct job *j)
{
	struct client_outbound *e = j->e;
	if (j->prev)
		j->prev->next = j->next;
	else
		e->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		e->tail = j->prev;
	j->prev = j->next = NULL;
	e->in_flight--;
}

static void job_free(struct job *j)
{
	if (j->results)
		for (size_t i = 0; i < j->n; i++)
			client_result_clear(&j->results[i]);
	free(j->results);
	if (j->finish)
		event_free(j->finish);
	free(j);
}

/* From the loop: the batch is over, nothing of it is on the stack. */
static void job_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct job *j = arg;
	j->e->finishing--;
	job_unlink(j);
	client_batch_free(j->batch);
	j->batch = NULL;
	/* The engine is no longer needed by this job: done may submit more,
	 * or free the engine once nothing is in flight. */
	j->done(j->arg, j->results, j->n);
	job_free(j);
}

static void job_batch_done(void *arg)
{
	struct job *j = arg;
	j->e->finishing++;
	event_active(j->finish, EV_TIMEOUT, 0);
}

/* A slot came free: older messages' waiting destinations first.  A
 * destination may end at once inside resume and free another slot: the
 * outer call goes round again instead of recursing. */
static void job_slot_freed(void *arg)
{
	struct client_outbound *e = ((struct job *)arg)->e;
	if (e->resuming) {
		e->resume_again = true;
		return;
	}
	if (e->stopping)
		return;   /* waiting destinations never start */
	e->resuming = true;
	size_t max = e->slots.max ? e->slots.max : CLIENT_BATCH_PARALLEL;
	do {
		e->resume_again = false;
		for (struct job *j = e->head; j && e->slots.active < max; j = j->next)
			if (j->batch && client_batch_waiting(j->batch))
				client_batch_resume(j->batch);
	} while (e->resume_again);
	e->resuming = false;
	/* Nothing left that could use an idle connection: QUIT now rather
	 * than at the idle limit (a caller's loop would wait for it). */
	if (e->slots.active == 0 && !any_waiting(e))
		client_pool_close_idle(e->pool);
}

static void job_plan(void *arg, const char *destination, const struct dns_lookup_addr *addrs,
                     size_t n, const char *family_note, const char *via, unsigned short via_port)
{
	struct client_outbound *e = ((struct job *)arg)->e;
	if (e->cfg.plan)
		e->cfg.plan(e->cfg.arg, destination, addrs, n, family_note, via, via_port);
}

static void job_transcript(void *arg, const char *line)
{
	struct client_outbound *e = ((struct job *)arg)->e;
	e->cfg.transcript(e->cfg.arg, line);
}

static bool has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] & 0x80)
			return true;
	return false;
}

/* A domain destination needs DNS, unless it goes to a relay or route
 * given by address (the lab network without DNS). */
static bool needs_dns(const struct client_outbound *e, const struct client_outbound_message *m)
{
	for (size_t i = 0; i < m->nrecipients; i++) {
		const char *at = strrchr(m->recipients[i], '@');
		const char *domain = at ? at + 1 : "";
		struct dns_destination d;
		if (dns_destination_classify(domain, &d) != DNS_DESTINATION_NAME)
			continue;
		const struct client_relay_route *rr =
			client_relay_route_find(e->cfg.routes, e->cfg.nroutes, domain);
		const struct client_relay_host *via = rr ? &rr->to : e->cfg.relay;
		if (!via || !via->literal)
			return true;
	}
	return false;
}

enum client_outbound_submit_status client_outbound_submit(
	struct client_outbound *e, const struct client_outbound_message *m,
	client_outbound_done_fn done, void *arg, char *err, size_t errlen)
{
	if (m->nrecipients == 0) {
		snprintf(err, errlen, "no recipients");
		return CLIENT_OUTBOUND_ERR_EMPTY;
	}
	if (needs_dns(e, m) && !resolver_ensure(e, err, errlen))
		return CLIENT_OUTBOUND_ERR_DNS;
	struct job *j = calloc(1, sizeof(*j));
	if (j) {
		j->e = e;
		j->n = m->nrecipients;
		j->done = done;
		j->arg = arg;
		j->results = calloc(m->nrecipients, sizeof(*j->results));
		j->finish = event_new(e->base, -1, 0, job_finish_cb, j);
	}
	if (!j || !j->results || !j->finish) {
		if (j)
			job_free(j);
		snprintf(err, errlen, "out of memory");
		return CLIENT_OUTBOUND_ERR_MEMORY;
	}
	for (size_t i = 0; i < m->nrecipients; i++) {
		j->results[i].address = m->recipients[i];
		j->results[i].original = m->originals ? m->originals[i] : NULL;
	}
	const char *sender = m->sender ? m->sender : "";
	/* The sender's own need for SMTPUTF8 (a UTF-8 local part: its domain
	 * is in A-labels); each destination adds its recipients' (batch.h). */
	j->cfg = (struct client_session_config){
		.helo = e->helo,
		.tls = e->cfg.tls,
		.message_size = m->len,
		.eightbit = has_8bit(m->data, m->len),
		.smtputf8 = has_8bit(sender, strlen(sender)),
	};
	struct client_batch_request req = {
		.base = e->base,
		.resolver = e->resolver,
		.tls_ctx = e->tls_ctx,
		.tls_lazy = &e->tls_lazy,
		.cfg = &j->cfg,
		.tls_verify = e->cfg.tls_verify,
		.tls_pins = e->cfg.tls_pins,
		.tls_npins = e->cfg.tls_npins,
		.sender = sender,
		.message = m->data ? m->data : "",
		.message_len = m->len,
		.port = e->cfg.port,
		.timeout = e->cfg.timeout,
		.final_timeout = e->cfg.final_timeout,
		.family = e->cfg.family,
		.family_auto = e->cfg.family_auto,
		.slots = &e->slots,
		.pool = e->pool,
		.routes = e->cfg.routes,
		.nroutes = e->cfg.nroutes,
		.relay = e->cfg.relay,
		.relay_tls = e->cfg.relay_tls,
		.relay_verify = e->cfg.relay_verify,
		.auth_user = e->cfg.auth_user,
		.auth_password = e->cfg.auth_password,
		.dry_run = e->cfg.dry_run,
		.random_fn = e->cfg.random_fn,
		.random_arg = e->cfg.random_arg,
		.results = j->results,
		.nresults = j->n,
		.plan = e->cfg.dry_run ? job_plan : NULL,
		.transcript = e->cfg.transcript ? job_transcript : NULL,
		.transcript_body = e->cfg.transcript_body,
		/* Lines as they happen only while this is the one message: a
		 * message submitted later gets its lines in blocks. */
		.transcript_live = e->in_flight == 0,
		.done = job_batch_done,
		.slot_freed = job_slot_freed,
		.arg = j,
	};
	/* Linked first: the batch may end (and free slots) inside start. */
	j->prev = e->tail;
	if (e->tail)
		e->tail->next = j;
	else
		e->head = j;
	e->tail = j;
	e->in_flight++;
	j->batch = client_batch_start(&req);
	if (!j->batch) {
		job_unlink(j);
		job_free(j);
		snprintf(err, errlen, "out of memory");
		return CLIENT_OUTBOUND_ERR_MEMORY;
	}
	return CLIENT_OUTBOUND_SUBMITTED;
}

void client_outbound_stop(struct client_outbound *e)
{
	e->stopping = true;
	client_pool_stop(e->pool);
}

bool client_outbound_busy(const struct client_outbound *e)
{
	return e->slots.active > 0 || e->finishing > 0;
}

size_t client_outbound_in_flight(const struct client_outbound *e)
{
	return e->in_flight;
}

void client_outbound_stats(const struct client_outbound *e, struct client_pool_stats *out)
{
	client_pool_stats(e->pool, out);
}

void client_outbound_free(struct client_outbound *e)
{
	if (!e)
		return;
	if (e->in_flight > 0) {
		/* A route cannot be cancelled yet (batch.h): freeing what it
		 * still uses would be worse than stopping here. */
		fprintf(stderr, "client_outbound_free: %zu messages still in flight\n", e->in_flight);
		abort();
	}
	client_pool_free(e->pool);
	if (e->tls_ctx)
		SSL_CTX_free(e->tls_ctx);
	tls_client_lazy_free(&e->tls_lazy);
	if (e->resolver)
		dns_resolver_free(e->resolver);
	free(e->pins);
	free(e->dns);
	free(e->cafile);
	free(e->routes);
	free(e->auth_user);
	if (e->auth_password) {
		explicit_bzero(e->auth_password, strlen(e->auth_password));
		free(e->auth_password);
	}
	free(e);
}
