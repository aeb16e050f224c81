/* The delivery settings that rawmail send, rawmail queue run and serve's
 * queue runner share: the [delivery] section of rawmail.conf(5), and the
 * flags of the same names (--dns, --port, --tls, ...).  One setter for
 * both, so a file value and a flag are checked the same way; the result
 * fills the outbound engine's configuration (client/outbound.h). */
#ifndef RAWMAIL_CLI_DELIVERY_H
#define RAWMAIL_CLI_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "client/outbound.h"
#include "client/relay.h"
#include "dns/lookup.h"

enum cli_tls {
	CLI_TLS_NONE,
	CLI_TLS_OPPORTUNISTIC,
	CLI_TLS_REQUIRE,
	CLI_TLS_VERIFY,
};

/* Which layer set a value: a flag replaces what the file said, even for
 * the repeatable tls-fingerprint. */
enum cli_source { CLI_FROM_DEFAULT, CLI_FROM_FILE, CLI_FROM_FLAG };

struct cli_delivery {
	const char *dns;              /* resolver ADDR[:PORT]; NULL: the system's */
	unsigned short port;
	enum cli_tls tls;
	enum cli_source tls_source;
	const char *cafile;
	enum cli_source cafile_source;
	unsigned char pins[CLIENT_OUTBOUND_PINS_MAX][32];
	size_t npins;
	enum cli_source pins_source;
	const char *helo;             /* NULL: this host's name */
	int timeout;                  /* seconds */
	bool family_auto;             /* neither 4 nor 6 */
	enum dns_family_pref family;
	enum cli_source family_source;
	/* relay: every domain name without a route goes there (--relay,
	 * [delivery] relay; "none" as a flag drops the file's).  TLS to it:
	 * tls none: none (AUTH then only to 127.0.0.1 or ::1); opportunistic
	 * (the default) and verify: STARTTLS (or smtps://) with the
	 * certificate verified for the relay's name; require, or pins: TLS
	 * without verification, pins checked as for MX delivery.  "none"
	 * (a flag over the file's) drops the relay and auth-user with it. */
	const char *relay_text;       /* as given, NULL: none */
	bool relay_off;               /* "none" was the last relay given */
	struct client_relay_host relay;
	/* --route DOMAIN=HOST[:PORT] and [routes]: a flag for a domain the
	 * file names replaces the file's. */
	struct client_relay_route routes[CLIENT_RELAY_ROUTES_MAX];
	size_t nroutes;
	const char *auth_user;
	const char *auth_password_file;
	char auth_password[SMTP_AUTH_PASSWORD_MAX + 1];   /* read by cli_delivery_password_load */
};

void cli_delivery_init(struct cli_delivery *d);

/* Sets one setting by its key (the long flag name): dns, port, tls,
 * cafile, tls-fingerprint, timeout, helo, family (4, 6 or auto).  value
 * is kept by pointer.  1 set; 0 not a delivery key; -1 a bad value, with
 * err saying what is expected (the caller names the key and value). */
int cli_delivery_set(struct cli_delivery *d, enum cli_source src, const char *key,
                     const char *value, char *err, size_t errlen);

/* One route, DOMAIN and HOST[:PORT] ([routes] key and value).  1 set
 * (replacing one for the same domain), -1 a bad value or too many (err
 * says why). */
int cli_delivery_route_add(struct cli_delivery *d, const char *domain, const char *host,
                           char *err, size_t errlen);

/* The relay's password from auth_password_file (its first line, without
 * the line end), when auth-user is set.  0, or -1 with err saying why:
 * unreadable, empty, too long.  warn (may be "") says when the file may
 * be read by others. */
int cli_delivery_password_load(struct cli_delivery *d, char *err, size_t errlen, char *warn,
                               size_t warnlen);
/* Wipes the password read. */
void cli_delivery_password_wipe(struct cli_delivery *d);

/* After every layer: tls-fingerprint implies require (an error with a
 * tls none given); a cafile given as a flag needs tls verify (one from
 * the file is the site's trust store, unused unless verify).  false with
 * the reason in err. */
bool cli_delivery_finish(struct cli_delivery *d, char *err, size_t errlen);

/* The engine's settings (the caller adds dry-run, plan, transcript). */
struct client_outbound_config cli_delivery_engine_config(const struct cli_delivery *d);

#endif
