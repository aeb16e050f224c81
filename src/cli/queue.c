/* rawmail queue: run [ID] and flush here; list, show and delete in
 * queue_list.c.  A pass wires the queue runner (queue/runner.h) to the
 * outbound engine (client/outbound.h) through the runner's deliverer
 * interface, on one event loop, and logs one key=value line per result
 * on stderr (util/log.h). */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "cli/local.h"
#include "cli/queue_kick.h"
#include "cli/send.h"
#include "client/outbound.h"
#include "queue/maildrop.h"
#include "queue/split.h"
#include "util/hostname.h"
#include "util/log.h"

static const char queue_help[] =
	"usage: rawmail queue COMMAND [options]\n"
	"\n"
	"  list                   what is queued (also: mailq, sendmail -bp)\n"
	"  show ID                one entry: its recipients, their last reply and next attempt\n"
	"  delete ID              remove an entry without delivering it\n"
	"  run [ID]               one pass over what is due (cron, a systemd timer); with ID,\n"
	"                         that message now\n"
	"  flush                  try everything queued now, deleting nothing (sendmail -q)\n"
	"\n"
	"options of run and flush:\n"
	"  -c, --config FILE      settings file (default: $RAWMAIL_CONF, else\n"
	"                         /etc/rawmail.conf if it exists): [delivery], [routes]\n"
	"                         and [queue];\n"
	"                         options given here win\n"
	"      --spool DIR        the queue (default /var/spool/rawmail for root, else\n"
	"                         $XDG_STATE_HOME/rawmail/spool or ~/.local/state/rawmail/spool)\n"
	"      --retry-schedule LIST, --max-queue-lifetime DURATION, --delay-warning DURATION\n"
	"                         as for rawmail send\n"
	"      --mailroot DIR, --aliases FILE\n"
	"                         local mail, as for rawmail send\n"
	"  -4, -6, --tls MODE, --cafile FILE, --tls-fingerprint SHA256:HEX, --helo NAME,\n"
	"      --dns ADDR[:PORT], --port N, --timeout SECONDS, --relay [smtps://]HOST[:PORT],\n"
	"      --auth-user USER, --auth-password-file FILE, --route DOMAIN=HOST[:PORT]\n"
	"                         delivery settings, as for rawmail send\n"
	"  -v                     the SMTP conversations on stderr too\n"
	"      --gather           (run; the sendmail entry's runner) wait 200 ms for the\n"
	"                         rest of a burst, then one pass over what is due\n"
	"\n"
	"A recipient that fails temporarily is tried again on the retry schedule; one that\n"
	"fails permanently, or is still failing after the maximum lifetime, is returned to\n"
	"the sender in a delivery status notification (RFC 3464), except for a\n"
	"notification itself.  Logs: one line per result on stderr, and a summary\n"
	"(event=pass seen= due= attempted= delivered= deferred= failed= bounces= ...).\n"
	"SIGTERM: no new delivery starts, those under way finish (at most --timeout\n"
	"seconds), the rest stay queued; exit 0.\n"
	"\n"
	"Exit status: 0 the pass ran (whatever the results); 64 a usage error; 75 the\n"
	"spool could not be used or a spool error happened; 78 a bad settings file.\n";

/* One client_outbound_submit for the runner: results converted to what
 * the queue records. */
struct queue_call {
	queue_deliver_done_fn done;
	void *arg;
};

static void queue_call_done(void *arg, const struct client_result *res, size_t n)
{
	struct queue_call *c = arg;
	struct queue_result *q = calloc(n ? n : 1, sizeof(*q));
	char **lasts = calloc(n ? n : 1, sizeof(*lasts));
	char *one = malloc(QUEUE_ENV_LAST_MAX + 1);
	if (q && lasts && one) {
		for (size_t i = 0; i < n; i++) {
			send_result_to_queue(&res[i], &q[i], one, QUEUE_ENV_LAST_MAX + 1);
			lasts[i] = strdup(one);
			q[i].last = lasts[i] ? lasts[i] : "out of memory";
		}
	} else {
		/* Out of memory: nothing recorded, every recipient retried. */
		free(q);
		q = NULL;
	}
	/* Out of memory: no results, the entry stays as it was. */
	c->done(c->arg, q, q ? n : 0);
	for (size_t i = 0; lasts && i < n; i++)
		free(lasts[i]);
	free(lasts);
	free(one);
	free(q);
	free(c);
}

