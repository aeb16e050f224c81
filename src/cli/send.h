/* `rawmail send` and its `sendmail` entry: what the command line asked
 * for (send.c, sendmail.c parse it), the message it becomes
 * (send_message.c), and what is reported back (send_report.c). */
#ifndef RAWMAIL_CLI_SEND_H
#define RAWMAIL_CLI_SEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <getopt.h>
#include <stdio.h>

#include "client/batch.h"
#include "client/session.h"
#include "cli/delivery.h"
#include "cli/local.h"
#include "dns/lookup.h"
#include "msg/address_list.h"
#include "msg/aliases.h"
#include "msg/header.h"
#include "queue/runner.h"
#include "queue/split.h"
#include "smtp/address.h"
#include "util/buf.h"

/* sysexits(3) codes, the contract with cron, git, PHP and scripts. */
#define SEND_EXIT_OK 0
#define SEND_EXIT_USAGE 64
#define SEND_EXIT_DATAERR 65
#define SEND_EXIT_NOINPUT 66
#define SEND_EXIT_UNAVAILABLE 69
#define SEND_EXIT_SOFTWARE 70
#define SEND_EXIT_OSERR 71
#define SEND_EXIT_TEMPFAIL 75
#define SEND_EXIT_CONFIG 78

/* Largest message read from stdin. */
#define SEND_MESSAGE_MAX (64u * 1024 * 1024)
/* Most recipients one invocation takes (arguments and -t together). */
#define SEND_RCPTS_MAX 10000

/* [queue] of the configuration file: read and checked for the queue
 * (issue 9), which interprets them; NULL where not set. */
struct send_queue_settings {
	const char *spool;
	const char *retry_schedule;
	const char *max_queue_lifetime;
	const char *delay_warning;
	const char *aliases;
};

/* DKIM keys to sign with (send_dkim_opts.c): --dkim-key, --dkim-selector
 * and --dkim-domain, or [dkim]'s key, selector and domain, in groups of
 * three (two groups, e.g. rsa and ed25519, give two signatures). */
#define SEND_DKIM_MAX 8
struct send_dkim {
	const char *key;       /* the PEM private key's path */
	const char *selector;  /* s= */
	const char *domain;    /* d=, A-labels, lower case */
};

struct send_opts {
	const char *prog;            /* for messages: "rawmail send" or "sendmail" */
	/* The sendmail entry: warnings only with -v (cron and PHP throw
	 * stderr away, and Postfix's sendmail says nothing either). */
	bool quiet;
	const char *from;            /* -f (or from in [send]); NULL: user@origin */
	const char *from_where;      /* "-f" or "from in FILE", for messages */
	bool from_file;              /* from is the file's: a bad one is exit 78 */
	const char *from_name;       /* -F / --from-name */
	/* The domain of a local user's address when no -f is given
	 * (Postfix's myorigin); NULL: this host's name.  In A-labels. */
	const char *origin;
	const char *spool;           /* [send] spool, else [queue] spool */
	bool no_queue;               /* [send] no-queue */
	/* Local mail (cli/local.h): serve's mailroot setting (or --mailroot),
	 * and the aliases file ([send]/[queue] aliases or --aliases; NULL:
	 * /etc/aliases when it exists; "": none). */
	const char *mailroot;
	const char *aliases;
	struct send_queue_settings queue;
	const char *subject;         /* -s: compose a message */
	bool extract;                /* -t */
	bool dot_ends;               /* a line holding only "." ends the input (sendmail without -i) */
	const char **attach;         /* --attach, nattach of them */
	size_t nattach;
	int verbose;                 /* -v 1, -vv 2 */
	struct cli_delivery delivery;  /* [delivery] and --dns, --port, --tls, ... */
	bool dry_run;
	/* The queue (issue 9): spool and no_queue above; the policy parsed
	 * from queue's texts (--retry-schedule, --max-queue-lifetime,
	 * --delay-warning, or [queue]) by send_opts_check. */
	bool background;             /* the sendmail entry: queue, kick, exit 0 */
	struct queue_policy policy;
	char **rcpts;                /* from the command line */
	size_t nrcpts;
	struct send_dkim dkim[SEND_DKIM_MAX];
	size_t ndkim;
	bool dkim_flags;             /* a --dkim-* flag was given: the file's [dkim] is dropped */
	const char *config;          /* the file read, or NULL */
	char **owned;                /* values read from the file, freed with the options */
	size_t nowned;
};

