/* The MQTT bridge process, "rawmail: mqtt" (issue 12; doc/DESIGN.md "The
 * MQTT bridge"): one per server, forked by serve's parent and kept across
 * reloads (one client id, one connection: a second client with the same
 * id would knock the first off and fire its last will).  It publishes the
 * events the store records in the outbox, and, with --mqtt-send, queues
 * the send requests it receives.  Paho's threads and MQTT parser live
 * only here: never in the smtp process or the store. */
#ifndef RAWMAIL_MQTT_BRIDGE_H
#define RAWMAIL_MQTT_BRIDGE_H

#include <stdint.h>
#include <sys/types.h>

#include "mqtt/settings.h"
#include "util/log.h"

/* A [dkim] key (file, selector, domain), read before the privilege drop:
 * requests whose From domain it covers are signed (issue 11). */
struct mqtt_bridge_dkim {
	const char *key;
	const char *selector;
	const char *domain;
};

struct mqtt_bridge_child {
	const struct mqtt_settings *mqtt;
	const char *hostname;        /* serve's: the default client id, Message-IDs */
	const char *mailroot;        /* for logs */
	int rootfd;                  /* the mail root, opened by the parent; taken over */
	uid_t uid;                   /* the store's user (0 and no drop when not root) */
	gid_t gid;
	const char *spool;           /* requests are queued here; NULL without --spool */
	uint64_t max_message_size;   /* serve's: the largest request */
	const struct mqtt_bridge_dkim *dkim;
	size_t ndkim;
};

/* Runs in the forked child, as root if the parent is: reads the password
 * file and the keys, drops privileges, then runs until SIGTERM.  Returns
 * the exit status: 0, 78 (EX_CONFIG: its settings cannot work, not to be
 * restarted), or another (restart it). */
int mqtt_bridge_main(const struct mqtt_bridge_child *child);

#endif
