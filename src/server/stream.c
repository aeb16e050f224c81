/* A client connection's byte stream: plaintext driven by hand, TLS by
 * libevent's OpenSSL bufferevent (stream.h says why). */
#include "server/stream.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

/* ---- timeouts ------------------------------------------------------------ */

/* Thousands of connections share a few timeout lengths: libevent keeps
 * each "common" length in a queue, O(1) to re-arm, instead of its heap. */
static struct timeval timeout_of(struct event_base *base, unsigned secs)
{
	struct timeval tv = { (time_t)secs, 0 };
	const struct timeval *common = event_base_init_common_timeout(base, &tv);
	return common ? *common : tv;
}

/* ---- plaintext ----------------------------------------------------------- */

/* Writes what the output holds; true when it is empty after. */
static bool plain_write_out(struct stream *s, bool *failed)
{
	*failed = false;
	while (s->out && evbuffer_get_length(s->out) > 0) {
		int n = evbuffer_write(s->out, s->fd);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		*failed = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
		return false;
	}
	if (s->out) {
		evbuffer_free(s->out);
		s->out = NULL;
	}
	return true;
}

static void plain_read(struct stream *s)
{
	if (!s->in) {
		s->in = evbuffer_new();
		if (!s->in) {
			s->cbs->event(s->arg, BEV_EVENT_ERROR | BEV_EVENT_READING);
			return;
		}
	}
	struct evbuffer_iovec v[2];
	int nv = evbuffer_reserve_space(s->in, STREAM_READ, v, 2);
	if (nv < 1) {
		s->cbs->event(s->arg, BEV_EVENT_ERROR | BEV_EVENT_READING);
		return;
	}
	struct iovec iov[2];
	size_t want = 0;
	for (int i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
		want += v[i].iov_len;
	}
	ssize_t n = readv(s->fd, iov, nv);
	if (n < 0) {
		evbuffer_commit_space(s->in, v, 0);
		if (errno == EINTR) {
			event_active(s->rd, EV_READ, 0);
			return;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->ready = false;
			return;
		}
		s->cbs->event(s->arg, BEV_EVENT_ERROR | BEV_EVENT_READING);
		return;
	}
	if (n == 0) {
		evbuffer_commit_space(s->in, v, 0);
		s->ready = false;
		/* A client that only half-closed still reads: replies to what it
		 * sent before its end may still be waiting for this loop turn's
		 * flush, and go now (one try) before the owner hears of the end. */
		bool failed;
		plain_write_out(s, &failed);
		s->cbs->event(s->arg, BEV_EVENT_EOF | BEV_EVENT_READING);
		return;
	}
	size_t left = (size_t)n;       /* what the read filled, vector by vector */
	for (int i = 0; i < nv; i++) {
		if (v[i].iov_len > left)
			v[i].iov_len = left;
		left -= v[i].iov_len;
	}
	evbuffer_commit_space(s->in, v, nv);
	/* Edge-triggered: a short read emptied the socket, and what comes
	 * next raises a new edge; a full one may have left more, and the end
	 * of the stream raises no edge of its own after data.  Either is read
	 * on the next loop turn, so one client cannot hold the loop. */
	s->ready = (size_t)n == want || s->closed;
	if (s->ready)
		event_active(s->rd, EV_READ, 0);
	s->cbs->readable(s->arg);    /* may free s */
}

static void plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	if (what & EV_CLOSED)
		s->closed = true;
	if (!s->reading) {
		/* Paused by the owner: nothing is read (nor the timeout
		 * counted); stream_reading reads what came meanwhile. */
		if (what & (EV_READ | EV_CLOSED))
			s->ready = true;
		return;
	}
	if (what & (EV_READ | EV_CLOSED)) {
		plain_read(s);
		return;
	}
	if (what & EV_TIMEOUT)
		s->cbs->event(s->arg, BEV_EVENT_TIMEOUT | BEV_EVENT_READING);
}

static void plain_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	if (what & EV_TIMEOUT) {
		s->cbs->event(s->arg, BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING);
		return;
	}
	stream_flush(s);
}