/* Long options (send.c), shared by both entries. */
enum {
	OPT_TLS = 1000,
	OPT_CAFILE,
	OPT_FINGERPRINT,
	OPT_HELO,
	OPT_DNS,
	OPT_PORT,
	OPT_TIMEOUT,
	OPT_DRY_RUN,
	OPT_ATTACH,
	OPT_FROM_NAME,
	OPT_CONFIG,
	OPT_SPOOL,
	OPT_NO_QUEUE,
	OPT_RETRY_SCHEDULE,
	OPT_MAX_QUEUE_LIFETIME,
	OPT_DELAY_WARNING,
	OPT_MAILROOT,
	OPT_ALIASES,
	OPT_GATHER,      /* queue run's, for the sendmail entry's kick */
	OPT_RELAY,
	OPT_ROUTE,
	OPT_AUTH_USER,
	OPT_AUTH_PASSWORD_FILE,
	OPT_DKIM_KEY,
	OPT_DKIM_SELECTOR,
	OPT_DKIM_DOMAIN,
};
extern const struct option send_long_opts[];

void send_opts_init(struct send_opts *o, const char *prog);
void send_opts_free(struct send_opts *o);
/* send_config.c: the configuration file's -c / --config in argv (a first
 * pass over the options with optstring, silent), or NULL. */
const char *send_config_flag(int argc, char **argv, const char *optstring);
/* Reads the file chosen by given (-c), $RAWMAIL_CONF or
 * /etc/rawmail.conf (util/config_file.h): [send], [delivery] and [queue]
 * into o, before the flags, which override it.  0, or the exit status
 * (78, said why). */
int send_config_load(struct send_opts *o, const char *given);
/* One [send] key (from, from-name, origin, spool, no-queue): 1 set, 0
 * not a send key, -1 bad value (err says what is expected).  value is
 * kept by pointer. */
int send_config_set(struct send_opts *o, const char *key, const char *value, char *err,
                    size_t errlen);
/* One option both entries take: -F, -v, -4, -6 and the long ones but
 * --attach.  0 taken, -1 invalid (said why on stderr), 1 not one of them. */
int send_option(struct send_opts *o, int c, const char *arg);
/* After all options: what needs them together.  0, or the exit status
 * (said why): 64 for the flags, 78 when the settings file alone is at
 * fault (tls = none with tls-fingerprint in [delivery]). */
int send_opts_check(struct send_opts *o);

/* The relay's password file read (cli/delivery.h; send_opts_check does
 * it unless o->background): 0, or 78 said why. */
int send_opts_password(struct send_opts *o);

/* send_dkim_opts.c: one of a DKIM group's settings, "key", "selector" or
 * "domain", from a flag or [dkim]: a setting its group already has starts
 * a new group.  1 set, 0 not a DKIM key, -1 bad value (err). */
int send_dkim_set(struct send_opts *o, bool flag, const char *key, const char *value, char *err,
                  size_t errlen);
/* After all options: every group has all three.  0, or the exit status
 * (64 for flags, 78 for the file's), said why. */
int send_dkim_check(struct send_opts *o);

/* Everything after the options are parsed: 0..255, the exit status.
 * With o->background (the sendmail entry), send_submit. */
int send_run(struct send_opts *o);

/* send_prepare.c: the message as it is queued and sent, after every
 * address is checked and the input read (-t's recipients added). */
struct send_prepared {
	char sender[SMTP_PATH_MAX + 1];  /* the envelope sender; "" for <> */
	struct msg_recipients list;      /* normalised, each once */
	char **originals;                /* list.addrs[i] as first written */
	struct buf msg;
};
/* 0, or the exit status (said why).  send_prepared_free in every case.
 * With DKIM keys (o->ndkim), the message is signed last, by
 * send_dkim_hook: set only in rawmail (the sendmail link's small program
 * links no OpenSSL and hands such messages to rawmail). */
