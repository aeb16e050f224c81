/* rawmail send and the sendmail entry after their options, before any
 * delivery: every address checked (nothing is sent when one is
 * malformed), the envelope sender, the message read and built, and -t's
 * recipients (send.h).  No delivery engine here: the sendmail entry's
 * small program (sendmail_main.c) links this file. */
#include "cli/send.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns/mx.h"
#include "smtp/address.h"
#include "util/hostname.h"

static bool has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

/* What a user most likely meant by an address that does not parse, as a
 * sentence that teaches the rule, or NULL:
 * - "-v", "--port": an option after a recipient (options end at the first
 *   recipient, so that an address a program passes never becomes one);
 * - "x@[::1]": an IPv6 literal without its tag (RFC 5321 §4.1.3). */
static const char *address_hint(const char *prog, const char *in, char *buf, size_t buflen)
{
	if (in[0] == '-' && !strchr(in, '@')) {
		snprintf(buf, buflen, "looks like an option, but options come before recipients "
		                      "(%s [options] recipient...)", prog);
		return buf;
	}
	const char *at = strrchr(in, '@');
	if (!at || at[1] != '[')
		return NULL;
	const char *lit = at + 2;
	const char *end = strchr(lit, ']');
	char ip[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	size_t n = end ? (size_t)(end - lit) : 0;
	if (n == 0 || n >= sizeof(ip))
		return NULL;
	memcpy(ip, lit, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET6, ip, bin) != 1)
		return NULL;
	snprintf(buf, buflen, "write an IPv6 literal as [IPv6:%s], as in %.*s[IPv6:%s]%s",
	         ip, (int)(at + 1 - in), in, ip, end + 1);
	return buf;
}

/* A recipient as it goes into RCPT TO, in one spelling per mailbox so
 * duplicates are sent once: without angle brackets, the domain in lower
 * case and A-labels (dns_domain_to_ascii), a literal (bracketed or not) as
 * inet_ntop writes it.  The local
 * part stays as written (RFC 5321 §2.4: only the receiver may fold its
 * case).  false (with a message) when it is not a deliverable address. */
