/* The options rawmail send and its sendmail entry share (send.h): the
 * long ones, those parsed the same way by both, and the checks that need
 * them all.  Apart from send.c (rawmail send's command line), so that the
 * sendmail entry's small program (sendmail_main.c) links them without the
 * delivery engine. */
#include "cli/send.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const struct option send_long_opts[] = {
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "tls-fingerprint", required_argument, NULL, OPT_FINGERPRINT },
	{ "helo", required_argument, NULL, OPT_HELO },
	{ "dns", required_argument, NULL, OPT_DNS },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "attach", required_argument, NULL, OPT_ATTACH },
	{ "from-name", required_argument, NULL, OPT_FROM_NAME },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "spool", required_argument, NULL, OPT_SPOOL },
	{ "no-queue", no_argument, NULL, OPT_NO_QUEUE },
	{ "retry-schedule", required_argument, NULL, OPT_RETRY_SCHEDULE },
	{ "max-queue-lifetime", required_argument, NULL, OPT_MAX_QUEUE_LIFETIME },
	{ "delay-warning", required_argument, NULL, OPT_DELAY_WARNING },
	{ "mailroot", required_argument, NULL, OPT_MAILROOT },
	{ "aliases", required_argument, NULL, OPT_ALIASES },
	{ "gather", no_argument, NULL, OPT_GATHER },
	{ "relay", required_argument, NULL, OPT_RELAY },
	{ "route", required_argument, NULL, OPT_ROUTE },
	{ "auth-user", required_argument, NULL, OPT_AUTH_USER },
	{ "auth-password-file", required_argument, NULL, OPT_AUTH_PASSWORD_FILE },
	{ "dkim-key", required_argument, NULL, OPT_DKIM_KEY },
	{ "dkim-selector", required_argument, NULL, OPT_DKIM_SELECTOR },
	{ "dkim-domain", required_argument, NULL, OPT_DKIM_DOMAIN },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* The delivery settings' flags and their keys in [delivery]. */
static const char *delivery_key(int c)
{
	switch (c) {
	case OPT_TLS: return "tls";
	case OPT_CAFILE: return "cafile";
	case OPT_FINGERPRINT: return "tls-fingerprint";
	case OPT_HELO: return "helo";
	case OPT_DNS: return "dns";
	case OPT_PORT: return "port";
	case OPT_TIMEOUT: return "timeout";
	case OPT_RELAY: return "relay";
	case OPT_ROUTE: return "route";
	case OPT_AUTH_USER: return "auth-user";
	case OPT_AUTH_PASSWORD_FILE: return "auth-password-file";
	}
	return NULL;
}

/* The options both entries share (rawmail send's long ones, which a
 * sendmail link takes too).  0 taken, -1 invalid (said why), 1 not one
 * of them. */
