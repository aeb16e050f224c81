/* What `rawmail send` tells its user (send.h): one result per recipient
 * on stderr, with the peer's whole reply and, for a known refusal, its
 * likely cause and fix; the --dry-run plan on stdout; the exit status. */
#include "cli/send.h"

#include <arpa/inet.h>
#include <string.h>

#include "client/explain.h"

/* The reply as the peer sent it: "550-5.7.1 first", "550 5.7.1 last".
 * The parser kept each line's text after the code and separator. */
static void print_reply(FILE *out, int code, const char *text, const char *indent)
{
	const char *p = text ? text : "";
	do {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		fprintf(out, "%s%03d%c%.*s\n", indent, code, nl ? '-' : ' ', (int)n, p);
		p = nl ? nl + 1 : NULL;
	} while (p);
}

static const char *state_words(enum client_rcpt_state st)
{
	switch (st) {
	case CLIENT_RCPT_DELIVERED:
		return "delivered";
	case CLIENT_RCPT_PERMFAIL:
		return "refused (permanent)";
	case CLIENT_RCPT_TEMPFAIL:
	case CLIENT_RCPT_DEFERRED:
		return "not delivered (temporary failure)";
	case CLIENT_RCPT_PENDING:
		return "planned";
	}
	return "?";
}

void send_report_result(FILE *out, const struct client_result *r, unsigned short port)
{
	/* "delivered to mx [ip]", "refused (permanent) by mx [ip]", "not
	 * delivered (temporary failure) at mx [ip]", or the domain when no
	 * host was reached. */
	const char *what = state_words(r->state);
	const char *prep = r->state == CLIENT_RCPT_DELIVERED  ? "to"
	                   : r->state == CLIENT_RCPT_PERMFAIL ? "by"
	                                                      : "at";
	char where[400] = "";
	if (r->ip[0] && r->host[0] != '[' && strcmp(r->host, r->ip) != 0)
		snprintf(where, sizeof(where), " %s %s [%s]", prep, r->host, r->ip);
	else if (r->ip[0])
		snprintf(where, sizeof(where), " %s [%s]", prep, r->ip);
	else if (r->host[0])
		snprintf(where, sizeof(where), " for %s", r->host);

	/* A peer's text starts with its enhanced code; a refusal rawmail
	 * made itself (SIZE, SMTPUTF8) has the code apart. */
	size_t el = strlen(r->enhanced);
	bool code_apart = el > 0 && r->text && strncmp(r->text, r->enhanced, el) != 0;
	if (r->code && r->text && !strchr(r->text, '\n')) {
		/* One-line reply: all on one line, as a user would paste it. */
		fprintf(out, "%s: %s%s: %03d %s%s%s\n", r->address, what, where, r->code,
		        code_apart ? r->enhanced : "", code_apart ? " " : "", r->text);
	} else if (r->code && r->text) {
		fprintf(out, "%s: %s%s:\n", r->address, what, where);
		print_reply(out, r->code, r->text, "    ");
	} else if (r->code) {
		fprintf(out, "%s: %s%s: %03d %s%s%s\n", r->address, what, where, r->code, r->enhanced,
		        r->enhanced[0] ? " " : "", r->reason);
	} else {
		fprintf(out, "%s: %s%s: %s%s%s\n", r->address, what, where, r->enhanced,
		        r->enhanced[0] ? " " : "", r->reason[0] ? r->reason : "failed");
	}

	if (r->state == CLIENT_RCPT_TEMPFAIL || r->state == CLIENT_RCPT_PERMFAIL) {
		const struct client_explanation *e =
			r->code ? client_reply_explain(r->code, r->enhanced, r->text) : NULL;
		if (e) {
			fprintf(out, "  likely cause: %s\n", e->cause);
			fprintf(out, "  fix: %s\n", e->fix);
		}
		if (r->connect_timeouts_only)
			fprintf(out,
			        "  every address timed out while connecting: outgoing port %u is probably\n"
			        "  blocked by your network or provider (many ISPs and clouds block port 25);\n"
			        "  try from another network, or ask the provider to unblock it\n",
			        port);
	}
}

void send_report_plan(FILE *out, const char *destination, const struct dns_lookup_addr *addrs,
                      size_t n, const char *family_note)
{
	if (n == 0) {
		fprintf(out, "%s: no delivery possible (see the result below)\n", destination);
		return;
	}
	fprintf(out, "%s:\n", destination);
	for (size_t i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN];
		if (!inet_ntop(addrs[i].family, addrs[i].addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		if (destination[0] == '[')
			fprintf(out, "  %zu. %s (address literal)\n", i + 1, ip);
		else
			fprintf(out, "  %zu. %s [%s] (MX preference %u)\n", i + 1, addrs[i].host, ip,
			        addrs[i].preference);
	}
	if (family_note && family_note[0])
		fprintf(out, "  note: %s\n", family_note);
}

int send_exit_status(const struct client_result *r, size_t n, bool dry_run)
{
	bool temp = false, perm = false;
	for (size_t i = 0; i < n; i++) {
		switch (r[i].state) {
		case CLIENT_RCPT_DELIVERED:
			break;
		case CLIENT_RCPT_PENDING:
			temp |= !dry_run;
			break;
		case CLIENT_RCPT_TEMPFAIL:
		case CLIENT_RCPT_DEFERRED:
			temp = true;
			break;
		case CLIENT_RCPT_PERMFAIL:
			perm = true;
			break;
		}
	}
	return temp ? SEND_EXIT_TEMPFAIL : perm ? SEND_EXIT_UNAVAILABLE : SEND_EXIT_OK;
}
