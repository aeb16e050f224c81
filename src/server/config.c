#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dns/resolver.h"
#include "util/config_file.h"
#include "util/hostname.h"
#include "store/frame.h"
#include "util/limits.h"

#define STR_(x) #x
#define STR(x) STR_(x)

_Static_assert(SMTP_RECIPIENTS_MAX <= FRAME_RCPTS_MAX,
               "--max-recipients must fit the store's BEGIN frame");

void config_init(struct serve_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mailroot_fd = -1;
	c->mailroot = strdup("./mail");
	c->tls = true;
	c->max_message_size = SMTP_MESSAGE_SIZE_DEFAULT;
	c->max_recipients = SMTP_RECIPIENTS_DEFAULT;
	c->max_connections = SMTP_CONNECTIONS_DEFAULT;
	c->max_connections_per_ip = SMTP_CONNECTIONS_PER_IP_DEFAULT;
	c->ipv4_prefix = SMTP_PER_IP_PREFIX_IPV4_DEFAULT;
	c->ipv6_prefix = SMTP_PER_IP_PREFIX_IPV6_DEFAULT;
	c->min_data_rate = SMTP_MIN_DATA_RATE_DEFAULT;
	c->max_new_mailboxes_per_ip = SMTP_NEW_MAILBOXES_PER_IP_DEFAULT;
	c->max_new_mailboxes = SMTP_NEW_MAILBOXES_DEFAULT;
	c->max_errors = 20;
	c->max_auth_failures = SMTP_AUTH_FAILURES_DEFAULT;
	c->timeout_command = SMTP_TIMEOUT_SERVER_COMMAND;
	c->timeout_data = SMTP_TIMEOUT_SERVER_DATA;
	c->timeout_shutdown = SMTP_TIMEOUT_SHUTDOWN_DATA;
	c->greet_pause_ms = 0;
	c->bare_newline = SMTP_BARE_NORMALIZE;
	c->sync = STORE_SYNC_SYNCFS;
	c->accept_bare_ip = true;
	c->rdns = true;
	c->user = strdup("nobody");
	c->log_level = LOG_INFO;
	mqtt_settings_init(&c->mqtt);
}

void config_free(struct serve_config *c)
{
	free(c->mailroot);
	config_list_free(&c->domains);
	config_list_free(&c->mailboxes);
	config_list_free(&c->trusted_networks);
	free(c->users);
	free(c->hostname);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->user);
	free(c->mail_user);
	free(c->queue_user);
	free(c->dns);
	free(c->config_file);
	mqtt_settings_free(&c->mqtt);
	if (c->mailroot_fd >= 0)
		close(c->mailroot_fd);
	memset(c, 0, sizeof(*c));
	c->mailroot_fd = -1;
}

static bool set_string(char **dst, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return false;
	free(*dst);
	*dst = copy;
	return true;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return config_value_size(s, max, out);
}

static bool parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;
	if (!parse_u64(s, max, &v) || v < min)
		return false;
	*out = (unsigned)v;
	return true;
}

bool config_parse_listen(const char *text, struct listen_addr *out, char *err, size_t errlen)
{
	char host[64];
	const char *port;
	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host)) {
			snprintf(err, errlen, "'%s' is not [IPV6]:PORT", text);
			return false;
		}
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= sizeof(host) || strchr(text, ':') != colon) {
			snprintf(err, errlen, "'%s' is not ADDR:PORT (IPv6 as [::1]:2525)",
			         text);
			return false;
		}
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		port = colon + 1;
	}
	unsigned portnum;
	if (!parse_uint(port, 1, 65535, &portnum)) {
		snprintf(err, errlen, "'%s' has no valid port (1-65535)", text);
		return false;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	if (text[0] != '[' && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	} else if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
	} else {
		snprintf(err, errlen, "'%s' is not an IP address (names are not resolved)",
		         host);
		return false;
	}
	if (sin->sin_family == AF_INET) {
		sin->sin_port = htons((uint16_t)portnum);
		out->len = sizeof(*sin);
		out->wildcard = sin->sin_addr.s_addr == htonl(INADDR_ANY);
		snprintf(out->text, sizeof(out->text), "%s:%u",
		         inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)), portnum);
	} else {
		sin6->sin6_port = htons((uint16_t)portnum);
		out->len = sizeof(*sin6);
		out->wildcard = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
		snprintf(out->text, sizeof(out->text), "[%s]:%u",
		         inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)), portnum);
	}
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	return config_value_bool(s, out);
}

