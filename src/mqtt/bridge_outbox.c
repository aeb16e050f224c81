/* The bridge's outbox publisher: the files the store writes under
 * MAILROOT/.rawmail/outbox (store/outbox.h), published in name order
 * (commit order), each record as an event (mqtt/event.h) at QoS 1, a file
 * removed once every PUBACK of its records came back.  A lost connection
 * forgets what was in flight and starts again from the oldest file: an
 * event may arrive twice, never out of its first-arrival order, never
 * zero times.  While the broker is away the files wait; past
 * --mqtt-outbox-max events the oldest files are dropped, one log line per
 * event. */
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

#include "mqtt/event.h"
#include "mqtt/link.h"
#include "store/outbox.h"
#include "util/log.h"

/* An outbox file is one commit round's records: small, but bounded all
 * the same against a stranger's file. */
#define OUTBOX_FILE_MAX (64u * 1024 * 1024)
/* How much of a stored message the event builder sees: the header, the
 * text and attachments of anything serve accepts by default. */
#define EVENT_READ_MAX (64u * 1024 * 1024)

struct mqtt_ob_event {
	char *id, *mailbox, *path, *from, *client_ip, *helo;
	char **to;
	size_t nto;
	uint64_t size;
	int64_t time;
};

static void ob_event_free(struct mqtt_ob_event *e)
{
	free(e->id);
	free(e->mailbox);
	free(e->path);
	free(e->from);
	free(e->client_ip);
	free(e->helo);
	for (size_t i = 0; i < e->nto; i++)
		free(e->to[i]);
	free(e->to);
}

static void events_free(struct mqtt_publisher *p)
{
	for (size_t i = 0; i < p->nev; i++)
		ob_event_free(&p->events[i]);
	free(p->events);
	p->events = NULL;
	p->nev = p->next = 0;
}

/* ---- reading a file ---- */

static char *file_read(int dirfd, const char *name, size_t max, size_t *len, int *err)
{
	/* O_NOATIME: a read would otherwise dirty a fresh file's inode
	 * (relatime updates an atime not after the mtime), one more inode
	 * for the store's next sync to write, per message.  Only the file's
	 * owner may ask for it: a file of another owner is read without. */
	int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
	int fd = openat(dirfd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, flags);
	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*err = S_ISREG(st.st_mode) ? errno : EINVAL;
		close(fd);
		return NULL;
	}
	size_t want = (uint64_t)st.st_size < max ? (size_t)st.st_size : max;
	char *data = malloc(want + 1);
	if (!data) {
		*err = ENOMEM;
		close(fd);
		return NULL;
	}
	size_t n = 0;
	while (n < want) {
		ssize_t r = read(fd, data + n, want - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	data[n] = '\0';
	*len = n;
	return data;
}

struct collect {
	struct mqtt_ob_event *ev;
	size_t n, cap;
	bool nomem;
};

static char *dup0(const char *s)
{
	return strdup(s ? s : "");
}

static bool collect_one(const struct outbox_event *ev, void *arg)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct mqtt_ob_event *ne = realloc(c->ev, cap * sizeof(*ne));
		if (!ne)
			return !(c->nomem = true);
		c->ev = ne;
		c->cap = cap;
	}
	struct mqtt_ob_event *e = &c->ev[c->n];
	memset(e, 0, sizeof(*e));
	e->id = dup0(ev->id);
	e->mailbox = dup0(ev->mailbox);
	e->path = dup0(ev->path);
	e->from = dup0(ev->from);
	e->client_ip = dup0(ev->client_ip);
	e->helo = dup0(ev->helo);
	e->size = ev->size;
	e->time = ev->time;
	e->to = calloc(ev->nto ? ev->nto : 1, sizeof(*e->to));
	bool ok = e->id && e->mailbox && e->path && e->from && e->client_ip && e->helo && e->to;
	for (size_t i = 0; ok && i < ev->nto; i++, e->nto++)
		ok = (e->to[i] = strdup(ev->to[i])) != NULL;
	c->n++;
	if (!ok)
		c->nomem = true;
	return ok;
}

static bool count_one(const struct outbox_event *ev, void *arg)
{
	return true;
}

/* The records of an outbox file: 0, or an errno (ENOENT: gone). */
static int file_load(struct mqtt_publisher *p, const char *name, struct collect *c)
{
	size_t len;
	int err = 0;
	char *data = file_read(p->outbox_fd, name, OUTBOX_FILE_MAX, &len, &err);
	if (!data)
		return err;
	size_t bad = 0;
	outbox_parse(data, len, collect_one, c, &bad);
	free(data);
	if (bad)
		log_event(LOG_WARN, "mqtt_outbox_damaged", "file=%s bad_records=%zu", name, bad);
	return c->nomem ? ENOMEM : 0;
}

