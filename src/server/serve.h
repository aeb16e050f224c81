/* rawmail serve's parent process: opens the listeners and reads the keys
 * (as root if started so), then runs two unprivileged children, store and
 * smtp, restarting them on SIGHUP (reload) or if one dies, and stopping
 * them on SIGTERM.  See DESIGN.md, "Processes and privileges". */
#ifndef RAWMAIL_SERVER_SERVE_H
#define RAWMAIL_SERVER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "server/config.h"

/* What the parent tells its outbound delivery ("queue") process (issue 9;
 * DESIGN.md "Processes"): the process's code lives in cli/ (server/ never
 * calls client/), and is handed to serve_main as a function pointer. */
struct serve_queue_child {
	pid_t parent;                 /* for PR_SET_PDEATHSIG's race check */
	enum log_level log_level;
	unsigned timeout_shutdown;    /* SIGTERM: in-flight deliveries' grace */
	const char *hostname;         /* serve's name (HELO default, DSN Reporting-MTA) */
	const char *queue_user;       /* --queue-user, or NULL */
	const char *mailroot;         /* serve's: where local names are delivered */
	uid_t mail_uid;               /* the store's user (the mail root's owner): the
	                               * queue user, which writes local mail through a
	                               * store process of its own */
	gid_t mail_gid;
	bool mqtt_events;             /* the MQTT bridge is on: local mail it stores in
	                               * mailroot records its events (issue 12) */
};
/* Runs in the forked child, as root if the parent is: drops privileges
 * itself, runs until SIGTERM; returns the exit status (78: its settings
 * cannot work, and the parent does not restart it). */
typedef int (*serve_queue_main_fn)(void *arg, const struct serve_queue_child *child);

/* A DKIM key of the settings file's [dkim] section (issue 11), for the
 * store, which signs a login's relayed mail with it. */
struct serve_dkim {
	const char *key;        /* the private key's file */
	const char *selector;
	const char *domain;     /* lower case */
};

/* The settings given on the command line, kept so that a reload applies
 * them again on top of the re-read file. */
struct serve_args {
	const char *config_file;   /* -c, or NULL */
	const char **keys;
	const char **values;
	size_t n;
	/* The outbound queue process, or NULL (no --spool): one per server,
	 * kept across reloads, restarted if it dies. */
	serve_queue_main_fn queue_main;
	void *queue_arg;
	/* The spool (--spool), or NULL: relayed mail (a login's, a trusted
	 * network's) is queued there by the store (issue 10). */
	const char *spool;
	/* [dkim]'s keys (read once at start, as the queue's settings are):
	 * each file is checked by the parent at start and at a reload, and
	 * read again by each store process before its privilege drop. */
	const struct serve_dkim *dkim;
	size_t ndkim;
};

/* Builds a configuration: defaults, then the file, then the flags.
 * false with err set. */
bool serve_load_config(const struct serve_args *args, struct serve_config *cfg, char *err,
                       size_t errlen);

/* Runs the server until SIGTERM/SIGINT; returns the process exit code. */
int serve_main(const struct serve_args *args);

#endif
