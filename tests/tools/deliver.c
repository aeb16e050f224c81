/* tool_deliver [--tls none|opportunistic|require|verify] [--cafile FILE]
 *              [--servername NAME] [--pin SHA256:HEX]... [-v] [--timeout S]
 *              [--helo NAME] --from ADDR --to ADDR [--to ADDR]... HOST:PORT < message
 *
 * One delivery attempt with client_deliver_start (src/client/deliver.c) to
 * an IPv4 address (1.2.3.4:25) or an IPv6 one ([::1]:25), the message read
 * from stdin as is.  --tls verify is require plus tls_verify, against
 * --cafile's CAs or the system's; --servername is the request's
 * tls_servername (SNI, and the name verified; none: the address is
 * verified); each --pin adds one tls_pins entry.  Prints one line per
 * recipient, in argument order:
 *     ADDR STATE CODE ENHANCED TEXT
 * (ENHANCED "-" when none, TEXT the first line of the deciding reply, "-"
 * when none), then
 *     result END connected=yes|no tls=yes|no tls_failed=yes|no greeting=CODE reason=TEXT
 * and with -v the transcript on stderr.  Exits 0 (64 on a usage error, 1
 * when the TLS context cannot be made, e.g. an unreadable --cafile).
 * Only for the integration tests (tests/integration/test_deliver.py) until
 * `rawmail send` exists. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "client/deliver.h"
#include "net/fingerprint.h"
#include "net/tls.h"

#define MAX_RCPTS 64
#define MAX_PINS 8
#define MAX_MESSAGE (64 * 1024 * 1024)

struct run {
	struct event_base *base;
	struct client_rcpt *rcpts;
	size_t n;
	bool done;
};

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
	fprintf(stderr, "%s\n", line);
}

static void done_cb(void *arg, const struct client_deliver_result *res)
{
	struct run *r = arg;
	for (size_t i = 0; i < r->n; i++) {
		const struct client_rcpt *c = &r->rcpts[i];
		const char *text = c->text && c->text[0] ? c->text : "-";
		size_t tl = strcspn(text, "\n");
		printf("%s %s %d %s %.*s\n", c->address, state_name(c->state), c->code,
		       c->enhanced[0] ? c->enhanced : "-", (int)tl, text);
	}
	printf("result %s connected=%s tls=%s tls_failed=%s greeting=%d reason=%s\n",
	       client_deliver_end_name(res->end), res->connected ? "yes" : "no",
	       res->tls ? "yes" : "no", res->tls_failed ? "yes" : "no", res->greeting_code,
	       res->fail_reason ? res->fail_reason : "-");
	r->done = true;
	event_base_loopbreak(r->base);
}

static bool parse_target(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return false;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535)
		return false;
	memset(ss, 0, sizeof(*ss));
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host + 1, &s6->sin6_addr) == 1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	*len = sizeof(*s4);
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
}

static char *read_stdin(size_t *len)
{
	struct buf b;
	buf_init(&b, MAX_MESSAGE);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (buf_append(&b, chunk, n) != 0) {
			buf_free(&b);
			return NULL;
		}
	}
	if (ferror(stdin)) {
		buf_free(&b);
		return NULL;
	}
	char *data = buf_release(&b, len);
	if (!data) {
		data = calloc(1, 1);
		*len = 0;
	}
	return data;
}

static int usage(void)
{
	fprintf(stderr, "usage: tool_deliver [--tls none|opportunistic|require|verify] "
	                "[--cafile FILE] [--servername NAME] [--pin SHA256:HEX]... [-v] "
	                "[--timeout S] [--helo NAME] --from ADDR --to ADDR [--to ADDR]... "
	                "HOST:PORT < message\n");
	return 64;
}

int main(int argc, char **argv)
{
	struct client_session_config cfg = { .helo = "client.test", .tls = CLIENT_TLS_OPPORTUNISTIC };
	const char *from = NULL;
	struct client_rcpt rcpts[MAX_RCPTS];
	size_t n = 0;
	bool verbose = false;
	bool verify = false;
	const char *cafile = NULL;
	const char *servername = NULL;
	unsigned char pins[MAX_PINS][TLS_FINGERPRINT_LEN];
	size_t npins = 0;
	int timeout = 30;
	int i = 1;

	memset(rcpts, 0, sizeof(rcpts));
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		bool has = i + 1 < argc;
		if (!strcmp(a, "-v")) {
			verbose = true;
		} else if (!strcmp(a, "--tls") && has) {
			const char *m = argv[++i];
			if (!strcmp(m, "none"))
				cfg.tls = CLIENT_TLS_NONE;
			else if (!strcmp(m, "opportunistic"))
				cfg.tls = CLIENT_TLS_OPPORTUNISTIC;
			else if (!strcmp(m, "require"))
				cfg.tls = CLIENT_TLS_REQUIRE;
			else if (!strcmp(m, "verify"))
				cfg.tls = CLIENT_TLS_REQUIRE;
			else
				return usage();
			verify = !strcmp(m, "verify");
		} else if (!strcmp(a, "--cafile") && has) {
			cafile = argv[++i];
		} else if (!strcmp(a, "--servername") && has) {
			servername = argv[++i];
		} else if (!strcmp(a, "--pin") && has) {
			if (npins == MAX_PINS || !tls_fingerprint_parse(argv[++i], pins[npins]))
				return usage();
			npins++;
		} else if (!strcmp(a, "--timeout") && has) {
			char *end;
			long t = strtol(argv[++i], &end, 10);
			if (*end || t <= 0 || t > 3600)
				return usage();
			timeout = (int)t;
		} else if (!strcmp(a, "--helo") && has) {
			cfg.helo = argv[++i];
		} else if (!strcmp(a, "--from") && has) {
			from = argv[++i];
		} else if (!strcmp(a, "--to") && has) {
			if (n == MAX_RCPTS)
				return usage();
			rcpts[n++].address = argv[++i];
		} else {
			return usage();
		}
	}
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (!from || n == 0 || i + 1 != argc || !parse_target(argv[i], &ss, &sslen))
		return usage();

	size_t msglen = 0;
	char *msg = read_stdin(&msglen);
	if (!msg) {
		fprintf(stderr, "tool_deliver: cannot read the message\n");
		return 1;
	}
	cfg.message_size = msglen;
	for (size_t k = 0; k < msglen; k++)
		if ((unsigned char)msg[k] >= 0x80)
			cfg.eightbit = true;

	char err[256];
	SSL_CTX *ctx = NULL;
	if (cfg.tls != CLIENT_TLS_NONE) {
		ctx = tls_client_ctx_new(verify, cafile, err, sizeof(err));
		if (!ctx) {
			fprintf(stderr, "tool_deliver: %s\n", err);
			free(msg);
			return 1;
		}
	}
	struct event_base *base = event_base_new();
	struct run run = { .base = base, .rcpts = rcpts, .n = n };
	struct client_deliver_request req = {
		.base = base,
		.tls_ctx = ctx,
		.tls_servername = servername,
		.tls_verify = verify,
		/* The cast adds const to the array elements, which C17 does not
		 * do implicitly for a pointer to an array. */
		.tls_pins = npins > 0 ? (const unsigned char (*)[TLS_FINGERPRINT_LEN])pins : NULL,
		.tls_npins = npins,
		.addr = (struct sockaddr *)&ss,
		.addrlen = sslen,
		.cfg = &cfg,
		.sender = from,
		.rcpts = rcpts,
		.nrcpts = n,
		.message = msg,
		.message_len = msglen,
		.timeout = timeout,
		.final_timeout = timeout,
		.transcript = verbose ? transcript_cb : NULL,
		.done = done_cb,
		.arg = &run,
	};
	int rc = 0;
	if (!base || !client_deliver_start(&req)) {
		fprintf(stderr, "tool_deliver: cannot start\n");
		rc = 1;
	} else {
		event_base_dispatch(base);
		if (!run.done) {
			fprintf(stderr, "tool_deliver: event loop ended without a result\n");
			rc = 1;
		}
	}
	for (size_t k = 0; k < n; k++)
		free(rcpts[k].text);
	if (base)
		event_base_free(base);
	SSL_CTX_free(ctx);
	free(msg);
	return rc;
}