bool config_set(struct serve_config *c, enum config_source src, const char *key,
                const char *value, char *err, size_t errlen)
{
	bool ok = true;
	const char *expect = NULL;
	enum listen_kind kind = LISTEN_KINDS;
	for (int k = 0; k < LISTEN_KINDS; k++)
		if (!strcmp(key, config_listen_key((enum listen_kind)k)))
			kind = (enum listen_kind)k;
	if (kind != LISTEN_KINDS) {
		if ((int)src > c->listen_source[kind]) {
			/* A higher layer replaces this kind's addresses. */
			size_t kept = 0;
			for (size_t i = 0; i < c->nlisten; i++)
				if (c->listen[i].kind != kind)
					c->listen[kept++] = c->listen[i];
			c->nlisten = kept;
			c->listen_source[kind] = (int)src;
		}
		if (c->nlisten == CONFIG_LISTEN_MAX) {
			snprintf(err, errlen, "%s: at most %d addresses in all", key, CONFIG_LISTEN_MAX);
			return false;
		}
		char why[256];
		if (!config_parse_listen(value, &c->listen[c->nlisten], why, sizeof(why))) {
			snprintf(err, errlen, "%s: %s", key, why); /* "submission: ..." */
			return false;
		}
		c->listen[c->nlisten++].kind = kind;
		return true;
	} else if (!strcmp(key, "mqtt") || !strncmp(key, "mqtt-", 5)) {
		/* --mqtt URL is [mqtt]'s url; --mqtt-X is its X. */
		bool known;
		return mqtt_settings_set(&c->mqtt, (int)src, key[4] ? key + 5 : "url", value, &known,
		                         err, errlen);
	} else if (!strcmp(key, "users")) {
		ok = set_string(&c->users, value);
	} else if (!strcmp(key, "trusted-network")) {
		ok = config_list_add(&c->trusted_networks, (int)src, value);
	} else if (!strcmp(key, "max-auth-failures")) {
		ok = parse_uint(value, 1, 100, &c->max_auth_failures);
		expect = "a number from 1 to 100";
	} else if (!strcmp(key, "mailroot")) {
		ok = set_string(&c->mailroot, value);
	} else if (!strcmp(key, "domain")) {
		ok = config_list_add(&c->domains, (int)src, value);
	} else if (!strcmp(key, "mailbox")) {
		ok = config_list_add(&c->mailboxes, (int)src, value);
	} else if (!strcmp(key, "hostname")) {
		ok = set_string(&c->hostname, value);
	} else if (!strcmp(key, "tls-cert")) {
		ok = set_string(&c->tls_cert, value);
	} else if (!strcmp(key, "tls-key")) {
		ok = set_string(&c->tls_key, value);
	} else if (!strcmp(key, "tls")) {
		ok = parse_bool(value, &c->tls);
		expect = "yes or no";
	} else if (!strcmp(key, "max-message-size")) {
		ok = parse_u64(value, UINT64_C(1) << 40, &c->max_message_size) &&
		     c->max_message_size > 0;
		expect = "a size in bytes (K, M, G suffixes allowed)";
	} else if (!strcmp(key, "max-recipients")) {
		/* RFC 5321 §4.5.3.1.8: at least 100.  At most what one BEGIN
		 * frame carries to the store: more would be accepted at RCPT and
		 * then refused (451) at the end of data, on every retry. */
		ok = parse_uint(value, SMTP_RECIPIENTS_MIN, SMTP_RECIPIENTS_MAX, &c->max_recipients);
		expect = "a number from 100 to " STR(SMTP_RECIPIENTS_MAX)
		         " (RFC 5321 requires at least 100; one message can have at most "
		         STR(SMTP_RECIPIENTS_MAX) " recipients)";
	} else if (!strcmp(key, "max-connections")) {
		ok = parse_uint(value, 1, 1000000, &c->max_connections);
		expect = "a number from 1 to 1000000";
	} else if (!strcmp(key, "max-connections-per-ip")) {
		ok = parse_uint(value, 1, 1000000, &c->max_connections_per_ip);
		expect = "a number from 1 to 1000000";
	} else if (!strcmp(key, "ipv4-prefix")) {
		ok = parse_uint(value, 8, 32, &c->ipv4_prefix);
		expect = "a prefix length from 8 to 32";
	} else if (!strcmp(key, "ipv6-prefix")) {
		ok = parse_uint(value, 16, 128, &c->ipv6_prefix);
		expect = "a prefix length from 16 to 128";
	} else if (!strcmp(key, "min-data-rate")) {
		ok = parse_uint(value, 1, 1000000000, &c->min_data_rate);
		expect = "octets per second, 1 to 1000000000";
	} else if (!strcmp(key, "max-new-mailboxes-per-ip")) {
		ok = parse_uint(value, 0, SMTP_NEW_MAILBOXES_MAX, &c->max_new_mailboxes_per_ip);
		expect = "a number from 0 to 100000 (0: mail creates no Maildir)";
	} else if (!strcmp(key, "max-new-mailboxes")) {
		ok = parse_uint(value, 0, SMTP_NEW_MAILBOXES_MAX, &c->max_new_mailboxes);
		expect = "a number from 0 to 100000 (0: mail creates no Maildir)";
	} else if (!strcmp(key, "max-errors")) {
		ok = parse_uint(value, 1, 1000, &c->max_errors);
		expect = "a number from 1 to 1000";
	} else if (!strcmp(key, "timeout-command")) {
		ok = parse_uint(value, 1, 3600, &c->timeout_command);
		expect = "seconds, 1 to 3600";
	} else if (!strcmp(key, "timeout-data")) {
		ok = parse_uint(value, 1, 3600, &c->timeout_data);
		expect = "seconds, 1 to 3600";
	} else if (!strcmp(key, "timeout-shutdown")) {
		ok = parse_uint(value, 0, 600, &c->timeout_shutdown);
		expect = "seconds, 0 to 600";
	} else if (!strcmp(key, "greet-pause")) {
		ok = parse_uint(value, 0, 60000, &c->greet_pause_ms);
		expect = "milliseconds, 0 to 60000";
	} else if (!strcmp(key, "bare-newline")) {
		if (!strcmp(value, "normalize"))
			c->bare_newline = SMTP_BARE_NORMALIZE;
		else if (!strcmp(value, "reject"))
			c->bare_newline = SMTP_BARE_REJECT;
		else
			ok = false;
		expect = "normalize or reject";
	} else if (!strcmp(key, "sync")) {
		if (!strcmp(value, "syncfs"))
			c->sync = STORE_SYNC_SYNCFS;
		else if (!strcmp(value, "fsync"))
			c->sync = STORE_SYNC_FSYNC;
		else
			ok = false;
		expect = "syncfs or fsync";
	} else if (!strcmp(key, "accept-bare-ip")) {
		ok = parse_bool(value, &c->accept_bare_ip);
		expect = "yes or no";
	} else if (!strcmp(key, "dns")) {
		char norm[80];
		if (!dns_server_parse(value, norm, sizeof(norm), err, errlen))
			return false;
		ok = set_string(&c->dns, value);
	} else if (!strcmp(key, "rdns")) {
		ok = parse_bool(value, &c->rdns);
		expect = "yes or no";
	} else if (!strcmp(key, "user")) {
		ok = set_string(&c->user, value);
	} else if (!strcmp(key, "mail-user")) {
		ok = set_string(&c->mail_user, value);
	} else if (!strcmp(key, "queue-user")) {
		ok = set_string(&c->queue_user, value);
	} else if (!strcmp(key, "log-level")) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		ok = false;
		for (int i = 0; i < 4; i++)
			if (!strcmp(value, names[i])) {
				c->log_level = (enum log_level)i;
				ok = true;
			}
		expect = "error, warn, info or debug";
	} else {
		snprintf(err, errlen, "unknown setting '%s'", key);
		return false;
	}
	if (!ok) {
		if (expect)
			snprintf(err, errlen, "%s: '%s' is not valid (expected %s)", key, value, expect);
		else
			snprintf(err, errlen, "%s: out of memory", key);
	}
	return ok;
}