int send_prepare(struct send_opts *o, struct send_prepared *p);
extern int (*send_dkim_hook)(const struct send_opts *o, struct send_prepared *p);
/* send_dkim.c: the hook: p->msg gets a DKIM-Signature field in front for
 * each key whose domain is the From field's domain or a parent of it.
 * 0, or the exit status (78: a key cannot be used), said why. */
int send_dkim_sign(const struct send_opts *o, struct send_prepared *p);
void send_prepared_free(struct send_prepared *p);

/* send_submit.c: the sendmail entry's path: prepared, queued (or dropped
 * into the system's maildrop), the first attempt kicked off
 * (cli/queue_kick.h); 0 once queued, else the exit status. */
int send_submit(struct send_opts *o);

/* send_queue.c: the spool for a command (--spool or the default: root's
 * /var/spool/rawmail, else $XDG_STATE_HOME/rawmail/spool or
 * ~/.local/state/rawmail/spool, whose parents are made 0700).  NULL with
 * a message on stderr. */
struct queue_spool *send_spool_open(const struct send_opts *o, char *dir, size_t dirlen);

/* A message rawmail send has queued, locked for its first attempt. */
struct send_entry {
	struct queue_spool *sp;
	/* A user who is not root, whose queue is the system's: the spool
	 * whose maildrop takes the message (sp is NULL then; see
	 * send_entry_enqueue). */
	const char *drop;
	char dir[4096];
	struct queue_envelope env;
	struct queue_lock lk;
	const struct buf *msg;
	const char *prog;
	/* rawmail send's entry is made durable by a thread while the first
	 * attempt runs (send_entry_durable joins it): the attempt need not
	 * wait for the spool's sync, and nothing is said before it ends. */
	pthread_t sync_thread;
	bool syncing;            /* the thread runs, or has not been joined */
	int sync_err;            /* its errno, 0 when durable */
	bool settled;            /* send_entry_settle recorded the results */
};
/* Queues the message (and for the sendmail entry starts its first
 * attempt in the background, cli/queue_kick.h): 0, and then the entry is
 * locked unless o->background; else the exit status (75: it could not be
 * queued, said why).  send_entry_close in every case.
 * A user who is not root and whose spool is the system's (its maildrop
 * writable, queue/maildrop.h): the sendmail entry drops the message
 * there; rawmail send sets e->drop and queues nothing yet: its attempt
 * runs from memory and settle drops what is left (the user cannot write
 * the spool, and a copy dropped first could be delivered twice). */
int send_entry_enqueue(struct send_opts *o, struct send_entry *e, const char *sender,
                       const struct buf *msg, const char *const *rcpts,
                       const char *const *originals, size_t n);
/* After the first attempt: records results in the entry (delivered,
 * failed without a bounce, or still queued: "queued as ID" on stderr),
 * removes it when nothing is left.  rc is the results' exit status; the
 * one to use is returned. */
int send_entry_settle(const struct send_opts *o, struct send_entry *e,
                      const struct client_result *res, size_t n, int rc);
/* Waits for the entry's sync: true when it is durable (or there is no
 * entry, or it was synced at enqueue).  False after a failed sync: the
 * entry is removed again and e->sync_err holds the cause. */
bool send_entry_durable(struct send_entry *e);
/* Joins the sync (an entry whose sync failed is removed, and that said on
 * stderr), unlocks, closes. */
void send_entry_close(struct send_entry *e);
/* The whole message into e->drop's maildrop ("queued as", exit 0), for
 * rawmail send's local recipients, which the system's queue delivers. */
int send_entry_drop_all(const struct send_opts *o, struct send_entry *e);

/* queue.c: one pass of the queue with o's delivery and queue options
 * (rawmail queue run/flush, sendmail -q): the exit status. */
int send_queue_pass(struct send_opts *o, enum queue_run_mode mode, const char *id);
/* Before a pass: as root, makes dir's maildrop for the spool's owner;
 * then queues what users dropped there (queue/maildrop.h), with log
 * lines for what it did. */
