/* Which recipients rawmail serve accepts, and where their mail goes: its
 * domains, its own addresses as literals, localhost, and postmaster; never
 * anything else (no open relay). */
#ifndef RAWMAIL_SERVER_POLICY_H
#define RAWMAIL_SERVER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "server/config.h"
#include "smtp/address.h"
#include "smtp/reply.h"

struct local_ip {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];
};

struct policy {
	const struct serve_config *cfg;
	struct local_ip *ips;    /* addresses accepted as literals */
	size_t nips;
};

/* Collects the accepted literals: every non-wildcard listen address, and
 * for a wildcard listener the machine's interface addresses. */
bool policy_init(struct policy *p, const struct serve_config *cfg, char *err, size_t errlen);
void policy_free(struct policy *p);

/* Decides a recipient arriving on a connection whose local address is
 * local (the literal of the address the client reached is always ours).
 * Returns the mailbox directory name (malloc'd) or NULL with *reply set. */
char *policy_recipient(const struct policy *p, const struct sockaddr *local,
                       const struct smtp_address *rcpt, struct smtp_reply *reply);

/* Whether rcpt's domain is one this server takes mail for (its domains,
 * its own literals, localhost): the rest is relaying (issue 10). */
bool policy_domain_ours(const struct policy *p, const struct sockaddr *local,
                        const struct smtp_address *rcpt);

/* The mailbox directory for a local part: +tag removed, ASCII folded;
 * NULL if it cannot be a safe directory name.  Exposed for tests. */
char *policy_mailbox_name(const char *local, size_t len);

#endif
