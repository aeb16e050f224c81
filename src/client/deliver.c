#include "client/deliver.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "net/tls.h"

#include "smtp/dot_encode.h"

/* Message input encoded per step, and how much encoded data may wait in
 * the output buffer before we wait for the socket to drain it. */
#define DELIVER_CHUNK (16 * 1024)
#define DELIVER_OUT_HIGH (64 * 1024)
#define DELIVER_OUT_LOW (16 * 1024)
#define DELIVER_FINAL_TIMEOUT 600

enum deliver_state {
	DS_CONNECTING,
	DS_TALKING,        /* reading replies, writing commands */
	DS_HANDSHAKE,      /* TLS handshake after the 220 to STARTTLS */
	DS_DATA,           /* writing the encoded message */
	DS_CLOSING,        /* QUIT (or nothing) queued: close once written */
	DS_IDLE,           /* between transactions (keep_open) */
};

struct client_delivery {
	struct client_deliver_request req;
	struct client_session s;
	struct smtp_reply_parser parser;
	struct smtp_dot_encoder enc;
	struct bufferevent *bev;
	/* The deadline of the reply awaited (or of the TLS handshake): armed
	 * once when the wait starts, never moved by octets that arrive, so a
	 * peer trickling one octet a second cannot hold us (a bufferevent's
	 * read timeout restarts on every read). */
	struct event *deadline;
	int fd;
	bool fd_owned_by_bev;
	enum deliver_state state;
	bool broken;          /* idle, and the peer said something or closed */
	enum client_deliver_end closing_end;
	/* Copies: the request's pointers belong to whoever started the
	 * connection, which may be gone while a later owner uses it. */
	struct sockaddr_storage addr;
	char servername[256];
	struct client_deliver_result res;
	struct tls_client_check check;   /* the SSL points into it */
	size_t msg_off;
	char reason[TLS_CLIENT_REASON_SIZE];
	char scratch[2 * DELIVER_CHUNK + 8];
};

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

const char *client_deliver_end_name(enum client_deliver_end end)
{
	switch (end) {
	case CLIENT_DELIVER_DONE:
		return "DONE";
	case CLIENT_DELIVER_NEXT_HOST:
		return "NEXT_HOST";
	case CLIENT_DELIVER_LOST:
		return "LOST";
	}
	return "?";
}