static int queue_call_submit(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
                             void *arg, char *why, size_t whylen)
{
	struct client_outbound *engine = ctx;
	struct queue_call *c = malloc(sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	*c = (struct queue_call){ done, arg };
	struct client_outbound_message m = {
		.sender = d->sender,
		.data = d->data,
		.len = d->len,
		.recipients = d->rcpts,
		.originals = d->originals,
		.nrecipients = d->n,
	};
	if (client_outbound_submit(engine, &m, queue_call_done, c, why, whylen) !=
	    CLIENT_OUTBOUND_SUBMITTED) {
		free(c);
		return -1;
	}
	return 0;
}

static int queue_forward_enqueue(void *ctx, const struct queue_delivery *d,
                                 const char *const *rcpts, const char *const *originals,
                                 size_t n, char *id, size_t idlen, char *why, size_t whylen)
{
	struct queue_forward *f = ctx;
	struct queue_envelope env = { .origin = QUEUE_ORIGIN_LOCAL };
	int rc = -1;
	if (queue_envelope_set_sender(&env, d->sender) != 0)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (queue_envelope_add_rcpt(&env, rcpts[i],
		                            strcmp(originals[i], rcpts[i]) ? originals[i] : NULL) != 0)
			goto nomem;
	}
	if (queue_envelope_wants_smtputf8(&env))
		env.flags |= QUEUE_FLAG_SMTPUTF8;
	if (queue_spool_enqueue(f->sp, &env, d->data, d->len, why, whylen) == QUEUE_OK) {
		snprintf(id, idlen, "%s", env.id);
		log_event(LOG_INFO, "forward", "id=%s from=%s rcpts=%zu", env.id, d->id, n);
		/* Not added: the next pass (or queue run) takes it. */
		if (f->runner && queue_runner_add(f->runner, env.id) != 0)
			log_event(LOG_WARN, "forward", "id=%s result=next-pass", env.id);
		rc = 0;
	}
	queue_envelope_free(&env);
	return rc;
nomem:
	queue_envelope_free(&env);
	snprintf(why, whylen, "out of memory forwarding");
	return -1;
}

/* The deliverer every runner uses (queue run, flush, send's first pass,
 * serve's queue process): local names (cron's root), after the aliases, to
 * the mail root's Maildirs; an alias's remote targets forwarded as a new
 * entry; everything else to the outbound engine. */
int send_queue_wiring_init(struct send_queue_wiring *w, struct send_opts *o,
                           struct event_base *base, struct queue_spool *sp,
                           struct client_outbound *engine, struct queue_deliverer *dl)
{
	memset(w, 0, sizeof(*w));
	/* A bad aliases file named in the settings is a settings error; the
	 * queue is left as it is. */
	if (cli_aliases_load(o->prog, o->aliases, &w->aliases) != 0)
		return SEND_EXIT_CONFIG;
	cli_local_names_init(&w->names);
	w->local = cli_local_new(base, o->mailroot, &w->names);
	if (!w->local) {
		msg_aliases_free(&w->aliases);
		return SEND_EXIT_OSERR;
	}
	w->fwd.sp = sp;
	w->split = (struct queue_split){ .base = base,
		                         .forward = queue_forward_enqueue,
		                         .forward_ctx = &w->fwd,
		                         .local = { cli_local_submit, w->local },
		                         .remote = { queue_call_submit, engine },
		                         .aliases = &w->aliases,
		                         .is_local = cli_local_domain,
		                         .is_local_arg = &w->names,
		                         .host = w->names.host };
	queue_split_deliverer(&w->split, dl);
	return 0;
}

void send_queue_stop(struct send_queue_wiring *w, struct client_outbound *engine,
                     struct queue_runner *runner)
{
	(void)w;
	if (runner)
		queue_runner_stop(runner);
	client_outbound_stop(engine);
}

