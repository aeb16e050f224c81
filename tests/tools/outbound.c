/* tool_outbound [--port N] [--tls none|opportunistic|require] [--dns ADDR[:PORT]]
 *               [--parallel N] [--per-address N] [--idle-ms MS] [--timeout S]
 *               [--helo NAME] [-v] MESSAGE...
 *   MESSAGE:  [+] FILE SENDER RCPT[,RCPT...]
 *
 * Several messages on one outbound engine (src/client/outbound.c), on one
 * event loop: every MESSAGE is submitted before the loop runs, except one
 * marked "+", which is submitted from inside the done callback of the
 * first message to finish (as a queue runner does).  FILE is the message
 * as is; SENDER "" is the null sender.  Each recipient may be written
 * "RCPT=ORIGINAL" to pass an original spelling.  Prints, as it happens:
 *     submitted K in_flight=N
 *     done K in_flight=N                 (messages still in flight after K)
 *     K ADDR STATE CODE ENHANCED host=H ip=I original=O flags=F TEXT
 * (K counts MESSAGEs from 1 in argument order; ENHANCED, H, I, O "-" when
 * none; F a comma list of connect_timeouts_only, certificate_refused, or
 * "-"; TEXT the first line of the reply, or the reason), then "all done".
 * With -v the transcript on stderr.  Exits 0; 64 on a usage error; 1 when
 * the engine cannot be made or a submit fails (the reason on stderr).
 * Only for tests/integration/test_outbound.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>

#include <event2/event.h>

#include "client/outbound.h"

#define MAX_MESSAGES 64
#define MAX_RCPTS 64
#define MAX_MESSAGE (64 * 1024 * 1024)

struct message {
	int k;
	bool chained;
	char *data;
	size_t len;
	const char *sender;
	char *rcpt_text;
	const char *rcpts[MAX_RCPTS];
	const char *originals[MAX_RCPTS];
	size_t n;
	struct client_outbound_message m;
};

struct run {
	struct event_base *base;
	struct client_outbound *engine;
	struct message msgs[MAX_MESSAGES];
	size_t nmsgs;
	size_t pending;          /* messages not done yet, chained ones included */
	bool chained_sent;
	int status;
};

static struct run run;

static const char *state_name(enum client_rcpt_state st)
{
	switch (st) {
	case CLIENT_RCPT_PENDING:
		return "PENDING";
	case CLIENT_RCPT_DELIVERED:
		return "DELIVERED";
	case CLIENT_RCPT_TEMPFAIL:
		return "TEMPFAIL";
	case CLIENT_RCPT_PERMFAIL:
		return "PERMFAIL";
	case CLIENT_RCPT_DEFERRED:
		return "DEFERRED";
	}
	return "?";
}