static size_t file_count(struct mqtt_publisher *p, const char *name)
{
	size_t len, bad = 0;
	int err;
	char *data = file_read(p->outbox_fd, name, OUTBOX_FILE_MAX, &len, &err);
	if (!data)
		return 0;
	size_t n = outbox_parse(data, len, count_one, NULL, &bad);
	free(data);
	return n;
}

/* ---- the file list ---- */

static void file_remove_at(struct mqtt_publisher *p, size_t i)
{
	p->total -= p->files[i].nevents;
	memmove(&p->files[i], &p->files[i + 1], (p->nfiles - i - 1) * sizeof(p->files[0]));
	p->nfiles--;
}

/* The oldest file not being published, dropped past --mqtt-outbox-max:
 * mail is never refused for the sake of its events. */
static void file_drop(struct mqtt_bridge *b, size_t i)
{
	struct mqtt_publisher *p = &b->pub;
	struct collect c = { 0 };
	file_load(p, p->files[i].name, &c);
	for (size_t k = 0; k < c.n; k++) {
		log_event(LOG_WARN, "mqtt_event_dropped",
		          "id=%s mailbox=%s reason=\"the outbox holds more than %u events "
		          "(--mqtt-outbox-max) while the broker is away\"",
		          c.ev[k].id, c.ev[k].mailbox, b->s->outbox_max);
		ob_event_free(&c.ev[k]);
	}
	free(c.ev);
	unlinkat(p->outbox_fd, p->files[i].name, 0);
	file_remove_at(p, i);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mqtt_ob_file *)a)->name, ((const struct mqtt_ob_file *)b)->name);
}

/* Adds name unless known.  A name that sorts before files already being
 * published (a second store during a reload) goes right after them. */
static void file_add(struct mqtt_bridge *b, const char *name)
{
	struct mqtt_publisher *p = &b->pub;
	if (!outbox_name_ok(name) || strlen(name) >= sizeof(p->files[0].name))
		return;
	size_t lo = 0, hi = p->nfiles;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(p->files[mid].name, name);
		if (c == 0)
			return;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < p->loaded; i++)
		if (!strcmp(p->files[i].name, name))
			return;
	if (lo < p->loaded)
		lo = p->loaded;
	if (p->nfiles == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct mqtt_ob_file *nf = realloc(p->files, cap * sizeof(*nf));
		if (!nf) {
			log_event(LOG_ERROR, "mqtt_outbox", "file=%s error=\"out of memory\"", name);
			return;
		}
		p->files = nf;
		p->cap = cap;
	}
	memmove(&p->files[lo + 1], &p->files[lo], (p->nfiles - lo) * sizeof(p->files[0]));
	struct mqtt_ob_file *f = &p->files[lo];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->nevents = file_count(p, name);
	f->serial = ++p->serial;
	p->nfiles++;
	p->total += f->nevents;
}

static void bound(struct mqtt_bridge *b)
{
	struct mqtt_publisher *p = &b->pub;
	while (p->total > b->s->outbox_max && p->nfiles > p->loaded)
		file_drop(b, p->loaded);
}

static void scan(struct mqtt_bridge *b)
{
	struct mqtt_publisher *p = &b->pub;
	int fd = dup(p->outbox_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		log_event(LOG_ERROR, "mqtt_outbox", "error=\"%s\"", strerror(errno));
		return;
	}
	rewinddir(d);
	struct dirent *de;
	size_t before = p->nfiles;
	while ((de = readdir(d)))
		file_add(b, de->d_name);
	closedir(d);
	if (p->nfiles != before)
		qsort(p->files + p->loaded, p->nfiles - p->loaded, sizeof(p->files[0]), name_cmp);
	bound(b);
}

/* ---- publishing ---- */

static void pump(struct mqtt_bridge *b);

static size_t file_index(const struct mqtt_publisher *p, uint32_t serial)
{
	for (size_t i = 0; i < p->loaded; i++)
		if (p->files[i].serial == serial)
			return i;
	return (size_t)-1;
}

/* Removes files[i] once it is all published and acknowledged. */
static void maybe_done(struct mqtt_bridge *b, size_t i)
{
	struct mqtt_publisher *p = &b->pub;
	struct mqtt_ob_file *f = &p->files[i];
	if (!f->sent_all || f->outstanding)
		return;
	if (unlinkat(p->outbox_fd, f->name, 0) != 0 && errno != ENOENT)
		log_event(LOG_ERROR, "mqtt_outbox", "file=%s error=\"%s\"", f->name, strerror(errno));
	if (i + 1 == p->loaded)
		events_free(p);
	file_remove_at(p, i);
	p->loaded--;
}

/* The copy's file: MAILBOX/new/NAME as the store wrote it, or, when a
 * mail reader has already moved it, MAILBOX/cur/NAME:2,FLAGS. */
