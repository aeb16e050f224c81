#include "auth/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth/delay.h"
#include "auth/verify.h"
#include "auth/wire.h"
#include "util/log.h"

int auth_process_load(const char *users_path, struct auth_users *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	int fd = open(users_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", users_path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", users_path);
		close(fd);
		return -1;
	}
	/* One octet more than allowed, to tell a file too large. */
	char *text = malloc(AUTH_USERS_FILE_MAX + 1);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", users_path);
		close(fd);
		return -1;
	}
	size_t len = 0;
	while (len < AUTH_USERS_FILE_MAX + 1) {
		ssize_t n = read(fd, text + len, AUTH_USERS_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", users_path, strerror(errno));
			close(fd);
			explicit_bzero(text, len);
			free(text);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	size_t line;
	char why[256];
	int rc = auth_users_parse(text, len, out, &line, why, sizeof(why));
	if (rc != 0 && line)
		snprintf(err, errlen, "%s:%zu: %s", users_path, line, why);
	else if (rc != 0)
		snprintf(err, errlen, "%s: %s", users_path, why);
	/* Hashes are not passwords, but no copy is left lying about. */
	explicit_bzero(text, len);
	free(text);
	return rc;
}

/* Room for a few whole CHECK frames: a partial one waits here. */
#define IN_MAX (4u * AUTH_WIRE_CHECK_FRAME_MAX)

struct pending;

struct auth_process {
	struct event_base *base;
	int fd;
	struct event *ev_read, *ev_write;
	struct evbuffer *out;
	struct auth_users *users;
	struct auth_delay *delay;
	struct pending *pending;        /* delayed answers, a list */
	size_t npending;
	bool reading;
	bool stopped;                   /* stop called: handle nothing more */
	bool full_logged;               /* auth_busy logged for this flood */
	int status;                     /* what auth_process_run returns */
	size_t in_len;
	uint8_t in[IN_MAX];             /* passwords: wiped as soon as read */
};

struct pending {
	struct auth_process *ap;
	struct event *timer;
	uint64_t id;
	struct pending *prev, *next;
};

static int64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void stop(struct auth_process *ap, int status, const char *why)
{
	if (ap->stopped)
		return;
	if (status < 0)
		log_event(LOG_ERROR, "auth_protocol_error", "reason=\"%s\"", why);
	ap->status = status;
	ap->stopped = true;
	event_base_loopbreak(ap->base);
}

static void reading_set(struct auth_process *ap, bool on)
{
	if (on == ap->reading)
		return;
	ap->reading = on;
	if (on)
		event_add(ap->ev_read, NULL);
	else
		event_del(ap->ev_read);
}

static void answer(struct auth_process *ap, uint64_t id, enum auth_wire_result r,
                   const char *senders, size_t senders_len)
{
	uint8_t frame[AUTH_WIRE_ANSWER_FRAME_MAX];
	size_t n = auth_wire_encode_answer(frame, id, r, senders, senders_len);
	if (n == 0) {
		/* A senders field the parser accepted always encodes: our bug. */
		n = auth_wire_encode_answer(frame, id, AUTH_WIRE_TEMPFAIL, NULL, 0);
		log_event(LOG_ERROR, "auth_bug", "reason=\"an answer that does not encode\"");
	}
	if (evbuffer_add(ap->out, frame, n) < 0) {
		stop(ap, -1, "out of memory");
		return;
	}
	event_add(ap->ev_write, NULL);
	if (evbuffer_get_length(ap->out) > AUTH_PROCESS_OUT_HIGH)
		reading_set(ap, false);
}

static void pending_free(struct pending *p)
{
	struct auth_process *ap = p->ap;
	if (p->prev)
		p->prev->next = p->next;
	else
		ap->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	ap->npending--;
	event_free(p->timer);
	free(p);
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct auth_process *ap = p->ap;
	uint64_t id = p->id;
	pending_free(p);
	if (ap->npending < AUTH_PROCESS_PENDING_MAX / 2)
		ap->full_logged = false;
	answer(ap, id, AUTH_WIRE_FAIL, NULL, 0);
}

static void fail_later(struct auth_process *ap, uint64_t id, const uint8_t *key)
{
	unsigned secs = auth_delay_failure(ap->delay, now_s(), key);
	struct pending *p = NULL;
	if (ap->npending < AUTH_PROCESS_PENDING_MAX && (p = calloc(1, sizeof(*p))) != NULL &&
	    (p->timer = evtimer_new(ap->base, pending_cb, p)) != NULL) {
		struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };
		/* From now, not from when the loop woke: the hash took time. */
		event_base_update_cache_time(ap->base);
		p->ap = ap;
		p->id = id;
		p->next = ap->pending;
		if (ap->pending)
			ap->pending->prev = p;
		ap->pending = p;
		ap->npending++;
		evtimer_add(p->timer, &tv);
		return;
	}
	free(p);
	if (ap->npending >= AUTH_PROCESS_PENDING_MAX && !ap->full_logged) {
		/* Once per flood: a line per refused check would be the flood. */
		log_event(LOG_WARN, "auth_busy", "pending=%zu", ap->npending);
		ap->full_logged = true;
	}
	/* No way to hold the answer back: a "no" now would skip the delay,
	 * so the client is told to try later instead. */
	answer(ap, id, AUTH_WIRE_TEMPFAIL, NULL, 0);
}

