/* The MQTT bridge process (see bridge.h and doc/DESIGN.md "The MQTT
 * bridge"): setup as root, the privilege drop, the publishing connection
 * (link.c) with its status topic, last will and reconnection, the notes
 * from Paho's threads (bridge_receiver.c, with --mqtt-send), and the
 * stop. */
#include "mqtt/bridge_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "mqtt/libs.h"
#include "mqtt/link.h"
#include "store/outbox.h"
#include "util/log.h"

#define EXIT_CONFIG 78
#define EXIT_SOFTWARE 70
#define PASSWORD_MAX 1024

/* ---- as root ---- */

/* The broker's password: the file's first line, read before the drop (it
 * may be readable by root only).  NULL with why set. */
static char *password_read(const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "mqtt-password-file %s: %s", path, strerror(errno));
		return NULL;
	}
	char buf[PASSWORD_MAX + 2];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "mqtt-password-file %s: %s", path, strerror(errno));
			close(fd);
			return NULL;
		}
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	size_t len = strcspn(buf, "\r\n");
	char *pw = NULL;
	if (len == 0)
		snprintf(why, whylen, "mqtt-password-file %s: the first line is empty", path);
	else if (len > PASSWORD_MAX)
		snprintf(why, whylen, "mqtt-password-file %s: longer than %d octets", path,
		         PASSWORD_MAX);
	else if (!(pw = strndup(buf, len)))
		snprintf(why, whylen, "out of memory");
	explicit_bzero(buf, sizeof(buf));
	return pw;
}

static bool drop_privileges(const struct mqtt_bridge_child *c)
{
	if (geteuid() != 0)
		return true;
	if (c->uid == 0) {
		errno = EPERM;
		return false;
	}
	return setgroups(0, NULL) == 0 && setgid(c->gid) == 0 && setuid(c->uid) == 0 &&
	       geteuid() != 0;
}

/* ---- Paho's threads: notes into the pipe ---- */

bool mqtt_bridge_note(struct mqtt_bridge *b, const struct mqtt_note *n)
{
	/* The pipe is sized far beyond the notes that can be pending (a
	 * connection's few, results at the request rate); a short write
	 * cannot happen below PIPE_BUF. */
	ssize_t r;
	do
		r = write(b->pipe_wr, n, sizeof(*n));
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)sizeof(*n);
}

/* ---- the publishing connection ---- */

int mqtt_bridge_publish(struct mqtt_bridge *b, const char *topic, const void *payload,
                        size_t len, bool retained, uint64_t ctx)
{
	return b->connected ? mqtt_link_publish(b->link, topic, payload, len, retained, ctx) : -1;
}

/* ---- the main loop: connection ---- */

static void connect_start(struct mqtt_bridge *b);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	connect_start(arg);
}

void mqtt_retry_arm(struct event *timer, unsigned *ms)
{
	struct timeval tv = { *ms / 1000, (*ms % 1000) * 1000 };
	evtimer_add(timer, &tv);
	*ms = *ms * 2 > MQTT_RETRY_MAX_MS ? MQTT_RETRY_MAX_MS : *ms * 2;
}

static void retry_later(struct mqtt_bridge *b)
{
	if (!b->stopping)
		mqtt_retry_arm(b->retry, &b->retry_ms);
}

/* What a refusal means for the operator.  MQTT 3.1.1 §3.2.2.3 return
 * codes and their MQTT 5 reason codes (§3.2.2.2). */
const char *mqtt_connect_hint(int code)
{
	switch (code) {
	case 1: case 132:
		return "the broker does not speak this MQTT version: try --mqtt-protocol 3.1.1 or 5";
	case 2: case 133:
		return "the broker refused the client id: set --mqtt-client-id";
	case 3: case 136:
		return "the broker is unavailable";
	case 4: case 134:
		return "wrong user name or password: check the user in --mqtt and "
		       "--mqtt-password-file";
	case 5: case 135:
		return "not authorized: the broker refuses this user (check its ACL, the user "
		       "in --mqtt and --mqtt-password-file)";
	default:
		return "cannot reach the broker (is it running? is --mqtt's HOST:PORT right? "
		       "for mqtts://, is the certificate valid for the host and signed by "
		       "--mqtt-cafile?)";
	}
}

bool mqtt_login_refused(int code)
{
	return code == 4 || code == 5 || code == 134 || code == 135;
}