void stream_flush(struct stream *s)
{
	if (s->tls)
		return;
	bool failed;
	if (plain_write_out(s, &failed)) {
		if (s->wr)
			event_del(s->wr);
		s->cbs->drained(s->arg);
		return;
	}
	if (failed) {
		s->cbs->event(s->arg, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
		return;
	}
	/* The socket is full: watched for writing until it drains (a client
	 * that reads nothing runs into the write timeout). */
	if (!s->wr) {
		s->wr = event_new(event_get_base(s->rd), s->fd, EV_WRITE | EV_PERSIST, plain_write_cb, s);
		if (!s->wr) {
			s->cbs->event(s->arg, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
			return;
		}
	}
	if (!event_pending(s->wr, EV_WRITE, NULL))
		event_add(s->wr, &s->wtv);
}

static void stream_init(struct stream *s, struct event_base *base, int fd,
                        const struct stream_cbs *cbs, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->cbs = cbs;
	s->arg = arg;
	s->rtv = s->wtv = timeout_of(base, 300);
}

/* Everything of the plaintext stream but its socket. */
static void plain_release(struct stream *s)
{
	if (s->rd)
		event_free(s->rd);
	if (s->wr)
		event_free(s->wr);
	if (s->in)
		evbuffer_free(s->in);
	if (s->out)
		evbuffer_free(s->out);
	s->rd = s->wr = NULL;
	s->in = s->out = NULL;
	s->ready = s->closed = false;
}

int stream_init_plain(struct stream *s, struct event_base *base, int fd,
                      const struct stream_cbs *cbs, void *arg)
{
	stream_init(s, base, fd, cbs, arg);
	/* EV_CLOSED: the peer's end arrives with its last data under one
	 * edge; it must be known to be read. */
	s->rd = event_new(base, fd, EV_READ | EV_CLOSED | EV_ET | EV_PERSIST, plain_read_cb, s);
	return s->rd ? 0 : -1;
}

/* ---- TLS ----------------------------------------------------------------- */

static void tls_read_cb(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	s->cbs->readable(s->arg);
}

static void tls_write_cb(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	s->cbs->drained(s->arg);
}

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;
	s->cbs->event(s->arg, what);
}

static int tls_begin(struct stream *s, struct event_base *base, SSL *ssl)
{
	s->tls = bufferevent_openssl_socket_new(base, s->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (!s->tls) {
		SSL_free(ssl);
		return -1;
	}
	/* SMTP ends with QUIT: a client that closes without close_notify
	 * after it has lost nothing by it. */
	bufferevent_openssl_set_allow_dirty_shutdown(s->tls, 1);
	bufferevent_setcb(s->tls, tls_read_cb, tls_write_cb, tls_event_cb, s);
	bufferevent_set_timeouts(s->tls, &s->rtv, &s->wtv);
	bufferevent_enable(s->tls, EV_READ | EV_WRITE);
	s->reading = true;
	return 0;
}

int stream_init_tls(struct stream *s, struct event_base *base, int fd, SSL *ssl,
                    const struct stream_cbs *cbs, void *arg)
{
	stream_init(s, base, fd, cbs, arg);
	return tls_begin(s, base, ssl);
}

int stream_start_tls(struct stream *s, struct event_base *base, SSL *ssl)
{
	/* The plaintext event goes; the socket stays open for the TLS one. */
	plain_release(s);
	return tls_begin(s, base, ssl);
}

void stream_free(struct stream *s)
{
	if (s->tls) {
		bufferevent_free(s->tls);   /* closes the socket */
		s->tls = NULL;
		return;
	}
	plain_release(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* ---- both ---------------------------------------------------------------- */

SSL *stream_ssl(const struct stream *s)
{
	return s->tls ? bufferevent_openssl_get_ssl(s->tls) : NULL;
}

unsigned long stream_tls_error(const struct stream *s)
{
	return s->tls ? bufferevent_get_openssl_error(s->tls) : 0;
}

struct evbuffer *stream_input(const struct stream *s)
{
	return s->tls ? bufferevent_get_input(s->tls) : s->in;
}

size_t stream_input_length(const struct stream *s)
{
	struct evbuffer *in = stream_input(s);
	return in ? evbuffer_get_length(in) : 0;
}

size_t stream_output_length(const struct stream *s)
{
	if (s->tls)
		return evbuffer_get_length(bufferevent_get_output(s->tls));
	return s->out ? evbuffer_get_length(s->out) : 0;
}

int stream_write(struct stream *s, const void *data, size_t len)
{
	if (s->tls)
		return bufferevent_write(s->tls, data, len);
	if (!s->out)
		s->out = evbuffer_new();
	return s->out ? evbuffer_add(s->out, data, len) : -1;
}

void stream_trim(struct stream *s)
{
	if (!s->tls && s->in && evbuffer_get_length(s->in) == 0) {
		evbuffer_free(s->in);
		s->in = NULL;
	}
}

void stream_reading(struct stream *s, bool on)
{
	if (s->tls) {
		if (on)
			bufferevent_enable(s->tls, EV_READ);
		else
			bufferevent_disable(s->tls, EV_READ);
		s->reading = on;
		return;
	}
	if (s->reading == on)
		return;
	s->reading = on;
	if (!on)
		return;
	/* Registered once (its first add); later adds only restart the
	 * timeout, which the pause did not run against the client. */
	event_add(s->rd, &s->rtv);
	if (s->ready)
		event_active(s->rd, EV_READ, 0);
}

void stream_set_timeouts(struct stream *s, unsigned read_secs, unsigned write_secs)
{
	struct event_base *base = s->tls ? bufferevent_get_base(s->tls) : event_get_base(s->rd);
	s->rtv = timeout_of(base, read_secs);
	s->wtv = timeout_of(base, write_secs);
	if (s->tls) {
		bufferevent_set_timeouts(s->tls, &s->rtv, &s->wtv);
		return;
	}
	if (s->reading)
		event_add(s->rd, &s->rtv);
	if (s->wr && event_pending(s->wr, EV_WRITE, NULL))
		event_add(s->wr, &s->wtv);
}