/* The user's senders field as one text, "a,b,@c" (empty: any). */
static size_t senders_text(const struct auth_user *user, char *out, size_t outlen)
{
	size_t len = 0;
	for (size_t i = 0; i < user->nsenders; i++) {
		size_t n = strlen(user->senders[i]);
		if (len + (i ? 1 : 0) + n >= outlen)
			return SIZE_MAX;
		if (i)
			out[len++] = ',';
		memcpy(out + len, user->senders[i], n);
		len += n;
	}
	out[len] = '\0';
	return len;
}

static void handle_check(struct auth_process *ap, const struct auth_wire_check *c)
{
	char user[AUTH_WIRE_USER_MAX + 1];
	memcpy(user, c->user, c->user_len);
	user[c->user_len] = '\0';
	enum auth_verify_result r = auth_verify(ap->users, user, c->password, c->password_len);
	if (r == AUTH_VERIFY_OK) {
		auth_delay_success(ap->delay, c->key);
		const struct auth_user *u = auth_users_find(ap->users, user);
		char senders[AUTH_WIRE_SENDERS_MAX + 1];
		size_t n = u ? senders_text(u, senders, sizeof(senders)) : SIZE_MAX;
		if (n == SIZE_MAX)
			answer(ap, c->id, AUTH_WIRE_TEMPFAIL, NULL, 0);
		else
			answer(ap, c->id, AUTH_WIRE_OK, senders, n);
	} else if (r == AUTH_VERIFY_FAIL) {
		fail_later(ap, c->id, c->key);
	} else {
		answer(ap, c->id, AUTH_WIRE_TEMPFAIL, NULL, 0);
	}
}

/* Handles the whole frames at the front of the input; the octets used
 * are wiped, the rest moved to the front. */
static void handle_input(struct auth_process *ap)
{
	size_t pos = 0;
	while (!ap->stopped) {
		size_t body_len;
		const char *why;
		enum auth_wire_status st = auth_wire_header_decode(ap->in + pos, ap->in_len - pos,
		                                                   AUTH_WIRE_CHECK, &body_len, &why);
		if (st == AUTH_WIRE_ERROR)
			stop(ap, -1, why);
		if (st != AUTH_WIRE_DONE)
			break;
		if (ap->in_len - pos - AUTH_WIRE_HEADER_LEN < body_len)
			break; /* the rest has not arrived */
		struct auth_wire_check c;
		if (auth_wire_decode_check(ap->in + pos + AUTH_WIRE_HEADER_LEN, body_len, &c, &why) !=
		    AUTH_WIRE_DONE) {
			stop(ap, -1, why);
			break;
		}
		handle_check(ap, &c);
		pos += AUTH_WIRE_HEADER_LEN + body_len;
	}
	size_t rest = ap->in_len - pos;
	memmove(ap->in, ap->in + pos, rest);
	explicit_bzero(ap->in + rest, ap->in_len - rest);
	ap->in_len = rest;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_process *ap = arg;
	ssize_t n = read(fd, ap->in + ap->in_len, sizeof(ap->in) - ap->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		stop(ap, -1, strerror(errno));
		return;
	}
	if (n == 0) {
		/* The smtp process closed its end: its generation is over. */
		stop(ap, 0, NULL);
		return;
	}
	ap->in_len += (size_t)n;
	handle_input(ap);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_process *ap = arg;
	int n = evbuffer_write(ap->out, fd);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		/* EPIPE, ECONNRESET: the peer is gone, as at EOF. */
		stop(ap, errno == EPIPE || errno == ECONNRESET ? 0 : -1, strerror(errno));
		return;
	}
	size_t left = evbuffer_get_length(ap->out);
	if (left > 0)
		event_add(ap->ev_write, NULL);
	if (left <= AUTH_PROCESS_OUT_HIGH / 2)
		reading_set(ap, true);
}

int auth_process_run(struct auth_users *users, int fd)
{
	signal(SIGPIPE, SIG_IGN);
	struct auth_process *ap = calloc(1, sizeof(*ap));
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)now_s() ^ (uint64_t)getpid();
	if (!ap || evutil_make_socket_nonblocking(fd) < 0 || !(ap->base = event_base_new()) ||
	    !(ap->out = evbuffer_new()) || !(ap->delay = auth_delay_new(AUTH_DELAY_KEYS_MAX, seed)) ||
	    !(ap->ev_read = event_new(ap->base, fd, EV_READ | EV_PERSIST, read_cb, ap)) ||
	    !(ap->ev_write = event_new(ap->base, fd, EV_WRITE, write_cb, ap))) {
		log_event(LOG_ERROR, "auth_start_failed", "reason=\"out of memory\"");
		if (ap)
			ap->status = -1;
		goto out;
	}
	ap->fd = fd;
	ap->users = users;
	log_event(LOG_INFO, "auth_start", "users=%zu", users->n);
	reading_set(ap, true);
	event_base_dispatch(ap->base);
	log_event(ap->status ? LOG_ERROR : LOG_INFO, "auth_stop", "pending=%zu status=%d",
	          ap->npending, ap->status);
out:;
	int status = ap ? ap->status : -1;
	if (ap) {
		while (ap->pending)
			pending_free(ap->pending);
		if (ap->ev_read)
			event_free(ap->ev_read);
		if (ap->ev_write)
			event_free(ap->ev_write);
		if (ap->out)
			evbuffer_free(ap->out);
		auth_delay_free(ap->delay);
		if (ap->base)
			event_base_free(ap->base);
		explicit_bzero(ap->in, sizeof(ap->in));
		free(ap);
	}
	close(fd);
	return status;
}
