/* The smtp process of rawmail serve: accepts connections on the listeners
 * the parent opened, runs one SMTP session per connection on a libevent
 * loop, and hands message content to the store process.  It never opens a
 * mail file itself. */
#ifndef RAWMAIL_SERVER_SMTPD_H
#define RAWMAIL_SERVER_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>
#include <openssl/ssl.h>

#include "server/config.h"
#include "server/ipcount.h"
#include "server/networks.h"
#include "server/policy.h"
#include "smtp/session.h"

struct event_base;
struct evconnlistener;
struct event;
struct conn;
struct store_client;
struct auth_client;
struct dns_resolver;

/* One listening socket and what it is for (the accept callback's arg). */
struct smtpd_listener {
	struct smtpd *d;
	const struct listen_addr *addr;
	enum smtp_auth_offer auth;  /* AUTH on this listener (issue 10) */
};

struct smtpd {
	struct event_base *base;
	const struct serve_config *cfg;
	struct policy policy;
	struct smtp_session_config session_cfg;
	SSL_CTX *tls;                   /* NULL: STARTTLS not offered */
	struct store_client *store;
	struct auth_client *auth;       /* NULL: no --users (AUTH answers 454) */
	struct networks trusted;        /* --trusted-network: relay without AUTH */
	struct dns_resolver *dns;       /* NULL: no reverse lookups */
	struct evconnlistener *listeners[CONFIG_LISTEN_MAX];
	struct smtpd_listener listener_info[CONFIG_LISTEN_MAX];
	size_t nlisteners;
	bool listeners_paused;          /* EMFILE: resumed when a connection closes */
	struct ipcount per_ip;
	unsigned nconn;
	unsigned store_blocked;         /* connections waiting for the store */
	struct conn *oldest, *newest;   /* all connections, in accept order */
	bool stopping;                  /* no new connections; exit when none left */
	struct event *sig_term, *sig_drain, *sig_int, *stop_timer;
	struct event *drain_sweep;      /* reload: closes sessions left idle */
	/* Plaintext replies are written once per loop turn by conn_flush_all
	 * (conn.c), not through libevent's write events. */
	struct event *flush_ev;
	struct conn *flush_head;        /* connections with replies to write */
	struct event *log_ev;           /* writes the loop turn's log lines */
	unsigned long accepted, refused_limit, evicted;
};

/* Runs the smtp process until SIGTERM (or SIGUSR1: drain for a reload)
 * has closed every session.  listen_fds are the parent's listening
 * sockets, in cfg->listen order; store_fd the socketpair end to the store;
 * auth_fd the one to the auth process, or -1 (no --users); both closed.
 * Returns the process exit code. */
int smtpd_run(const struct serve_config *cfg, const int *listen_fds, size_t nlisten,
              int store_fd, int auth_fd, SSL_CTX *tls, struct dns_resolver *dns);

/* conn.c: one connection. */
void conn_flush_all(evutil_socket_t fd, short what, void *arg);
void conn_accept(const struct smtpd_listener *l, int fd, const struct sockaddr *peer,
                 socklen_t peerlen);
void conn_close_now(struct conn *c);
/* 421 to a session that is idle (or every session when force), used at
 * shutdown and to make room under overload.  Returns true if it closed. */
bool conn_shutdown(struct conn *c, const char *why, bool force);
bool conn_is_idle(const struct conn *c);
/* True if the client sent anything since the last call (and clears it). */
bool conn_take_activity(struct conn *c);
/* Under overload: closes (421) a session whose transaction runs slower than
 * min-data-rate after SMTP_TIMEOUT_OVERLOAD seconds of grace.  Returns true
 * if it closed. */
bool conn_evict_if_slow(struct conn *c, int64_t now_ms);
/* The monotonic clock in milliseconds. */
int64_t conn_now_ms(void);
struct conn *conn_next(const struct conn *c);
/* The store caught up: resume the connections that waited for it. */
void conn_store_drained(struct smtpd *d);

#endif