static bool normalize_rcpt(const struct send_opts *o, const char *in, const char *origin,
                           char *out, size_t outlen)
{
	struct smtp_address a;
	size_t used = 0, len = strlen(in);
	enum smtp_address_status st = smtp_address_parse(
		in, len, SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_BARE_IP | SMTP_ADDR_UTF8, &a, &used);
	if (smtp_local_name_ok(in, len)) {
		/* A local name (cron's MAILTO=root): delivered into the mail
		 * root through the queue (cli/local.h), after the aliases. */
		snprintf(out, outlen, "%s", in);
		return true;
	}
	if (st == SMTP_ADDR_OK && used == len && a.kind == SMTP_DOMAIN_NONE)
		st = SMTP_ADDR_ERR_SYNTAX;
	if (st != SMTP_ADDR_OK || used != len) {
		char hint[SMTP_PATH_MAX + 128];
		const char *h = address_hint(o->prog, in, hint, sizeof(hint));
		fprintf(stderr, "%s: %s '%s': %s\n", o->prog, origin, in,
		        h                    ? h
		        : !strchr(in, '@')   ? "neither a local name (root) nor an address "
		                               "(user@example.com)"
		        : st != SMTP_ADDR_OK ? smtp_address_status_text(st)
		                             : "text after the address");
		return false;
	}
	if (a.kind == SMTP_DOMAIN_GENERAL || a.had_source_route) {
		/* "[2001:db8::1]" reads as a General-address-literal with the
		 * tag "2001": the IPv6 tag was forgotten. */
		char hint[SMTP_PATH_MAX + 128];
		const char *h = address_hint(o->prog, in, hint, sizeof(hint));
		fprintf(stderr, "%s: %s '%s': %s\n", o->prog, origin, in,
		        a.had_source_route              ? "source routes are not supported"
		        : h                             ? h
		                                        : "only IPv4 and IPv6 address literals can be "
		                                          "delivered to");
		return false;
	}
	if (!o->delivery.family_auto &&
	    ((a.kind == SMTP_DOMAIN_IPV4 && o->delivery.family == DNS_FAMILY_V6_ONLY) ||
	     (a.kind == SMTP_DOMAIN_IPV6 && o->delivery.family == DNS_FAMILY_V4_ONLY))) {
		bool flag = o->delivery.family_source == CLI_FROM_FLAG;
		fprintf(stderr, "%s: %s '%s': an IPv%c address, but %s%c %s\n", o->prog, origin, in,
		        a.kind == SMTP_DOMAIN_IPV4 ? '4' : '6', flag ? "-" : "family = ",
		        o->delivery.family == DNS_FAMILY_V4_ONLY ? '4' : '6',
		        flag ? "was given" : "is set in the settings file");
		return false;
	}
	/* The local part as written: from the start (after '<') to the last '@'. */
	const char *s = in[0] == '<' ? in + 1 : in;
	const char *at = strrchr(s, '@');
	char domain[SMTP_DOMAIN_MAX + 8];
	if (a.kind == SMTP_DOMAIN_NAME) {
		/* DNS knows only A-labels (RFC 5890), and an ASCII envelope
		 * needs no SMTPUTF8: "bücher.example" goes as
		 * "xn--bcher-kva.example" (SMTPUTF8 stays for local parts). */
		char err[200];
		if (!dns_domain_to_ascii(a.domain, domain, sizeof(domain), err, sizeof(err))) {
			fprintf(stderr, "%s: %s '%s': %s\n", o->prog, origin, in, err);
			return false;
		}
	} else {
		char ip[INET6_ADDRSTRLEN];
		inet_ntop(a.kind == SMTP_DOMAIN_IPV4 ? AF_INET : AF_INET6, a.ip, ip, sizeof(ip));
		snprintf(domain, sizeof(domain), "[%s%s]", a.kind == SMTP_DOMAIN_IPV6 ? "IPv6:" : "", ip);
	}
	int n = snprintf(out, outlen, "%.*s@%s", (int)(at - s), s, domain);
	if (n < 0 || n > SMTP_PATH_MAX - 2) {
		fprintf(stderr, "%s: %s '%s': longer than %d octets with its domain in ASCII form\n",
		        o->prog, origin, in, SMTP_PATH_MAX - 2);
		return false;
	}
	/* user@192.0.2.1 is not an address (a domain is never all-numeric),
	 * but what the user meant is clear: the literal.  Said once. */
	if (a.bare_ip)
		fprintf(stderr, "%s: note: %s taken as %s (an IP address is written in brackets)\n",
		        o->prog, in, out);
	return true;
}

/* user@origin: the login name and origin from the settings file
 * (Postfix's myorigin), else the host's own name. */
static void default_sender(const struct send_opts *o, char *out, size_t outlen)
{
	char host[256];
	if (o->origin)
		snprintf(host, sizeof(host), "%s", o->origin);
	else
		hostname_get(host, sizeof(host), "/etc/hosts");
	struct passwd *pw = getpwuid(geteuid());
	snprintf(out, outlen, "%s@%s", pw && pw->pw_name ? pw->pw_name : "root", host);
}

/* The envelope sender: -f (or from in [send]), or user@origin.  "" is the
 * null reverse-path. */
