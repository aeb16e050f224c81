/* rawmail serve's outbound delivery process (see serve_queue.h and
 * DESIGN.md "Processes"): passes of the queue runner on its own event
 * loop, started at once, on inotify IN_MOVED_TO in env/ (an entry
 * arrives: enqueue renames env/ID into place last), and on a timer to the
 * earliest next attempt, at most SERVE_QUEUE_PASS_MAX_WAIT seconds away. */
#include "cli/serve_queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/queue_kick.h"
#include "client/outbound.h"
#include "queue/maildrop.h"
#include "queue/spool.h"
#include "util/log.h"

struct serve_queue {
	struct send_opts *o;
	const struct serve_queue_child *child;
	struct event_base *base;
	struct queue_spool *sp;
	struct client_outbound *engine;
	struct send_queue_wiring wiring; /* local names, aliases, forwards, engine */
	struct queue_deliverer dl;
	bool wired;
	struct queue_runner *runner;     /* while a pass runs */
	struct event *timer;             /* the next pass */
	struct event *settle;            /* the pass after an arrival */
	struct event *after;             /* a pass's end, out of its callback */
	struct event *deadline;          /* SIGTERM's grace */
	struct event *stop_poll;         /* after SIGTERM: has what began ended? */
	struct event *sigterm, *sigint, *notify;
	int inotify_fd;
	int liveness_fd;                 /* SPOOL/runner.lock, held while arrivals start passes */
	bool again;                      /* something arrived during the pass */
	bool stopping;
	struct queue_run_stats stats;
	char dir[4096];
};

/* ---- as root: the user, the spool's owner ---- */

/* The mail root's owner, the store's user: local mail (cron's root, a
 * bounce to a local sender) is written by a store process this process
 * forks, which writes only a mail root its user owns (cli/local.c).  Any
 * other user would leave local mail queued for good.  --queue-user, when
 * given, was checked by the parent to be that user. */
static bool queue_user_pick(const struct serve_queue *q, uid_t *uid, gid_t *gid)
{
	const struct serve_queue_child *c = q->child;
	if (c->queue_user) {
		struct passwd *pw = getpwnam(c->queue_user);   /* checked by the parent at start */
		if (pw && pw->pw_uid != 0) {
			*uid = pw->pw_uid;
			*gid = pw->pw_gid;
			return true;
		}
	} else if (c->mail_uid != 0) {
		*uid = c->mail_uid;
		*gid = c->mail_gid;
		return true;
	}
	log_event(LOG_ERROR, "queue_user", "reason=\"no unprivileged user to run the queue as\" "
	          "hint=\"give the mail root to an unprivileged user (--mail-user USER)\"");
	return false;
}

/* The spool, its four directories and what they hold (entries root's
 * rawmail send wrote before) become the queue user's. */
static bool spool_give(const char *dir, uid_t uid, gid_t gid)
{
	/* results/ exists only once the MQTT bridge or a runner made it
	 * (issue 12): optional. */
	static const char *const subs[] = { "tmp", "msg", "env", "corrupt", QUEUE_RESULTS_DIR };
	if (chown(dir, uid, gid) != 0)
		return false;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && i == 4)
			continue;
		if (fd < 0 || fchown(fd, uid, gid) != 0) {
			if (fd >= 0)
				close(fd);
			return false;
		}
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return false;
		}
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				fchownat(fd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
		closedir(d);
	}
	return true;
}

/* Becomes the queue user; PR_SET_PDEATHSIG again (a change of uid clears
 * it, prctl(2)). */
static bool queue_drop(const struct serve_queue *q, uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0 || geteuid() == 0)
		return false;
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != q->child->parent)
		raise(SIGTERM);
	return true;
}

/* ---- passes ---- */

static void pass_start(struct serve_queue *q);

/* Seconds until the earliest queued recipient's next attempt, at most
 * SERVE_QUEUE_PASS_MAX_WAIT, at least 1 (a due entry another runner held
 * is looked at again a second later, not in a busy loop).  The pass
 * noted it while it listed and settled the spool (stats.next): no second
 * listing. */