static void link_up(void *arg)
{
	struct mqtt_bridge *b = arg;
	b->connected = true;
	b->retry_ms = MQTT_RETRY_MIN_MS;
	b->auth_failed_logged = false;
	b->epoch++;   /* PUBACKs of an earlier connection are ignored */
	log_event(LOG_INFO, "mqtt_connected", "broker=%s client_id=%s", b->server_uri,
	          b->client_id);
	/* Retained, so a subscriber that comes later still knows. */
	mqtt_bridge_publish(b, b->topic_status, "online", 6, true, 0);
	mqtt_publisher_connected(b);
	mqtt_results_connected(b);
}

static void link_down(void *arg, bool was_up, int code, const char *why)
{
	struct mqtt_bridge *b = arg;
	if (was_up) {
		b->connected = false;
		log_event(LOG_WARN, "mqtt_lost", "broker=%s cause=\"%s\" retry_ms=%u", b->server_uri,
		          why, b->retry_ms);
		mqtt_publisher_lost(b);
		mqtt_results_lost(b);
	} else if (!b->auth_failed_logged || !mqtt_login_refused(code)) {
		/* One line per cause, not one per retry. */
		log_event(LOG_ERROR, "mqtt_connect_failed",
		          "broker=%s code=%d reason=\"%s\" hint=\"%s\" retry_ms=%u "
		          "mail=\"still accepted: events wait in the outbox\"",
		          b->server_uri, code, why, mqtt_connect_hint(code), b->retry_ms);
	}
	if (!was_up)
		b->auth_failed_logged = mqtt_login_refused(code);
	retry_later(b);
}

static void link_acked(void *arg, uint64_t ctx, bool ok)
{
	struct mqtt_bridge *b = arg;
	if (!ctx || !b->connected)
		return;
	if ((ctx >> 40) != (b->epoch & 0xffffff))
		return;                     /* an earlier connection's */
	if (ctx & MQTT_CTX_RESULT)
		mqtt_results_acked(b, ctx & 0xffffffff, ok);
	else
		mqtt_publisher_acked(b, ctx & (MQTT_CTX_RESULT - 1), ok);
}

static void connect_start(struct mqtt_bridge *b)
{
	if (!b->stopping && !b->connected)
		mqtt_link_connect(b->link);
}

/* The notes of Paho's threads (bridge_receiver.c, bridge_send.c). */
static void on_note(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_bridge *b = arg;
	struct mqtt_note n;
	for (;;) {
		ssize_t r = read(b->pipe_rd, &n, sizeof(n));
		if (r != (ssize_t)sizeof(n))
			return;
		if (n.kind == MQTT_NOTE_RESULT) {
			if (mqtt_bridge_publish(b, b->topic_result, n.data, strlen(n.data), false, 0) != 0)
				log_event(LOG_WARN, "mqtt_result", "reason=\"not connected to the broker: "
				          "this result is not published\"");
			free(n.data);
		} else {
			mqtt_receiver_note(b, &n);
		}
	}
}

/* ---- the stop ---- */

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct mqtt_bridge *b = arg;
	b->stopping = true;
	event_base_loopbreak(b->base);
}

/* A clean stop says "offline" itself (the will is only for a death) and
 * waits a little for the broker to take it. */
static void say_offline(struct mqtt_bridge *b)
{
	if (b->req)
		mqtt_receiver_stop(b);
	mqtt_link_close(b->link, b->topic_status, "offline", MQTT_STOP_WAIT_MS);
	b->connected = false;
}

/* ---- setup ---- */

static bool topics_make(struct mqtt_bridge *b)
{
	const char *t = b->s->topic;
	return snprintf(b->topic_status, sizeof(b->topic_status), "%s/status", t) <
	               (int)sizeof(b->topic_status) &&
	       snprintf(b->topic_received, sizeof(b->topic_received), "%s/received", t) <
	               (int)sizeof(b->topic_received) &&
	       snprintf(b->topic_result, sizeof(b->topic_result), "%s/result", t) <
	               (int)sizeof(b->topic_result);
}

