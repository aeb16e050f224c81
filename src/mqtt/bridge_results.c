/* Final outcomes of queued requests (issue 12): the queue runner writes
 * SPOOL/results/QUEUE_ID.TIME[.end] (queue_spool_result) when recipients
 * of an MQTT request are delivered or failed for good; this publishes
 * each on PREFIX/result, with the request's id kept by bridge_send.c, and
 * unlinks it after the PUBACK (a crash in between publishes it again).
 * One at a time, oldest first: they come at the rate mail is sent. */
#include "mqtt/bridge_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "mqtt/request.h"
#include "queue/envelope.h"
#include "queue/spool.h"
#include "util/log.h"

static void next(struct mqtt_bridge *b);

static char *read_at(int dirfd, const char *name, size_t max, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	char *data = malloc(max + 1);
	size_t n = 0;
	ssize_t r;
	while (data && n < max && (r = read(fd, data + n, max - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (data) {
		data[n] = '\0';
		*len = n;
	}
	return data;
}

/* The oldest results file, into out; false when there is none. */
static bool oldest(struct mqtt_bridge *b, char *out, size_t outlen)
{
	int fd = dup(b->res.dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	rewinddir(d);
	bool found = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= outlen)
			continue;
		if (!found || strcmp(de->d_name, out) < 0) {
			snprintf(out, outlen, "%s", de->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* The queue id a results file name starts with. */
static void name_qid(const char *name, char *qid, size_t len)
{
	size_t n = strcspn(name, ".");
	snprintf(qid, len, "%.*s", (int)n, name);
}

/* The queue keeps a recipient's last reply as "HOST [ADDRESS]: REPLY"
 * (client/deliver.c); the result's reply is the remote reply itself. */
static const char *remote_reply(const char *last)
{
	if (!last)
		return NULL;
	const char *sp = strchr(last, ' ');
	if (!sp || sp[1] != '[')
		return last;
	const char *close = strchr(sp, ']');
	if (!close || close[1] != ':' || close[2] != ' ')
		return last;
	const char *r = close + 3;
	return r[0] >= '2' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' && r[2] >= '0' &&
	       r[2] <= '9' ? r : last;
}

static bool is_end(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && !strcmp(name + n - 4, ".end");
}

/* Publishes files[...] one at a time; an unreadable file is set aside by
 * removal with a log line (it can never become readable). */
static void next(struct mqtt_bridge *b)
{
	struct mqtt_results *r = &b->res;
	while (b->connected && !r->inflight[0] && oldest(b, r->inflight, sizeof(r->inflight))) {
		char qid[QUEUE_ID_MAX + 1], rid[256] = "";
		name_qid(r->inflight, qid, sizeof(qid));
		size_t len = 0, idlen = 0;
		char *text = read_at(r->dirfd, r->inflight, QUEUE_ENV_FILE_MAX, &len);
		char *id = queue_id_valid(qid, strlen(qid)) ?
		           read_at(b->ids_fd, qid, sizeof(rid) - 1, &idlen) : NULL;
		if (id) {
			snprintf(rid, sizeof(rid), "%s", id);
			free(id);
		}
		struct queue_envelope env = { 0 };
		char why[256];
		if (!text || queue_envelope_parse(text, len, &env, why, sizeof(why)) != 0) {
			log_event(LOG_ERROR, "mqtt_result_unreadable", "file=%s why=\"%s\"", r->inflight,
			          text ? why : strerror(errno));
			unlinkat(r->dirfd, r->inflight, 0);
			free(text);
			queue_envelope_free(&env);
			r->inflight[0] = '\0';
			continue;
		}
		free(text);
		struct mqtt_result_rcpt *rc = calloc(env.nrcpts ? env.nrcpts : 1, sizeof(*rc));
		const char *status = "delivered", *reason = NULL;
		char reason_buf[1024];
		for (size_t i = 0; rc && i < env.nrcpts; i++) {
			const struct queue_rcpt *q = &env.rcpts[i];
			bool ok = q->state == QUEUE_RCPT_DELIVERED;
			rc[i] = (struct mqtt_result_rcpt){ .address = q->addr,
				                               .status = ok ? "delivered" : "failed",
				                               .reply = remote_reply(q->last) };
			if (!ok && !reason) {
				status = "failed";
				snprintf(reason_buf, sizeof(reason_buf), "%s: %s", q->addr,
				         q->last ? q->last : "failed");
				reason = reason_buf;
			}
		}
		char *json = rc ? mqtt_result_json(rid[0] ? rid : NULL, qid, status, reason, rc,
		                                   env.nrcpts) : NULL;
		free(rc);
		queue_envelope_free(&env);
		if (!json) {
			log_event(LOG_ERROR, "mqtt_result", "file=%s error=\"out of memory\"", r->inflight);
			r->inflight[0] = '\0';
			return;
		}
		uint64_t ctx = ((uint64_t)(b->epoch & 0xffffff) << 40) | MQTT_CTX_RESULT | (++r->seq & 0xffffffff);
		int rcode = mqtt_bridge_publish(b, b->topic_result, json, strlen(json), false, ctx);
		free(json);
		if (rcode != 0) {
			log_event(LOG_WARN, "mqtt_result", "file=%s reason=\"not published: "
			          "sent again after the reconnection\"", r->inflight);
			r->inflight[0] = '\0';
			return;
		}
	}
}

void mqtt_results_acked(struct mqtt_bridge *b, uint64_t seq, bool ok)
{
	struct mqtt_results *r = &b->res;
	if (!r->inflight[0] || (seq & 0xffffffff) != (r->seq & 0xffffffff))
		return;
	if (ok) {
		if (is_end(r->inflight)) {
			char qid[QUEUE_ID_MAX + 1];
			name_qid(r->inflight, qid, sizeof(qid));
			unlinkat(b->ids_fd, qid, 0);
		}
		unlinkat(r->dirfd, r->inflight, 0);
	}
	r->inflight[0] = '\0';
	next(b);
}

void mqtt_results_connected(struct mqtt_bridge *b)
{
	if (b->res.dirfd >= 0)
		next(b);
}

/* Also after an arrival (the queue process writes while we run). */

void mqtt_results_lost(struct mqtt_bridge *b)
{
	b->res.inflight[0] = '\0';
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_bridge *b = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(b->res.inotify_fd, buf, sizeof(buf)) > 0)
		;
	next(b);
}

/* As root, before the drop: the spool's path may be out of the mail
 * user's reach (the store opens the spool the same way).  A results/ made
 * here goes to the spool's owner, who writes into it. */
int mqtt_results_open(struct mqtt_bridge *b)
{
	struct mqtt_results *r = &b->res;
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", b->child->spool, QUEUE_RESULTS_DIR);
	/* The bridge's user is the queue's (both the mail root's owner), who
	 * writes results there; the queue process gives the whole spool to
	 * that user at its start as well. */
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		goto fail;
	if (geteuid() == 0 && chown(path, b->child->uid, b->child->gid) != 0)
		goto fail;
	r->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		goto fail;
	return 0;
fail:
	log_event(LOG_ERROR, "mqtt_results", "dir=%s error=\"%s\"", path, strerror(errno));
	return -1;
}

int mqtt_results_init(struct mqtt_bridge *b)
{
	struct mqtt_results *r = &b->res;
	if (r->dirfd < 0)
		return 0;
	r->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", r->dirfd);
	if (r->inotify_fd < 0 || inotify_add_watch(r->inotify_fd, self, IN_MOVED_TO) < 0)
		goto fail;
	r->notify = event_new(b->base, r->inotify_fd, EV_READ | EV_PERSIST, on_inotify, b);
	if (!r->notify || event_add(r->notify, NULL) != 0)
		goto fail;
	return 0;
fail:
	log_event(LOG_ERROR, "mqtt_results", "error=\"%s\"", strerror(errno));
	return -1;
}

void mqtt_results_free(struct mqtt_bridge *b)
{
	struct mqtt_results *r = &b->res;
	if (r->notify)
		event_free(r->notify);
	if (r->inotify_fd >= 0)
		close(r->inotify_fd);
	if (r->dirfd >= 0)
		close(r->dirfd);
}
