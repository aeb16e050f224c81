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
	struct event *sigterm, *sigint, *notify;
	int inotify_fd;
	int liveness_fd;                 /* SPOOL/runner.lock, held while arrivals start passes */
	bool again;                      /* something arrived during the pass */
	bool stopping;
	struct queue_run_stats stats;
	char dir[4096];
};

/* ---- as root: the user, the spool's owner ---- */

static bool queue_user_pick(const struct serve_queue *q, uid_t *uid, gid_t *gid)
{
	const struct serve_queue_child *c = q->child;
	struct passwd *pw = NULL;
	struct stat st;
	if (c->queue_user) {
		pw = getpwnam(c->queue_user);   /* checked by the parent at start */
	} else if (stat(q->dir, &st) == 0 && st.st_uid != 0) {
		*uid = st.st_uid;
		*gid = st.st_gid;
		return true;
	} else {
		pw = getpwnam(SERVE_QUEUE_USER_DEFAULT);
	}
	if (pw && pw->pw_uid != 0) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		return true;
	}
	if (!c->queue_user && c->mail_uid != 0) {
		*uid = c->mail_uid;
		*gid = c->mail_gid;
		return true;
	}
	log_event(LOG_ERROR, "queue_user", "reason=\"no unprivileged user to run the queue as\" "
	          "hint=\"create one (useradd --system %s) or give --queue-user USER\"",
	          SERVE_QUEUE_USER_DEFAULT);
	return false;
}

/* The spool, its four directories and what they hold (entries root's
 * rawmail send wrote before) become the queue user's. */
static bool spool_give(const char *dir, uid_t uid, gid_t gid)
{
	static const char *const subs[] = { "tmp", "msg", "env", "corrupt" };
	if (chown(dir, uid, gid) != 0)
		return false;
	for (size_t i = 0; i < 4; i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
 * is looked at again a second later, not in a busy loop). */
static int64_t next_wait(struct serve_queue *q)
{
	int64_t now = time(NULL), best = now + SERVE_QUEUE_PASS_MAX_WAIT;
	struct queue_spool_list *l = NULL;
	char why[512];
	if (queue_spool_list_open(q->sp, &l, why, sizeof(why)) != QUEUE_OK)
		return SERVE_QUEUE_PASS_MAX_WAIT;
	struct queue_envelope env;
	const char *id;
	int rc;
	memset(&env, 0, sizeof(env));
	while ((rc = queue_spool_list_next(l, &env, &id, why, sizeof(why))) != 0) {
		for (size_t i = 0; rc > 0 && i < env.nrcpts; i++)
			if (env.rcpts[i].state == QUEUE_RCPT_QUEUED && env.rcpts[i].next < best)
				best = env.rcpts[i].next;
		queue_envelope_free(&env);
	}
	queue_spool_list_close(l);
	int64_t wait = best - now;
	return wait < 1 ? 1 : wait > SERVE_QUEUE_PASS_MAX_WAIT ? SERVE_QUEUE_PASS_MAX_WAIT : wait;
}

static void pass_after(evutil_socket_t fd, short what, void *arg)
{
	struct serve_queue *q = arg;
	queue_runner_free(q->runner);
	q->runner = NULL;
	q->wiring.fwd.runner = NULL;
	const struct queue_run_stats *s = &q->stats;
	if (s->attempted || s->errors || s->corrupt)
		log_event(LOG_INFO, "queue_pass",
		          "entries=%zu attempted=%zu delivered=%zu deferred=%zu failed=%zu busy=%zu "
		          "corrupt=%zu errors=%zu",
		          s->entries, s->attempted, s->delivered, s->deferred, s->failed, s->busy,
		          s->corrupt, s->errors);
	if (q->stopping) {
		event_base_loopbreak(q->base);
		return;
	}
	if (q->again) {
		q->again = false;
		pass_start(q);
		return;
	}
	struct timeval tv = { (time_t)next_wait(q), 0 };
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
	struct timeval tv = { (time_t)q->child->timeout_shutdown, 0 };
	evtimer_add(q->deadline, &tv);
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
	/* Watched now: the path may be below a directory the queue user
	 * cannot traverse; the watch outlives the privilege drop. */
	char env[4200];
	snprintf(env, sizeof(env), "%s/env", q->dir);
	q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (q->inotify_fd < 0 || inotify_add_watch(q->inotify_fd, env, IN_MOVED_TO) < 0)
		log_event(LOG_WARN, "queue_inotify", "reason=\"%s\" fallback=\"a pass every %d s\"",
		          strerror(errno), SERVE_QUEUE_PASS_MAX_WAIT);
	else
		queue_liveness_hold(q);
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
		q.sigterm = evsignal_new(q.base, SIGTERM, on_stop, &q);
		q.sigint = evsignal_new(q.base, SIGINT, on_stop, &q);
		if (q.inotify_fd >= 0)
			q.notify = event_new(q.base, q.inotify_fd, EV_READ | EV_PERSIST, on_notify, &q);
		if (!q.timer || !q.settle || !q.after || !q.deadline || !q.sigterm || !q.sigint ||
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
	struct event *evs[] = { q.timer, q.settle, q.after, q.deadline, q.sigterm, q.sigint, q.notify };
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