static bool config_file_key(void *arg, const char *key, const char *value, char *err,
                            size_t errlen)
{
	return config_set(arg, CONFIG_FILE, key, value, err, errlen);
}

/* [mqtt]: the --mqtt-* keys without their prefix ("url" for --mqtt). */
static bool config_file_mqtt_key(void *arg, const char *key, const char *value, char *err,
                                 size_t errlen)
{
	struct serve_config *c = arg;
	bool known;
	if (mqtt_settings_set(&c->mqtt, CONFIG_FILE, key, value, &known, err, errlen))
		return true;
	if (!known)
		snprintf(err, errlen, "unknown setting '%s' in [mqtt]", key);
	return false;
}

bool config_load_file(struct serve_config *c, const char *path, char *err, size_t errlen)
{
	/* One file for every command (rawmail.conf(5)): serve's keys are at
	 * the top or in [serve]; the others are read by send and the queue
	 * ([delivery] will also be the settings of serve's queue runner), and
	 * [dkim] by cli/serve.c through send's code, for the store. */
	const struct config_file_section sections[] = {
		{ "", config_file_key, c },
		{ "serve", config_file_key, c },
		{ "send", NULL, NULL },
		{ "queue", NULL, NULL },
		{ "delivery", NULL, NULL },
		{ "routes", NULL, NULL },
		{ "dkim", NULL, NULL },
		{ "mqtt", config_file_mqtt_key, c },
	};
	if (!config_file_read(path, sections, sizeof(sections) / sizeof(sections[0]), err, errlen))
		return false;
	return set_string(&c->config_file, path);
}

