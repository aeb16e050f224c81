/* bench/tls_load.c — STARTTLS handshake load for bench/tls_handshakes.
 *
 *   tls_load HOST PORT CONNS SECONDS full|resume|plain 1.2|1.3
 *
 * CONNS connection slots, each in a loop: connect, read 220, EHLO, read the
 * 250 reply, STARTTLS, read 220, TLS handshake, QUIT, read 221, close.  One
 * thread, non-blocking sockets and epoll: Python cannot keep a server busy.
 * "resume": each slot keeps the session of its first handshake and offers
 * it on every later connection (TLS 1.3: the newest ticket, see
 * new_session; it arrives after the handshake and is read with the 221).  No certificate verification (the signature in
 * CertificateVerify is still checked: that is part of the handshake).
 * "plain": EHLO and QUIT without STARTTLS, the cost of a session without
 * TLS, to subtract.
 * Handshakes finished in the first WARM seconds are not counted in the
 * rate.  Prints one line of key=value fields:
 *   handshakes=N seconds=S total=T resumed=R errors=E client_cpu_s=C
 *   version=TLSv1.3 cipher=... group=...
 * total counts every handshake of the run, warm-up included (the driver
 * divides the server's CPU time by it).  Exits 1 when nothing worked. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define WARM 0.5
#define BUFSZ 4096

enum state { CONNECTING, GREETING, EHLO, STARTTLS, HANDSHAKE, QUIT, PLAIN_QUIT };

struct slot {
	int fd;
	enum state st;
	SSL *ssl;
	SSL_SESSION *sess;        /* resume: the session offered each time */
	char buf[BUFSZ];
	size_t len;
};

static struct sockaddr_in addr;
static SSL_CTX *ctx;
static int ep, resume, plain_only;
static long total, counted, resumed, errors;
static double t_start, t_count, t_end;
static char version[32], cipher[64], group[32], first_error[256];
static int slot_index = -1;  /* SSL ex_data index of the slot */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(struct slot *s, const char *why)
{
	errors++;
	if (!first_error[0]) {
		unsigned long e = ERR_peek_error();
		snprintf(first_error, sizeof(first_error), "state %d: %s %s", s->st, why,
		         e ? ERR_error_string(e, NULL) : strerror(errno));
	}
	ERR_clear_error();
}

/* The new-session callback: a slot keeps the newest session it gets.
 * TLS 1.2: the one of its first handshake, offered again and again (a
 * resumed handshake makes no new one).  TLS 1.3: OpenSSL's client uses a
 * ticket once (RFC 8446 §C.4) and marks the session not resumable, so
 * each slot offers the ticket the server sent on the previous connection. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct slot *s = SSL_get_ex_data(ssl, slot_index);
	if (!SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(s->sess);
	s->sess = sess;
	return 1;        /* we keep the reference */
}

