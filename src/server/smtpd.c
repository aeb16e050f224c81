#include "server/smtpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "dns/resolver.h"
#include "server/auth_client.h"
#include "store/store.h"
#include "util/log.h"

/* Reload drain: how often sessions left idle are looked for. */
#define DRAIN_IDLE_SWEEP_SECONDS 1

/* Writes a one-line refusal straight to a socket we will not serve.  The
 * socket is new and empty, so a short reply always fits in its buffer. */
static void refuse_raw(int fd, const char *msg)
{
	ssize_t n = send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	close(fd);
}

/* At the connection limit, the oldest session that has not started a
 * transaction makes room (DESIGN.md: thousands of slow connections must
 * never lock real clients out); failing that, the oldest transaction
 * slower than min-data-rate (issue 8: clients trickling DATA held every
 * slot, since a transaction was never evicted). */
static bool evict_one(struct smtpd *d)
{
	for (struct conn *c = d->oldest; c; c = conn_next(c))
		if (conn_shutdown(c, "Server busy, closing idle connection", false)) {
			d->evicted++;
			return true;
		}
	int64_t now = conn_now_ms();
	for (struct conn *c = d->oldest; c; c = conn_next(c))
		if (conn_evict_if_slow(c, now)) {
			d->evicted++;
			return true;
		}
	return false;
}

/* RFC 4954 §4 and RFC 8314: AUTH only on submission listeners, and only
 * under TLS, except on a listener bound exactly to 127.0.0.1 or ::1, whose
 * clients are this host's own programs (no wire to protect). */
static enum smtp_auth_offer listener_auth(const struct listen_addr *a)
{
	if (a->kind == LISTEN_MX)
		return SMTP_AUTH_OFF;
	if (a->ss.ss_family == AF_INET &&
	    ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
		return SMTP_AUTH_ANYTIME;
	if (a->ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr))
		return SMTP_AUTH_ANYTIME;
	return SMTP_AUTH_AFTER_TLS;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer,
                      int peerlen, void *arg)
{
	const struct smtpd_listener *info = arg;
	struct smtpd *d = info->d;
	if (d->stopping) {
		refuse_raw(fd, "421 4.3.2 Server shutting down, try again later\r\n");
		return;
	}
	/* Per-address limit first: a refused client must not cost another
	 * client its session through eviction. */
	unsigned n = ipcount_add(&d->per_ip, peer);
	ipcount_remove(&d->per_ip, peer);
	if (n == 0 || n > d->cfg->max_connections_per_ip) {
		d->refused_limit++;
		log_event(LOG_INFO, "refused_connection", "reason=max-connections-per-ip");
		refuse_raw(fd, "421 4.7.0 Too many connections from your address, try again later\r\n");
		return;
	}
	if (d->nconn >= d->cfg->max_connections && !evict_one(d)) {
		d->refused_limit++;
		log_event(LOG_WARN, "refused_connection", "reason=max-connections conns=%u", d->nconn);
		refuse_raw(fd, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	d->accepted++;
	/* Replies are written whole, one write each: Nagle would only hold a
	 * reply back until the client's delayed ACK (~40 ms per exchange after
	 * STARTTLS, where a session ticket precedes the reply to EHLO). */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_accept(info, fd, peer, (socklen_t)peerlen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct smtpd *d = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* libevent's listener would spin on a full descriptor table:
		 * pause every listener until a connection closes. */
		log_event(LOG_WARN, "accept_paused", "error=%s conns=%u", strerror(err), d->nconn);
		d->listeners_paused = true;
		for (size_t i = 0; i < d->nlisteners; i++)
			evconnlistener_disable(d->listeners[i]);
		return;
	}
	log_event(LOG_WARN, "accept_error", "error=%s", strerror(err));
}

/* Reload drain: a session idle and silent since the last sweep goes. */
static void drain_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *d = arg;
	struct conn *c = d->oldest;
	while (c) {
		struct conn *next = conn_next(c);
		if (!conn_take_activity(c) && conn_is_idle(c))
			conn_shutdown(c, "Server shutting down, try again later", false);
		c = next;
	}
	if (d->nconn == 0)
		event_base_loopexit(d->base, NULL);
}

static void stop_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *d = arg;
	/* Sessions still in DATA after the grace period get 421 and nothing
	 * of their message is stored. */
	struct conn *c = d->oldest;
	while (c) {
		struct conn *next = conn_next(c);
		conn_shutdown(c, "Server shutting down, try again later", true);
		c = next;
	}
	if (d->nconn == 0)
		event_base_loopexit(d->base, NULL);
}