static void transcript_cb(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

static bool submit(struct message *m);

static void done_cb(void *arg, const struct client_result *res, size_t n)
{
	struct message *m = arg;
	printf("done %d in_flight=%zu\n", m->k, client_outbound_in_flight(run.engine));
	for (size_t i = 0; i < n; i++) {
		const struct client_result *r = &res[i];
		const char *text = r->text && r->text[0] ? r->text : r->reason[0] ? r->reason : "-";
		char flags[64];
		snprintf(flags, sizeof(flags), "%s%s%s",
		         r->connect_timeouts_only ? "connect_timeouts_only" : "",
		         r->connect_timeouts_only && r->certificate_refused ? "," : "",
		         r->certificate_refused ? "certificate_refused" : "");
		printf("%d %s %s %d %s host=%s ip=%s original=%s flags=%s %.*s\n", m->k, r->address,
		       state_name(r->state), r->code, r->enhanced[0] ? r->enhanced : "-",
		       r->host[0] ? r->host : "-", r->ip[0] ? r->ip : "-",
		       r->original ? r->original : "-", flags[0] ? flags : "-",
		       (int)strcspn(text, "\n"), text);
	}
	fflush(stdout);
	run.pending--;
	if (!run.chained_sent) {
		run.chained_sent = true;
		for (size_t i = 0; i < run.nmsgs; i++)
			if (run.msgs[i].chained && !submit(&run.msgs[i]))
				run.pending--;
	}
	if (run.pending == 0)
		event_base_loopbreak(run.base);
}

static bool submit(struct message *m)
{
	char err[512];
	m->m = (struct client_outbound_message){
		.sender = m->sender,
		.data = m->data,
		.len = m->len,
		.recipients = m->rcpts,
		.originals = m->originals,
		.nrecipients = m->n,
	};
	if (client_outbound_submit(run.engine, &m->m, done_cb, m, err, sizeof(err)) !=
	    CLIENT_OUTBOUND_SUBMITTED) {
		fprintf(stderr, "tool_outbound: message %d: %s\n", m->k, err);
		run.status = 1;
		return false;
	}
	printf("submitted %d in_flight=%zu\n", m->k, client_outbound_in_flight(run.engine));
	fflush(stdout);
	return true;
}

static bool read_file(const char *path, struct message *m)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	long size = -1;
	if (fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	rewind(f);
	if (size < 0 || size > MAX_MESSAGE) {
		fclose(f);
		return false;
	}
	m->data = malloc((size_t)size + 1);
	if (m->data)
		m->len = fread(m->data, 1, (size_t)size, f);
	fclose(f);
	return m->data != NULL;
}

static bool split_rcpts(struct message *m, const char *list)
{
	m->rcpt_text = strdup(list);
	if (!m->rcpt_text)
		return false;
	char *p = m->rcpt_text;
	while (*p) {
		if (m->n == MAX_RCPTS)
			return false;
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		char *eq = strchr(p, '=');
		if (eq)
			*eq = '\0';
		m->rcpts[m->n] = p;
		m->originals[m->n] = eq ? eq + 1 : p;
		m->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return m->n > 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: tool_outbound [--port N] [--tls MODE] [--dns ADDR] [--parallel N] "
	                "[--per-address N] [--idle-ms MS] [--timeout S] [--helo NAME] [-v] "
	                "[+] FILE SENDER RCPT[,RCPT...]...\n");
	return 64;
}

int main(int argc, char **argv)
{
	struct client_outbound_config cfg = {
		.tls = CLIENT_TLS_NONE,
		.helo = "tool.test",
		.transcript = NULL,
	};
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-v")) {
			cfg.transcript = transcript_cb;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (!strcmp(a, "--port"))
			cfg.port = (unsigned short)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--dns"))
			cfg.dns = v;
		else if (!strcmp(a, "--parallel"))
			cfg.parallel = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--per-address"))
			cfg.connections_per_address = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--idle-ms"))
			cfg.idle_ms = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--timeout"))
			cfg.timeout = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--helo"))
			cfg.helo = v;
		else if (!strcmp(a, "--tls"))
			cfg.tls = !strcmp(v, "none")            ? CLIENT_TLS_NONE
			          : !strcmp(v, "opportunistic") ? CLIENT_TLS_OPPORTUNISTIC
			                                        : CLIENT_TLS_REQUIRE;
		else
			return usage();
	}
	while (i < argc) {
		if (run.nmsgs == MAX_MESSAGES)
			return usage();
		struct message *m = &run.msgs[run.nmsgs];
		m->k = (int)run.nmsgs + 1;
		if (!strcmp(argv[i], "+")) {
			m->chained = true;
			i++;
		}
		if (i + 3 > argc)
			return usage();
		if (!read_file(argv[i], m)) {
			fprintf(stderr, "tool_outbound: cannot read %s\n", argv[i]);
			return 64;
		}
		m->sender = argv[i + 1];
		if (!split_rcpts(m, argv[i + 2]))
			return usage();
		i += 3;
		run.nmsgs++;
	}
	if (run.nmsgs == 0)
		return usage();

	signal(SIGPIPE, SIG_IGN);
	run.base = event_base_new();
	char err[512];
	run.engine = run.base ? client_outbound_new(run.base, &cfg, err, sizeof(err)) : NULL;
	if (!run.engine) {
		fprintf(stderr, "tool_outbound: %s\n", run.base ? err : "out of memory");
		return 1;
	}
	run.pending = run.nmsgs;
	for (size_t k = 0; k < run.nmsgs; k++)
		if (!run.msgs[k].chained && !submit(&run.msgs[k]))
			run.pending--;
	if (client_outbound_in_flight(run.engine) > 0)
		event_base_dispatch(run.base);
	struct client_pool_stats st;
	client_outbound_stats(run.engine, &st);
	printf("stats connections=%zu reused=%zu\n", st.connections, st.reused);
	printf("all done\n");
	client_outbound_free(run.engine);
	event_base_free(run.base);
	for (size_t k = 0; k < run.nmsgs; k++) {
		free(run.msgs[k].data);
		free(run.msgs[k].rcpt_text);
	}
	return run.status;
}
