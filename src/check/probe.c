/* See probe.h.  A small state machine on one bufferevent; every phase
 * (connect, greeting, EHLO, STARTTLS, handshake) has its own deadline
 * of the --timeout, so a peer that stalls anywhere ends the probe. */
#include "check/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/x509.h>

#include "check/check.h"
#include "smtp/reply_parse.h"
#include "util/text.h"

enum probe_state { P_CONNECT, P_GREETING, P_EHLO, P_STARTTLS, P_TLS };

struct probe {
	struct event_base *base;
	SSL_CTX *tls;
	struct bufferevent *bev;
	struct event *timer;
	enum probe_state state;
	bool connect_failed;
	unsigned timeout_ms;
	probe_cb cb;
	void *arg;
	char helo[256];
	char sni[256];
	struct probe_report rep;
	struct smtp_reply_parser parser;
};

static void finish(struct probe *p, enum probe_outcome outcome)
{
	p->rep.outcome = outcome;
	if (p->bev)
		bufferevent_free(p->bev);
	event_free(p->timer);
	p->cb(p->arg, &p->rep);
	free(p);
}

static void arm(struct probe *p)
{
	struct timeval tv = { p->timeout_ms / 1000, (p->timeout_ms % 1000) * 1000 };
	evtimer_add(p->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	switch (p->state) {
	case P_CONNECT: finish(p, p->connect_failed ? PROBE_UNREACHABLE : PROBE_TIMEOUT); break;
	case P_GREETING: finish(p, PROBE_SILENT); break;
	case P_TLS:
		p->rep.tls_stalled = true;
		finish(p, PROBE_OK);
		break;
	case P_STARTTLS:
		/* the greeting and EHLO went well: only STARTTLS stalled */
		p->rep.tls_stalled = true;
		finish(p, PROBE_OK);
		break;
	case P_EHLO: finish(p, PROBE_STALLED); break;
	}
}

static void escape_into(char *dst, size_t dstlen, const char *src, bool keep_newline)
{
	text_escape(dst, dstlen, src, strlen(src), keep_newline ? TEXT_KEEP_NEWLINE : 0);
}

static void send_line(struct probe *p, const char *line)
{
	bufferevent_write(p->bev, line, strlen(line));
}

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct probe *p = arg;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		snprintf(p->rep.tls_version, sizeof(p->rep.tls_version), "%s", SSL_get_version(ssl));
		snprintf(p->rep.tls_cipher, sizeof(p->rep.tls_cipher), "%s",
		         SSL_get_cipher_name(ssl));
		X509 *cert = SSL_get1_peer_certificate(ssl);
		unsigned char fp[TLS_FINGERPRINT_LEN];
		if (cert && tls_fingerprint_cert(cert, fp))
			tls_fingerprint_format(fp, p->rep.fingerprint);
		X509_free(cert);
		p->rep.tls_ok = true;
		finish(p, PROBE_OK);
		return;
	}
	p->rep.tls_stalled = true;
	finish(p, PROBE_OK);
}

static void tls_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void start_tls(struct probe *p)
{
	SSL *ssl = SSL_new(p->tls);
	if (!ssl) {
		p->rep.tls_stalled = true;
		finish(p, PROBE_OK);
		return;
	}
	if (p->sni[0])
		SSL_set_tlsext_host_name(ssl, p->sni);
	struct bufferevent *tls = bufferevent_openssl_filter_new(
		p->base, p->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!tls) {
		SSL_free(ssl);
		p->rep.tls_stalled = true;
		finish(p, PROBE_OK);
		return;
	}
	/* bufferevent_openssl_filter_new frees ssl on close */
	p->bev = tls;
	p->state = P_TLS;
	bufferevent_setcb(tls, tls_read_cb, NULL, tls_event_cb, p);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	arm(p);
}