static bool client_make(struct mqtt_bridge *b)
{
	const struct mqtt_settings *s = b->s;
	const char *host = s->host;
	bool v6 = strchr(host, ':') != NULL;
	size_t n = strlen(host) + 32;
	if (!(b->server_uri = malloc(n)))
		return false;
	snprintf(b->server_uri, n, "%s://%s%s%s:%u", s->tls ? "mqtts" : "mqtt", v6 ? "[" : "", host,
	         v6 ? "]" : "", s->port);
	if (s->client_id) {
		b->client_id = strdup(s->client_id);
	} else {
		/* Stable across restarts (a persistent session is found by it),
		 * distinct per host. */
		n = strlen(b->child->hostname) + 16;
		if ((b->client_id = malloc(n)))
			snprintf(b->client_id, n, "rawmail-%s", b->child->hostname);
	}
	if (!b->client_id)
		return false;
	struct mqtt_link_options lo = { .s = s, .client_id = b->client_id, .password = b->password,
		                            .will_topic = b->topic_status };
	struct mqtt_link_events le = { .up = link_up, .down = link_down, .acked = link_acked };
	if (!(b->link = mqtt_link_new(b->base, &lo, &le, b)))
		return false;
	return !b->req || mqtt_receiver_new(b) == 0;
}

static bool loop_make(struct mqtt_bridge *b)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return false;
	b->pipe_rd = fds[0];
	b->pipe_wr = fds[1];
	fcntl(b->pipe_rd, F_SETFL, O_NONBLOCK);
	fcntl(b->pipe_wr, F_SETPIPE_SZ, 1024 * 1024);
	/* Two priorities: the notes first, so that a request's "queued"
	 * result is published before a final result of the same request
	 * that the results directory shows in the same turn of the loop. */
	if (!(b->base = event_base_new()) || event_base_priority_init(b->base, 2) != 0)
		return false;
	b->pipe_ev = event_new(b->base, b->pipe_rd, EV_READ | EV_PERSIST, on_note, b);
	if (b->pipe_ev)
		event_priority_set(b->pipe_ev, 0);
	b->retry = evtimer_new(b->base, retry_cb, b);
	b->sigterm = evsignal_new(b->base, SIGTERM, on_stop, b);
	b->sigint = evsignal_new(b->base, SIGINT, on_stop, b);
	return b->pipe_ev && b->retry && b->sigterm && b->sigint && event_add(b->pipe_ev, NULL) == 0 &&
	       event_add(b->sigterm, NULL) == 0 && event_add(b->sigint, NULL) == 0;
}

/* The directories under MAILROOT/.rawmail, opened as root before the
 * drop: .rawmail may be root's (the self-signed certificate's), and what
 * is made here is given to the store's user. */
