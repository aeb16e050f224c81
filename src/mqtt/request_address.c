/* Addresses in send requests: recipients checked and normalised as
 * `rawmail send` does (cli/send_prepare.c), the --mqtt-send-allow
 * patterns, and the sender rule. */
#include "mqtt/request_internal.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dns/mx.h"
#include "smtp/address.h"
#include "util/text.h"

bool request_refuse(struct request_ctx *ctx, const char *fmt, ...)
{
	if (ctx->reasonlen == 0)
		return false;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(ctx->reason, ctx->reasonlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n < ctx->reasonlen)
		return false;
	/* Cut short: drop a UTF-8 character cut in two (RFC 3629 §3), so the
	 * reason stays valid UTF-8 for its JSON result. */
	unsigned char *r = (unsigned char *)ctx->reason;
	size_t len = strlen(ctx->reason), i = len;
	while (i > 0 && (r[i - 1] & 0xC0) == 0x80)
		i--;
	if (i > 0 && r[i - 1] >= 0xC0) {
		size_t want = r[i - 1] >= 0xF0 ? 4 : r[i - 1] >= 0xE0 ? 3 : 2;
		if (len - (i - 1) < want)
			r[i - 1] = '\0';
	}
	return false;
}

/* Text from the request as it may stand in a reason: control octets and
 * invalid UTF-8 escaped (util/text.h), cut with "..." when longer than
 * buf (at least 4 octets). */
const char *request_shown(const char *in, size_t len, char *buf, size_t buflen)
{
	size_t used = text_escape(buf, buflen - 3, in, len, 0);
	if (used < len)
		memcpy(buf + strlen(buf), "...", 4);
	return buf;
}

/* A whole addr-spec (angle brackets allowed) with a domain; UTF-8 allowed
 * (RFC 6531), as send allows it. */
static bool address_parse_whole(const char *s, size_t len, struct smtp_address *a,
                                enum smtp_address_status *st)
{
	size_t used = 0;
	*st = smtp_address_parse(s, len, SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_UTF8, a, &used);
	return *st == SMTP_ADDR_OK && used == len && a->kind != SMTP_DOMAIN_NONE;
}

/* Same domain: host names by their lower-case A-labels, literals by
 * their binary address; general literals never (they cannot be
 * delivered to). */
static bool address_domain_same(const struct smtp_address *a, const struct smtp_address *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case SMTP_DOMAIN_IPV4:
		return memcmp(a->ip, b->ip, 4) == 0;
	case SMTP_DOMAIN_IPV6:
		return memcmp(a->ip, b->ip, 16) == 0;
	case SMTP_DOMAIN_NAME: {
		char x[SMTP_DOMAIN_MAX + 1], y[SMTP_DOMAIN_MAX + 1], err[200];
		return dns_domain_to_ascii(a->domain, x, sizeof(x), err, sizeof(err)) &&
		       dns_domain_to_ascii(b->domain, y, sizeof(y), err, sizeof(err)) &&
		       strcmp(x, y) == 0;
	}
	default:
		return false;
	}
}

/* A pattern as an address: "@domain" is read as "x@domain". */
static bool address_pattern_parse(const char *pattern, struct smtp_address *a,
                                  enum smtp_address_status *st)
{
	char buf[SMTP_PATH_MAX + 2];
	if (pattern[0] != '@')
		return address_parse_whole(pattern, strlen(pattern), a, st);
	int n = snprintf(buf, sizeof(buf), "x%s", pattern);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		*st = SMTP_ADDR_ERR_PATH_TOO_LONG;
		return false;
	}
	return address_parse_whole(buf, (size_t)n, a, st);
}

bool mqtt_request_allowed(const struct mqtt_request_policy *policy, const char *addr)
{
	struct smtp_address a, p;
	enum smtp_address_status st;
	if (!address_parse_whole(addr, strlen(addr), &a, &st))
		return false;
	for (size_t i = 0; i < policy->nallow; i++) {
		const char *pattern = policy->allow[i];
		if (!pattern || !address_pattern_parse(pattern, &p, &st) || p.had_source_route)
			continue;
		if (pattern[0] != '@' &&
		    (p.local_len != a.local_len || memcmp(p.local, a.local, a.local_len) != 0))
			continue;
		if (address_domain_same(&a, &p))
			return true;
	}
	return false;
}

bool mqtt_request_pattern_ok(const char *pattern, char *why, size_t whylen)
{
	struct smtp_address p;
	enum smtp_address_status st;
	char err[200];
	if (!address_pattern_parse(pattern, &p, &st)) {
		snprintf(why, whylen, "'%s' is neither an address (bob@example.org) nor @ and a "
		         "domain (@example.org)%s%s", pattern, st != SMTP_ADDR_OK ? ": " : "",
		         st != SMTP_ADDR_OK ? smtp_address_status_text(st) : "");
		return false;
	}
	if (p.had_source_route || p.kind == SMTP_DOMAIN_GENERAL) {
		snprintf(why, whylen, "'%s': only a domain or an IPv4 or IPv6 literal can be allowed",
		         pattern);
		return false;
	}
	if (p.kind == SMTP_DOMAIN_NAME &&
	    !dns_domain_to_ascii(p.domain, err, sizeof(err), err, sizeof(err))) {
		snprintf(why, whylen, "'%s': %s", pattern, err);
		return false;
	}
	return true;
}