static void arm(struct slot *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void start(struct slot *s)
{
	s->len = 0;
	s->ssl = NULL;
	s->st = CONNECTING;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A new source address for each connection (127/8 is all local):
	 * thousands of connections a second from one address would run out
	 * of ports, held in TIME_WAIT, within a few rounds. */
	static unsigned long n;
	struct sockaddr_in src = { .sin_family = AF_INET };
	n++;
	src.sin_addr.s_addr = htonl(0x7f000000 | (1 + n / 62500 % 200) << 16 |
	                            (n / 250 % 250) << 8 | (1 + n % 250));
	setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	bind(s->fd, (struct sockaddr *)&src, sizeof(src));
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	if (connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS)
		fail(s, "connect");
}

static void finish(struct slot *s)
{
	if (s->ssl)
		SSL_free(s->ssl);
	close(s->fd);       /* also removes it from the epoll set */
	if (now() < t_end)
		start(s);
	else
		s->fd = -1;
}

/* Plaintext: true once buf ends with the last line of a reply with code. */
static int reply_done(struct slot *s, const char *code)
{
	if (s->len < 6 || memcmp(s->buf + s->len - 2, "\r\n", 2) != 0)
		return 0;
	size_t i = s->len - 2;
	while (i > 0 && s->buf[i - 1] != '\n')
		i--;
	if (s->len - i < 6 || s->buf[i + 3] != ' ')
		return 0;
	return memcmp(s->buf + i, code, 3) == 0 ? 1 : -1;
}

static int send_line(struct slot *s, const char *line)
{
	size_t n = strlen(line);
	return write(s->fd, line, n) == (ssize_t)n;
}

static void count(struct slot *s)
{
	double t = now();
	total++;
	if (t >= t_count && t < t_end) {
		counted++;
		resumed += s->ssl && SSL_session_reused(s->ssl);
	}
}

static void handshake(struct slot *s)
{
	int r = SSL_connect(s->ssl);
	if (r != 1) {
		int e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			arm(s, EPOLLIN);
		else if (e == SSL_ERROR_WANT_WRITE)
			arm(s, EPOLLOUT);
		else {
			fail(s, "handshake");
			finish(s);
		}
		return;
	}
	count(s);
	if (!version[0]) {
		EVP_PKEY *k = NULL;
		snprintf(version, sizeof(version), "%s", SSL_get_version(s->ssl));
		snprintf(cipher, sizeof(cipher), "%s", SSL_get_cipher_name(s->ssl));
		if (SSL_get_peer_tmp_key(s->ssl, &k) == 1) {
			size_t n;
			if (EVP_PKEY_get_group_name(k, group, sizeof(group), &n) != 1)
				snprintf(group, sizeof(group), "%s", EVP_PKEY_get0_type_name(k));
			EVP_PKEY_free(k);
		}
	}
	s->st = QUIT;
	s->len = 0;
	if (SSL_write(s->ssl, "QUIT\r\n", 6) != 6) {
		fail(s, "write QUIT");
		finish(s);
		return;
	}
	arm(s, EPOLLIN);
}

/* After QUIT: read until the 221 (a TLS 1.3 ticket comes before it). */
static void read_quit(struct slot *s)
{
	for (;;) {
		int r = SSL_read(s->ssl, s->buf + s->len, BUFSZ - s->len);
		if (r > 0) {
			s->len += r;
			if (reply_done(s, "221") != 0 || s->len == BUFSZ) {
				/* close_notify: an SSL freed without it marks its
				 * session not resumable (ssl_clear_bad_session). */
				SSL_shutdown(s->ssl);
				finish(s);
				return;
			}
			continue;
		}
		int e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return;
		if (e != SSL_ERROR_ZERO_RETURN)
			fail(s, "read 221");
		finish(s);
		return;
	}
}

static void plain(struct slot *s)
{
	static const char *want[] = { [GREETING] = "220", [EHLO] = "250", [STARTTLS] = "220",
		                      [PLAIN_QUIT] = "221" };
	ssize_t n = read(s->fd, s->buf + s->len, BUFSZ - s->len);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		fail(s, "read");
		finish(s);
		return;
	}
	s->len += n;
	int d = reply_done(s, want[s->st]);
	if (d == 0 && s->len < BUFSZ)
		return;
	if (d < 0 || s->len == BUFSZ) {
		fail(s, "unexpected reply");
		finish(s);
		return;
	}
	s->len = 0;
	if (s->st == GREETING) {
		s->st = EHLO;
		if (!send_line(s, "EHLO load.test\r\n"))
			fail(s, "write EHLO"), finish(s);
	} else if (s->st == EHLO && plain_only) {
		count(s);     /* a session without TLS: the floor */
		s->st = PLAIN_QUIT;
		if (!send_line(s, "QUIT\r\n"))
			fail(s, "write QUIT"), finish(s);
	} else if (s->st == EHLO) {
		s->st = STARTTLS;
		if (!send_line(s, "STARTTLS\r\n"))
			fail(s, "write STARTTLS"), finish(s);
	} else if (s->st == PLAIN_QUIT) {
		finish(s);
	} else {
		s->st = HANDSHAKE;
		s->ssl = SSL_new(ctx);
		SSL_set_ex_data(s->ssl, slot_index, s);
		SSL_set_fd(s->ssl, s->fd);
		if (s->sess)
			SSL_set_session(s->ssl, s->sess);
		handshake(s);
	}
}

static void event(struct slot *s)
{
	switch (s->st) {
	case CONNECTING: {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			errno = err;
			fail(s, "connect");
			finish(s);
			return;
		}
		s->st = GREETING;
		arm(s, EPOLLIN);
		return;
	}
	case HANDSHAKE:
		handshake(s);
		return;
	case QUIT:
		read_quit(s);
		return;
	default:
		plain(s);
	}
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: tls_load HOST PORT CONNS SECONDS full|resume|plain 1.2|1.3\n");
		return 2;
	}
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)strtol(argv[2], NULL, 10));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1)
		return 2;
	int nconn = (int)strtol(argv[3], NULL, 10);
	if (nconn < 1 || nconn > 10000)
		return 2;
	double seconds = strtod(argv[4], NULL);
	resume = !strcmp(argv[5], "resume");
	plain_only = !strcmp(argv[5], "plain");
	int v = !strcmp(argv[6], "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;

	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, v);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (resume) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session);
	}
	slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);

	ep = epoll_create1(EPOLL_CLOEXEC);
	struct slot *slots = calloc(nconn, sizeof(*slots));
	t_start = now();
	t_count = t_start + WARM;
	t_end = t_count + seconds;
	for (int i = 0; i < nconn; i++)
		start(&slots[i]);
	struct epoll_event evs[64];
	while (now() < t_end) {
		int n = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < n; i++)
			event(evs[i].data.ptr);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	             ru.ru_stime.tv_usec / 1e6;
	printf("handshakes=%ld seconds=%.3f total=%ld resumed=%ld errors=%ld client_cpu_s=%.2f "
	       "version=%s cipher=%s group=%s\n",
	       counted, seconds, total, resumed, errors, cpu, version[0] ? version : "-",
	       cipher[0] ? cipher : "-", group[0] ? group : "-");
	if (first_error[0])
		fprintf(stderr, "tls_load: first error: %s\n", first_error);
	return counted > 0 ? 0 : 1;
}