int send_option(struct send_opts *o, int c, const char *arg)
{
	char err[256];
	const char *key = delivery_key(c);
	switch (c) {
	case 'F':
	case OPT_FROM_NAME:
		o->from_name = arg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case '4':
	case '6': {
		struct cli_delivery *d = &o->delivery;
		if (d->family_source == CLI_FROM_FLAG &&
		    d->family != (c == '4' ? DNS_FAMILY_V4_ONLY : DNS_FAMILY_V6_ONLY)) {
			fprintf(stderr, "%s: -4 and -6 exclude each other\n", o->prog);
			return -1;
		}
		cli_delivery_set(d, CLI_FROM_FLAG, "family", c == '4' ? "4" : "6", err, sizeof(err));
		return 0;
	}
	case OPT_CONFIG:
		return 0;   /* read before the other options (send_config.c) */
	case OPT_DRY_RUN:
		o->dry_run = true;
		return 0;
	case OPT_SPOOL:
		if (!arg[0]) {
			fprintf(stderr, "%s: --spool: expected a directory\n", o->prog);
			return -1;
		}
		o->spool = arg;
		return 0;
	case OPT_NO_QUEUE:
		o->no_queue = true;
		return 0;
	/* Kept as text (a flag replaces [queue]'s value), checked by
	 * send_opts_check, passed on as given to a background runner. */
	case OPT_RETRY_SCHEDULE:
		o->queue.retry_schedule = arg;
		return 0;
	case OPT_MAX_QUEUE_LIFETIME:
		o->queue.max_queue_lifetime = arg;
		return 0;
	case OPT_DELAY_WARNING:
		o->queue.delay_warning = arg;
		return 0;
	case OPT_MAILROOT:
		if (!arg[0]) {
			fprintf(stderr, "%s: --mailroot: expected a directory\n", o->prog);
			return -1;
		}
		o->mailroot = arg;
		return 0;
	case OPT_ALIASES:
		o->aliases = arg;   /* "": no aliases file */
		return 0;
	case OPT_DKIM_KEY:
	case OPT_DKIM_SELECTOR:
	case OPT_DKIM_DOMAIN: {
		const char *what = c == OPT_DKIM_KEY ? "key" : c == OPT_DKIM_SELECTOR ? "selector" : "domain";
		if (send_dkim_set(o, true, what, arg, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: --dkim-%s '%s': %s\n", o->prog, what, arg, err);
			return -1;
		}
		return 0;
	}
	}
	if (!key)
		return 1;
	if (cli_delivery_set(&o->delivery, CLI_FROM_FLAG, key, arg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: --%s '%s': %s\n", o->prog, key, arg, err);
		return -1;
	}
	return 0;
}

void send_opts_init(struct send_opts *o, const char *prog)
{
	*o = (struct send_opts){ .prog = prog, .from_where = "-f" };
	cli_delivery_init(&o->delivery);
	queue_policy_default(&o->policy);
}

void send_opts_free(struct send_opts *o)
{
	cli_delivery_password_wipe(&o->delivery);
	for (size_t i = 0; i < o->nowned; i++)
		free(o->owned[i]);
	free(o->owned);
	o->owned = NULL;
	o->nowned = 0;
}

int send_opts_password(struct send_opts *o)
{
	char warn[512], err[600];
	if (cli_delivery_password_load(&o->delivery, err, sizeof(err), warn, sizeof(warn)) != 0) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return SEND_EXIT_CONFIG;
	}
	if (warn[0] && !o->quiet)
		fprintf(stderr, "%s: warning: %s\n", o->prog, warn);
	return 0;
}

/* Checks that need every option: pins need TLS, --cafile needs verify. */
int send_opts_check(struct send_opts *o)
{
	char err[256];
	int rc;
	const struct cli_delivery *d = &o->delivery;
	if (d->npins > 0 && d->tls == CLI_TLS_NONE && d->pins_source == CLI_FROM_FILE &&
	    d->tls_source == CLI_FROM_FILE) {
		/* Both from the file: its fault, not the command line's. */
		fprintf(stderr, "%s: %s: [delivery] tls-fingerprint needs TLS; not with tls = none\n",
		        o->prog, o->config ? o->config : "settings file");
		return SEND_EXIT_CONFIG;
	}
	if ((rc = send_dkim_check(o)) != 0)
		return rc;
	if (!cli_delivery_finish(&o->delivery, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return SEND_EXIT_USAGE;
	}
	/* The relay's password, read now so that a bad file is said before
	 * anything is queued; the sendmail entry leaves it to its runner
	 * (which may run as another user). */
	if (!o->background && (rc = send_opts_password(o)) != 0)
		return rc;
	/* The queue's texts, from the flags or [queue] (whose values were
	 * already checked when the file was read): checked here, by the
	 * queue's own parsers. */
	const struct send_queue_settings *q = &o->queue;
	if (q->retry_schedule &&
	    queue_schedule_parse(q->retry_schedule, &o->policy.schedule, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: retry-schedule: %s\n", o->prog, err);
		return SEND_EXIT_USAGE;
	}
	if (q->max_queue_lifetime &&
	    (queue_duration_parse(q->max_queue_lifetime, &o->policy.lifetime, err, sizeof(err)) != 0 ||
	     o->policy.lifetime < 1)) {
		fprintf(stderr, "%s: max-queue-lifetime: %s\n", o->prog,
		        o->policy.lifetime < 1 ? "at least 1 second" : err);
		return SEND_EXIT_USAGE;
	}
	if (q->delay_warning &&
	    queue_duration_parse(q->delay_warning, &o->policy.delay_warning, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: delay-warning: %s\n", o->prog, err);
		return SEND_EXIT_USAGE;
	}
	return 0;
}
