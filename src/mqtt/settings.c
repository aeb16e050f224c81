#include "mqtt/settings.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mqtt/request.h"
#include "smtp/address.h"
#include "util/config_file.h"
#include "util/hostname.h"

void mqtt_settings_init(struct mqtt_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->topic = strdup(MQTT_TOPIC_DEFAULT);
	s->protocol = 4;
	s->max_attachment = MQTT_MAX_ATTACHMENT_DEFAULT;
	s->outbox_max = MQTT_OUTBOX_MAX_DEFAULT;
	s->send_rate = MQTT_SEND_RATE_DEFAULT;
}

void mqtt_settings_free(struct mqtt_settings *s)
{
	free(s->url);
	free(s->user);
	free(s->host);
	free(s->cafile);
	free(s->password_file);
	free(s->topic);
	free(s->client_id);
	free(s->from);
	config_list_free(&s->send_allow);
	memset(s, 0, sizeof(*s));
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

/* A number or size (K/M suffixes, config_value_size) from min to max. */
static bool parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (strpbrk(s, "gG") || !config_value_size(s, max, &v) || v < min)
		return false;
	*out = v;
	return true;
}

/* An MQTT topic level or prefix may not hold the wildcards '+' and '#'
 * (MQTT 3.1.1 §4.7.1: a PUBLISH topic name never does), nor NUL or
 * control octets, and must not start or end with '/' (an empty level
 * would make "rawmail//received" topics). */
static bool topic_prefix_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 200 || t[0] == '/' || t[n - 1] == '/' || t[0] == '$')
		return false;
	for (const unsigned char *p = (const unsigned char *)t; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '+' || *p == '#')
			return false;
	return true;
}

/* MQTT 3.1.1 §3.1.3.1: 1 to 23 of [0-9a-zA-Z] must be allowed by every
 * server, and servers may allow more; we take any printable ASCII
 * without space, up to 128 (Mosquitto's and most brokers' practice). */
static bool client_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 128)
		return false;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

/* "user@example.org" or "@example.org": the request parser's rule, so a
 * pattern that could never match is refused at start. */
static bool allow_pattern_ok(const char *v)
{
	char why[256];
	return mqtt_request_pattern_ok(v, why, sizeof(why));
}

/* The patterns value adds, each checked: on a bad one the list keeps
 * what it had before this value. */
static bool allow_add(struct mqtt_settings *s, int source, const char *value)
{
	size_t before = source > s->send_allow.source ? 0 : s->send_allow.n;
	if (!config_list_add(&s->send_allow, source, value))
		return false;
	for (size_t i = before; i < s->send_allow.n; i++) {
		if (!allow_pattern_ok(s->send_allow.items[i])) {
			while (s->send_allow.n > before)
				free(s->send_allow.items[--s->send_allow.n]);
			return false;
		}
	}
	return true;
}

bool mqtt_settings_parse_url(struct mqtt_settings *s, const char *url, char *err, size_t errlen)
{
	const char *p;
	bool tls;
	if (!strncasecmp(url, "mqtt://", 7)) {
		tls = false;
		p = url + 7;
	} else if (!strncasecmp(url, "mqtts://", 8)) {
		tls = true;
		p = url + 8;
	} else {
		snprintf(err, errlen, "mqtt: '%s' is not mqtt://[USER@]HOST[:PORT] or mqtts://...",
		         url);
		return false;
	}
	char user[256] = "", host[256];
	const char *at = strrchr(p, '@');
	if (at) {
		if (at == p || (size_t)(at - p) >= sizeof(user)) {
			snprintf(err, errlen, "mqtt: '%s' has an empty or too long user name", url);
			return false;
		}
		memcpy(user, p, (size_t)(at - p));
		user[at - p] = '\0';
		if (strchr(user, ':')) {
			snprintf(err, errlen, "mqtt: put the password in --mqtt-password-file FILE, "
			         "never in the URL (it would show in ps and in logs)");
			return false;
		}
		p = at + 1;
	}
	const char *end, *port_text = NULL;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end || (end[1] != '\0' && end[1] != ':')) {
			snprintf(err, errlen, "mqtt: '%s': an IPv6 address is written [ADDR]:PORT", url);
			return false;
		}
		if (end[1] == ':')
			port_text = end + 2;
		p++;
	} else {
		end = p + strcspn(p, ":/");
		if (*end == '/') {
			snprintf(err, errlen, "mqtt: '%s' has a path: the topic is --mqtt-topic", url);
			return false;
		}
		if (*end == ':')
			port_text = end + 1;
	}
	size_t hl = (size_t)(end - p);
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(err, errlen, "mqtt: '%s' has no broker host", url);
		return false;
	}
	memcpy(host, p, hl);
	host[hl] = '\0';
	struct in6_addr a6;
	bool bracketed = p > url && p[-1] == '[';
	bool ok = bracketed ? inet_pton(AF_INET6, host, &a6) == 1
	                    : inet_pton(AF_INET, host, &a6) == 1 || hostname_syntax_ok(host);
	if (!ok) {
		snprintf(err, errlen, "mqtt: '%s' is not a host name or IP address", host);
		return false;
	}
	uint64_t port = tls ? MQTTS_PORT : MQTT_PORT;
	if (port_text && (strpbrk(port_text, "kKmM") || !parse_size(port_text, 1, 65535, &port))) {
		snprintf(err, errlen, "mqtt: '%s' has no valid port (1-65535)", url);
		return false;
	}
	if (!set_string(&s->host, host) || !set_string(&s->url, url) ||
	    (user[0] && !set_string(&s->user, user))) {
		snprintf(err, errlen, "mqtt: out of memory");
		return false;
	}
	if (!user[0]) {
		free(s->user);
		s->user = NULL;
	}
	s->tls = tls;
	s->port = (unsigned)port;
	return true;
}