static bool sender_address(const struct send_opts *o, char *out, size_t outlen)
{
	if (o->from) {
		if (has_crlf(o->from)) {
			fprintf(stderr, "%s: %s: line breaks are not allowed in an address\n", o->prog,
			        o->from_where);
			return false;
		}
		if (!strcmp(o->from, "") || !strcmp(o->from, "<>")) {
			out[0] = '\0';
			return true;
		}
		struct smtp_address a;
		size_t used = 0, len = strlen(o->from);
		enum smtp_address_status st = smtp_address_parse(
			o->from, len, SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_UTF8, &a, &used);
		if (st != SMTP_ADDR_OK || used != len || a.kind == SMTP_DOMAIN_NONE) {
			char hint[SMTP_PATH_MAX + 128];
			const char *h =
				o->from[0] != '-' ? address_hint(o->prog, o->from, hint, sizeof(hint)) : NULL;
			fprintf(stderr, "%s: %s '%s': %s\n", o->prog, o->from_where, o->from,
			        h                    ? h
			        : st != SMTP_ADDR_OK ? smtp_address_status_text(st)
			        : used != len        ? "text after the address"
			                             : "needs a domain (you@example.com)");
			return false;
		}
		const char *s = o->from[0] == '<' ? o->from + 1 : o->from;
		const char *at = strrchr(s, '@');
		char domain[SMTP_DOMAIN_MAX + 8], err[200];
		if (a.kind == SMTP_DOMAIN_NAME) {
			/* An internationalised domain goes in its A-label form, as
			 * for recipients: SMTPUTF8 only for a UTF-8 local part. */
			if (!dns_domain_to_ascii(a.domain, domain, sizeof(domain), err, sizeof(err))) {
				fprintf(stderr, "%s: %s '%s': %s\n", o->prog, o->from_where, o->from,
				        err);
				return false;
			}
		} else {
			snprintf(domain, sizeof(domain), "%s", at + 1);
			domain[strcspn(domain, ">")] = '\0';
		}
		int n = snprintf(out, outlen, "%.*s@%s", (int)(at - s), s, domain);
		if (n < 0 || (size_t)n >= outlen) {
			fprintf(stderr, "%s: %s '%s': too long with its domain in ASCII form\n",
			        o->prog, o->from_where, o->from);
			return false;
		}
		return true;
	}
	default_sender(o, out, outlen);
	/* root@vm: most receivers refuse a sender whose domain is not a
	 * public one (Gmail 553 5.1.7, Postfix reject_non_fqdn_sender).  Said
	 * before anything is sent, with the way out; the sendmail entry says
	 * it only with -v (cron and PHP throw stderr away, and Postfix's
	 * sendmail is silent). */
	const char *domain = strrchr(out, '@');
	if (domain && !strchr(domain + 1, '.') && (!o->quiet || o->verbose))
		fprintf(stderr,
		        "%s: warning: sending as %s (no -f given), and '%s' is not a public domain: "
		        "most servers refuse such a sender; give your own address with -f "
		        "you@example.com, or origin = example.com in [send] of rawmail.conf\n",
		        o->prog, out, domain + 1);
	return true;
}

/* Adds a normalised recipient (once: duplicates are dropped) and, for a
 * new one, how it was first written.  false (said why) when it cannot. */
static bool rcpt_add(const struct send_opts *o, struct msg_recipients *list, char **originals,
                     const char *one, const char *original, struct msg_error *merr)
{
	size_t before = list->count;
	if (msg_recipients_add(list, one, strlen(one), merr) != 0) {
		fprintf(stderr, "%s: %s\n", o->prog, merr->text);
		return false;
	}
	if (list->count == before)
		return true;
	originals[before] = strdup(original);
	if (!originals[before]) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		return false;
	}
	return true;
}

int (*send_dkim_hook)(const struct send_opts *o, struct send_prepared *p);

void send_prepared_free(struct send_prepared *p)
{
	buf_free(&p->msg);
	for (size_t i = 0; p->originals && i < p->list.count; i++)
		free(p->originals[i]);
	free(p->originals);
	p->originals = NULL;
	msg_recipients_free(&p->list);
}

