/* rawmail send's settings file (rawmail.conf(5)): [send] for send alone,
 * [delivery] shared with the queue and serve's runner, [queue] kept for
 * the queue.  Cron and PHP pass no options, so this is how they get the
 * site's settings.  The file is read before the flags, which override it;
 * keys are the long flag names, as for serve. */
#include "cli/send.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/mx.h"
#include "util/config_file.h"
#include "util/limits.h"
#include "util/hostname.h"

const char *send_config_flag(int argc, char **argv, const char *optstring)
{
	const char *path = NULL;
	int saved = opterr, c;
	opterr = 0;   /* the real pass says what is wrong */
	optind = 0;
	while ((c = getopt_long(argc, argv, optstring, send_long_opts, NULL)) != -1)
		if (c == 'c' || c == OPT_CONFIG)
			path = optarg;
	opterr = saved;
	optind = 0;
	return path;
}

/* A copy of text that lives as long as the options. */
static const char *keep(struct send_opts *o, const char *text)
{
	char **owned = realloc(o->owned, (o->nowned + 1) * sizeof(*owned));
	if (!owned)
		return NULL;
	o->owned = owned;
	owned[o->nowned] = strdup(text);
	return owned[o->nowned] ? owned[o->nowned++] : NULL;
}

static bool parse_bool(const char *s, bool *out)
{
	return config_value_bool(s, out);
}