static int dir_open_as(int rootfd, const char *path, const struct mqtt_bridge_child *c)
{
	if (mkdirat(rootfd, path, 0700) == 0) {
		if (geteuid() == 0 && fchownat(rootfd, path, c->uid, c->gid, AT_SYMLINK_NOFOLLOW) != 0)
			return -1;
	} else if (errno != EEXIST) {
		return -1;
	}
	return openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

static bool dirs_open(struct mqtt_bridge *b)
{
	const struct mqtt_bridge_child *c = b->child;
	bool root = geteuid() == 0;
	b->pub.outbox_fd = outbox_dir_open(b->pub.rootfd, root ? (long)c->uid : -1,
	                                   root ? (long)c->gid : -1);
	if (b->pub.outbox_fd < 0) {
		log_event(LOG_ERROR, "mqtt_outbox", "dir=%s/%s error=\"%s\"", c->mailroot, OUTBOX_DIR,
		          strerror(errno));
		return false;
	}
	if (b->req && (b->ids_fd = dir_open_as(b->pub.rootfd, ".rawmail/mqtt-requests", c)) < 0) {
		log_event(LOG_ERROR, "mqtt_requests", "dir=%s/.rawmail/mqtt-requests error=\"%s\"",
		          c->mailroot, strerror(errno));
		return false;
	}
	return true;
}

static void bridge_free(struct mqtt_bridge *b)
{
	if (b->req)
		mqtt_receiver_free(b);
	mqtt_link_free(b->link);
	mqtt_publisher_free(b);
	mqtt_results_free(b);
	if (b->ids_fd >= 0)
		close(b->ids_fd);
	if (b->req)
		mqtt_requests_free(b->req);
	if (b->pipe_ev)
		event_free(b->pipe_ev);
	if (b->retry)
		event_free(b->retry);
	if (b->sigterm)
		event_free(b->sigterm);
	if (b->sigint)
		event_free(b->sigint);
	if (b->base)
		event_base_free(b->base);
	if (b->pipe_rd > 0)
		close(b->pipe_rd);
	if (b->pipe_wr > 0)
		close(b->pipe_wr);
	if (b->password) {
		explicit_bzero(b->password, strlen(b->password));
		free(b->password);
	}
	free(b->server_uri);
	free(b->client_id);
}

int mqtt_bridge_main(const struct mqtt_bridge_child *c)
{
	struct mqtt_bridge b = { .child = c, .s = c->mqtt, .retry_ms = MQTT_RETRY_MIN_MS,
		                     .pipe_rd = -1, .pipe_wr = -1 };
	b.pub.outbox_fd = -1;
	b.res.dirfd = b.res.inotify_fd = b.ids_fd = -1;
	b.pub.rootfd = c->rootfd;
	b.pub.inotify_fd = -1;
	int rc = EXIT_SOFTWARE;
	char why[512];
	/* SIGTERM and SIGINT arrive through libevent; until then (and while
	 * root) they are held. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	if (!mqtt_libs_load(why, sizeof(why))) {
		log_event(LOG_ERROR, "mqtt_config", "reason=\"%s\" hint=\"install libmosquitto1 and "
		          "libpaho-mqtt1.3\"", why);
		rc = EXIT_CONFIG;
		goto out;
	}
	if (!topics_make(&b)) {
		log_event(LOG_ERROR, "mqtt_config", "reason=\"--mqtt-topic too long\"");
		rc = EXIT_CONFIG;
		goto out;
	}
	if (b.s->password_file && !(b.password = password_read(b.s->password_file, why,
	                                                       sizeof(why)))) {
		log_event(LOG_ERROR, "mqtt_config", "reason=\"%s\"", why);
		rc = EXIT_CONFIG;
		goto out;
	}
	if (b.s->send) {
		/* The spool and the DKIM keys are opened as root, as the store
		 * does. */
		if (!(b.req = mqtt_requests_new(&b)) || mqtt_results_open(&b) != 0) {
			rc = EXIT_CONFIG;
			goto out;
		}
	}
	if (!dirs_open(&b)) {
		rc = 71;
		goto out;
	}
	if (!drop_privileges(c)) {
		log_event(LOG_ERROR, "drop_failed", "role=mqtt error=\"%s\"", strerror(errno));
		rc = 71;
		goto out;
	}
	/* The libraries open the CA file at each connection, after the drop. */
	if (b.s->cafile && access(b.s->cafile, R_OK) != 0) {
		log_event(LOG_ERROR, "mqtt_config",
		          "reason=\"mqtt-cafile %s: %s\" hint=\"the CA file must be readable by the "
		          "mail root's owner, whom the mqtt process runs as\"",
		          b.s->cafile, strerror(errno));
		rc = EXIT_CONFIG;
		goto out;
	}
	/* Mail before its events: on a busy machine the smtp process and the
	 * store, which answer clients, go first; events wait in the outbox
	 * (durable) and catch up when there is CPU to spare.  Before Paho
	 * (with --mqtt-send) starts its threads, which inherit it (nice is
	 * per thread). */
	if (setpriority(PRIO_PROCESS, 0, MQTT_NICE) != 0)
		log_event(LOG_WARN, "mqtt_nice", "error=\"%s\"", strerror(errno));
	if (!loop_make(&b) || mqtt_publisher_init(&b) != 0 || mqtt_results_init(&b) != 0 ||
	    !client_make(&b)) {
		log_event(LOG_ERROR, "mqtt_start_failed", "error=\"%s\"", strerror(errno));
		rc = 71;
		goto out;
	}
	sigprocmask(SIG_UNBLOCK, &stop, NULL);
	log_event(LOG_INFO, "mqtt_started", "broker=%s client_id=%s topic=%s send=%s",
	          b.server_uri, b.client_id, b.s->topic, b.req ? "on" : "off");
	connect_start(&b);
	if (b.req)
		mqtt_receiver_connect(&b);
	event_base_dispatch(b.base);
	say_offline(&b);
	log_event(LOG_INFO, "mqtt_stopped", "broker=%s", b.server_uri);
	rc = 0;
out:
	bridge_free(&b);
	return rc;
}