/* Stops serving.  On SIGTERM the listeners keep accepting so that new
 * clients hear "421" at once rather than wait in the backlog until we exit;
 * on a reload drain they stop, since the new smtp process takes them. */
static void smtpd_stop(struct smtpd *d, unsigned grace_seconds, const char *why, bool keep_accepting)
{
	if (!d->stopping) {
		d->stopping = true;
		log_event(LOG_INFO, "stopping", "reason=%s conns=%u", why, d->nconn);
	}
	if (!keep_accepting) {
		/* Reload: the new generation takes new connections.  A session
		 * greeted a moment ago is about to send its first command, so
		 * idle sessions are closed only once they stay silent through a
		 * sweep interval (a client between commands is never idle that
		 * long); otherwise a reload under traffic would answer 421 to
		 * clients that had just connected. */
		for (size_t i = 0; i < d->nlisteners; i++)
			evconnlistener_disable(d->listeners[i]);
		for (struct conn *c = d->oldest; c; c = conn_next(c))
			conn_take_activity(c);
		if (!d->drain_sweep)
			d->drain_sweep = event_new(d->base, -1, EV_PERSIST, drain_sweep_cb, d);
		struct timeval every = { DRAIN_IDLE_SWEEP_SECONDS, 0 };
		if (d->drain_sweep)
			event_add(d->drain_sweep, &every);
	} else {
		/* Shutdown: idle sessions go now. */
		struct conn *c = d->oldest;
		while (c) {
			struct conn *next = conn_next(c);
			conn_shutdown(c, "Server shutting down, try again later", false);
			c = next;
		}
	}
	/* Those in a transaction get the grace period. */
	if (d->nconn == 0) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	struct timeval tv = { grace_seconds, 0 };
	if (!d->stop_timer)
		d->stop_timer = evtimer_new(d->base, stop_deadline_cb, d);
	if (d->stop_timer)
		evtimer_add(d->stop_timer, &tv);
}

static void sig_term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd *d = arg;
	smtpd_stop(d, d->cfg->timeout_shutdown, "signal", true);
}

static void sig_drain_cb(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd *d = arg;
	/* Reload: a new smtp process serves new connections; transactions
	 * here may finish at their own pace, up to the DATA timeout. */
	smtpd_stop(d, d->cfg->timeout_data, "reload", false);
}

static void store_lost_cb(void *arg)
{
	struct smtpd *d = arg;
	log_event(LOG_ERROR, "store_lost", "action=stopping");
	smtpd_stop(d, 0, "store-lost", true);
}

static void store_drained_cb(void *arg)
{
	conn_store_drained(arg);
}

static void auth_lost_cb(void *arg)
{
	/* Sessions keep going; AUTH answers 454 4.7.0 until the parent
	 * replaces this generation (it restarts it when a member dies). */
	log_event(LOG_ERROR, "auth_lost", "action=\"AUTH answers 454\"");
	(void)arg;
}

static void log_kick(void *arg)
{
	event_active(arg, 0, 0);
}

static void log_write_cb(evutil_socket_t fd, short what, void *arg)
{
	log_write_pending();
}

