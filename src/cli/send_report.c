/* What `rawmail send` tells its user (send.h): one result per recipient
 * on stderr, with the peer's whole reply and, for a known refusal, its
 * likely cause and fix; the --dry-run plan on stdout; the exit status. */
#include "cli/send.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "msg/explain.h"
#include "util/text.h"

/* Writes text to out through the one escaper (util/text.h): a peer's
 * reply, a host name from DNS or a TLS reason can never act on the
 * terminal (issue 8 item 14).  Line breaks stay. */
void send_print_safe(FILE *out, const char *text, size_t len)
{
	/* text_escape stops between characters when chunk is full, so a
	 * UTF-8 character is never cut into escapes. */
	char chunk[2048];
	while (len > 0) {
		size_t used = text_escape(chunk, sizeof(chunk), text, len, TEXT_KEEP_NEWLINE);
		fputs(chunk, out);
		text += used;
		len -= used;
	}
}

/* A report is written into memory (open_memstream), then printed
 * escaped as a whole. */
struct report_mem {
	char *data;
	size_t len;
	FILE *f;
};

static FILE *report_mem_open(struct report_mem *m)
{
	*m = (struct report_mem){ 0 };
	m->f = open_memstream(&m->data, &m->len);
	return m->f;
}

static void report_mem_print(struct report_mem *m, FILE *out)
{
	fclose(m->f);
	send_print_safe(out, m->data, m->len);
	free(m->data);
}

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

/* A certificate our check refused (client_result's certificate_refused):
 * its reason ends with the peer's fingerprint. */
#define TLS_REASON_FP_MAX 80

bool send_result_certificate_refused(const struct client_result *r, char *fp, size_t fplen)
{
	if (!r->certificate_refused ||
	    (r->state != CLIENT_RCPT_TEMPFAIL && r->state != CLIENT_RCPT_DEFERRED))
		return false;
	const char *f = strstr(r->reason, "SHA256:");
	size_t n = f ? strspn(f + 7, "0123456789abcdefABCDEF:") : 0;
	if (fp && f)
		snprintf(fp, fplen, "SHA256:%.*s", (int)n, f + 7);
	else if (fp && fplen > 0)
		fp[0] = '\0';
	return true;
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

static void report_result(FILE *out, const struct client_result *r, unsigned short port)
{
	/* "delivered to mx [ip]", "refused (permanent) by mx [ip]", "not
	 * delivered (temporary failure) at mx [ip]", or the domain when no
	 * host was reached. */
	const char *what = state_words(r->state);
	const char *prep = r->state == CLIENT_RCPT_DELIVERED  ? "to"
	                   : r->state == CLIENT_RCPT_PERMFAIL ? "by"
	                                                      : "at";
	char where[400] = "", at_port[8] = "";
	/* A relay or route: named, "delivered via relay smtp.example.net
	 * [192.0.2.1]:587", its port always shown. */
	if (r->via[0]) {
		port = r->port ? r->port : port;
		prep = r->state == CLIENT_RCPT_DELIVERED ? "via" : prep;
	}
	if (port != 25 || r->via[0])
		snprintf(at_port, sizeof(at_port), ":%u", port);   /* Postfix's relay=host[ip]:port */
	char by[16] = "";
	if (r->via[0])
		snprintf(by, sizeof(by), "%s ", r->via);
	if (r->ip[0] && r->host[0] != '[' && strcmp(r->host, r->ip) != 0)
		snprintf(where, sizeof(where), " %s %s%s [%s]%s", prep, by, r->host, r->ip, at_port);
	else if (r->ip[0])
		snprintf(where, sizeof(where), " %s %s[%s]%s", prep, by, r->ip, at_port);
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
		const struct msg_explanation *e =
			r->code ? msg_reply_explain(r->code, r->enhanced, r->text) : NULL;
		if (e) {
			fprintf(out, "  likely cause: %s\n", e->cause);
			fprintf(out, "  fix: %s\n", e->fix);
		}
		if (r->auth_failed && r->code)
			fprintf(out, "  %s\n", r->reason);
		if (r->auth_failed)
			fprintf(out, "  fix: check --auth-user and the password in --auth-password-file "
			             "(auth-user, auth-password-file in [delivery]); the message stays in "
			             "the queue and goes once they are right\n");
		char fp[TLS_REASON_FP_MAX];
		if (send_result_certificate_refused(r, fp, sizeof(fp)) && fp[0]) {
			if (strncmp(r->reason, "certificate fingerprint", 23) == 0)
				fprintf(out, "  fix: check the --tls-fingerprint value; the server presented "
				             "%s\n", fp);
			else
				fprintf(out,
				        "  fix: if you trust this server's certificate as it is (self-signed, a "
				        "LAN or test server), pin it instead of --tls verify: --tls-fingerprint "
				        "%s\n", fp);
		}
		if (r->connect_timeouts_only)
			fprintf(out,
			        "  every address timed out while connecting: outgoing port %u is probably\n"
			        "  blocked by your network or provider (many ISPs and clouds block port 25);\n"
			        "  relay through your provider's submission server (rawmail send --relay\n"
			        "  smtp.example.net --auth-user USER --auth-password-file FILE), try from\n"
			        "  another network, or ask the provider to unblock it\n",
			        port);
	}
}

static void report_plan(FILE *out, const char *destination, const struct dns_lookup_addr *addrs,
                        size_t n, const char *family_note, const char *via, unsigned short port)
{
	if (n == 0) {
		fprintf(out, "%s: no delivery possible (see the result below)\n", destination);
		return;
	}
	fprintf(out, via ? "%s: via %s\n" : "%s:\n", destination, via);
	for (size_t i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN];
		if (!inet_ntop(addrs[i].family, addrs[i].addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		if (via && strcmp(addrs[i].host, ip) != 0)
			fprintf(out, "  %zu. %s [%s]:%u\n", i + 1, addrs[i].host, ip, port);
		else if (via)
			fprintf(out, "  %zu. [%s]:%u\n", i + 1, ip, port);
		else if (destination[0] == '[' && port == 25)
			fprintf(out, "  %zu. %s (address literal)\n", i + 1, ip);
		else if (destination[0] == '[')
			fprintf(out, "  %zu. [%s]:%u (address literal)\n", i + 1, ip, port);
		else if (port == 25)
			fprintf(out, "  %zu. %s [%s] (MX preference %u)\n", i + 1, addrs[i].host, ip,
			        addrs[i].preference);
		else
			fprintf(out, "  %zu. %s [%s]:%u (MX preference %u)\n", i + 1, addrs[i].host, ip,
			        port, addrs[i].preference);
	}
	if (family_note && family_note[0])
		fprintf(out, "  note: %s\n", family_note);
}

void send_report_result(FILE *out, const struct client_result *r, unsigned short port)
{
	struct report_mem m;
	if (!report_mem_open(&m)) {
		fputs("(a result could not be shown: out of memory)\n", out);
		return;
	}
	report_result(m.f, r, port);
	report_mem_print(&m, out);
}

void send_report_plan(FILE *out, const char *destination, const struct dns_lookup_addr *addrs,
                      size_t n, const char *family_note, const char *via, unsigned short port)
{
	struct report_mem m;
	if (!report_mem_open(&m)) {
		fputs("(the plan could not be shown: out of memory)\n", out);
		return;
	}
	report_plan(m.f, destination, addrs, n, family_note, via, port);
	report_mem_print(&m, out);
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