static int64_t next_wait(const struct queue_run_stats *s)
{
	if (!s->next_known)
		return SERVE_QUEUE_PASS_MAX_WAIT;
	if (s->next == 0)
		return SERVE_QUEUE_PASS_MAX_WAIT;   /* nothing queued */
	int64_t wait = s->next - (int64_t)time(NULL);
	return wait < 1 ? 1 : wait > SERVE_QUEUE_PASS_MAX_WAIT ? SERVE_QUEUE_PASS_MAX_WAIT : wait;
}

static void pass_after(evutil_socket_t fd, short what, void *arg)
{
	struct serve_queue *q = arg;
	queue_runner_free(q->runner);
	q->runner = NULL;
	q->wiring.fwd.runner = NULL;
	const struct queue_run_stats *s = &q->stats;
	if (s->attempted || s->errors || s->corrupt || s->stopped) {
		char summary[512];
		queue_run_stats_format(s, summary, sizeof(summary));
		log_event(LOG_INFO, "queue_pass", "%s", summary);
	}
	if (q->stopping) {
		event_base_loopbreak(q->base);
		return;
	}
	if (q->again) {
		q->again = false;
		pass_start(q);
		return;
	}
	struct timeval tv = { (time_t)next_wait(s), 0 };
	evtimer_add(q->timer, &tv);
}

static void pass_done(void *arg, const struct queue_run_stats *stats)
{
	struct serve_queue *q = arg;
	q->stats = *stats;
	/* The runner is freed only after its done has returned. */
	event_active(q->after, 0, 0);
}

static void pass_start(struct serve_queue *q)
{
	if (q->stopping)
		return;
	if (q->runner) {
		q->again = true;
		return;
	}
	evtimer_del(q->timer);
	send_maildrop_take(q->dir, q->sp, q->child->hostname);
	struct queue_runner_config rcfg = { .policy = q->o->policy,
		                            .reporting = q->child->hostname };
	char why[512];
	q->runner = queue_runner_new(q->base, q->sp, &q->dl, &rcfg);
	q->wiring.fwd.runner = q->runner;
	if (q->runner &&
	    queue_runner_start(q->runner, QUEUE_RUN_DUE, NULL, pass_done, q, why, sizeof(why)) == 0)
		return;
	log_event(LOG_ERROR, "queue_pass_failed", "reason=\"%s\" retry=%d",
	          q->runner ? why : "out of memory", SERVE_QUEUE_PASS_MAX_WAIT);
	queue_runner_free(q->runner);
	q->runner = NULL;
	q->wiring.fwd.runner = NULL;
	struct timeval tv = { SERVE_QUEUE_PASS_MAX_WAIT, 0 };
	evtimer_add(q->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	pass_start(arg);
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
	pass_start(arg);
}

/* An entry arrived (or a runner rewrote one): a pass SERVE_QUEUE_SETTLE_MS
 * later.  rawmail send locks its new entry for its own first attempt
 * right after queueing it; the pause lets it, so its user sees the
 * attempt, and serve's runner takes what send leaves queued.  Armed once:
 * a stream of arrivals does not postpone the pass. */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct serve_queue *q = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (q->stopping || evtimer_pending(q->settle, NULL))
		return;
	struct timeval tv = { 0, SERVE_QUEUE_SETTLE_MS * 1000 };
	evtimer_add(q->settle, &tv);
}

/* ---- stopping ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	/* What is still in flight stays queued (env/ID is only rewritten
	 * after a result) and is tried again by the next runner: at least
	 * once, never lost. */
	log_event(LOG_WARN, "queue_stop_forced", "reason=\"deliveries still in flight after "
	          "timeout-shutdown\" action=\"they stay queued\"");
	log_flush();
	_exit(0);
}

/* After SIGTERM: every delivery that began has ended and been written
 * down; those that never started stay queued as they were. */
