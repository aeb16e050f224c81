/* rawmail queue: run [ID] and flush here; list, show and delete in
 * queue_list.c.  A pass wires the queue runner (queue/runner.h) to the
 * outbound engine (client/outbound.h) through the runner's deliverer
 * interface, on one event loop, and logs one key=value line per result
 * on stderr (util/log.h). */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "cli/send.h"
#include "client/outbound.h"
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
	"                         /etc/rawmail.conf if it exists): [delivery] and [queue];\n"
	"                         options given here win\n"
	"      --spool DIR        the queue (default /var/spool/rawmail for root, else\n"
	"                         $XDG_STATE_HOME/rawmail/spool or ~/.local/state/rawmail/spool)\n"
	"      --retry-schedule LIST, --max-queue-lifetime DURATION, --delay-warning DURATION\n"
	"                         as for rawmail send\n"
	"  -4, -6, --tls MODE, --cafile FILE, --tls-fingerprint SHA256:HEX, --helo NAME,\n"
	"      --dns ADDR[:PORT], --port N, --timeout SECONDS\n"
	"                         delivery settings, as for rawmail send\n"
	"  -v                     the SMTP conversations on stderr too\n"
	"\n"
	"A recipient that fails temporarily is tried again on the retry schedule; one that\n"
	"fails permanently, or is still failing after the maximum lifetime, is returned to\n"
	"the sender in a delivery status notification (RFC 3464), except for a\n"
	"notification itself.  Logs: one line per result on stderr.\n"
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

struct queue_deliverer send_queue_deliverer(struct client_outbound *engine)
{
	return (struct queue_deliverer){ queue_call_submit, engine };
}

struct queue_pass {
	struct event_base *base;
	struct queue_run_stats stats;
};

static void queue_pass_done(void *arg, const struct queue_run_stats *stats)
{
	struct queue_pass *p = arg;
	p->stats = *stats;
	event_base_loopbreak(p->base);
}

int send_queue_pass(struct send_opts *o, enum queue_run_mode mode, const char *id)
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
	pass.base = event_base_new();
	if (!pass.base)
		goto out;
	struct client_outbound_config cfg;
	o->dry_run = false;
	send_engine_config(o, &cfg);
	engine = client_outbound_new(pass.base, &cfg, why, sizeof(why));
	if (!engine) {
		fprintf(stderr, "%s: %s\n", o->prog, why);
		rc = o->delivery.cafile ? EXIT_USAGE : SEND_EXIT_OSERR;
		goto out;
	}
	char host[256];
	hostname_get(host, sizeof(host), "/etc/hosts");
	struct queue_runner_config rcfg = { .policy = o->policy, .reporting = host };
	struct queue_deliverer dl = send_queue_deliverer(engine);
	runner = queue_runner_new(pass.base, sp, &dl, &rcfg);
	if (!runner)
		goto out;
	if (queue_runner_start(runner, mode, id, queue_pass_done, &pass, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: %s\n", o->prog, why);
		rc = SEND_EXIT_TEMPFAIL;
		goto out;
	}
	event_base_dispatch(pass.base);
	rc = pass.stats.errors ? SEND_EXIT_TEMPFAIL : 0;
out:
	log_flush();
	queue_runner_free(runner);
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
	optind = 0;
	while ((c = getopt_long(argc, argv, QUEUE_OPTSTRING, send_long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(queue_help, stdout);
			return 0;
		}
		if (c == 'c')
			continue;   /* read first */
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
	if (send_opts_check(o) != 0)
		return EXIT_USAGE;
	int rest = argc - optind;
	if (rest > (flush ? 0 : 1)) {
		fprintf(stderr, "%s: %s\n", o->prog,
		        flush ? "takes no arguments" : "takes at most one queue id");
		return EXIT_USAGE;
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