bool mqtt_settings_set(struct mqtt_settings *s, int source, const char *key, const char *value,
                       bool *known, char *err, size_t errlen)
{
	bool ok = true;
	const char *expect = NULL;
	uint64_t v;
	*known = true;
	if (!strcmp(key, "url")) {
		return mqtt_settings_parse_url(s, value, err, errlen);
	} else if (!strcmp(key, "cafile")) {
		ok = set_string(&s->cafile, value);
	} else if (!strcmp(key, "password-file")) {
		ok = set_string(&s->password_file, value);
	} else if (!strcmp(key, "topic")) {
		ok = topic_prefix_ok(value) && set_string(&s->topic, value);
		expect = "a topic without '+', '#', control characters, a leading '$' or an "
		         "empty level at either end";
	} else if (!strcmp(key, "client-id")) {
		ok = client_id_ok(value) && set_string(&s->client_id, value);
		expect = "1 to 128 printable ASCII characters without spaces";
	} else if (!strcmp(key, "protocol")) {
		if (!strcmp(value, "3.1.1") || !strcmp(value, "4"))
			s->protocol = 4;
		else if (!strcmp(value, "5") || !strcmp(value, "5.0"))
			s->protocol = 5;
		else
			ok = false;
		expect = "3.1.1 or 5";
	} else if (!strcmp(key, "attachments")) {
		ok = config_value_bool(value, &s->attachments);
		expect = "yes or no";
	} else if (!strcmp(key, "max-attachment")) {
		ok = parse_size(value, 1, 256u * 1024 * 1024, &s->max_attachment);
		expect = "a size from 1 to 256M (K and M suffixes allowed)";
	} else if (!strcmp(key, "outbox-max")) {
		ok = parse_size(value, 1, 10000000, &v);
		s->outbox_max = ok ? (unsigned)v : s->outbox_max;
		expect = "a number of events from 1 to 10000000";
	} else if (!strcmp(key, "send")) {
		ok = config_value_bool(value, &s->send);
		expect = "yes or no";
	} else if (!strcmp(key, "send-allow")) {
		ok = allow_add(s, source, value);
		expect = "an address (user@example.org) or a domain (@example.org)";
	} else if (!strcmp(key, "send-rate")) {
		ok = parse_size(value, 1, 100000, &v);
		s->send_rate = ok ? (unsigned)v : s->send_rate;
		expect = "requests per minute, 1 to 100000";
	} else if (!strcmp(key, "from")) {
		struct smtp_address a;
		ok = smtp_address_parse(value, strlen(value), SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_UTF8,
		                        &a, NULL) == SMTP_ADDR_OK && a.kind != SMTP_DOMAIN_NONE &&
		     set_string(&s->from, value);
		expect = "an address, user@example.org";
	} else {
		*known = false;
		snprintf(err, errlen, "unknown setting 'mqtt-%s'", key);
		return false;
	}
	if (!ok) {
		if (expect)
			snprintf(err, errlen, "mqtt-%s: '%s' is not valid (expected %s)", key, value,
			         expect);
		else
			snprintf(err, errlen, "mqtt-%s: out of memory", key);
	}
	return ok;
}

bool mqtt_settings_finish(struct mqtt_settings *s, char *err, size_t errlen)
{
	if (!s->url) {
		/* Any other mqtt setting without the broker would silently do
		 * nothing: say so instead. */
		const char *set = s->cafile ? "mqtt-cafile" : s->password_file ? "mqtt-password-file" :
		                  s->send ? "mqtt-send" : s->send_allow.n ? "mqtt-send-allow" :
		                  s->from ? "mqtt-from" : s->client_id ? "mqtt-client-id" :
		                  s->attachments ? "mqtt-attachments" : NULL;
		if (set) {
			snprintf(err, errlen, "%s is set but --mqtt URL is not: name the broker "
			         "(mqtt://HOST:PORT)", set);
			return false;
		}
		return true;
	}
	if (s->password_file && !s->user) {
		snprintf(err, errlen, "mqtt-password-file is set but --mqtt names no user: "
		         "write it as mqtt://USER@HOST");
		return false;
	}
	if (s->cafile && !s->tls) {
		snprintf(err, errlen, "mqtt-cafile is set but --mqtt is not mqtts://: the CA "
		         "would not be used");
		return false;
	}
	if (s->send && !s->from) {
		snprintf(err, errlen, "mqtt-send needs --mqtt-from ADDR: the sender of the mail "
		         "it sends");
		return false;
	}
	return true;
}