static void on_stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct serve_queue *q = arg;
	if (!send_queue_stop_idle(&q->wiring, q->engine))
		return;
	log_event(LOG_INFO, "queue_stopped_early", "in_flight=%zu action=\"not started: they "
	          "stay queued\"", client_outbound_in_flight(q->engine));
	log_flush();
	_exit(0);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct serve_queue *q = arg;
	if (q->stopping)
		return;
	q->stopping = true;
	/* Arrivals no longer start a pass here: the sendmail entry must
	 * start its own runner again. */
	if (q->liveness_fd >= 0) {
		close(q->liveness_fd);
		q->liveness_fd = -1;
	}
	evtimer_del(q->timer);
	evtimer_del(q->settle);
	if (!q->runner) {
		event_base_loopbreak(q->base);
		return;
	}
	/* Stop starting: what has begun finishes, nothing new begins. */
	send_queue_stop(&q->wiring, q->engine, q->runner);
	struct timeval tv = { (time_t)q->child->timeout_shutdown, 0 }, tick = { 0, 50 * 1000 };
	evtimer_add(q->deadline, &tv);
	evtimer_add(q->stop_poll, &tick);
}

/* ---- the process ---- */

/* The sign the sendmail entry looks for (cli/queue_kick.h): with the
 * watch on env/ in place, each arrival starts a pass here, so the entry
 * need not start a runner of its own.  Held until this process stops
 * taking arrivals (SIGTERM: on_stop) or ends (a killed process's lock dies
 * with it).  Without it, the entry just starts its runner as before. */
static void queue_liveness_hold(struct serve_queue *q)
{
	q->liveness_fd = cli_queue_daemon_hold(q->dir);
	if (q->liveness_fd < 0)
		log_event(LOG_WARN, "queue_liveness", "dir=%s reason=\"%s\" effect=\"the sendmail "
		          "entry starts its own first attempt\"",
		          q->dir, strerror(errno));
}

static int queue_setup(struct serve_queue *q, uid_t *uid, gid_t *gid, bool *drop)
{
	struct send_opts *o = q->o;
	*drop = geteuid() == 0;
	snprintf(q->dir, sizeof(q->dir), "%s", o->spool);
	if (*drop && !queue_user_pick(q, uid, gid))
		return SEND_EXIT_CONFIG;
	q->sp = send_spool_open(o, q->dir, sizeof(q->dir));
	if (!q->sp)
		return SEND_EXIT_CONFIG;
	if (*drop && !spool_give(q->dir, *uid, *gid)) {
		log_event(LOG_ERROR, "queue_spool", "dir=%s reason=\"cannot give it to uid %u: %s\"",
		          q->dir, (unsigned)*uid, strerror(errno));
		return SEND_EXIT_CONFIG;
	}
	/* Users who are not root queue through the maildrop (queue/maildrop.h),
	 * made here for the queue user. */
	char why0[512];
	if (*drop && queue_maildrop_prepare(q->dir, *uid, *gid, why0, sizeof(why0)) != QUEUE_OK)
		log_event(LOG_WARN, "maildrop_prepare", "reason=\"%s\"", why0);
	/* Watched now: the path may be below a directory the queue user
	 * cannot traverse; the watch outlives the privilege drop.  A drop
	 * file arrives by rename too. */
	char env[4200], maildrop[4200];
	snprintf(env, sizeof(env), "%s/env", q->dir);
	snprintf(maildrop, sizeof(maildrop), "%s/%s", q->dir, QUEUE_MAILDROP_DIR);
	q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (q->inotify_fd < 0 || inotify_add_watch(q->inotify_fd, env, IN_MOVED_TO) < 0)
		log_event(LOG_WARN, "queue_inotify", "reason=\"%s\" fallback=\"a pass every %d s\"",
		          strerror(errno), SERVE_QUEUE_PASS_MAX_WAIT);
	else {
		if (inotify_add_watch(q->inotify_fd, maildrop, IN_MOVED_TO) < 0 && errno != ENOENT)
			log_event(LOG_WARN, "queue_inotify", "dir=%s reason=\"%s\" fallback=\"a pass "
			          "every %d s\"", maildrop, strerror(errno), SERVE_QUEUE_PASS_MAX_WAIT);
		queue_liveness_hold(q);
	}
	q->base = event_base_new();
	if (!q->base)
		return SEND_EXIT_OSERR;
	/* serve's --hostname says HELO unless --helo does. */
	if (!o->delivery.helo)
		o->delivery.helo = q->child->hostname;
	o->dry_run = false;
	struct client_outbound_config cfg;
	send_engine_config(o, &cfg);
	char why[512];
	/* Resolver settings and the CA bundle are read here, still as root. */
	q->engine = client_outbound_new(q->base, &cfg, why, sizeof(why));
	if (!q->engine) {
		log_event(LOG_ERROR, "queue_engine", "reason=\"%s\"", why);
		return SEND_EXIT_CONFIG;
	}
	/* Local names go to serve's own mail root unless the settings name
	 * another; the aliases file is read here, still as root. */
	if (!o->mailroot)
		o->mailroot = q->child->mailroot;
	int rc = send_queue_wiring_init(&q->wiring, o, q->base, q->sp, q->engine, &q->dl);
	if (rc != 0)
		return rc;
	q->wired = true;
	cli_local_hold(q->wiring.local);
	/* serve's MQTT bridge (issue 12): local mail stored in serve's own
	 * mail root (cron's, a bounce to a local sender) is an event too. */
	if (q->child->mqtt_events && !strcmp(o->mailroot, q->child->mailroot))
		cli_local_events(q->wiring.local, q->child->mail_uid, q->child->mail_gid);
	return 0;
}