bool request_from_is_sender(const struct mqtt_request_policy *policy, const char *addr)
{
	struct smtp_address a, s;
	enum smtp_address_status st;
	return policy->from && address_parse_whole(addr, strlen(addr), &a, &st) &&
	       address_parse_whole(policy->from, strlen(policy->from), &s, &st) &&
	       a.local_len == s.local_len && memcmp(a.local, s.local, a.local_len) == 0 &&
	       address_domain_same(&a, &s);
}

/* The recipient in its one spelling (send's normalize_rcpt): the local
 * part as written, the domain in lower-case A-labels or the literal as
 * inet_ntop writes it.  false with the reason written. */
static bool address_normalize(struct request_ctx *ctx, const char *what, const char *in,
                              size_t len, char *out, size_t outlen)
{
	char shown[160];
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)in[i] < 32 || in[i] == 127)
			return request_refuse(ctx, "%s '%s' holds a line break or control character",
			                      what, request_shown(in, len, shown, sizeof(shown)));
	struct smtp_address a;
	enum smtp_address_status st;
	if (!address_parse_whole(in, len, &a, &st)) {
		request_shown(in, len, shown, sizeof(shown));
		if (memchr(in, ',', len) && !memchr(in, '"', len))
			return request_refuse(ctx, "%s '%s' is not one address: give several as a "
			                      "JSON array, [\"a@example.org\", \"b@example.org\"]",
			                      what, shown);
		if (!memchr(in, '@', len))
			return request_refuse(ctx, "%s '%s' is not an address (bob@example.org)", what,
			                      shown);
		return request_refuse(ctx, "%s '%s' is not a valid address: %s", what, shown,
		                      st != SMTP_ADDR_OK ? smtp_address_status_text(st)
		                      : a.kind == SMTP_DOMAIN_NONE ? "it needs a domain"
		                                                   : "text after the address");
	}
	if (a.kind == SMTP_DOMAIN_GENERAL || a.had_source_route)
		return request_refuse(ctx, "%s '%s' cannot be delivered to: %s", what,
		                      request_shown(in, len, shown, sizeof(shown)),
		                      a.had_source_route ? "source routes are not supported"
		                                         : "only IPv4 and IPv6 literals can be "
		                                           "delivered to ([IPv6:2001:db8::1])");
	const char *s = in[0] == '<' ? in + 1 : in;
	const char *at = s;
	for (const char *p = s; p < in + len; p++)
		if (*p == '@')
			at = p;
	char domain[SMTP_DOMAIN_MAX + 8], err[200];
	if (a.kind == SMTP_DOMAIN_NAME) {
		/* DNS knows only A-labels (RFC 5890). */
		if (!dns_domain_to_ascii(a.domain, domain, sizeof(domain), err, sizeof(err)))
			return request_refuse(ctx, "%s '%s': %s", what,
			                      request_shown(in, len, shown, sizeof(shown)), err);
	} else {
		char ip[INET6_ADDRSTRLEN];
		inet_ntop(a.kind == SMTP_DOMAIN_IPV4 ? AF_INET : AF_INET6, a.ip, ip, sizeof(ip));
		snprintf(domain, sizeof(domain), "[%s%s]", a.kind == SMTP_DOMAIN_IPV6 ? "IPv6:" : "",
		         ip);
	}
	int n = snprintf(out, outlen, "%.*s@%s", (int)(at - s), s, domain);
	if (n < 0 || n > SMTP_PATH_MAX - 2)
		return request_refuse(ctx, "%s '%s' is longer than %d octets with its domain in "
		                      "ASCII form", what, request_shown(in, len, shown, sizeof(shown)),
		                      SMTP_PATH_MAX - 2);
	return true;
}

bool request_rcpt_add(struct request_ctx *ctx, const char *what, const char *in, size_t len)
{
	char one[SMTP_PATH_MAX + 16];
	if (!address_normalize(ctx, what, in, len, one, sizeof(one)))
		return false;
	if (!mqtt_request_allowed(ctx->policy, one)) {
		const char *domain = strrchr(one, '@') + 1;
		if (ctx->policy->nallow == 0)
			return request_refuse(ctx, "%s %s is not allowed: sending from MQTT is allowed to "
			                      "no one until you add --mqtt-send-allow %s or @%s", what,
			                      one, one, domain);
		return request_refuse(ctx, "%s %s is not allowed: add --mqtt-send-allow %s or @%s",
		                      what, one, one, domain);
	}
	struct msg_error err = { 0 };
	if (msg_recipients_add(&ctx->rcpts, one, strlen(one), &err) < 0) {
		if (err.status == MSG_ERR_NOMEM)
			return request_refuse(ctx, "out of memory");
		return request_refuse(ctx, "more than %zu recipients: send several requests",
		                      ctx->rcpts.max);
	}
	return true;
}
