/* A client connection's byte stream (conn.c): plaintext on its socket, or
 * TLS through libevent's OpenSSL bufferevent after STARTTLS or at accept
 * on a --submissions listener.
 *
 * Plaintext is driven here, not by a socket bufferevent, for two reasons
 * (issue 13):
 *  - memory: an idle connection holds no buffer.  The input and output
 *    evbuffers exist only while bytes are in them; the socket's one event
 *    is all an idle session keeps (a socket bufferevent with its two
 *    buffers cost 944 bytes a connection, more than all the rest);
 *  - system calls: the read interest is edge-triggered and registered
 *    once, so pausing the input (waiting for the store, the auth process,
 *    a name lookup) costs no epoll_ctl; each read takes up to STREAM_READ
 *    octets without asking FIONREAD first; replies are written by
 *    stream_flush, once per loop turn (conn_flush_all), and the socket is
 *    watched for writing only while it is full.
 *
 * Reads happen only while the owner wants input (stream_reading).  While it
 * does not, the socket keeps what arrives (the kernel's buffer is the
 * bound) and the read timeout does not count against the client. */
#ifndef RAWMAIL_SERVER_STREAM_H
#define RAWMAIL_SERVER_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include <openssl/ssl.h>

struct bufferevent;
struct event;
struct event_base;
struct evbuffer;

/* Octets taken by one read: libevent's bufferevents read as much at a
 * time, and with the chain header it fits one 16 KiB allocation. */
#define STREAM_READ (16 * 1024 - 128)

/* What the owner hears.  `event` gets libevent's BEV_EVENT_* bits: EOF,
 * ERROR or TIMEOUT with READING or WRITING, or CONNECTED when a TLS
 * handshake finished.  Any callback may free the stream. */
struct stream_cbs {
	void (*readable)(void *arg);   /* new input */
	void (*drained)(void *arg);    /* all output written */
	void (*event)(void *arg, short what);
};

struct stream {
	int fd;
	bool reading;             /* the owner wants input */
	bool ready;               /* the socket may hold input (or its end) not read yet */
	bool closed;              /* the peer's end was seen: read until it */
	struct event *rd;         /* plaintext: edge-triggered, persistent */
	struct event *wr;         /* plaintext: only while the socket is full */
	struct evbuffer *in, *out; /* plaintext: NULL while empty */
	struct bufferevent *tls;  /* TLS: everything above is unused */
	struct timeval rtv, wtv;  /* read and write timeouts */
	const struct stream_cbs *cbs;
	void *arg;
};

/* Plaintext on fd; reading is off until stream_reading.  0 or -1 (out of
 * memory: fd stays the caller's). */
int stream_init_plain(struct stream *s, struct event_base *base, int fd,
                      const struct stream_cbs *cbs, void *arg);
/* TLS on fd from the start, as the accepting side, with ssl; the stream
 * owns both.  Reading and writing are on.  -1: ssl is freed, fd stays the
 * caller's. */
int stream_init_tls(struct stream *s, struct event_base *base, int fd, SSL *ssl,
                    const struct stream_cbs *cbs, void *arg);
/* STARTTLS: plaintext input still buffered is dropped (CVE-2011-0411) and
 * the handshake starts; reading and writing are on.  -1: out of memory
 * (ssl freed; the stream stays plaintext, to be freed). */
int stream_start_tls(struct stream *s, struct event_base *base, SSL *ssl);
/* Closes the socket and frees all but s itself. */
void stream_free(struct stream *s);

SSL *stream_ssl(const struct stream *s);
unsigned long stream_tls_error(const struct stream *s);

/* Buffered input; NULL when none (plaintext). */
struct evbuffer *stream_input(const struct stream *s);
size_t stream_input_length(const struct stream *s);
size_t stream_output_length(const struct stream *s);

/* Appends to the output.  Through TLS the bufferevent writes it; in
 * plaintext stream_flush does.  0 or -1 (out of memory). */
int stream_write(struct stream *s, const void *data, size_t len);
/* Plaintext: writes the output now.  All written: `drained`; the socket
 * full: the rest is written when it can take it, `drained` after; an
 * error: `event` with ERROR|WRITING.  Either may free the stream. */
void stream_flush(struct stream *s);
/* Gives back the input buffer once it is empty (called after the owner
 * took what it could). */
void stream_trim(struct stream *s);

void stream_reading(struct stream *s, bool on);
void stream_set_timeouts(struct stream *s, unsigned read_secs, unsigned write_secs);

#endif