void send_maildrop_take(const char *dir, struct queue_spool *sp, const char *hostname);
/* rawmail send's first attempt at a message with local recipients: a
 * pass over entry id that does not bounce (a permanent failure is said
 * on stderr, as send's own): 0 all delivered, 75 still queued ("queued
 * as ID"), 69 a recipient failed. */
int send_queue_first_pass(struct send_opts *o, const char *id);
/* The engine's settings from send's options (send_run.c). */
struct client_outbound_config;
void send_engine_config(struct send_opts *o, struct client_outbound_config *cfg);
/* queue.c: the deliverer every runner uses (rawmail queue run, flush,
 * send's first pass, serve's queue process): local names after the
 * aliases to the mail root (cli/local.h), an alias's remote targets queued
 * as a new entry, everything else to the outbound engine. */
struct queue_forward {
	struct queue_spool *sp;
	struct queue_runner *runner;    /* the pass the forward joins; NULL: next */
};
struct send_queue_wiring {
	struct cli_local_names names;
	struct cli_local *local;
	struct msg_aliases aliases;
	struct queue_forward fwd;
	struct queue_split split;
};
/* 0, or an exit status (SEND_EXIT_CONFIG: the aliases file) with a
 * message on stderr.  dl is valid while w lives. */
int send_queue_wiring_init(struct send_queue_wiring *w, struct send_opts *o,
                           struct event_base *base, struct queue_spool *sp,
                           struct client_outbound *engine, struct queue_deliverer *dl);
void send_queue_wiring_free(struct send_queue_wiring *w);
/* SIGTERM for a runner: stop starting.  The runner hands out nothing
 * more, the engine starts no destination or connection; what has begun
 * goes on.  Then send_queue_stop_idle says when nothing has begun that
 * has not ended (and been settled): the caller may exit, every entry not
 * settled stays queued as it was. */
void send_queue_stop(struct send_queue_wiring *w, struct client_outbound *engine,
                     struct queue_runner *runner);
bool send_queue_stop_idle(const struct send_queue_wiring *w,
                          const struct client_outbound *engine);
/* A client result as the queue records it: outcome, and last written
 * into buf as "host [ip]: reply lines" or the reason. */
void send_result_to_queue(const struct client_result *r, struct queue_result *q, char *buf,
                          size_t buflen);

/* send_message.c: now's date, zone and random octets for a composed or
 * completed message (Date, Message-ID); msg/ reads no clock itself. */
void send_message_stamp(struct msg_stamp *st, const char *hostname);
/* send_message.c: the message to send, from stdin.  Reads stdin (up to
 * the lone "." with dot_ends), then composes (-s, --attach: From is from,
 * To lists to[0..nto)) or checks and completes a raw message (a missing
 * From: becomes from), adding -t's recipients to rcpts.  On failure prints why
 * and returns the exit status; 0 on success. */
int send_message_build(const struct send_opts *o, const char *from, const char *const *to,
                       size_t nto, FILE *in, struct buf *msg, struct msg_recipients *rcpts);

/* send_report.c */
/* One recipient's result line(s), with the explanation of a known
 * refusal and the port 25 hint; "[ip]:port" when the port is not 25. */
void send_report_result(FILE *out, const struct client_result *r, unsigned short port);
/* The --dry-run plan of one destination, on stdout; the port is shown
 * when it is not 25, or when via ("relay", "route") says the addresses
 * are a relay's or a route's host. */
void send_report_plan(FILE *out, const char *destination, const struct dns_lookup_addr *addrs,
                      size_t n, const char *family_note, const char *via, unsigned short port);
/* Prints text from a peer (or holding it) escaped for the terminal
 * (util/text.h); line breaks kept.  Every line of the -v transcript and
 * every result goes through it. */
void send_print_safe(FILE *out, const char *text, size_t len);
/* Whether r failed because the server's certificate was refused (--tls
 * verify, --tls-fingerprint): sending again cannot help until the
 * certificate or the options change.  fp (may be NULL) gets the
 * certificate's "SHA256:..." fingerprint. */
bool send_result_certificate_refused(const struct client_result *r, char *fp, size_t fplen);
/* The exit status for a set of results (dry_run: PENDING means planned). */
int send_exit_status(const struct client_result *r, size_t n, bool dry_run);

#endif