static char *message_read(struct mqtt_publisher *p, const struct mqtt_ob_event *e, size_t *len)
{
	int err = 0;
	char *data = file_read(p->rootfd, e->path, EVENT_READ_MAX, len, &err);
	if (data || err != ENOENT)
		return data;
	const char *slash = strrchr(e->path, '/');
	size_t dirlen = slash ? (size_t)(slash - e->path) : 0;
	if (dirlen < 4 || strncmp(slash - 4, "/new", 4) != 0)
		return NULL;
	char cur[4096];
	snprintf(cur, sizeof(cur), "%.*s/cur", (int)(dirlen - 4), e->path);
	int dfd = openat(p->rootfd, cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return NULL;
	}
	const char *base = slash + 1;
	size_t bl = strlen(base);
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, base, bl) && de->d_name[bl] == ':') {
			data = file_read(dirfd(d), de->d_name, EVENT_READ_MAX, len, &err);
			break;
		}
	closedir(d);
	return data;
}

static bool publish_one(struct mqtt_bridge *b, const char *topic, const void *data, size_t len,
                        uint32_t serial)
{
	struct mqtt_publisher *p = &b->pub;
	/* The first of a burst leaves at once; from the second on the socket
	 * is held until pump has written them all (link.h). */
	if (p->burst++ == 1)
		mqtt_link_hold(b->link);
	uint64_t seq = ++p->seq;
	p->ring[seq % MQTT_RING] = serial;
	int rc = mqtt_bridge_publish(b, topic, data, len, false,
	                             ((uint64_t)(b->epoch & 0xffffff) << 40) | seq);
	if (rc != 0)
		return false;     /* link.c logged why */
	p->inflight++;
	size_t i = file_index(p, serial);
	if (i != (size_t)-1)
		p->files[i].outstanding++;
	return true;
}

/* One record: its event, then (with --mqtt-attachments) each attachment's
 * bytes on the topics the event lists. */
static bool publish_event(struct mqtt_bridge *b, const struct mqtt_ob_event *e, uint32_t serial)
{
	struct mqtt_publisher *p = &b->pub;
	char level[1024], topic[2048], attach[2048];
	if (mqtt_topic_level(e->mailbox, strlen(e->mailbox), level, sizeof(level)) == 0)
		snprintf(level, sizeof(level), "_");
	snprintf(topic, sizeof(topic), "%s/%s", b->topic_received, level);
	snprintf(attach, sizeof(attach), "%s/%s", topic, e->id);
	struct outbox_event ev = {
		.id = e->id, .mailbox = e->mailbox, .path = e->path, .from = e->from,
		.to = (const char *const *)e->to, .nto = e->nto, .client_ip = e->client_ip,
		.helo = e->helo, .size = e->size, .time = e->time,
	};
	size_t len = 0;
	char *msg = message_read(p, e, &len);
	struct mqtt_event_in in = { .ev = &ev, .msg = msg, .len = len,
		                        .attach_topic = b->s->attachments ? attach : NULL,
		                        .max_attachment = (size_t)b->s->max_attachment };
	struct mqtt_event_out out = { 0 };
	if (mqtt_event_build(&in, &out) != 0) {
		free(msg);
		log_event(LOG_ERROR, "mqtt_event", "id=%s error=\"out of memory\"", e->id);
		return false;
	}
	free(msg);
	bool ok = publish_one(b, topic, out.json, out.json_len, serial);
	for (size_t i = 0; ok && i < out.natt; i++)
		if (out.att[i].topic && out.att[i].data)
			ok = publish_one(b, out.att[i].topic, out.att[i].data, out.att[i].size, serial);
	if (ok)
		log_event(LOG_DEBUG, "mqtt_event_sent", "id=%s mailbox=%s topic=%s", e->id, e->mailbox,
		          topic);
	mqtt_event_free(&out);
	return ok;
}

/* A publish Paho would not take or the broker failed: forget what is in
 * flight and start again from the oldest file in a second. */
static void start_over_later(struct mqtt_bridge *b)
{
	mqtt_publisher_lost(b);
	struct timeval tv = { 1, 0 };
	evtimer_add(b->pub.again, &tv);
}

static void pump_burst(struct mqtt_bridge *b);

/* What can go now goes as one burst (link.h: held, then flushed; a pump
 * with one publish or none costs no setsockopt). */
static void pump(struct mqtt_bridge *b)
{
	if (!b->connected)
		return;
	b->pub.burst = 0;
	pump_burst(b);
	if (b->pub.burst > 1)
		mqtt_link_flush(b->link);
}