int send_config_set(struct send_opts *o, const char *key, const char *value, char *err,
                    size_t errlen)
{
	if (!strcmp(key, "from")) {
		/* Checked where -f is (send_run.c), naming where it came from. */
		o->from = value;
	} else if (!strcmp(key, "from-name")) {
		o->from_name = value;
	} else if (!strcmp(key, "origin")) {
		/* Postfix's myorigin: a domain, kept in its A-label form. */
		char ascii[SMTP_DOMAIN_MAX + 1], why[200];
		if (!dns_domain_to_ascii(value, ascii, sizeof(ascii), why, sizeof(why)) ||
		    !hostname_syntax_ok(ascii) || !strchr(ascii, '.')) {
			snprintf(err, errlen, "expected a domain name with a dot (example.org)");
			return -1;
		}
		if (!(o->origin = keep(o, ascii))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	} else if (!strcmp(key, "spool")) {
		if (!value[0]) {
			snprintf(err, errlen, "expected a directory");
			return -1;
		}
		o->spool = value;
	} else if (!strcmp(key, "aliases")) {
		o->aliases = value;   /* empty: no aliases file */
	} else if (!strcmp(key, "no-queue")) {
		if (!parse_bool(value, &o->no_queue)) {
			snprintf(err, errlen, "expected yes or no");
			return -1;
		}
	} else {
		return 0;
	}
	return 1;
}

/* A [queue] value checked here, by the queue's own parsers, so that a
 * malformed one is the file's error (78, FILE:LINE) and not a usage
 * error found later: 0 or -1 with why. */
static int queue_value_check(const char *key, const char *value, char *err, size_t errlen)
{
	struct queue_policy p;
	queue_policy_default(&p);
	if (!strcmp(key, "retry-schedule"))
		return queue_schedule_parse(value, &p.schedule, err, errlen);
	if (!strcmp(key, "max-queue-lifetime")) {
		if (queue_duration_parse(value, &p.lifetime, err, errlen) != 0)
			return -1;
		if (p.lifetime < 1) {
			snprintf(err, errlen, "at least 1 second");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "delay-warning"))
		return queue_duration_parse(value, &p.delay_warning, err, errlen);
	return 0;
}

/* [queue]: the key is one of its own, has a value, and the durations
 * and lists parse. */
static int queue_set(struct send_queue_settings *q, const char *key, const char *value,
                     char *err, size_t errlen)
{
	const char **slot = !strcmp(key, "spool")                ? &q->spool
	                    : !strcmp(key, "retry-schedule")     ? &q->retry_schedule
	                    : !strcmp(key, "max-queue-lifetime") ? &q->max_queue_lifetime
	                    : !strcmp(key, "delay-warning")      ? &q->delay_warning
	                                                         : NULL;
	if (!slot && !strcmp(key, "aliases")) {
		q->aliases = value;   /* empty: no aliases file */
		return 1;
	}
	if (!slot)
		return 0;
	if (!value[0]) {
		snprintf(err, errlen, "expected a value");
		return -1;
	}
	if (queue_value_check(key, value, err, errlen) != 0)
		return -1;
	*slot = value;
	return 1;
}

enum send_section { SECTION_SEND, SECTION_DELIVERY, SECTION_QUEUE, SECTION_DKIM };

struct section_arg {
	struct send_opts *o;
	enum send_section which;
};

static const char *const section_keys[] = {
	[SECTION_SEND] = "from, from-name, origin, spool, no-queue, aliases",
	[SECTION_DELIVERY] = "dns, port, tls, cafile, tls-fingerprint, timeout, helo, family, "
	                     "relay, auth-user, auth-password-file",
	[SECTION_QUEUE] = "spool, retry-schedule, max-queue-lifetime, delay-warning, aliases",
	[SECTION_DKIM] = "key, selector, domain",
};
static const char *const section_names[] = {
	[SECTION_SEND] = "send",
	[SECTION_DELIVERY] = "delivery",
	[SECTION_QUEUE] = "queue",
	[SECTION_DKIM] = "dkim",
};

static bool section_key(void *arg, const char *key, const char *value, char *err,
                        size_t errlen)
{
	struct section_arg *s = arg;
	struct send_opts *o = s->o;
	const char *kept = keep(o, value);
	char why[256] = "";
	int r;
	if (!kept) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	if (s->which == SECTION_SEND)
		r = send_config_set(o, key, kept, why, sizeof(why));
	else if (s->which == SECTION_DELIVERY)
		r = cli_delivery_set(&o->delivery, CLI_FROM_FILE, key, kept, why, sizeof(why));
	else if (s->which == SECTION_DKIM)
		r = send_dkim_set(o, false, key, kept, why, sizeof(why));
	else
		r = queue_set(&o->queue, key, kept, why, sizeof(why));
	if (r == 0)
		snprintf(err, errlen, "unknown setting '%s' in [%s] (its keys: %s)", key,
		         section_names[s->which], section_keys[s->which]);
	else if (r < 0)
		snprintf(err, errlen, "%s '%s': %s", key, value, why);
	return r > 0;
}

/* [routes]: DOMAIN = HOST[:PORT], one domain each. */
static bool routes_key(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct send_opts *o = arg;
	char why[300];
	if (cli_delivery_route_add(&o->delivery, key, value, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "[routes] %s = %s: %s", key, value, why);
		return false;
	}
	return true;
}

/* The top level and [serve] are serve's (it checks them); local mail
 * takes one key from there, mailroot, so that serve and the queue write
 * into the same Maildirs from one setting. */
static bool serve_key(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct send_opts *o = arg;
	if (strcmp(key, "mailroot") || !value[0])
		return true;
	if (!(o->mailroot = keep(o, value))) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	return true;
}

int send_config_load(struct send_opts *o, const char *given)
{
	const char *path = config_file_choose(given, getenv("RAWMAIL_CONF"), CONFIG_FILE_DEFAULT);
	if (!path)
		return 0;
	struct section_arg send = { o, SECTION_SEND }, delivery = { o, SECTION_DELIVERY },
			   queue = { o, SECTION_QUEUE }, dkim = { o, SECTION_DKIM };
	/* Keys at the top and in [serve] are serve's (the file began as
	 * serve's alone). */
	const struct config_file_section sections[] = {
		{ "", serve_key, o },
		{ "serve", serve_key, o },
		{ "send", section_key, &send },
		{ "delivery", section_key, &delivery },
		{ "queue", section_key, &queue },
		{ "routes", routes_key, o },
		{ "dkim", section_key, &dkim },
		{ "mqtt", NULL, NULL },            /* serve's bridge (issue 12) */
	};
	char err[768];
	if (!config_file_read(path, sections, sizeof(sections) / sizeof(sections[0]), err,
	                      sizeof(err))) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return SEND_EXIT_CONFIG;
	}
	o->config = path;
	if (o->from) {
		char where[300];
		snprintf(where, sizeof(where), "from in %s", path);
		o->from_where = keep(o, where);
		o->from_file = true;
		if (!o->from_where) {
			fprintf(stderr, "%s: out of memory\n", o->prog);
			return SEND_EXIT_OSERR;
		}
	}
	if (!o->spool)
		o->spool = o->queue.spool;
	if (!o->aliases)
		o->aliases = o->queue.aliases;
	return 0;
}
