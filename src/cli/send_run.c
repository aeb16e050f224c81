/* rawmail send after its options: the message prepared (send_prepare.c),
 * then queued and delivered in the foreground, or with --no-queue and
 * --dry-run delivered only; the report (send.h).  The sendmail entry's
 * queue-and-kick is send_submit.c's. */
#include "cli/send.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli/local.h"
#include "client/outbound.h"

static void transcript_line(void *arg, const char *line)
{
	send_print_safe(stderr, line, strlen(line));
	fputc('\n', stderr);
}

static void plan_line(void *arg, const char *destination, const struct dns_lookup_addr *addrs,
                      size_t n, const char *note, const char *via, unsigned short via_port)
{
	const struct send_opts *o = arg;
	send_report_plan(stdout, destination, addrs, n, note, via, via ? via_port : o->delivery.port);
}

/* The engine's settings from send's options. */
void send_engine_config(struct send_opts *o, struct client_outbound_config *cfg)
{
	*cfg = cli_delivery_engine_config(&o->delivery);
	cfg->dry_run = o->dry_run;
	cfg->plan = plan_line;
	cfg->transcript = o->verbose ? transcript_line : NULL;
	cfg->transcript_body = o->verbose >= 2;
	cfg->arg = o;
}

/* The one message's outcome, reported as it comes. */
struct send_outcome {
	struct send_opts *o;
	struct event_base *base;
	struct send_entry *entry;    /* the queued copy, or NULL (--no-queue) */
	int rc;
};

static void report(void *arg, const struct client_result *res, size_t n)
{
	struct send_outcome *out = arg;
	struct send_opts *o = out->o;
	fflush(stdout);
	size_t temp = 0, certificate = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(o->dry_run && res[i].state == CLIENT_RCPT_PENDING))
			send_report_result(stderr, &res[i], o->delivery.port);
		temp += res[i].state == CLIENT_RCPT_TEMPFAIL || res[i].state == CLIENT_RCPT_DEFERRED;
		certificate += send_result_certificate_refused(&res[i], NULL, 0);
	}
	out->rc = send_exit_status(res, n, o->dry_run);
	if (out->entry) {
		out->rc = send_entry_settle(o, out->entry, res, n, out->rc);
	} else if (temp > 0 && !o->dry_run) {
		/* A refused certificate stays refused: "send again later"
		 * would send the user round in circles. */
		fprintf(stderr,
		        "%s: %zu of %zu recipient%s not delivered and not queued (--no-queue): %s\n",
		        o->prog, temp, n, n == 1 ? "" : "s",
		        certificate == temp ? "sending again will fail the same way until the "
		                              "certificate problem above is solved"
		                            : "send again later");
	}
	event_base_loopbreak(out->base);
}

/* Options -> engine -> one message -> the loop -> the report. */
static int deliver_all(struct send_opts *o, const char *sender, const struct buf *msg,
                       char **rcpts, char **originals, size_t n, struct send_entry *entry)
{
	struct send_outcome out = { .o = o, .entry = entry, .rc = SEND_EXIT_TEMPFAIL };
	struct client_outbound *engine = NULL;
	char err[512];
	out.base = event_base_new();
	if (!out.base) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		return SEND_EXIT_OSERR;
	}
	/* A peer that closes while we write must be a result line, not a
	 * death by SIGPIPE (OpenSSL and libevent write with plain write()). */
	signal(SIGPIPE, SIG_IGN);
	struct client_outbound_config cfg;
	send_engine_config(o, &cfg);
	engine = client_outbound_new(out.base, &cfg, err, sizeof(err));
	if (!engine) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		out.rc = !o->delivery.cafile                            ? SEND_EXIT_OSERR
		         : o->delivery.cafile_source == CLI_FROM_FILE ? SEND_EXIT_CONFIG
		                                                      : SEND_EXIT_USAGE;
		goto done;
	}
	struct client_outbound_message m = {
		.sender = sender,
		.data = msg->data ? msg->data : "",
		.len = msg->len,
		.recipients = (const char *const *)rcpts,
		.originals = (const char *const *)originals,
		.nrecipients = n,
	};
	switch (client_outbound_submit(engine, &m, report, &out, err, sizeof(err))) {
	case CLIENT_OUTBOUND_SUBMITTED:
		event_base_dispatch(out.base);
		break;
	case CLIENT_OUTBOUND_ERR_DNS:
		fprintf(stderr, "%s: %s\n", o->prog, err);
		out.rc = o->delivery.dns ? SEND_EXIT_USAGE : SEND_EXIT_TEMPFAIL;
		break;
	case CLIENT_OUTBOUND_ERR_EMPTY:
		fprintf(stderr, "%s: %s\n", o->prog, err);
		out.rc = SEND_EXIT_USAGE;
		break;
	case CLIENT_OUTBOUND_ERR_MEMORY:
		fprintf(stderr, "%s: %s\n", o->prog, err);
		out.rc = SEND_EXIT_OSERR;
		break;
	}
done:
	client_outbound_free(engine);
	event_base_free(out.base);
	return out.rc;
}

int send_run(struct send_opts *o)
{
	/* The sendmail entry: queued, a runner kicked, exit. */
	if (o->background)
		return send_submit(o);
	struct send_prepared p;
	int rc = send_prepare(o, &p);
	if (rc != 0)
		goto out;
	char **addrs = p.list.addrs;
	size_t n = p.list.count;
	struct cli_local_names names;
	cli_local_names_init(&names);
	const char *local = NULL;
	for (size_t i = 0; i < n && !local; i++) {
		char name[SMTP_PATH_MAX + 1];
		if (!strchr(addrs[i], '@') || cli_local_domain(&names, addrs[i], name, sizeof(name)))
			local = addrs[i];
	}
	if (local && (o->no_queue || o->dry_run)) {
		fprintf(stderr, "%s: '%s' is local: local mail is delivered through the queue, not "
		                "with %s\n",
		        o->prog, local, o->no_queue ? "--no-queue" : "--dry-run");
		rc = SEND_EXIT_USAGE;
		goto out;
	}
	if (o->no_queue || o->dry_run) {
		rc = deliver_all(o, p.sender, &p.msg, addrs, p.originals, n, NULL);
		goto out;
	}
	/* Queued durably first (issue 9); then the first attempt, here in
	 * the foreground. */
	struct send_entry entry;
	rc = send_entry_enqueue(o, &entry, p.sender, &p.msg, (const char *const *)addrs,
	                        (const char *const *)p.originals, n);
	if (rc == 0 && local && entry.drop) {
		/* Only the system's queue can write the mail root. */
		rc = send_entry_drop_all(o, &entry);
		send_entry_close(&entry);
		goto out;
	}
	if (rc == 0 && local) {
		/* Local recipients: the first attempt is a queue pass over this
		 * entry, whose deliverer splits local from remote (the same
		 * path as queue run and the sendmail entry's background run). */
		char id[QUEUE_ID_MAX + 1];
		snprintf(id, sizeof(id), "%s", entry.env.id);
		bool queued = send_entry_durable(&entry);
		if (!queued)
			fprintf(stderr, "%s: not sent: the message could not be queued: spool %s: "
			                "syncfs: %s\n",
			        o->prog, entry.dir, strerror(entry.sync_err));
		send_entry_close(&entry);
		rc = queued ? send_queue_first_pass(o, id) : SEND_EXIT_TEMPFAIL;
		goto out;
	}
	if (rc == 0)
		rc = deliver_all(o, p.sender, &p.msg, addrs, p.originals, n, &entry);
	send_entry_close(&entry);
out:
	send_prepared_free(&p);
	return rc;
}
