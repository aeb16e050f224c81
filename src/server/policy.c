#include "server/policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool add_ip(struct policy *p, int family, const void *addr)
{
	struct local_ip ip = { .family = family };
	memcpy(ip.addr, addr, family == AF_INET ? 4 : 16);
	/* An IPv4-mapped IPv6 address is its IPv4 address (DESIGN.md). */
	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
		ip.family = AF_INET;
		memcpy(ip.addr, (const unsigned char *)addr + 12, 4);
		memset(ip.addr + 4, 0, 12);
	}
	for (size_t i = 0; i < p->nips; i++)
		if (p->ips[i].family == ip.family && !memcmp(p->ips[i].addr, ip.addr, 16))
			return true;
	struct local_ip *n = realloc(p->ips, (p->nips + 1) * sizeof(*n));
	if (!n)
		return false;
	p->ips = n;
	p->ips[p->nips++] = ip;
	return true;
}

static bool add_sockaddr(struct policy *p, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return add_ip(p, AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return add_ip(p, AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr);
	return true;
}

bool policy_init(struct policy *p, const struct serve_config *cfg, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	bool wildcard = false;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].wildcard)
			wildcard = true;
		else if (!add_sockaddr(p, (const struct sockaddr *)&cfg->listen[i].ss))
			goto nomem;
	}
	if (wildcard) {
		struct ifaddrs *ifa = NULL;
		if (getifaddrs(&ifa) == 0) {
			for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
				if (i->ifa_addr && !add_sockaddr(p, i->ifa_addr)) {
					freeifaddrs(ifa);
					goto nomem;
				}
			freeifaddrs(ifa);
		}
	}
	return true;
nomem:
	snprintf(err, errlen, "out of memory");
	return false;
}

void policy_free(struct policy *p)
{
	free(p->ips);
	p->ips = NULL;
	p->nips = 0;
}

static bool literal_is_ours(const struct policy *p, const struct sockaddr *local,
                            const struct smtp_address *a)
{
	struct policy tmp = { 0 };
	int family = a->kind == SMTP_DOMAIN_IPV4 ? AF_INET : AF_INET6;
	size_t n = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < p->nips; i++)
		if (p->ips[i].family == family && !memcmp(p->ips[i].addr, a->ip, n))
			return true;
	/* The address the client reached is ours even if it was not known at
	 * start (a wildcard listener and an address added later). */
	if (local && add_sockaddr(&tmp, local) && tmp.nips == 1 && tmp.ips[0].family == family &&
	    !memcmp(tmp.ips[0].addr, a->ip, n)) {
		free(tmp.ips);
		return true;
	}
	free(tmp.ips);
	return false;
}

bool policy_domain_ours(const struct policy *p, const struct sockaddr *local,
                        const struct smtp_address *a)
{
	switch (a->kind) {
	case SMTP_DOMAIN_NONE:
		return true; /* bare <postmaster>; the parser allows nothing else */
	case SMTP_DOMAIN_IPV4:
	case SMTP_DOMAIN_IPV6:
		return literal_is_ours(p, local, a);
	case SMTP_DOMAIN_NAME:
		if (!strcasecmp(a->domain, "localhost") ||
		    (p->cfg->hostname && !strcasecmp(a->domain, p->cfg->hostname)))
			return true;
		for (size_t i = 0; i < p->cfg->domains.n; i++)
			if (!strcasecmp(a->domain, p->cfg->domains.items[i]))
				return true;
		return false;
	case SMTP_DOMAIN_GENERAL:
	default:
		return false;
	}
}

char *policy_mailbox_name(const char *local, size_t len)
{
	/* RFC 5233-style subaddress: user+tag delivers to user. */
	const char *plus = memchr(local, '+', len);
	if (plus && plus > local)
		len = (size_t)(plus - local);
	if (len == 0 || local[0] == '.')
		return NULL;
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') {
			free(out);
			return NULL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[len] = '\0';
	return out;
}

char *policy_recipient(const struct policy *p, const struct sockaddr *local,
                       const struct smtp_address *rcpt, struct smtp_reply *reply)
{
	/* Classic relay tricks: user%host@us, host!user@us and "user@host"@us
	 * ask us to forward; we never do (no open relay). */
	if (memchr(rcpt->local, '@', rcpt->local_len) || memchr(rcpt->local, '%', rcpt->local_len) ||
	    memchr(rcpt->local, '!', rcpt->local_len)) {
		smtp_reply_set(reply, 554, "5.7.1", "Relay access denied");
		return NULL;
	}
	if (!policy_domain_ours(p, local, rcpt)) {
		smtp_reply_set(reply, 554, "5.7.1", "Relay access denied");
		return NULL;
	}
	/* RFC 5321 §4.5.1: postmaster is always accepted, case-insensitively. */
	if (rcpt->local_len == 10 && !strncasecmp(rcpt->local, "postmaster", 10))
		return strdup("postmaster");
	char *mailbox = policy_mailbox_name(rcpt->local, rcpt->local_len);
	if (!mailbox) {
		smtp_reply_set(reply, 553, "5.1.3", "Local part cannot be used as a mailbox name");
		return NULL;
	}
	if (p->cfg->mailboxes.n) {
		bool known = false;
		for (size_t i = 0; i < p->cfg->mailboxes.n && !known; i++)
			known = !strcasecmp(mailbox, p->cfg->mailboxes.items[i]);
		if (!known) {
			free(mailbox);
			smtp_reply_set(reply, 550, "5.1.1", "Mailbox unavailable");
			return NULL;
		}
	}
	return mailbox;
}