static void pump_burst(struct mqtt_bridge *b)
{
	struct mqtt_publisher *p = &b->pub;
	while (b->connected && p->inflight < MQTT_WINDOW) {
		if (p->next >= p->nev) {
			if (p->loaded > 0 && !p->files[p->loaded - 1].sent_all) {
				p->files[p->loaded - 1].sent_all = true;
				maybe_done(b, p->loaded - 1);
				continue;
			}
			if (p->loaded >= p->nfiles)
				return;
			events_free(p);
			struct collect c = { 0 };
			int err = file_load(p, p->files[p->loaded].name, &c);
			if (err == ENOENT) {
				file_remove_at(p, p->loaded);   /* gone: someone else's business */
				continue;
			}
			p->events = c.ev;
			p->nev = c.n;
			p->next = 0;
			if (err) {
				log_event(LOG_ERROR, "mqtt_outbox", "file=%s error=\"%s\"",
				          p->files[p->loaded].name, strerror(err));
				events_free(p);
				start_over_later(b);
				return;
			}
			p->files[p->loaded].outstanding = 0;
			p->files[p->loaded].sent_all = false;
			p->loaded++;
			continue;
		}
		const struct mqtt_ob_event *e = &p->events[p->next++];
		if (!publish_event(b, e, p->files[p->loaded - 1].serial)) {
			start_over_later(b);
			return;
		}
	}
}

static void again_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_bridge *b = arg;
	scan(b);
	pump(b);
}

void mqtt_publisher_connected(struct mqtt_bridge *b)
{
	b->pub.seq = 0;
	pump(b);
}

void mqtt_publisher_lost(struct mqtt_bridge *b)
{
	struct mqtt_publisher *p = &b->pub;
	/* PUBACKs still to come for what was in flight belong to the past:
	 * a new epoch makes on_note ignore them. */
	b->epoch++;
	events_free(p);
	for (size_t i = 0; i < p->loaded; i++) {
		p->files[i].outstanding = 0;
		p->files[i].sent_all = false;
	}
	p->loaded = 0;
	p->inflight = 0;
	bound(b);
}

void mqtt_publisher_acked(struct mqtt_bridge *b, uint64_t seq, bool ok)
{
	struct mqtt_publisher *p = &b->pub;
	if (!ok) {
		log_event(LOG_WARN, "mqtt_publish_failed", "reason=\"no PUBACK\" action=\"sending "
		          "the outbox again from its oldest event\"");
		start_over_later(b);
		return;
	}
	if (p->inflight)
		p->inflight--;
	size_t i = file_index(p, p->ring[seq % MQTT_RING]);
	if (i != (size_t)-1) {
		if (p->files[i].outstanding)
			p->files[i].outstanding--;
		maybe_done(b, i);
	}
	pump(b);
}

/* ---- arrivals ---- */

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct mqtt_bridge *b = arg;
	struct mqtt_publisher *p = &b->pub;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool rescan = false, added = false;
	for (;;) {
		ssize_t n = read(p->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ie = (struct inotify_event *)q;
			if (ie->mask & IN_Q_OVERFLOW)
				rescan = true;
			else if (ie->len) {
				file_add(b, ie->name);
				added = true;
			}
			q += sizeof(*ie) + ie->len;
		}
	}
	if (rescan)
		scan(b);
	else if (added)
		bound(b);
	pump(b);
}

int mqtt_publisher_init(struct mqtt_bridge *b)
{
	struct mqtt_publisher *p = &b->pub;
	/* p->outbox_fd was opened before the privilege drop (bridge.c). */
	p->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->inotify_fd < 0)
		goto fail;
	/* By descriptor: the mail root's path may be out of this user's
	 * reach (the parent opened it as root). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p->outbox_fd);
	if (inotify_add_watch(p->inotify_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		goto fail;
	p->notify = event_new(b->base, p->inotify_fd, EV_READ | EV_PERSIST, on_inotify, b);
	p->again = evtimer_new(b->base, again_cb, b);
	if (!p->notify || !p->again || event_add(p->notify, NULL) != 0)
		goto fail;
	scan(b);
	log_event(LOG_INFO, "mqtt_outbox", "dir=%s/%s files=%zu events=%zu", b->child->mailroot,
	          OUTBOX_DIR, p->nfiles, p->total);
	return 0;
fail:
	log_event(LOG_ERROR, "mqtt_outbox", "dir=%s/%s error=\"%s\"", b->child->mailroot, OUTBOX_DIR,
	          strerror(errno));
	return -1;
}

void mqtt_publisher_free(struct mqtt_bridge *b)
{
	struct mqtt_publisher *p = &b->pub;
	events_free(p);
	free(p->files);
	p->files = NULL;
	if (p->notify)
		event_free(p->notify);
	if (p->again)
		event_free(p->again);
	if (p->inotify_fd >= 0)
		close(p->inotify_fd);
	if (p->outbox_fd >= 0)
		close(p->outbox_fd);
	if (p->rootfd >= 0)
		close(p->rootfd);
}