bool send_queue_stop_idle(const struct send_queue_wiring *w,
                          const struct client_outbound *engine)
{
	return !client_outbound_busy(engine) && cli_local_active(w->local) == 0;
}

void send_queue_wiring_free(struct send_queue_wiring *w)
{
	cli_local_free(w->local);
	w->local = NULL;
	msg_aliases_free(&w->aliases);
}

struct queue_pass {
	struct event_base *base;
	struct queue_runner *runner;
	struct send_queue_wiring *wiring;
	struct client_outbound *engine;
	struct event *deadline, *poll;
	int grace;   /* seconds the deliveries in flight get after SIGTERM */
	bool stopping;
	struct queue_run_stats stats;
};

/* After SIGTERM: once nothing that began is still going (every started
 * delivery has ended and been written down), the deliveries that never
 * started are left queued as they were (env/ID is rewritten only after a
 * result) and the process ends; the next run tries them: at least once,
 * never lost.  At the end of the grace it ends whatever is left. */
static void queue_pass_stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct queue_pass *p = arg;
	bool forced = what & EV_TIMEOUT && fd == -2;
	if (!forced && !send_queue_stop_idle(p->wiring, p->engine))
		return;
	if (forced)
		log_event(LOG_WARN, "stop_forced", "reason=\"deliveries still in flight after %d s\" "
		          "action=\"they stay queued\"", p->grace);
	else
		log_event(LOG_INFO, "stopped", "in_flight=%zu action=\"not started: they stay "
		          "queued\"", client_outbound_in_flight(p->engine));
	log_flush();
	_exit(0);
}

static void queue_pass_deadline(evutil_socket_t fd, short what, void *arg)
{
	queue_pass_stop_check(-2, EV_TIMEOUT, arg);
}

/* SIGTERM (systemd stopping the timer's service, shutdown): stop
 * starting, let what has begun finish within the grace, exit 0. */
static void queue_pass_term(evutil_socket_t sig, short what, void *arg)
{
	struct queue_pass *p = arg;
	if (p->stopping)
		return;
	p->stopping = true;
	send_queue_stop(p->wiring, p->engine, p->runner);
	struct timeval grace = { p->grace, 0 }, tick = { 0, 50 * 1000 };
	evtimer_add(p->deadline, &grace);
	evtimer_add(p->poll, &tick);
}

static void queue_pass_done(void *arg, const struct queue_run_stats *stats)
{
	struct queue_pass *p = arg;
	p->stats = *stats;
	event_base_loopbreak(p->base);
}

/* graceful: SIGTERM stops starting and exits 0 (queue run, flush, the
 * sendmail entry's background run); rawmail send's own first pass keeps
 * the default, so a killed send does not look like a delivered one. */
static int queue_pass_run(struct send_opts *o, enum queue_run_mode mode, const char *id,
                          bool graceful, struct queue_run_stats *stats);

int send_queue_pass(struct send_opts *o, enum queue_run_mode mode, const char *id)
{
	struct queue_run_stats stats;
	return queue_pass_run(o, mode, id, true, &stats);
}

int send_queue_first_pass(struct send_opts *o, const char *id)
{
	struct queue_run_stats stats = { 0 };
	o->policy.bounce = false;
	int rc = queue_pass_run(o, QUEUE_RUN_ALL, id, false, &stats);
	if (rc != 0) {
		fprintf(stderr, "%s: queued as %s: not delivered yet (the reason is above)\n", o->prog,
		        id);
		return rc;
	}
	if (stats.deferred > 0 || stats.busy > 0 || stats.attempted == 0) {
		/* What is left may be the entry itself, or only the forward an
		 * alias queued (event=forward above names it). */
		char dir[4096], env[4200];
		struct queue_spool *sp = send_spool_open(o, dir, sizeof(dir));
		queue_spool_close(sp);
		snprintf(env, sizeof(env), "%s/env/%s", dir, id);
		if (!sp || access(env, F_OK) == 0)
			fprintf(stderr, "%s: queued as %s: not every recipient could be delivered yet "
			                "(the reason is above); it will be retried\n",
			        o->prog, id);
		else
			fprintf(stderr, "%s: queued: a forward could not be delivered yet (its id and "
			                "the reason are above); it will be retried\n",
			        o->prog);
		return SEND_EXIT_TEMPFAIL;
	}
	return stats.failed > 0 ? SEND_EXIT_UNAVAILABLE : SEND_EXIT_OK;
}

