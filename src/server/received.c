#include "server/received.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void received_literal(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]", ip);
		return;
	}
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		inet_ntop(AF_INET, a->s6_addr + 12, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]", ip);
		return;
	}
	inet_ntop(AF_INET6, a, ip, sizeof(ip));
	snprintf(out, outlen, "[IPv6:%s]", ip);
}

/* The HELO name and the login are the client's text: only characters of a
 * domain, an address literal or a users-file name pass, so they cannot
 * break the header or fake a clause. */
static void sanitise(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (; *in && o + 1 < outlen; in++) {
		char c = *in;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_' ||
		          c == '@' || c == '+';
		out[o++] = ok ? c : '?';
	}
	out[o] = '\0';
}

int received_format(struct buf *out, const struct received_info *r)
{
	char helo[256], lit[64], date[64];
	struct tm tm;
	sanitise(r->helo ? r->helo : "unknown", helo, sizeof(helo));
	received_literal(r->peer, lit, sizeof(lit));
	gmtime_r(&r->when, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* RFC 3848 / RFC 6531 §4.3: the protocol keyword. */
	char with[24];
	snprintf(with, sizeof(with), "%s%s%s%s", r->smtputf8 ? "UTF8SMTP" : r->esmtp ? "ESMTP" : "SMTP",
	         r->tls && (r->esmtp || r->smtputf8) ? "S" : "", r->auth ? "A" : "", "");
	/* RFC 5321 §4.4 TCP-info: the verified name, then the literal. */
	int rc = buf_printf(out, "Received: from %s (%s%s%s)\n\tby %s (rawmail) with %s", helo,
	                    r->rdns ? r->rdns : "", r->rdns ? " " : "", lit, r->by, with);
	if (rc == 0 && r->tls && r->tls_desc)
		rc = buf_printf(out, " (%s)", r->tls_desc);
	if (rc == 0 && r->auth && r->auth_user) {
		/* RFC 3848 §1 names the protocol; the login is said in a
		 * comment, as Postfix's "Authenticated sender", so that a
		 * message can be traced to the account that sent it. */
		char user[256];
		sanitise(r->auth_user, user, sizeof(user));
		rc = buf_printf(out, "\n\t(authenticated as %s)", user);
	}
	if (rc == 0)
		rc = buf_printf(out, " id %s", r->qid);
	if (rc == 0 && r->for_rcpt)
		rc = buf_printf(out, "\n\tfor <%s>", r->for_rcpt);
	if (rc == 0)
		rc = buf_printf(out, "; %s\n", date);
	return rc;
}