int send_prepare(struct send_opts *o, struct send_prepared *p)
{
	p->sender[0] = '\0';
	msg_recipients_init(&p->list, SEND_RCPTS_MAX);
	/* originals[i]: list.addrs[i] as first written (a DSN's
	 * Original-Recipient, RFC 3461 §4.2, once there is a queue). */
	p->originals = calloc(SEND_RCPTS_MAX, sizeof(*p->originals));
	/* Room for the additions, and for the sendmail entry's
	 * quoted-printable of a body with a long line (msg/raw.h: at most
	 * about 3.12 times the body; the queue runner reads up to 256 MiB),
	 * so that is never "too big". */
	buf_init(&p->msg, (size_t)SEND_MESSAGE_MAX * 7 / 2 + 64 * 1024);
	if (has_crlf(o->subject) || has_crlf(o->from_name)) {
		fprintf(stderr, "%s: %s: line breaks are not allowed (header injection)\n", o->prog,
		        has_crlf(o->subject) ? "-s" : "-F");
		return SEND_EXIT_USAGE;
	}
	if (o->extract && (o->subject || o->nattach)) {
		fprintf(stderr, "%s: -t reads recipients from a complete message; not with -s or "
		                "--attach\n",
		        o->prog);
		return SEND_EXIT_USAGE;
	}
	if (o->nrcpts == 0 && !o->extract) {
		fprintf(stderr, "%s: no recipients (give them as arguments, or -t)\n", o->prog);
		return SEND_EXIT_USAGE;
	}
	if (o->nrcpts > SEND_RCPTS_MAX) {
		fprintf(stderr, "%s: at most %d recipients\n", o->prog, SEND_RCPTS_MAX);
		return SEND_EXIT_USAGE;
	}
	if (!sender_address(o, p->sender, sizeof(p->sender)))
		return o->from_file ? SEND_EXIT_CONFIG : SEND_EXIT_USAGE;

	/* Every address is checked before anything is read or sent. */
	char one[SMTP_PATH_MAX + 16];
	struct msg_error merr = { 0 };
	if (!p->originals) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		return SEND_EXIT_OSERR;
	}
	for (size_t i = 0; i < o->nrcpts; i++) {
		if (has_crlf(o->rcpts[i])) {
			fprintf(stderr, "%s: recipient %zu: line breaks are not allowed in an address\n",
			        o->prog, i + 1);
			return SEND_EXIT_USAGE;
		}
		if (!normalize_rcpt(o, o->rcpts[i], "recipient", one, sizeof(one)) ||
		    !rcpt_add(o, &p->list, p->originals, one, o->rcpts[i], &merr))
			return SEND_EXIT_USAGE;
	}
	struct msg_recipients extracted;
	msg_recipients_init(&extracted, SEND_RCPTS_MAX);
	/* A composed message's To: names the recipients as they are sent;
	 * its From: is the sender, or user@host with a null sender. */
	char header_from[SMTP_PATH_MAX + 1];
	if (p->sender[0])
		snprintf(header_from, sizeof(header_from), "%s", p->sender);
	else
		default_sender(o, header_from, sizeof(header_from));
	int rc = send_message_build(o, header_from, (const char *const *)p->list.addrs,
	                            p->list.count, stdin, &p->msg, &extracted);
	for (size_t i = 0; i < extracted.count && rc == 0; i++) {
		if (!normalize_rcpt(o, extracted.addrs[i], "recipient in the message", one,
		                    sizeof(one)))
			rc = SEND_EXIT_DATAERR;
		else if (!rcpt_add(o, &p->list, p->originals, one, extracted.addrs[i], &merr))
			rc = SEND_EXIT_DATAERR;
	}
	msg_recipients_free(&extracted);
	if (rc != 0)
		return rc;
	if (p->list.count == 0) {
		fprintf(stderr, "%s: -t found no recipients in To, Cc or Bcc\n", o->prog);
		return SEND_EXIT_USAGE;
	}
	/* Signed last, over the message exactly as it is queued and sent. */
	if (o->ndkim > 0) {
		if (!send_dkim_hook) {
			fprintf(stderr, "%s: DKIM signing is done by rawmail, not this program\n",
			        o->prog);
			return SEND_EXIT_SOFTWARE;
		}
		return send_dkim_hook(o, p);
	}
	return 0;
}