static void transcript(struct client_delivery *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void transcript(struct client_delivery *d, const char *fmt, ...)
{
	if (!d->req.transcript)
		return;
	char line[SMTP_REPLY_PARSE_LINE_MAX + 16];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->req.transcript(d->req.arg, line);
}

/* Ends the attempt: result to the caller, then everything freed.  The
 * caller of finish() must not touch d afterwards. */
static void finish(struct client_delivery *d, enum client_deliver_end end, const char *reason)
{
	struct client_deliver_result *r = &d->res;
	r->end = end;
	if (end == CLIENT_DELIVER_LOST) {
		client_session_lost(&d->s);
		if (reason != d->reason)
			snprintf(d->reason, sizeof(d->reason), "%s", reason ? reason : "connection lost");
		r->fail_reason = d->reason;
	} else if (end == CLIENT_DELIVER_NEXT_HOST) {
		r->fail_reason = d->s.fail_reason ? d->s.fail_reason : "host refused";
	} else {
		r->fail_reason = NULL;
	}
	r->fail_code = d->s.fail_code;
	r->fail_enhanced = d->s.fail_enhanced;
	r->fail_text = d->s.fail_text;
	r->auth_failed = d->s.auth_failed;
	if (d->deadline) {
		event_free(d->deadline);
		d->deadline = NULL;
	}
	if (d->bev) {
		bufferevent_free(d->bev);
		d->bev = NULL;
	}
	if (!d->fd_owned_by_bev && d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	d->req.done(d->req.arg, r);
	client_session_free(&d->s);
	free(d);
}

static void lost_errno(struct client_delivery *d, const char *what, int err)
{
	if (err)
		snprintf(d->reason, sizeof(d->reason), "%s: %s", what, strerror(err));
	else
		snprintf(d->reason, sizeof(d->reason), "%s", what);
	finish(d, CLIENT_DELIVER_LOST, d->reason);
}

/* The bufferevent keeps only the write timeout (connecting, writing the
 * message: each write that makes progress is progress); waiting for
 * the peer is bounded by the deadline. */
static void set_write_timeout(struct client_delivery *d)
{
	struct timeval w = { d->req.timeout, 0 };
	bufferevent_set_timeouts(d->bev, NULL, &w);
}

/* Starts the wait for the next reply (or the handshake): seconds from
 * now, whatever arrives meanwhile. */
static void deadline_arm(struct client_delivery *d, int seconds)
{
	struct timeval t = { seconds, 0 };
	evtimer_add(d->deadline, &t);
}

static void deadline_stop(struct client_delivery *d)
{
	evtimer_del(d->deadline);
}

/* Writes the session's output, one transcript line per command.  false
 * if the output buffer refused it (d is untouched otherwise). */
static bool write_output(struct client_delivery *d)
{
	struct buf *out = client_session_output(&d->s);
	if (out->len == 0)
		return true;
	bool secret = client_session_output_secret(&d->s);
	if (d->req.transcript) {
		const char *p = out->data, *end = out->data + out->len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			size_t shown = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
			if (!secret)
				transcript(d, "C> %.*s", (int)shown, p);
			else if (shown > 11 && !strncmp(p, "AUTH PLAIN ", 11))
				transcript(d, "C> AUTH PLAIN <hidden>");
			else
				transcript(d, "C> <hidden>");
			p += n + (nl ? 1 : 0);
		}
	}
	int rc = bufferevent_write(d->bev, out->data, out->len);
	/* The password (in base64) does not linger in our buffer; the
	 * bufferevent's copy is freed once written. */
	if (secret)
		explicit_bzero(out->data, out->len);
	buf_reset(out);
	return rc == 0;
}

/* write_output, or the connection is lost (d is finished then). */
static bool send_output(struct client_delivery *d)
{
	if (write_output(d))
		return true;
	lost_errno(d, "cannot write", ENOMEM);
	return false;
}

/* -vv: the message line by line as the encoder puts it on the wire (LF,
 * CRLF or a lone CR ends a line; a leading dot is doubled). */
static void transcript_message(struct client_delivery *d)
{
	const char *p = d->req.message, *end = p + d->req.message_len;
	while (p < end) {
		const char *e = p;
		while (e < end && *e != '\n' && *e != '\r')
			e++;
		size_t n = (size_t)(e - p);
		if (n > SMTP_REPLY_PARSE_LINE_MAX)
			transcript(d, "C> %s%.*s... (%zu octets)", *p == '.' ? "." : "",
			           SMTP_REPLY_PARSE_LINE_MAX, p, n);
		else
			transcript(d, "C> %s%.*s", *p == '.' ? "." : "", (int)n, p);
		if (e < end && *e == '\r' && e + 1 < end && e[1] == '\n')
			e++;
		p = e < end ? e + 1 : e;
	}
}

/* Encodes more of the message into the output buffer, up to the high
 * mark; after the last chunk the final dot, then replies are read again
 * with the final-dot timeout.  false if d is finished. */
static bool fill_data(struct client_delivery *d)
{
	struct evbuffer *out = bufferevent_get_output(d->bev);
	while (evbuffer_get_length(out) < DELIVER_OUT_HIGH) {
		if (d->msg_off < d->req.message_len) {
			size_t n = d->req.message_len - d->msg_off;
			if (n > DELIVER_CHUNK)
				n = DELIVER_CHUNK;
			size_t w = smtp_dot_encode(&d->enc, d->req.message + d->msg_off, n, d->scratch);
			d->msg_off += n;
			if (w > 0 && evbuffer_add(out, d->scratch, w) != 0) {
				lost_errno(d, "cannot write", ENOMEM);
				return false;
			}
			continue;
		}
		size_t w = smtp_dot_encode_finish(&d->enc, d->scratch);
		if (evbuffer_add(out, d->scratch, w) != 0) {
			lost_errno(d, "cannot write", ENOMEM);
			return false;
		}
		client_session_dot_sent(&d->s);
		/* lines counts message lines only, not the ".\r\n" */
		if (!d->req.transcript_body)
			transcript(d, "C> (%llu lines of message)", (unsigned long long)d->enc.lines);
		transcript(d, "C> .");
		d->state = DS_TALKING;
		bufferevent_setwatermark(d->bev, EV_WRITE, 0, 0);
		/* RFC 5321 §4.5.3.2.6: up to 10 minutes for the reply to the
		 * dot, or the peer may deliver a message we then send again. */
		int t = d->req.final_timeout > 0 ? d->req.final_timeout : DELIVER_FINAL_TIMEOUT;
		deadline_arm(d, t);
		bufferevent_enable(d->bev, EV_READ);
		return true;
	}
	return true;
}

static bool start_tls(struct client_delivery *d)
{
	if (!d->req.implicit_tls && evbuffer_get_length(bufferevent_get_input(d->bev)) > 0) {
		/* Bytes after the 220 to STARTTLS would be read as if they came
		 * through TLS (the STARTTLS injection of CVE-2011-0411's kind). */
		finish(d, CLIENT_DELIVER_LOST, "data after the reply to STARTTLS");
		return false;
	}
	SSL_CTX *ctx = d->req.tls_ctx;
	if (!ctx && d->req.tls_lazy)
		ctx = tls_client_lazy_get(d->req.tls_lazy, d->reason, sizeof(d->reason));
	else if (!ctx)
		snprintf(d->reason, sizeof(d->reason), "no TLS context");
	if (!ctx) {
		finish(d, CLIENT_DELIVER_LOST, d->reason);
		return false;
	}
	d->check = (struct tls_client_check){
		.servername = d->req.tls_servername,
		.addr = (const struct sockaddr *)&d->addr,
		.verify = d->req.tls_verify,
		.pins = d->req.tls_pins,
		.npins = d->req.tls_npins,
	};
	SSL *ssl = tls_client_ssl_new(ctx, &d->check, d->reason, sizeof(d->reason));
	if (!ssl) {
		/* Counted as a TLS failure: an opportunistic caller may still
		 * send in plaintext, a verifying one will not. */
		d->res.tls_failed = true;
		finish(d, CLIENT_DELIVER_LOST, d->reason);
		return false;
	}
	/* The plaintext bufferevent goes; its fd stays open for the TLS one. */
	bufferevent_free(d->bev);
	d->bev = bufferevent_openssl_socket_new(d->req.base, d->fd, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (!d->bev) {
		SSL_free(ssl);
		finish(d, CLIENT_DELIVER_LOST, "cannot start TLS");
		return false;
	}
	d->fd_owned_by_bev = true;
	d->state = DS_HANDSHAKE;
	bufferevent_openssl_set_allow_dirty_shutdown(d->bev, 1);
	bufferevent_setcb(d->bev, read_cb, write_cb, event_cb, d);
	set_write_timeout(d);
	deadline_arm(d, d->req.timeout);   /* the whole handshake */
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
	return true;
}

static void idle_broken(struct client_delivery *d);

/* Acts on the session's decision.  false if d is finished, or if no more
 * replies are to be read now. */
static bool act(struct client_delivery *d, enum client_action a)
{
	switch (a) {
	case CLIENT_SEND:
		return send_output(d);
	case CLIENT_READ:
		return true;
	case CLIENT_STARTTLS:
		start_tls(d);
		return false;
	case CLIENT_SEND_DATA:
		if (!send_output(d))
			return false;
		d->state = DS_DATA;
		d->msg_off = 0;
		smtp_dot_encoder_init(&d->enc);
		/* No reply is due until the message is written: reading stays
		 * off and no deadline runs while we write. */
		deadline_stop(d);
		bufferevent_disable(d->bev, EV_READ);
		bufferevent_setwatermark(d->bev, EV_WRITE, DELIVER_OUT_LOW, 0);
		if (d->req.transcript_body)
			transcript_message(d);
		fill_data(d);
		return false;
	case CLIENT_IDLE:
		/* The transaction is over and the connection is the caller's:
		 * reading stays on so that a peer closing it is noticed. */
		deadline_stop(d);
		d->state = DS_IDLE;
		d->res.end = CLIENT_DELIVER_DONE;
		d->res.reusable = true;
		d->res.fail_reason = NULL;
		d->res.fail_code = d->s.fail_code;
		d->res.fail_enhanced = d->s.fail_enhanced;
		d->res.fail_text = d->s.fail_text;
		d->req.done(d->req.arg, &d->res);
		client_session_transaction_clear(&d->s);
		/* Octets that came behind the last reply (read with it) are
		 * unasked-for too. */
		if (evbuffer_get_length(bufferevent_get_input(d->bev)) > 0)
			idle_broken(d);
		return false;
	case CLIENT_DONE:
	case CLIENT_NEXT_HOST: {
		enum client_deliver_end end =
			a == CLIENT_DONE ? CLIENT_DELIVER_DONE : CLIENT_DELIVER_NEXT_HOST;
		if (client_session_output(&d->s)->len == 0) {
			finish(d, end, NULL);
			return false;
		}
		if (!send_output(d))
			return false;
		d->state = DS_CLOSING;
		d->closing_end = end;
		deadline_stop(d);
		bufferevent_disable(d->bev, EV_READ);
		return false;
	}
	}
	return false;
}

/* Nothing is due from an idle peer: whatever came (a 421 at its idle
 * timeout, EOF, an error) means the connection is not to be reused. */
static void idle_broken(struct client_delivery *d)
{
	d->broken = true;
	evbuffer_drain(bufferevent_get_input(d->bev), evbuffer_get_length(bufferevent_get_input(d->bev)));
	bufferevent_disable(d->bev, EV_READ | EV_WRITE);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct client_delivery *d = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (d->state == DS_TALKING && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		size_t used = 0;
		struct smtp_server_reply reply;
		enum smtp_reply_parse_status st =
			smtp_reply_parser_feed(&d->parser, v.iov_base, v.iov_len, &used, &reply);
		evbuffer_drain(in, used);
		if (st == SMTP_REPLY_NEED_MORE)
			continue;
		if (st != SMTP_REPLY_DONE) {
			finish(d, CLIENT_DELIVER_LOST, "malformed reply");
			return;
		}
		if (d->res.greeting_code == 0)
			d->res.greeting_code = reply.code;
		if (d->req.transcript) {
			const char *p = reply.text;
			for (size_t i = 0; i < reply.nlines; i++) {
				const char *nl = strchr(p, '\n');
				size_t n = nl ? (size_t)(nl - p) : strlen(p);
				transcript(d, "S> %03d%c%.*s", reply.code, i + 1 < reply.nlines ? '-' : ' ',
				           (int)n, p);
				p += n + (nl ? 1 : 0);
			}
		}
		/* A whole reply came: the next one (if any is due) gets its own
		 * deadline.  act() may stop it again (data, closing). */
		deadline_arm(d, d->req.timeout);
		if (!act(d, client_session_reply(&d->s, &reply)))
			return;
	}
	if (d->state == DS_CLOSING)
		evbuffer_drain(in, evbuffer_get_length(in));
	if (d->state == DS_IDLE && evbuffer_get_length(in) > 0)
		idle_broken(d);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct client_delivery *d = arg;
	if (d->state == DS_DATA) {
		fill_data(d);
	} else if (d->state == DS_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			finish(d, d->closing_end, NULL);
	}
}

/* A write timeout or the deadline: which wait it ended says what failed. */
static void timed_out(struct client_delivery *d)
{
	if (d->state == DS_CLOSING) {
		finish(d, d->closing_end, NULL);
		return;
	}
	d->res.connect_timeout = d->state == DS_CONNECTING;
	d->res.tls_failed = d->state == DS_HANDSHAKE;
	const char *r = d->state == DS_CONNECTING ? "connection timed out"
	                : d->state == DS_HANDSHAKE ? "TLS handshake timed out"
	                : d->state == DS_DATA      ? "timed out writing the message"
	                                           : "timed out waiting for a reply";
	finish(d, CLIENT_DELIVER_LOST, r);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	timed_out(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client_delivery *d = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		if (d->state == DS_CONNECTING && d->req.implicit_tls) {
			/* RFC 8314 §3.3: TLS first, then SMTP inside it. */
			d->res.connected = true;
			start_tls(d);
		} else if (d->state == DS_CONNECTING) {
			d->res.connected = true;
			d->state = DS_TALKING;
			set_write_timeout(d);
			deadline_arm(d, d->req.timeout);   /* the greeting */
			bufferevent_enable(bev, EV_READ | EV_WRITE);
		} else if (d->state == DS_HANDSHAKE) {
			SSL *ssl = bufferevent_openssl_get_ssl(bev);
			if (!tls_client_check_passed(&d->check)) {
				/* The checks refuse inside the handshake, so this is
				 * only reached if OpenSSL skipped them: fail closed. */
				d->res.tls_failed = true;
				finish(d, CLIENT_DELIVER_LOST, "TLS established without the certificate checks");
				return;
			}
			d->res.tls = true;
			d->state = DS_TALKING;
			deadline_arm(d, d->req.timeout);
			if (d->req.transcript) {
				char desc[256];
				tls_client_describe(ssl, &d->check, desc, sizeof(desc));
				transcript(d, "-- TLS established: %s", desc);
			}
			if (d->req.implicit_tls && !d->s.tls_active) {
				/* The greeting comes now, inside TLS. */
				client_session_tls_implicit(&d->s);
				bufferevent_enable(bev, EV_READ | EV_WRITE);
				read_cb(bev, d);
			} else if (act(d, client_session_tls_done(&d->s))) {
				read_cb(bev, d);
			}
		}
		return;
	}
	if (d->state == DS_IDLE) {
		idle_broken(d);
		return;
	}
	if (d->state == DS_CLOSING) {
		/* The peer closed or failed after our QUIT: the session's outcome
		 * stands. */
		finish(d, d->closing_end, NULL);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		timed_out(d);
		return;
	}
	if (d->state == DS_HANDSHAKE) {
		d->res.tls_failed = true;
		if (d->check.failed) {
			/* Our own check refused the certificate: its reason, not
			 * OpenSSL's "certificate verify failed". */
			d->res.certificate_refused = true;
			snprintf(d->reason, sizeof(d->reason), "%s", d->check.reason);
			finish(d, CLIENT_DELIVER_LOST, d->reason);
			return;
		}
		unsigned long e = bufferevent_get_openssl_error(bev);
		char detail[200] = "";
		if (e)
			ERR_error_string_n(e, detail, sizeof(detail));
		snprintf(d->reason, sizeof(d->reason), "TLS handshake failed%s%s", e ? ": " : "",
		         detail);
		finish(d, CLIENT_DELIVER_LOST, d->reason);
		return;
	}
	if (d->state == DS_CONNECTING) {
		lost_errno(d, "cannot connect", err);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		finish(d, CLIENT_DELIVER_LOST, "connection closed by the peer");
		return;
	}
	lost_errno(d, "connection failed", err);
}

/* Reports a connect() that failed at once, from the loop as promised. */
static void deferred_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_delivery *d = arg;
	finish(d, CLIENT_DELIVER_LOST, d->reason);
}

struct client_delivery *client_deliver_start(const struct client_deliver_request *req)
{
	if (!req->base || !req->addr || !req->cfg || !req->done || req->timeout <= 0 ||
	    (req->tls_npins > 0 && !req->tls_pins))
		return NULL;
	struct client_delivery *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->req = *req;
	if (req->addrlen > sizeof(d->addr)) {
		free(d);
		return NULL;
	}
	memcpy(&d->addr, req->addr, req->addrlen);
	d->req.addr = (const struct sockaddr *)&d->addr;
	if (req->tls_servername) {
		snprintf(d->servername, sizeof(d->servername), "%s", req->tls_servername);
		d->req.tls_servername = d->servername;
	}
	d->fd = -1;
	d->state = DS_CONNECTING;
	client_session_init(&d->s, req->cfg, req->sender, req->rcpts, req->nrcpts);
	smtp_reply_parser_init(&d->parser);
	d->deadline = evtimer_new(req->base, deadline_cb, d);
	if (!d->deadline) {
		client_session_free(&d->s);
		free(d);
		return NULL;
	}

	d->fd = socket(req->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd < 0) {
		snprintf(d->reason, sizeof(d->reason), "cannot create socket: %s", strerror(errno));
		goto fail_later;
	}
	/* Commands and the message's end are written whole: Nagle would hold
	 * the final dot (a small write after a large one) until the peer's
	 * delayed ACK. */
	int one = 1;
	setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	d->bev = bufferevent_socket_new(req->base, d->fd, 0);
	if (!d->bev) {
		snprintf(d->reason, sizeof(d->reason), "cannot create bufferevent");
		goto fail_later;
	}
	bufferevent_setcb(d->bev, read_cb, write_cb, event_cb, d);
	set_write_timeout(d);
	if (bufferevent_socket_connect(d->bev, req->addr, (int)req->addrlen) != 0) {
		snprintf(d->reason, sizeof(d->reason), "cannot connect: %s",
		         strerror(EVUTIL_SOCKET_ERROR()));
		goto fail_later;
	}
	return d;

fail_later:
	if (event_base_once(req->base, -1, EV_TIMEOUT, deferred_fail_cb, d, NULL) != 0) {
		if (d->bev)
			bufferevent_free(d->bev);
		if (d->fd >= 0)
			close(d->fd);
		event_free(d->deadline);
		client_session_free(&d->s);
		free(d);
		return NULL;
	}
	return d;
}

/* Frees an idle delivery without any callback. */
static void idle_free(struct client_delivery *d)
{
	if (d->deadline)
		event_free(d->deadline);
	if (d->bev)
		bufferevent_free(d->bev);
	if (!d->fd_owned_by_bev && d->fd >= 0)
		close(d->fd);
	client_session_free(&d->s);
	free(d);
}

bool client_deliver_usable(const struct client_delivery *d)
{
	return d->state == DS_IDLE && !d->broken && !d->s.peer_closing;
}

void client_deliver_detach(struct client_delivery *d)
{
	d->req.transcript = NULL;
}

bool client_deliver_next(struct client_delivery *d, const struct client_deliver_request *req)
{
	if (d->state != DS_IDLE) {
		/* A caller's bug; failing the transaction is all we can do. */
		return false;
	}
	bool usable = client_deliver_usable(d);
	d->req.cfg = req->cfg;
	d->req.sender = req->sender;
	d->req.rcpts = req->rcpts;
	d->req.nrcpts = req->nrcpts;
	d->req.message = req->message;
	d->req.message_len = req->message_len;
	d->req.timeout = req->timeout > 0 ? req->timeout : d->req.timeout;
	d->req.final_timeout = req->final_timeout;
	d->req.transcript = req->transcript;
	d->req.transcript_body = req->transcript_body;
	d->req.done = req->done;
	d->req.arg = req->arg;
	/* What belongs to the connection stays; the rest is this
	 * transaction's. */
	d->res = (struct client_deliver_result){
		.connected = true,
		.tls = d->res.tls,
		.greeting_code = d->res.greeting_code,
		.reused = true,
	};
	enum client_action a = client_session_next(&d->s, req->cfg, req->sender, req->rcpts,
	                                           req->nrcpts);
	if (!usable || a != CLIENT_SEND || !write_output(d)) {
		client_session_transaction_clear(&d->s);
		for (size_t i = 0; i < req->nrcpts; i++)
			req->rcpts[i].state = CLIENT_RCPT_PENDING;
		idle_free(d);
		return false;
	}
	d->state = DS_TALKING;
	set_write_timeout(d);
	deadline_arm(d, d->req.timeout);
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
	return true;
}

void client_deliver_close(struct client_delivery *d)
{
	if (client_deliver_usable(d)) {
		/* RFC 5321 §4.1.1.10: QUIT ends the session.  Written now, not
		 * through the loop: the caller may be about to end its loop.
		 * An idle connection has nothing else waiting to be written. */
		static const char quit[] = "QUIT\r\n";
		transcript(d, "C> QUIT");
		if (d->fd_owned_by_bev) {
			SSL *ssl = bufferevent_openssl_get_ssl(d->bev);
			if (ssl)
				(void)SSL_write(ssl, quit, (int)sizeof(quit) - 1);
		} else if (d->fd >= 0) {
			(void)send(d->fd, quit, sizeof(quit) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
	idle_free(d);
}
