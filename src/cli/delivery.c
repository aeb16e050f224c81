#include "cli/delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/resolver.h"
#include "net/fingerprint.h"
#include "smtp/address.h"
#include "util/hostname.h"

#define CLI_DELIVERY_TIMEOUT_DEFAULT 30

void cli_delivery_init(struct cli_delivery *d)
{
	*d = (struct cli_delivery){
		.port = 25,
		.tls = CLI_TLS_OPPORTUNISTIC,
		.timeout = CLI_DELIVERY_TIMEOUT_DEFAULT,
		.family_auto = true,
	};
}

static bool parse_number(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* The EHLO name goes into the command as it is: a host name or an
 * address literal, nothing that could end the command line early. */
static bool helo_ok(const char *helo)
{
	if (helo[0] != '[')
		return hostname_syntax_ok(helo);
	char probe[SMTP_DOMAIN_MAX + 8];
	snprintf(probe, sizeof(probe), "x@%s", helo);
	struct smtp_address a;
	size_t used = 0, len = strlen(probe);
	return smtp_address_parse(probe, len, SMTP_ADDR_NO_BRACKETS, &a, &used) == SMTP_ADDR_OK &&
	       used == len && (a.kind == SMTP_DOMAIN_IPV4 || a.kind == SMTP_DOMAIN_IPV6);
}

int cli_delivery_set(struct cli_delivery *d, enum cli_source src, const char *key,
                     const char *value, char *err, size_t errlen)
{
	long v;
	if (!strcmp(key, "dns")) {
		char norm[80];
		if (!dns_server_parse(value, norm, sizeof(norm), err, errlen)) {
			snprintf(err, errlen, "expected ADDR[:PORT], an IP address (IPv6 as [::1]:5353)");
			return -1;
		}
		d->dns = value;
	} else if (!strcmp(key, "port")) {
		if (!parse_number(value, 1, 65535, &v)) {
			snprintf(err, errlen, "expected 1 to 65535");
			return -1;
		}
		d->port = (unsigned short)v;
	} else if (!strcmp(key, "tls")) {
		static const char *const modes[] = { "none", "opportunistic", "require", "verify" };
		size_t i = 0;
		while (i < 4 && strcmp(value, modes[i]) != 0)
			i++;
		if (i == 4) {
			snprintf(err, errlen, "use none, opportunistic, require or verify");
			return -1;
		}
		d->tls = (enum cli_tls)i;
		d->tls_source = src;
	} else if (!strcmp(key, "cafile")) {
		d->cafile = value;
		d->cafile_source = src;
	} else if (!strcmp(key, "tls-fingerprint")) {
		if (src > d->pins_source) {
			d->npins = 0;   /* the flags' pins replace the file's */
			d->pins_source = src;
		}
		if (d->npins == CLIENT_OUTBOUND_PINS_MAX) {
			snprintf(err, errlen, "at most %d fingerprints", CLIENT_OUTBOUND_PINS_MAX);
			return -1;
		}
		if (!tls_fingerprint_parse(value, d->pins[d->npins])) {
			snprintf(err, errlen, "expected SHA256: and 64 hex digits (as printed by "
			                      "rawmail send -v or openssl x509 -fingerprint -sha256)");
			return -1;
		}
		d->npins++;
	} else if (!strcmp(key, "timeout")) {
		if (!parse_number(value, 1, 3600, &v)) {
			snprintf(err, errlen, "expected 1 to 3600 seconds");
			return -1;
		}
		d->timeout = (int)v;
	} else if (!strcmp(key, "helo")) {
		if (!helo_ok(value)) {
			snprintf(err, errlen, "expected a host name (mail.example.com) or an address "
			                      "literal ([192.0.2.1], [IPv6:2001:db8::1])");
			return -1;
		}
		d->helo = value;
	} else if (!strcmp(key, "relay")) {
		if (!strcmp(value, "none")) {
			/* No relay, nor its login (cli_delivery_finish). */
			d->relay_text = NULL;
			d->relay_off = true;
			return 1;
		}
		if (!client_relay_host_parse(value, &d->relay, err, errlen))
			return -1;
		d->relay_text = value;
		d->relay_off = false;
	} else if (!strcmp(key, "route")) {
		const char *eq = strchr(value, '=');
		char domain[SMTP_DOMAIN_MAX + 2];
		if (!eq || (size_t)(eq - value) >= sizeof(domain)) {
			snprintf(err, errlen, "expected DOMAIN=HOST[:PORT]");
			return -1;
		}
		snprintf(domain, sizeof(domain), "%.*s", (int)(eq - value), value);
		return cli_delivery_route_add(d, domain, eq + 1, err, errlen);
	} else if (!strcmp(key, "auth-user")) {
		if (!value[0] || strlen(value) > SMTP_AUTH_NAME_MAX) {
			snprintf(err, errlen, "expected a user name of 1 to %d octets", SMTP_AUTH_NAME_MAX);
			return -1;
		}
		d->auth_user = value;
	} else if (!strcmp(key, "auth-password-file")) {
		if (!value[0]) {
			snprintf(err, errlen, "expected a file whose first line is the password");
			return -1;
		}
		d->auth_password_file = value;
	} else if (!strcmp(key, "family")) {
		if (!strcmp(value, "4") || !strcmp(value, "6")) {
			d->family_auto = false;
			d->family = value[0] == '4' ? DNS_FAMILY_V4_ONLY : DNS_FAMILY_V6_ONLY;
		} else if (!strcmp(value, "auto")) {
			d->family_auto = true;
		} else {
			snprintf(err, errlen, "use 4, 6 or auto");
			return -1;
		}
		d->family_source = src;
	} else {
		return 0;
	}
	return 1;
}

int cli_delivery_route_add(struct cli_delivery *d, const char *domain, const char *host,
                           char *err, size_t errlen)
{
	struct client_relay_route r;
	if (!client_relay_route_make(domain, host, &r, err, errlen))
		return -1;
	struct client_relay_route *same =
		(struct client_relay_route *)client_relay_route_find(d->routes, d->nroutes, r.domain);
	if (same) {
		*same = r;
		return 1;
	}
	if (d->nroutes == CLIENT_RELAY_ROUTES_MAX) {
		snprintf(err, errlen, "at most %d routes", CLIENT_RELAY_ROUTES_MAX);
		return -1;
	}
	d->routes[d->nroutes++] = r;
	return 1;
}

bool cli_delivery_finish(struct cli_delivery *d, char *err, size_t errlen)
{
	if (d->relay_off) {
		d->auth_user = NULL;
		d->auth_password_file = NULL;
	}
	if (d->auth_user && !d->relay_text) {
		snprintf(err, errlen, "--auth-user is for a relay: give --relay HOST (or relay in "
		                      "[delivery])");
		return false;
	}
	if (!d->auth_user != !d->auth_password_file) {
		snprintf(err, errlen, "--auth-user and --auth-password-file go together");
		return false;
	}
	if (d->relay_text && d->relay.implicit_tls && d->tls == CLI_TLS_NONE) {
		snprintf(err, errlen, "--relay smtps:// is TLS: not with --tls none");
		return false;
	}
	/* The relay's certificate is verified unless --tls says require (or
	 * pins stand for it): its trust anchors are used then. */
	bool relay_verify = d->relay_text && d->npins == 0 &&
	                    (d->tls == CLI_TLS_OPPORTUNISTIC || d->tls == CLI_TLS_VERIFY);
	if (relay_verify && d->cafile && d->tls == CLI_TLS_OPPORTUNISTIC)
		return true;
	if (d->npins > 0 && (d->tls == CLI_TLS_NONE || d->tls == CLI_TLS_OPPORTUNISTIC)) {
		if (d->tls_source != CLI_FROM_DEFAULT && d->tls == CLI_TLS_NONE) {
			snprintf(err, errlen, "--tls-fingerprint needs TLS; not with --tls none");
			return false;
		}
		d->tls = CLI_TLS_REQUIRE;
	}
	if (d->cafile && d->tls != CLI_TLS_VERIFY) {
		if (d->cafile_source == CLI_FROM_FLAG) {
			snprintf(err, errlen, "--cafile is for --tls verify");
			return false;
		}
		d->cafile = NULL;
	}
	return true;
}

struct client_outbound_config cli_delivery_engine_config(const struct cli_delivery *d)
{
	return (struct client_outbound_config){
		.dns = d->dns,
		.port = d->port,
		.tls = d->tls == CLI_TLS_NONE            ? CLIENT_TLS_NONE
		       : d->tls == CLI_TLS_OPPORTUNISTIC ? CLIENT_TLS_OPPORTUNISTIC
		                                         : CLIENT_TLS_REQUIRE,
		.tls_verify = d->tls == CLI_TLS_VERIFY,
		.cafile = d->cafile,
		.tls_pins = (const unsigned char(*)[32])d->pins,
		.tls_npins = d->npins,
		.family = d->family,
		.family_auto = d->family_auto,
		.helo = d->helo,
		.timeout = d->timeout,
		.relay = d->relay_text ? &d->relay : NULL,
		.routes = d->routes,
		.nroutes = d->nroutes,
		.relay_tls = d->tls == CLI_TLS_NONE ? CLIENT_TLS_NONE : CLIENT_TLS_REQUIRE,
		.relay_verify = d->tls == CLI_TLS_OPPORTUNISTIC || d->tls == CLI_TLS_VERIFY,
		.auth_user = d->auth_user,
		.auth_password = d->auth_user ? d->auth_password : NULL,
	};
}
