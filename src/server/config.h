/* rawmail serve's settings: built-in defaults, an INI file whose keys are
 * the long flag names, and flags, applied in that order (flags win). */
#ifndef RAWMAIL_SERVER_CONFIG_H
#define RAWMAIL_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "mqtt/settings.h"
#include "smtp/content.h"
#include "store/store.h"
#include "util/config_file.h"
#include "util/log.h"

#define CONFIG_LISTEN_MAX 32

/* What a listener is for (issue 10). */
enum listen_kind {
	LISTEN_MX = 0,        /* --listen: mail for our domains; no AUTH, no relay */
	LISTEN_SUBMISSION,    /* --submission: STARTTLS then AUTH (RFC 6409; 587) */
	LISTEN_SUBMISSIONS,   /* --submissions: implicit TLS, then AUTH (RFC 8314; 465) */
	LISTEN_KINDS
};

struct listen_addr {
	enum listen_kind kind;
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80];   /* as given: "127.0.0.1:2525", "[::1]:2525" */
	bool wildcard;   /* 0.0.0.0 or :: */
};

struct serve_config {
	struct listen_addr listen[CONFIG_LISTEN_MAX];
	size_t nlisten;
	int listen_source[LISTEN_KINDS];
	char *users;                    /* --users: the users file of AUTH, or NULL */
	struct string_list trusted_networks; /* CIDRs that may relay without AUTH */
	unsigned max_auth_failures;     /* per connection, then 421 */
	char *mailroot;
	struct string_list domains;
	struct string_list mailboxes;   /* empty: any safe local part */
	char *hostname;
	char *tls_cert, *tls_key;
	bool tls;                       /* offer STARTTLS */
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned ipv4_prefix;           /* per-ip counts IPv4 clients by this /N */
	unsigned ipv6_prefix;           /* and IPv6 clients by this /N */
	unsigned min_data_rate;         /* octets/s: DATA deadline beyond the timeout */
	unsigned max_new_mailboxes_per_ip;  /* Maildirs created by mail per hour */
	unsigned max_new_mailboxes;
	unsigned max_errors;
	unsigned timeout_command;       /* seconds */
	unsigned timeout_data;
	unsigned timeout_shutdown;
	unsigned greet_pause_ms;        /* wait before the greeting (0: none) */
	enum smtp_bare_policy bare_newline;
	enum store_sync_mode sync;
	bool accept_bare_ip;
	char *dns;                      /* resolver ADDR[:PORT]; NULL: the system's */
	bool rdns;                      /* look up clients' names for Received: */
	char *user;                     /* smtp process user when root */
	char *mail_user;                /* store process user when root */
	char *queue_user;               /* queue process user when root (never root) */
	/* Not settings: the mail root as serve opened it (before any
	 * privilege drop) and whom the store runs as when serve is root. */
	int mailroot_fd;                /* -1 until opened; closed by config_free */
	uid_t mail_uid;
	gid_t mail_gid;
	enum log_level log_level;
	char *config_file;
	/* The MQTT bridge (issue 12): --mqtt and --mqtt-* flags, [mqtt] of
	 * the file. */
	struct mqtt_settings mqtt;
};

enum config_source { CONFIG_DEFAULT = 0, CONFIG_FILE, CONFIG_FLAG };

void config_init(struct serve_config *c);
void config_free(struct serve_config *c);
/* Sets one setting from text.  key is a long flag name without "--".
 * false with a message in err (naming the key and what was wrong). */
bool config_set(struct serve_config *c, enum config_source src, const char *key,
                const char *value, char *err, size_t errlen);
/* Reads an INI file (keys at top level or in [serve], the bridge's in
 * [mqtt]; [send], [queue], [delivery], [routes] and [dkim] belong to
 * other commands and are skipped; any other section is an error).  false with err
 * naming the file and line. */
bool config_load_file(struct serve_config *c, const char *path, char *err, size_t errlen);
/* Fills what is still unset (listeners, hostname) and checks the whole:
 * false with err if it cannot work. */
bool config_finish(struct serve_config *c, char *err, size_t errlen);
/* Whether any listener is of kind k. */
bool config_has_listener(const struct serve_config *c, enum listen_kind k);
/* "listen", "submission" or "submissions": the key naming kind k. */
const char *config_listen_key(enum listen_kind k);
/* Parses "ADDR:PORT" / "[V6]:PORT" / ":PORT" into *out; err says what is
 * wrong with text (the caller names the setting). */
bool config_parse_listen(const char *text, struct listen_addr *out, char *err, size_t errlen);

#endif