const char *config_listen_key(enum listen_kind k)
{
	static const char *const keys[LISTEN_KINDS] = {
		[LISTEN_MX] = "listen",
		[LISTEN_SUBMISSION] = "submission",
		[LISTEN_SUBMISSIONS] = "submissions",
	};
	return (unsigned)k < LISTEN_KINDS ? keys[k] : "listen";
}

bool config_has_listener(const struct serve_config *c, enum listen_kind k)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].kind == k)
			return true;
	return false;
}

bool config_finish(struct serve_config *c, char *err, size_t errlen)
{
	bool submission = config_has_listener(c, LISTEN_SUBMISSION) ||
	                  config_has_listener(c, LISTEN_SUBMISSIONS);
	if (submission && !c->users) {
		snprintf(err, errlen, "submission listeners need a users file: give --users FILE "
		                      "(made with rawmail passwd)");
		return false;
	}
	if (c->users && !submission) {
		snprintf(err, errlen, "users: AUTH is offered only on --submission or "
		                      "--submissions listeners, and none is given");
		return false;
	}
	if (config_has_listener(c, LISTEN_SUBMISSIONS) && !c->tls) {
		snprintf(err, errlen, "submissions: implicit TLS cannot work with tls = no");
		return false;
	}
	/* The built-in MX listeners only when no listener at all is given:
	 * a submission-only server stays one. */
	if (c->nlisten == 0) {
		config_parse_listen("127.0.0.1:2525", &c->listen[c->nlisten++], err, errlen);
		config_parse_listen("[::1]:2525", &c->listen[c->nlisten++], err, errlen);
	}
	if (!c->hostname) {
		char name[256];
		hostname_get(name, sizeof(name), "/etc/hosts");
		if (!set_string(&c->hostname, name)) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
	}
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		snprintf(err, errlen, "tls-cert and tls-key go together: give both or neither");
		return false;
	}
	if (!c->mailroot[0]) {
		snprintf(err, errlen, "mailroot: must not be empty");
		return false;
	}
	return mqtt_settings_finish(&c->mqtt, err, errlen);
}