void send_maildrop_take(const char *dir, struct queue_spool *sp, const char *hostname)
{
	char why[512];
	struct stat st;
	/* Root makes the maildrop, for the spool's owner, so that users can
	 * queue without the daemon (queue/maildrop.h). */
	if (geteuid() == 0 && stat(dir, &st) == 0 &&
	    queue_maildrop_prepare(dir, st.st_uid, st.st_gid, why, sizeof(why)) != QUEUE_OK)
		log_event(LOG_WARN, "maildrop_prepare", "reason=\"%s\"", why);
	struct queue_maildrop_counts c;
	if (queue_maildrop_import(sp, hostname, (int64_t)time(NULL), &c, why, sizeof(why)) !=
	    QUEUE_OK)
		log_event(LOG_ERROR, "maildrop_import_failed", "reason=\"%s\" action=\"the rest "
		          "waits for the next pass\"", why);
	if (c.imported || c.set_aside || c.busy)
		log_event(LOG_INFO, "maildrop", "imported=%zu set_aside=%zu busy=%zu", c.imported,
		          c.set_aside, c.busy);
}

static int queue_pass_run(struct send_opts *o, enum queue_run_mode mode, const char *id,
                          bool graceful, struct queue_run_stats *stats)
{
	log_init("queue", o->verbose ? LOG_DEBUG : LOG_INFO);
	if (id && !queue_id_valid(id, strlen(id))) {
		fprintf(stderr, "%s: '%s' is not a queue id\n", o->prog, id);
		return EXIT_USAGE;
	}
	/* A peer that closes while we write is a result, not SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	char dir[4096], why[512];
	struct queue_spool *sp = send_spool_open(o, dir, sizeof(dir));
	if (!sp)
		return SEND_EXIT_TEMPFAIL;
	int rc = SEND_EXIT_OSERR;
	struct queue_pass pass = { 0 };
	struct client_outbound *engine = NULL;
	struct queue_runner *runner = NULL;
	struct event *term = NULL;
	struct send_queue_wiring wiring = { 0 };
	pass.base = event_base_new();
	if (!pass.base)
		goto out;
	struct client_outbound_config cfg;
	o->dry_run = false;
	send_engine_config(o, &cfg);
	engine = client_outbound_new(pass.base, &cfg, why, sizeof(why));
	if (!engine) {
		fprintf(stderr, "%s: %s\n", o->prog, why);
		rc = !o->delivery.cafile                            ? SEND_EXIT_OSERR
		     : o->delivery.cafile_source == CLI_FROM_FILE ? SEND_EXIT_CONFIG
		                                                  : EXIT_USAGE;
		goto out;
	}
	struct queue_deliverer dl;
	rc = send_queue_wiring_init(&wiring, o, pass.base, sp, engine, &dl);
	if (rc != 0)
		goto out;
	rc = SEND_EXIT_OSERR;
	/* A pass over the queue takes in what users dropped first (one entry
	 * is the sendmail entry's own first attempt: it has nothing to do
	 * with the maildrop). */
	if (!id)
		send_maildrop_take(dir, sp, wiring.names.host);
	struct queue_runner_config rcfg = { .policy = o->policy, .reporting = wiring.names.host };
	runner = queue_runner_new(pass.base, sp, &dl, &rcfg);
	wiring.fwd.runner = runner;
	if (!runner)
		goto out;
	pass.runner = runner;
	/* A command's timeout: a delivery that has begun its final dot gets
	 * that long for the answer anyway. */
	pass.grace = o->delivery.timeout;
	pass.wiring = &wiring;
	pass.engine = engine;
	pass.deadline = evtimer_new(pass.base, queue_pass_deadline, &pass);
	pass.poll = event_new(pass.base, -1, EV_PERSIST, queue_pass_stop_check, &pass);
	if (graceful) {
		term = evsignal_new(pass.base, SIGTERM, queue_pass_term, &pass);
		if (!term || evsignal_add(term, NULL) != 0)
			goto out;
	}
	if (!pass.deadline || !pass.poll)
		goto out;
	if (queue_runner_start(runner, mode, id, queue_pass_done, &pass, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: %s\n", o->prog, why);
		rc = SEND_EXIT_TEMPFAIL;
		goto out;
	}
	event_base_dispatch(pass.base);
	rc = pass.stats.errors ? SEND_EXIT_TEMPFAIL : 0;
	*stats = pass.stats;
out:
	log_flush();
	if (term)
		event_free(term);
	if (pass.deadline)
		event_free(pass.deadline);
	if (pass.poll)
		event_free(pass.poll);
	queue_runner_free(runner);
	send_queue_wiring_free(&wiring);
	client_outbound_free(engine);
	if (pass.base)
		event_base_free(pass.base);
	queue_spool_close(sp);
	return rc;
}

static int queue_run_options(struct send_opts *o, int argc, char **argv, bool flush);

/* run [ID] and flush: send's delivery options and the queue's. */
static int queue_run_command(int argc, char **argv, bool flush)
{
	struct send_opts o;
	send_opts_init(&o, flush ? "rawmail queue flush" : "rawmail queue run");
	int rc = queue_run_options(&o, argc, argv, flush);
	send_opts_free(&o);
	return rc;
}

#define QUEUE_OPTSTRING "+c:v46h"

static int queue_run_options(struct send_opts *o, int argc, char **argv, bool flush)
{
	/* The settings file's [delivery] and [queue] first (cron and
	 * systemd timers pass no options); flags win. */
	int c, rc = send_config_load(o, send_config_flag(argc, argv, QUEUE_OPTSTRING));
	if (rc != 0)
		return rc;
	bool gather = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, QUEUE_OPTSTRING, send_long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(queue_help, stdout);
			return 0;
		}
		if (c == 'c')
			continue;   /* read first */
		if (c == OPT_GATHER && !flush) {
			gather = true;
			continue;
		}
		/* Options about a new message have no place here. */
		if (c == 'F' || c == OPT_FROM_NAME || c == OPT_DRY_RUN || c == OPT_NO_QUEUE ||
		    c == OPT_ATTACH) {
			fprintf(stderr, "%s: %s is an option of rawmail send\n", o->prog, argv[optind - 1]);
			return EXIT_USAGE;
		}
		int r = send_option(o, c, optarg);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0) {
			fprintf(stderr, "%s: try 'rawmail queue --help'\n", o->prog);
			return EXIT_USAGE;
		}
	}
	if ((rc = send_opts_check(o)) != 0)
		return rc;
	int rest = argc - optind;
	if (rest > (flush ? 0 : 1)) {
		fprintf(stderr, "%s: %s\n", o->prog,
		        flush ? "takes no arguments" : "takes at most one queue id");
		return EXIT_USAGE;
	}
	if (gather) {
		if (rest) {
			fprintf(stderr, "%s: --gather takes no queue id\n", o->prog);
			return EXIT_USAGE;
		}
		/* The sendmail entry's runner (cli/queue_kick.h): entries queued
		 * meanwhile join this pass. */
		char dir[4096], why[256];
		if (cli_spool_dir(o->spool, dir, sizeof(dir), why, sizeof(why)))
			cli_queue_gather(dir);
	}
	return send_queue_pass(o, flush ? QUEUE_RUN_ALL : QUEUE_RUN_DUE,
	                       rest ? argv[optind] : NULL);
}

int cli_queue(int argc, char **argv)
{
	if (argc < 2) {
		fputs(queue_help, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(queue_help, stdout);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return queue_run_command(argc - 1, argv + 1, false);
	if (!strcmp(cmd, "flush"))
		return queue_run_command(argc - 1, argv + 1, true);
	if (!strcmp(cmd, "list"))
		return cli_queue_list(argc - 1, argv + 1);
	if (!strcmp(cmd, "show"))
		return cli_queue_show(argc - 1, argv + 1);
	if (!strcmp(cmd, "delete"))
		return cli_queue_delete(argc - 1, argv + 1);
	fprintf(stderr, "rawmail queue: unknown command '%s' (try rawmail queue --help)\n", cmd);
	return EXIT_USAGE;
}
