/* The MQTT bridge's settings (issue 12): --mqtt URL and the --mqtt-*
 * flags of rawmail serve, or the [mqtt] section of the settings file
 * (keys without the "mqtt-" prefix; "url" for --mqtt).  Pure: text in,
 * checked values out, with errors naming the key. */
#ifndef RAWMAIL_MQTT_SETTINGS_H
#define RAWMAIL_MQTT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/config_file.h"

/* Defaults the issue names. */
#define MQTT_TOPIC_DEFAULT "rawmail"
#define MQTT_OUTBOX_MAX_DEFAULT 100000u
#define MQTT_SEND_RATE_DEFAULT 60u                  /* requests per minute */
#define MQTT_MAX_ATTACHMENT_DEFAULT (4u * 1024 * 1024)
#define MQTT_PORT 1883
#define MQTTS_PORT 8883

struct mqtt_settings {
	/* --mqtt URL: mqtt://[USER@]HOST[:PORT] or mqtts://... (TLS) */
	char *url;                 /* as given, NULL: no bridge */
	bool tls;
	char *user;                /* NULL: none */
	char *host;                /* a name, an IPv4 address or an IPv6 one (no brackets) */
	unsigned port;
	char *cafile;              /* --mqtt-cafile: NULL, the system's CAs */
	char *password_file;       /* --mqtt-password-file */
	char *topic;               /* --mqtt-topic PREFIX */
	char *client_id;           /* --mqtt-client-id: NULL, rawmail-HOSTNAME */
	unsigned protocol;         /* --mqtt-protocol: 4 (MQTT 3.1.1) or 5 */
	bool attachments;          /* --mqtt-attachments */
	uint64_t max_attachment;   /* --mqtt-max-attachment */
	unsigned outbox_max;       /* --mqtt-outbox-max: events kept while the broker is away */
	bool send;                 /* --mqtt-send: subscribe to PREFIX/send */
	struct string_list send_allow;   /* --mqtt-send-allow PATTERN, repeatable */
	unsigned send_rate;        /* --mqtt-send-rate N per minute */
	char *from;                /* --mqtt-from ADDR: the requests' sender */
};

void mqtt_settings_init(struct mqtt_settings *s);
void mqtt_settings_free(struct mqtt_settings *s);

/* Sets one key (without "mqtt-": "url", "cafile", "send-allow", ...) from
 * layer source (a higher layer replaces a lower one's list).  false with
 * err naming the flag and what is wrong; *known is false when key is not
 * an MQTT setting at all. */
bool mqtt_settings_set(struct mqtt_settings *s, int source, const char *key, const char *value,
                       bool *known, char *err, size_t errlen);

/* Checks the whole once every layer is in: false with err when the
 * settings cannot work (a --mqtt-send without --mqtt-from, a password
 * file without a user, an mqtt-* setting without --mqtt...). */
bool mqtt_settings_finish(struct mqtt_settings *s, char *err, size_t errlen);

/* Parses a URL into the tls/user/host/port fields. */
bool mqtt_settings_parse_url(struct mqtt_settings *s, const char *url, char *err, size_t errlen);

#endif