int serve_queue_main(void *arg, const struct serve_queue_child *child)
{
	struct serve_queue q = { .o = arg, .child = child, .inotify_fd = -1, .liveness_fd = -1 };
	uid_t uid = 0;
	gid_t gid = 0;
	bool drop = false;
	int rc = queue_setup(&q, &uid, &gid, &drop);
	if (rc == 0 && drop && !queue_drop(&q, uid, gid)) {
		log_event(LOG_ERROR, "drop_failed", "role=queue error=\"%s\"", strerror(errno));
		rc = SEND_EXIT_OSERR;
	}
	if (rc == 0) {
		q.timer = evtimer_new(q.base, on_timer, &q);
		q.settle = evtimer_new(q.base, on_settle, &q);
		q.after = event_new(q.base, -1, 0, pass_after, &q);
		q.deadline = evtimer_new(q.base, on_deadline, &q);
		q.stop_poll = event_new(q.base, -1, EV_PERSIST, on_stop_poll, &q);
		q.sigterm = evsignal_new(q.base, SIGTERM, on_stop, &q);
		q.sigint = evsignal_new(q.base, SIGINT, on_stop, &q);
		if (q.inotify_fd >= 0)
			q.notify = event_new(q.base, q.inotify_fd, EV_READ | EV_PERSIST, on_notify, &q);
		if (!q.timer || !q.settle || !q.after || !q.deadline || !q.stop_poll || !q.sigterm ||
		    !q.sigint ||
		    (q.inotify_fd >= 0 && !q.notify) || evsignal_add(q.sigterm, NULL) != 0 ||
		    evsignal_add(q.sigint, NULL) != 0 || (q.notify && event_add(q.notify, NULL) != 0))
			rc = SEND_EXIT_OSERR;
	}
	if (rc == 0) {
		log_event(LOG_INFO, "queue_started", "pid=%d spool=%s uid=%u", (int)getpid(), q.dir,
		          (unsigned)geteuid());
		pass_start(&q);
		event_base_dispatch(q.base);
		log_event(LOG_INFO, "queue_stopped", "pid=%d", (int)getpid());
	}
	struct event *evs[] = { q.timer,   q.settle,  q.after, q.deadline, q.stop_poll,
		                q.sigterm, q.sigint, q.notify };
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	if (q.wired)
		send_queue_wiring_free(&q.wiring);
	client_outbound_free(q.engine);
	if (q.base)
		event_base_free(q.base);
	if (q.inotify_fd >= 0)
		close(q.inotify_fd);
	if (q.liveness_fd >= 0)
		close(q.liveness_fd);
	queue_spool_close(q.sp);
	log_flush();
	return rc;
}