/* One complete reply in the current state. */
static bool on_reply(struct probe *p, const struct smtp_server_reply *r)
{
	switch (p->state) {
	case P_GREETING: {
		p->rep.code = r->code;
		const char *nl = strchr(r->text, '\n');
		char first[512];
		size_t len = nl ? (size_t)(nl - r->text) : strlen(r->text);
		if (len >= sizeof(first))
			len = sizeof(first) - 1;
		memcpy(first, r->text, len);
		first[len] = '\0';
		escape_into(p->rep.greeting, sizeof(p->rep.greeting), first, false);
		if (r->code != 220) {
			snprintf(p->rep.enhanced, sizeof(p->rep.enhanced), "%s", r->enhanced);
			escape_into(p->rep.reply, sizeof(p->rep.reply), r->text, false);
			finish(p, PROBE_REJECTED);
			return false;
		}
		char line[300];
		snprintf(line, sizeof(line), "EHLO %s\r\n", p->helo);
		send_line(p, line);
		p->state = P_EHLO;
		arm(p);
		return true;
	}
	case P_EHLO:
		if (r->code != 250) {
			p->rep.code = r->code;
			snprintf(p->rep.enhanced, sizeof(p->rep.enhanced), "%s", r->enhanced);
			escape_into(p->rep.reply, sizeof(p->rep.reply), r->text, false);
			finish(p, PROBE_REJECTED);
			return false;
		}
		p->rep.revealed = check_ehlo_revealed(r->text, &p->rep.revealed_family,
		                                      p->rep.revealed_addr);
		/* RFC 3207 §4: the keyword on a line of its own after the first */
		for (const char *l = strchr(r->text, '\n'); l; l = strchr(l + 1, '\n'))
			if (!strncasecmp(l + 1, "STARTTLS", 8) &&
			    (l[9] == '\0' || l[9] == '\n' || l[9] == ' '))
				p->rep.starttls = true;
		if (!p->rep.starttls || !p->tls) {
			finish(p, PROBE_OK);
			return false;
		}
		send_line(p, "STARTTLS\r\n");
		p->state = P_STARTTLS;
		arm(p);
		return true;
	case P_STARTTLS:
		if (r->code != 220) {
			p->rep.tls_stalled = true;
			finish(p, PROBE_OK);
			return false;
		}
		/* RFC 3207 §4.2: nothing sent before the handshake may be
		 * taken as part of it; what followed the 220 is dropped */
		evbuffer_drain(bufferevent_get_input(p->bev),
		               evbuffer_get_length(bufferevent_get_input(p->bev)));
		start_tls(p);
		return false;
	default:
		return false;
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct probe *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (!avail)
			return;
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		size_t consumed = 0;
		struct smtp_server_reply reply;
		enum smtp_reply_parse_status st =
			smtp_reply_parser_feed(&p->parser, v.iov_base, v.iov_len, &consumed, &reply);
		if (st == SMTP_REPLY_NEED_MORE) {
			evbuffer_drain(in, v.iov_len);
			continue;
		}
		if (st != SMTP_REPLY_DONE) {
			finish(p, PROBE_BAD_REPLY);
			return;
		}
		evbuffer_drain(in, consumed);
		if (!on_reply(p, &reply))
			return;
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct probe *p = arg;
	if (what & BEV_EVENT_CONNECTED) {
		p->state = P_GREETING;
		arm(p);
		return;
	}
	if (p->state == P_CONNECT) {
		int err = EVUTIL_SOCKET_ERROR();
		snprintf(p->rep.error, sizeof(p->rep.error), "%s", strerror(err));
		finish(p, err == ECONNREFUSED ? PROBE_REFUSED : PROBE_UNREACHABLE);
		return;
	}
	if (p->state == P_STARTTLS) {
		p->rep.tls_stalled = true;
		finish(p, PROBE_OK);
		return;
	}
	finish(p, PROBE_CLOSED);
}

struct probe *probe_start(struct event_base *base, SSL_CTX *tls, int family,
                          const unsigned char *addr, unsigned port, const char *helo,
                          const char *sni, unsigned timeout_ms, probe_cb cb, void *arg)
{
	struct probe *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->base = base;
	p->tls = tls;
	p->cb = cb;
	p->arg = arg;
	p->timeout_ms = timeout_ms;
	snprintf(p->helo, sizeof(p->helo), "%s", helo);
	snprintf(p->sni, sizeof(p->sni), "%s", sni ? sni : "");
	smtp_reply_parser_init(&p->parser);
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, addr, 4);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, addr, 16);
		len = sizeof(*s6);
	}
	p->timer = evtimer_new(base, timer_cb, p);
	p->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!p->timer || !p->bev) {
		if (p->bev)
			bufferevent_free(p->bev);
		if (p->timer)
			event_free(p->timer);
		free(p);
		return NULL;
	}
	bufferevent_setcb(p->bev, read_cb, NULL, event_cb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	p->state = P_CONNECT;
	arm(p);
	if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&ss, (int)len) < 0) {
		/* failed at once (no route): reported from the loop like the
		 * others, never from inside this call */
		snprintf(p->rep.error, sizeof(p->rep.error), "%s", strerror(errno));
		bufferevent_free(p->bev);
		p->bev = NULL;
		p->connect_failed = true;
		struct timeval now = { 0, 0 };
		evtimer_add(p->timer, &now);
	}
	return p;
}