int smtpd_run(const struct serve_config *cfg, const int *listen_fds, size_t nlisten,
              int store_fd, int auth_fd, SSL_CTX *tls, struct dns_resolver *dns)
{
	struct smtpd d;
	char err[256];
	int rc = 1;
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.tls = tls;
	d.session_cfg.hostname = cfg->hostname;
	d.session_cfg.max_message_size = cfg->max_message_size;
	d.session_cfg.max_recipients = cfg->max_recipients;
	d.session_cfg.max_errors = cfg->max_errors;
	d.session_cfg.bare_policy = cfg->bare_newline;
	d.session_cfg.accept_bare_ip = cfg->accept_bare_ip;
	d.session_cfg.max_auth_failures = cfg->max_auth_failures;
	ipcount_init(&d.per_ip, cfg->ipv4_prefix, cfg->ipv6_prefix);
	memset(&d.trusted, 0, sizeof(d.trusted));
	for (size_t i = 0; i < cfg->trusted_networks.n; i++)
		if (!networks_add(&d.trusted, cfg->trusted_networks.items[i], err, sizeof(err))) {
			/* serve_load_config checked them: out of memory. */
			log_event(LOG_ERROR, "start_failed", "reason=\"%s\"", err);
			networks_free(&d.trusted);
			if (auth_fd >= 0)
				close(auth_fd);
			return 1;
		}
	if (!policy_init(&d.policy, cfg, err, sizeof(err))) {
		log_event(LOG_ERROR, "start_failed", "reason=%s", err);
		networks_free(&d.trusted);
		if (auth_fd >= 0)
			close(auth_fd);
		return 1;
	}
	struct event_config *ec = event_config_new();
	/* One thread per process (DESIGN.md): no locking in libevent. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	/* The changelist merges interest turned on and off within a loop
	 * turn into one epoll_ctl (the TLS bufferevents', the store's and
	 * auth's sockets; plaintext connections hardly change theirs: stream.h).
	 * Safe here: no descriptor is ever dup()ed. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	/* Plaintext connections read edge-triggered and watch for the peer's
	 * end (stream.h): epoll has both, poll and select neither. */
	event_config_require_features(ec, EV_FEATURE_ET | EV_FEATURE_EARLY_CLOSE);
	d.base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d.base) {
		log_event(LOG_ERROR, "start_failed", "reason=\"no event loop with edge-triggered "
		          "reads and early close (epoll)\"");
		goto out;
	}
	if (!(d.flush_ev = event_new(d.base, -1, 0, conn_flush_all, &d)))
		goto out;
	/* Log lines go out together, once per loop turn. */
	if (!(d.log_ev = event_new(d.base, -1, 0, log_write_cb, NULL)))
		goto out;
	log_defer(log_kick, d.log_ev);
	if (dns && dns_resolver_attach(dns, d.base))
		d.dns = dns;
	d.store = store_client_new(d.base, store_fd, store_lost_cb, &d);
	if (!d.store)
		goto out;
	store_client_on_drain(d.store, store_drained_cb, &d);
	if (auth_fd >= 0) {
		d.auth = auth_client_new(d.base, auth_fd, auth_lost_cb, &d);
		auth_fd = -1; /* the client owns it now, even on failure */
		if (!d.auth)
			goto out;
	}
	/* The store reports free space as it starts: wait for it (briefly)
	 * so that the first MAIL with SIZE= is already checked against it. */
	struct timeval wait_step = { 0, 10000 };
	for (int i = 0; i < 300 && store_client_free_space(d.store) == UINT64_MAX &&
	                store_client_alive(d.store);
	     i++) {
		event_base_loopexit(d.base, &wait_step);
		event_base_dispatch(d.base);
	}
	for (size_t i = 0; i < nlisten; i++) {
		/* Backlog 0: the parent already called listen() with its own
		 * backlog; libevent would otherwise listen() again with 128. */
		struct smtpd_listener *info = &d.listener_info[i];
		info->d = &d;
		info->addr = &cfg->listen[i];
		info->auth = listener_auth(info->addr);
		d.listeners[i] = evconnlistener_new(d.base, accept_cb, info, LEV_OPT_CLOSE_ON_EXEC, 0,
		                                    listen_fds[i]);
		if (!d.listeners[i])
			goto out;
		evconnlistener_set_error_cb(d.listeners[i], accept_error_cb);
		d.nlisteners++;
	}
	d.sig_term = evsignal_new(d.base, SIGTERM, sig_term_cb, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, sig_term_cb, &d);
	d.sig_drain = evsignal_new(d.base, SIGUSR1, sig_drain_cb, &d);
	if (!d.sig_term || !d.sig_int || !d.sig_drain || evsignal_add(d.sig_term, NULL) ||
	    evsignal_add(d.sig_int, NULL) || evsignal_add(d.sig_drain, NULL))
		goto out;
	log_event(LOG_INFO, "smtp_ready", "listeners=%zu tls=%s", nlisten, tls ? "yes" : "no");
	event_base_dispatch(d.base);
	rc = 0;
	log_event(LOG_INFO, "smtp_exit", "accepted=%lu refused=%lu evicted=%lu", d.accepted,
	          d.refused_limit, d.evicted);
out:
	while (d.oldest)
		conn_close_now(d.oldest);
	for (size_t i = 0; i < d.nlisteners; i++)
		evconnlistener_free(d.listeners[i]);
	if (d.store)
		store_client_free(d.store);
	if (d.auth)
		auth_client_free(d.auth);
	if (auth_fd >= 0)
		close(auth_fd);
	/* Before the loop goes: pending lookups are answered (and dropped). */
	dns_resolver_free(dns);
	if (d.stop_timer)
		event_free(d.stop_timer);
	if (d.drain_sweep)
		event_free(d.drain_sweep);
	if (d.flush_ev)
		event_free(d.flush_ev);
	log_defer(NULL, NULL);
	if (d.log_ev)
		event_free(d.log_ev);
	if (d.sig_term)
		event_free(d.sig_term);
	if (d.sig_int)
		event_free(d.sig_int);
	if (d.sig_drain)
		event_free(d.sig_drain);
	if (d.base)
		event_base_free(d.base);
	policy_free(&d.policy);
	networks_free(&d.trusted);
	ipcount_free(&d.per_ip);
	return rc;
}
