#include "server/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "auth/process.h"
#include "dns/resolver.h"
#include "msg/dkim.h"
#include "mqtt/bridge.h"
#include "net/tls.h"
#include "queue/spool.h"
#include "server/networks.h"
#include "server/smtpd.h"
#include "store/outbox.h"
#include "store/store.h"
#include "util/id.h"
#include "util/limits.h"
#include "util/log.h"
#include "util/proctitle.h"

/* sysexits.h codes (DESIGN.md, "Errors"). */
#define EXIT_OSERR 71
#define EXIT_CONFIG 78

/* An empty directory the smtp process is chrooted into when run as root. */
#define CHROOT_DIR "/var/empty"

enum role { ROLE_STORE, ROLE_SMTP, ROLE_QUEUE, ROLE_AUTH, ROLE_MQTT };
static const char *const role_names[] = { "store", "smtp", "queue", "auth", "mqtt" };

struct child {
	pid_t pid;
	enum role role;
	unsigned generation;
	bool drain_sent;   /* SIGUSR1 sent (each resends re-arm its deadline) */
	bool term_sent;    /* SIGTERM sent, likewise */
};

struct parent {
	const struct serve_args *args;
	struct serve_config cfg;
	SSL_CTX *tls;
	int listen_fds[CONFIG_LISTEN_MAX];
	size_t nlisten;
	/* Every live child of every generation, with no fixed cap: each reload
	 * while transactions drain leaves one more old pair running, and an
	 * untracked child would outlive SIGTERM and the parent. */
	struct child *children;
	size_t nchildren;
	size_t children_cap;
	unsigned generation;
	bool stopping;
	time_t last_restart;
	time_t last_queue_start;
	/* The queue process does not restart after a configuration error. */
	bool queue_failed;
	/* Nor does the MQTT bridge (issue 12), started with the settings of
	 * the start: a reload keeps it and its one connection. */
	time_t last_mqtt_start;
	bool mqtt_failed;
};

/* Issue 10's settings checked whole before anything starts (and at a
 * reload, which keeps the running settings if they fail): relaying needs
 * the outgoing queue, the networks must parse, and the users file must be
 * readable and well-formed (its FILE:LINE said here, rather than an auth
 * process that exits at every restart).  The parent reads the file for
 * this check only; the auth process reads it again for use. */
static bool relay_check(const struct serve_args *args, const struct serve_config *cfg,
                        char *err, size_t errlen)
{
	bool submission = config_has_listener(cfg, LISTEN_SUBMISSION) ||
	                  config_has_listener(cfg, LISTEN_SUBMISSIONS);
	if (cfg->mqtt.url && cfg->mqtt.send && !args->spool) {
		snprintf(err, errlen, "mqtt-send queues the mail it is asked to send: give --spool "
		         "DIR (or spool = in [queue])");
		return false;
	}
	if ((submission || cfg->trusted_networks.n) && !args->spool) {
		snprintf(err, errlen, "%s relays mail through the outgoing queue: give --spool DIR "
		         "(or spool = in [queue])",
		         submission ? "submission" : "--trusted-network");
		return false;
	}
	struct networks nets = { 0 };
	for (size_t i = 0; i < cfg->trusted_networks.n; i++) {
		char why[256];
		if (!networks_add(&nets, cfg->trusted_networks.items[i], why, sizeof(why))) {
			snprintf(err, errlen, "--trusted-network: %s", why);
			networks_free(&nets);
			return false;
		}
	}
	networks_free(&nets);
	if (cfg->users) {
		struct auth_users users;
		if (auth_process_load(cfg->users, &users, err, errlen) != 0)
			return false;
		auth_users_free(&users);
	}
	/* The DKIM keys the store will read (issue 11): a key it could not
	 * load would leave a login's mail unsigned without a word. */
	for (size_t i = 0; i < args->ndkim; i++) {
		struct dkim_key *key = NULL;
		char why[600];
		int lr = dkim_key_load(args->dkim[i].key, &key, why, sizeof(why));
		dkim_key_free(key);
		if (lr < 0) {
			snprintf(err, errlen, "[dkim]: %s", why);
			return false;
		}
		if (lr > 0)
			log_event(LOG_WARN, "dkim_key", "file=%s warning=\"%s\"", args->dkim[i].key, why);
	}
	return true;
}

/* The store's DKIM keys, read before its privilege drop (a key only root
 * may read works).  true, or false after logging which one failed. */
static bool store_dkim_load(const struct serve_args *args, struct store_dkim_key *keys)
{
	for (size_t i = 0; i < args->ndkim; i++) {
		char why[600];
		keys[i] = (struct store_dkim_key){ .domain = args->dkim[i].domain,
		                                   .selector = args->dkim[i].selector };
		if (dkim_key_load(args->dkim[i].key, &keys[i].key, why, sizeof(why)) < 0) {
			log_event(LOG_ERROR, "dkim_key", "file=%s reason=\"%s\"", args->dkim[i].key, why);
			return false;
		}
	}
	return true;
}

bool serve_load_config(const struct serve_args *args, struct serve_config *cfg, char *err,
                       size_t errlen)
{
	config_init(cfg);
	if (args->config_file && !config_load_file(cfg, args->config_file, err, errlen))
		return false;
	for (size_t i = 0; i < args->n; i++) {
		char detail[256];
		if (!config_set(cfg, CONFIG_FLAG, args->keys[i], args->values[i], detail,
		                sizeof(detail))) {
			snprintf(err, errlen, "--%s", detail);
			return false;
		}
	}
	if (!config_finish(cfg, err, errlen))
		return false;
	return relay_check(args, cfg, err, errlen);
}

static int open_listener(const struct listen_addr *a, char *err, size_t errlen)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::]:25 must not also take 0.0.0.0:25: each family is its own
	 * listener, as given. */
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s%s", a->text, strerror(e),
		         e == EADDRINUSE ? " (another server uses it: choose another --listen)"
		         : e == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
		                       : "");
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A server holds one descriptor per connection: take all the kernel allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Who owns a mail root that rawmail creates when started as root (and so
 * whom the store runs as): Debian's and most systems' user for mail. */
#define MAIL_USER_DEFAULT "mail"

/* Issue 8 item 10: the store never runs as root.  As root, the mail root
 * gets an owner the store can run as: --mail-user (the mail root is given
 * to it), else the owner of an existing mail root, which must not be root,
 * else, for a mail root made here, MAIL_USER_DEFAULT.  The mail root is
 * opened now, before any privilege drop, and the store works beneath that
 * descriptor with *at() calls: a mail root inside a directory the mail user
 * cannot traverse (a 0700 temporary directory) still works.  Fills
 * cfg->mailroot_fd, mail_uid and mail_gid; false with err (a configuration
 * error, exit 78) naming the fix. */
static bool mailroot_open(struct serve_config *cfg, char *err, size_t errlen)
{
	bool root = geteuid() == 0;
	const char *path = cfg->mailroot;
	struct passwd *pw = NULL;
	struct stat st;
	if (root && cfg->mail_user && !(pw = getpwnam(cfg->mail_user))) {
		snprintf(err, errlen, "mail-user: no such user '%s'", cfg->mail_user);
		return false;
	}
	bool exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT) {
		snprintf(err, errlen, "cannot use mailroot %s: %s", path, strerror(errno));
		return false;
	}
	if (root && !exists && !pw && !(pw = getpwnam(MAIL_USER_DEFAULT))) {
		snprintf(err, errlen,
		         "no user '%s' to own the new mail root %s (the store never runs as root): "
		         "create one (useradd --system %s) or name one with --mail-user USER",
		         MAIL_USER_DEFAULT, path, MAIL_USER_DEFAULT);
		return false;
	}
	if (pw && pw->pw_uid == 0) {
		snprintf(err, errlen, "mail-user: '%s' is root, and the store never runs as root: "
		         "name an unprivileged user", pw->pw_name);
		return false;
	}
	if (!exists && mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create mailroot %s: %s", path, strerror(errno));
		return false;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot open mailroot %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (root && pw) {
		if (fchown(fd, pw->pw_uid, pw->pw_gid) != 0) {
			snprintf(err, errlen, "cannot chown %s to %s: %s", path, pw->pw_name,
			         strerror(errno));
			close(fd);
			return false;
		}
		st.st_uid = pw->pw_uid;
		st.st_gid = pw->pw_gid;
	} else if (root && st.st_uid == 0) {
		snprintf(err, errlen,
		         "the mail root %s is owned by root, and the store never runs as root: give "
		         "it to the user the store should run as (chown -R %s: %s) or name one with "
		         "--mail-user USER",
		         path, MAIL_USER_DEFAULT, path);
		close(fd);
		return false;
	}
	if (cfg->mailroot_fd >= 0)
		close(cfg->mailroot_fd);
	cfg->mailroot_fd = fd;
	cfg->mail_uid = st.st_uid;
	cfg->mail_gid = st.st_gid;
	return true;
}

/* --queue-user, checked at start as --mail-user is: it exists, is not
 * root (the queue process talks to the Internet), and is the mail root's
 * owner: the queue process delivers local mail (cron's root, bounces to
 * local senders) through a store process it forks, which runs as itself
 * and writes only a mail root it owns; any other user would leave that
 * mail queued for good. */
static bool queue_user_check(const struct serve_config *cfg, const struct serve_args *args,
                             char *err, size_t errlen)
{
	if (!cfg->queue_user || geteuid() != 0 || !args->queue_main)
		return true;
	struct passwd *pw = getpwnam(cfg->queue_user);
	if (!pw) {
		snprintf(err, errlen, "queue-user: no such user '%s'", cfg->queue_user);
		return false;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "queue-user: '%s' is root, and the queue process never runs as "
		         "root: name an unprivileged user", cfg->queue_user);
		return false;
	}
	if (pw->pw_uid != cfg->mail_uid) {
		struct passwd *owner = getpwuid(cfg->mail_uid);
		snprintf(err, errlen, "queue-user: '%s' cannot deliver local mail: the mail root %s "
		         "belongs to '%s' (uid %u), the user local mail is written as; leave "
		         "queue-user out (the queue then runs as '%s') or give the mail root to '%s'",
		         cfg->queue_user, cfg->mailroot, owner ? owner->pw_name : "?",
		         (unsigned)cfg->mail_uid, owner ? owner->pw_name : "its owner", cfg->queue_user);
		return false;
	}
	return true;
}

static SSL_CTX *load_tls(const struct serve_config *cfg, char *err, size_t errlen)
{
	if (!cfg->tls)
		return NULL;
	if (cfg->tls_cert)
		return tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, err, errlen);
	/* No certificate configured: a self-signed one, made once and kept
	 * beside the mail (a mailbox cannot start with '.', so no clash). */
	char dir[PATH_MAX], state[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	snprintf(state, sizeof(state), "%s/.rawmail", cfg->mailroot);
	snprintf(dir, sizeof(dir), "%s/.rawmail/tls", cfg->mailroot);
	if (mkdir(state, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", state, strerror(errno));
		return NULL;
	}
	if (!tls_selfsigned_ensure(dir, cfg->hostname, cert, key, sizeof(cert), err, errlen))
		return NULL;
	return tls_server_ctx_new(cert, key, err, errlen);
}

/* Store process: runs as the mail root's owner or --mail-user, never as
 * root (mailroot_open chose a user that is not). */
static bool drop_to_mail_owner(const struct serve_config *cfg)
{
	if (geteuid() != 0)
		return true;
	if (cfg->mail_uid == 0) {
		errno = EPERM;
		return false;
	}
	return setgroups(0, NULL) == 0 && setgid(cfg->mail_gid) == 0 &&
	       setuid(cfg->mail_uid) == 0 && geteuid() != 0;
}

/* smtp process: chrooted to an empty directory as an unprivileged user,
 * before it reads a network byte. */
static bool drop_to_unprivileged(const struct serve_config *cfg)
{
	if (geteuid() != 0)
		return true;
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		log_event(LOG_ERROR, "drop_failed", "reason=\"no such user\" user=%s", cfg->user);
		return false;
	}
	if (mkdir(CHROOT_DIR, 0755) != 0 && errno != EEXIST)
		return false;
	if (chroot(CHROOT_DIR) != 0 || chdir("/") != 0) {
		log_event(LOG_ERROR, "drop_failed", "reason=chroot dir=%s error=\"%s\"", CHROOT_DIR,
		          strerror(errno));
		return false;
	}
	return setgroups(0, NULL) == 0 && setgid(pw->pw_gid) == 0 && setuid(pw->pw_uid) == 0;
}

static void child_signals(enum role role)
{
	sigset_t none;
	sigemptyset(&none);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* Ctrl-C reaches the whole process group, and systemd sends SIGTERM
	 * to the whole cgroup: the store ends when the smtp process closes
	 * its socket, never in the middle of a batch. */
	bool follows_smtp = role == ROLE_STORE || role == ROLE_AUTH;
	signal(SIGINT, follows_smtp ? SIG_IGN : SIG_DFL);
	signal(SIGTERM, follows_smtp ? SIG_IGN : SIG_DFL);
	signal(SIGUSR1, follows_smtp ? SIG_IGN : SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Room for n more children, made before forking them: a child the parent
 * could not record is never started. */
static bool children_reserve(struct parent *p, size_t n)
{
	if (p->nchildren + n <= p->children_cap)
		return true;
	size_t cap = p->children_cap ? p->children_cap * 2 : 8;
	while (cap < p->nchildren + n)
		cap *= 2;
	struct child *c = realloc(p->children, cap * sizeof(*c));
	if (!c)
		return false;
	p->children = c;
	p->children_cap = cap;
	return true;
}

static void children_add(struct parent *p, pid_t pid, enum role role)
{
	p->children[p->nchildren++] = (struct child){ .pid = pid, .role = role,
	                                              .generation = p->generation };
}

/* The child with this pid, or NULL. */
static struct child *children_find(struct parent *p, pid_t pid)
{
	for (size_t i = 0; i < p->nchildren; i++)
		if (p->children[i].pid == pid)
			return &p->children[i];
	return NULL;
}

static void children_remove(struct parent *p, struct child *c)
{
	*c = p->children[--p->nchildren];
}

/* If the parent dies (kill -9, a crash), nobody is left to stop or restart
 * the children: the smtp process then gets SIGTERM and stops as at a
 * shutdown (its store ends after it).  Set right after fork, and again
 * after a change of uid or gid, which clears it (prctl(2)); the getppid()
 * check closes the race with a parent that died before the prctl. */
static void child_watch_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != parent)
		raise(SIGTERM);
}

/* Starts a store and an smtp process joined by a socketpair. */
/* The auth process: chrooted to the empty directory, as the store's user
 * (the mail root's owner, already trusted with mail), never as the smtp
 * process's --user: a network-facing process of the same uid could ptrace
 * it and read the hashes. */
static bool drop_to_auth_user(const struct serve_config *cfg)
{
	if (geteuid() != 0)
		return true;
	if (cfg->mail_uid == 0) {
		errno = EPERM;
		return false;
	}
	if (mkdir(CHROOT_DIR, 0755) != 0 && errno != EEXIST)
		return false;
	if (chroot(CHROOT_DIR) != 0 || chdir("/") != 0)
		return false;
	return setgroups(0, NULL) == 0 && setgid(cfg->mail_gid) == 0 &&
	       setuid(cfg->mail_uid) == 0 && geteuid() != 0;
}

/* The auth process of this generation (issue 10): it reads the users
 * file as root, then drops (drop_to_auth_user) and answers "user, password" questions on its socket until the
 * smtp process closes it.  It alone holds the hashes.  *fd is the smtp
 * process's end. */
static bool spawn_auth(struct parent *p, int *fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		log_event(LOG_ERROR, "spawn_failed", "role=auth error=\"%s\"", strerror(errno));
		return false;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		for (size_t i = 0; i < p->nlisten; i++)
			close(p->listen_fds[i]);
		close(p->cfg.mailroot_fd);
		proctitle_set("rawmail: auth");
		child_signals(ROLE_AUTH);
		log_init("auth", p->cfg.log_level);
		struct auth_users users;
		char err[512];
		if (auth_process_load(p->cfg.users, &users, err, sizeof(err)) != 0) {
			log_event(LOG_ERROR, "users_unreadable", "reason=\"%s\"", err);
			log_flush();
			_exit(EXIT_CONFIG);
		}
		if (!drop_to_auth_user(&p->cfg)) {
			log_event(LOG_ERROR, "drop_failed", "role=auth error=\"%s\"", strerror(errno));
			_exit(EXIT_OSERR);
		}
		int rc = auth_process_run(&users, sv[1]);
		auth_users_free(&users);
		log_flush();
		_exit(rc == 0 ? 0 : EXIT_OSERR);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return false;
	}
	children_add(p, pid, ROLE_AUTH);
	*fd = sv[0];
	return true;
}

static bool spawn_pair(struct parent *p)
{
	int sv[2];
	int auth_fd = -1;
	if (!children_reserve(p, 3)) {
		log_event(LOG_ERROR, "spawn_failed", "error=\"out of memory\" children=%zu",
		          p->nchildren);
		return false;
	}
	pid_t parent = getpid();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		log_event(LOG_ERROR, "spawn_failed", "error=\"%s\"", strerror(errno));
		return false;
	}
	p->generation++;
	pid_t store = fork();
	if (store == 0) {
		close(sv[0]);
		for (size_t i = 0; i < p->nlisten; i++)
			close(p->listen_fds[i]);
		proctitle_set("rawmail: store");
		child_signals(ROLE_STORE);
		log_init("store", p->cfg.log_level);
		id_init();
		/* The spool is opened before the drop, like the mail root: a
		 * path under a directory the mail user cannot traverse works.
		 * A spool the queue process has not made yet is opened by path
		 * at the first relayed message. */
		struct queue_spool *spool = NULL;
		if (p->args->spool) {
			char why[512];
			if (queue_spool_open(p->args->spool, 0, &spool, why, sizeof(why)) != QUEUE_OK)
				spool = NULL;
		}
		struct store_dkim_key dkim[STORE_DKIM_KEYS_MAX] = { 0 };
		if (p->args->ndkim > STORE_DKIM_KEYS_MAX || !store_dkim_load(p->args, dkim))
			_exit(EXIT_CONFIG);
		/* The outbox too (issue 12): made as root, the store's user's,
		 * beneath a .rawmail/ that may be root's (the self-signed
		 * certificate's). */
		int outbox_fd = -1;
		if (p->cfg.mqtt.url) {
			bool root = geteuid() == 0;
			outbox_fd = outbox_dir_open(p->cfg.mailroot_fd, root ? (long)p->cfg.mail_uid : -1,
			                            root ? (long)p->cfg.mail_gid : -1);
			if (outbox_fd < 0) {
				log_event(LOG_ERROR, "outbox_unusable", "dir=%s/%s error=\"%s\"",
				          p->cfg.mailroot, OUTBOX_DIR, strerror(errno));
				_exit(EXIT_OSERR);
			}
		}
		if (!drop_to_mail_owner(&p->cfg)) {
			log_event(LOG_ERROR, "drop_failed", "role=store error=\"%s\"", strerror(errno));
			_exit(EXIT_OSERR);
		}
		struct store_config sc = { .mailroot = p->cfg.mailroot, .rootfd = p->cfg.mailroot_fd,
		                           .hostname = p->cfg.hostname, .sync = p->cfg.sync,
		                           .new_mailboxes_per_client = p->cfg.max_new_mailboxes_per_ip,
		                           .new_mailboxes_total = p->cfg.max_new_mailboxes,
		                           .spool = p->args->spool, .spool_open = spool,
		                           .dkim = dkim, .ndkim = p->args->ndkim,
		                           .outbox = p->cfg.mqtt.url != NULL, .outbox_fd = outbox_fd };
		int rc = store_process_run(&sc, sv[1]);
		for (size_t i = 0; i < p->args->ndkim; i++)
			dkim_key_free(dkim[i].key);
		log_flush();
		_exit(rc == 0 ? 0 : EXIT_OSERR);
	}
	if (store < 0) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	children_add(p, store, ROLE_STORE);
	if (p->cfg.users && !spawn_auth(p, &auth_fd)) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	pid_t smtp = fork();
	if (smtp == 0) {
		close(sv[1]);
		/* A directory descriptor would let it out of its chroot. */
		close(p->cfg.mailroot_fd);
		child_watch_parent(parent);
		proctitle_set("rawmail: smtp");
		child_signals(ROLE_SMTP);
		log_init("smtp", p->cfg.log_level);
		id_init();
		/* resolv.conf is read before the chroot hides it. */
		struct dns_resolver *dns = NULL;
		if (p->cfg.rdns) {
			char err[256];
			dns = dns_resolver_new(p->cfg.dns, 2000, err, sizeof(err));
			if (!dns)
				log_event(LOG_WARN, "rdns_disabled", "reason=\"%s\"", err);
		}
		if (!drop_to_unprivileged(&p->cfg)) {
			log_event(LOG_ERROR, "drop_failed", "role=smtp error=\"%s\"", strerror(errno));
			_exit(EXIT_OSERR);
		}
		child_watch_parent(parent);
		int rc = smtpd_run(&p->cfg, p->listen_fds, p->nlisten, sv[0], auth_fd, p->tls, dns);
		log_flush();
		_exit(rc);
	}
	close(sv[0]);
	close(sv[1]);
	if (auth_fd >= 0)
		close(auth_fd);
	/* Without its smtp process the store (and the auth process) reads end
	 * of file and exits. */
	if (smtp < 0)
		return false;
	children_add(p, smtp, ROLE_SMTP);
	return true;
}

/* The outbound delivery process (issue 9): one per server, whatever the
 * generation, so a reload never runs two runners; its code is cli's
 * (args->queue_main), which drops privileges itself once it has read
 * what it needs as root (resolver settings, CA bundle, the spool). */
static bool spawn_queue(struct parent *p)
{
	if (!p->args->queue_main || p->queue_failed)
		return true;
	if (!children_reserve(p, 1)) {
		log_event(LOG_ERROR, "spawn_failed", "role=queue error=\"out of memory\"");
		return false;
	}
	time_t now = time(NULL);
	if (now == p->last_queue_start)
		sleep(1);
	p->last_queue_start = time(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t i = 0; i < p->nlisten; i++)
			close(p->listen_fds[i]);
		close(p->cfg.mailroot_fd);
		child_watch_parent(parent);
		proctitle_set("rawmail: queue");
		child_signals(ROLE_QUEUE);
		log_init("queue", p->cfg.log_level);
		id_init();
		struct serve_queue_child qc = {
			.parent = parent, .log_level = p->cfg.log_level,
			.timeout_shutdown = p->cfg.timeout_shutdown, .hostname = p->cfg.hostname,
			.queue_user = p->cfg.queue_user, .mailroot = p->cfg.mailroot,
			.mail_uid = p->cfg.mail_uid, .mail_gid = p->cfg.mail_gid,
			.mqtt_events = p->cfg.mqtt.url != NULL,
		};
		int rc = p->args->queue_main(p->args->queue_arg, &qc);
		log_flush();
		_exit(rc);
	}
	if (pid < 0) {
		log_event(LOG_ERROR, "spawn_failed", "role=queue error=\"%s\"", strerror(errno));
		return false;
	}
	children_add(p, pid, ROLE_QUEUE);
	return true;
}

static void signal_queue(struct parent *p, int sig)
{
	for (size_t i = 0; i < p->nchildren; i++) {
		struct child *c = &p->children[i];
		if (c->role == ROLE_QUEUE && !c->term_sent && kill(c->pid, sig) == 0)
			c->term_sent = true;
	}
}

/* The MQTT bridge (issue 12): one per server, kept across reloads like
 * the queue process (a second client with the same id would knock the
 * first off the broker and fire its last will).  It runs as the store's
 * user: it reads the stored copies and the outbox under the mail root,
 * and queues requests in the spool. */
static bool spawn_mqtt(struct parent *p)
{
	if (!p->cfg.mqtt.url || p->mqtt_failed)
		return true;
	if (!children_reserve(p, 1)) {
		log_event(LOG_ERROR, "spawn_failed", "role=mqtt error=\"out of memory\"");
		return false;
	}
	time_t now = time(NULL);
	if (now == p->last_mqtt_start)
		sleep(1);
	p->last_mqtt_start = time(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t i = 0; i < p->nlisten; i++)
			close(p->listen_fds[i]);
		child_watch_parent(parent);
		proctitle_set("rawmail: mqtt");
		child_signals(ROLE_MQTT);
		log_init("mqtt", p->cfg.log_level);
		id_init();
		struct mqtt_bridge_dkim dkim[STORE_DKIM_KEYS_MAX];
		size_t ndkim = p->args->ndkim < STORE_DKIM_KEYS_MAX ? p->args->ndkim : STORE_DKIM_KEYS_MAX;
		for (size_t i = 0; i < ndkim; i++)
			dkim[i] = (struct mqtt_bridge_dkim){ .key = p->args->dkim[i].key,
				                                 .selector = p->args->dkim[i].selector,
				                                 .domain = p->args->dkim[i].domain };
		struct mqtt_bridge_child mc = {
			.mqtt = &p->cfg.mqtt, .hostname = p->cfg.hostname, .mailroot = p->cfg.mailroot,
			.rootfd = p->cfg.mailroot_fd, .uid = p->cfg.mail_uid, .gid = p->cfg.mail_gid,
			.spool = p->args->spool, .max_message_size = p->cfg.max_message_size,
			.dkim = dkim, .ndkim = ndkim,
		};
		p->cfg.mailroot_fd = -1;   /* the bridge's now */
		int rc = mqtt_bridge_main(&mc);
		log_flush();
		_exit(rc);
	}
	if (pid < 0) {
		log_event(LOG_ERROR, "spawn_failed", "role=mqtt error=\"%s\"", strerror(errno));
		return false;
	}
	children_add(p, pid, ROLE_MQTT);
	return true;
}

static void signal_role(struct parent *p, enum role role, int sig)
{
	for (size_t i = 0; i < p->nchildren; i++) {
		struct child *c = &p->children[i];
		if (c->role == role && !c->term_sent && kill(c->pid, sig) == 0)
			c->term_sent = true;
	}
}

/* Which smtp processes a signal is for. */
enum which { ALL_GENERATIONS, OLD_GENERATIONS, ONE_GENERATION };

/* SIGUSR1 (drain) or SIGTERM (stop) to smtp processes, once each: a second
 * one would restart the grace period the first one set.  The stores end on
 * their own after their smtp process. */
static void signal_smtp(struct parent *p, int sig, enum which which, unsigned generation)
{
	for (size_t i = 0; i < p->nchildren; i++) {
		struct child *c = &p->children[i];
		bool *sent = sig == SIGTERM ? &c->term_sent : &c->drain_sent;
		if (c->role != ROLE_SMTP || *sent)
			continue;
		if ((which == OLD_GENERATIONS && c->generation == p->generation) ||
		    (which == ONE_GENERATION && c->generation != generation))
			continue;
		if (kill(c->pid, sig) == 0)
			*sent = true;
	}
}

static void reload(struct parent *p)
{
	struct serve_config cfg;
	char err[512];
	if (!serve_load_config(p->args, &cfg, err, sizeof(err))) {
		log_event(LOG_ERROR, "reload_failed", "reason=\"%s\" action=\"kept running config\"",
		          err);
		config_free(&cfg);
		return;
	}
	if (!mailroot_open(&cfg, err, sizeof(err))) {
		log_event(LOG_ERROR, "reload_failed", "reason=\"%s\" action=\"kept running config\"",
		          err);
		config_free(&cfg);
		return;
	}
	bool same_listen = cfg.nlisten == p->cfg.nlisten;
	for (size_t i = 0; same_listen && i < cfg.nlisten; i++)
		same_listen = !strcmp(cfg.listen[i].text, p->cfg.listen[i].text) &&
		              cfg.listen[i].kind == p->cfg.listen[i].kind;
	if (!same_listen)
		log_event(LOG_WARN, "reload_listen_unchanged",
		          "hint=\"listen addresses change only on restart\"");
	SSL_CTX *tls = load_tls(&cfg, err, sizeof(err));
	if (cfg.tls && !tls) {
		log_event(LOG_ERROR, "reload_failed", "reason=\"%s\" action=\"kept running config\"",
		          err);
		config_free(&cfg);
		return;
	}
	/* The bridge keeps its one connection (spawn_mqtt): new settings
	 * reach it only if it restarts. */
	const struct mqtt_settings *om = &p->cfg.mqtt, *nm = &cfg.mqtt;
	if ((om->url == NULL) != (nm->url == NULL) || (om->url && strcmp(om->url, nm->url)) ||
	    strcmp(om->topic, nm->topic) || om->send != nm->send)
		log_event(LOG_WARN, "reload_mqtt_unchanged",
		          "hint=\"the MQTT bridge keeps its settings until serve restarts\"");
	/* Keep the listeners as they are (the children use these fds). */
	memcpy(cfg.listen, p->cfg.listen, sizeof(cfg.listen));
	cfg.nlisten = p->cfg.nlisten;
	config_free(&p->cfg);
	p->cfg = cfg;
	if (p->tls)
		SSL_CTX_free(p->tls);
	p->tls = tls;
	log_init("serve", p->cfg.log_level);
	if (spawn_pair(p)) {
		signal_smtp(p, SIGUSR1, OLD_GENERATIONS, 0);
		log_event(LOG_INFO, "reloaded", "generation=%u children=%zu", p->generation,
		          p->nchildren);
	} else {
		log_event(LOG_ERROR, "reload_failed",
		          "reason=\"cannot start new processes\" action=\"kept the running ones\"");
	}
}

static void reap(struct parent *p)
{
	int status;
	pid_t pid;
	bool restart = false, restart_queue = false, restart_mqtt = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = children_find(p, pid);
		if (!c)
			continue;
		bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (c->role == ROLE_MQTT) {
			if (!clean || !p->stopping)
				log_event(clean ? LOG_INFO : LOG_ERROR, "child_exit",
				          "role=mqtt pid=%d status=%d signal=%d", (int)pid,
				          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CONFIG)
				p->mqtt_failed = true;
			else if (!p->stopping)
				restart_mqtt = true;
			children_remove(p, c);
			continue;
		}
		if (c->role == ROLE_QUEUE) {
			if (!clean || !p->stopping)
				log_event(clean ? LOG_INFO : LOG_ERROR, "child_exit",
				          "role=queue pid=%d status=%d signal=%d", (int)pid,
				          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			/* 78: its settings cannot work (logged by it); restarting
			 * would only repeat that. */
			if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CONFIG)
				p->queue_failed = true;
			else if (!p->stopping)
				restart_queue = true;
			children_remove(p, c);
			continue;
		}
		if (!clean || (!p->stopping && c->generation == p->generation))
			log_event(clean ? LOG_INFO : LOG_ERROR, "child_exit",
			          "role=%s pid=%d generation=%u status=%d signal=%d",
			          role_names[c->role], (int)pid, c->generation,
			          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		if (!p->stopping && c->generation == p->generation)
			restart = true;
		children_remove(p, c);
	}
	if (restart) {
		/* One of the current pair died: stop its sibling gracefully (only
		 * that generation: older ones are still draining their
		 * transactions) and start a new pair, at most once a second. */
		signal_smtp(p, SIGTERM, ONE_GENERATION, p->generation);
		time_t now = time(NULL);
		if (now == p->last_restart)
			sleep(1);
		p->last_restart = time(NULL);
		spawn_pair(p);
	}
	if (restart_queue)
		spawn_queue(p);
	if (restart_mqtt)
		spawn_mqtt(p);
}

static void print_banner(const struct parent *p)
{
	char abs[PATH_MAX];
	const char *root = realpath(p->cfg.mailroot, abs) ? abs : p->cfg.mailroot;
	printf("rawmail serve: listening on");
	for (size_t i = 0; i < p->nlisten; i++)
		printf(p->cfg.listen[i].kind == LISTEN_MX ? " %s" : " %s (%s)", p->cfg.listen[i].text,
		       config_listen_key(p->cfg.listen[i].kind));
	printf("\nrawmail serve: accepting mail for");
	for (size_t i = 0; i < p->cfg.domains.n; i++)
		printf(" %s", p->cfg.domains.items[i]);
	printf(" %s localhost and the listening addresses as [literals]\n", p->cfg.hostname);
	printf("rawmail serve: mail goes to %s/<user>/new/ (Maildir); STARTTLS %s\n", root,
	       p->tls ? "on" : "off");
	const struct listen_addr *a = &p->cfg.listen[0];
	for (size_t i = p->nlisten; i-- > 0;)
		if (p->cfg.listen[i].kind == LISTEN_MX)
			a = &p->cfg.listen[i];
	if (a->kind != LISTEN_MX) {
		fflush(stdout);
		return;
	}
	char host[64] = "127.0.0.1";
	unsigned port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (!a->wildcard && a->ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, host, sizeof(host));
	printf("rawmail serve: try: echo 'It works.' | rawmail send -s hello -f me@example.com "
	       "--port %u 'you@[%s]' && ls %s/you/new\n",
	       port, host, root);
	fflush(stdout);
}

/* What the parent holds, released on every way out of serve_main. */
static void parent_free(struct parent *p)
{
	for (size_t i = 0; i < p->nlisten; i++)
		close(p->listen_fds[i]);
	if (p->tls)
		SSL_CTX_free(p->tls);
	config_free(&p->cfg);
	free(p->children);
}

int serve_main(const struct serve_args *args)
{
	struct parent p;
	char err[512];
	memset(&p, 0, sizeof(p));
	p.args = args;
	proctitle_set("rawmail: parent");
	log_init("serve", LOG_INFO);
	id_init();
	if (!serve_load_config(args, &p.cfg, err, sizeof(err))) {
		fprintf(stderr, "rawmail serve: %s\n", err);
		config_free(&p.cfg);
		return EXIT_CONFIG;
	}
	log_init("serve", p.cfg.log_level);
	if (!mailroot_open(&p.cfg, err, sizeof(err))) {
		fprintf(stderr, "rawmail serve: %s\n", err);
		config_free(&p.cfg);
		return EXIT_CONFIG;
	}
	if (!queue_user_check(&p.cfg, args, err, sizeof(err))) {
		fprintf(stderr, "rawmail serve: %s\n", err);
		config_free(&p.cfg);
		return EXIT_CONFIG;
	}
	p.tls = load_tls(&p.cfg, err, sizeof(err));
	if (p.cfg.tls && !p.tls) {
		fprintf(stderr, "rawmail serve: TLS: %s\n", err);
		config_free(&p.cfg);
		return EXIT_CONFIG;
	}
	for (size_t i = 0; i < p.cfg.nlisten; i++) {
		int fd = open_listener(&p.cfg.listen[i], err, sizeof(err));
		if (fd < 0) {
			/* The built-in [::1] listener is skipped on a host with no
			 * IPv6; one the user asked for is an error. */
			bool optional = p.cfg.listen_source[LISTEN_MX] == CONFIG_DEFAULT &&
			                p.cfg.listen[i].ss.ss_family == AF_INET6 &&
			                (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT);
			if (optional) {
				log_event(LOG_WARN, "listen_skipped", "addr=%s reason=\"no IPv6\"",
				          p.cfg.listen[i].text);
				memmove(&p.cfg.listen[i], &p.cfg.listen[i + 1],
				        (p.cfg.nlisten - i - 1) * sizeof(p.cfg.listen[0]));
				p.cfg.nlisten--;
				i--;
				continue;
			}
			fprintf(stderr, "rawmail serve: %s\n", err);
			parent_free(&p);
			return EXIT_OSERR;
		}
		p.listen_fds[p.nlisten++] = fd;
	}
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (args->spool && (config_has_listener(&p.cfg, LISTEN_SUBMISSION) ||
	                    config_has_listener(&p.cfg, LISTEN_SUBMISSIONS) ||
	                    p.cfg.trusted_networks.n || (p.cfg.mqtt.url && p.cfg.mqtt.send))) {
		/* Made now, so the store (and the MQTT bridge) can open it before
		 * its privilege drop
		 * (the queue process then gives it to its user, as always). */
		struct queue_spool *sp;
		char why[512];
		if (queue_spool_open(args->spool, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why)) !=
		    QUEUE_OK) {
			fprintf(stderr, "rawmail serve: %s\n", why);
			parent_free(&p);
			return EXIT_CONFIG;
		}
		queue_spool_close(sp);
	}
	if (!spawn_pair(&p)) {
		fprintf(stderr, "rawmail serve: cannot start: %s\n", strerror(errno));
		parent_free(&p);
		return EXIT_OSERR;
	}
	if (!spawn_queue(&p)) {
		fprintf(stderr, "rawmail serve: cannot start the queue process: %s\n", strerror(errno));
		p.stopping = true;
		signal_smtp(&p, SIGTERM, ALL_GENERATIONS, 0);
	}
	if (!p.stopping && !spawn_mqtt(&p)) {
		fprintf(stderr, "rawmail serve: cannot start the mqtt process: %s\n", strerror(errno));
		p.stopping = true;
		signal_smtp(&p, SIGTERM, ALL_GENERATIONS, 0);
		signal_queue(&p, SIGTERM);
	}
	print_banner(&p);
	log_event(LOG_INFO, "started", "pid=%d listeners=%zu mailroot=%s", (int)getpid(), p.nlisten,
	          p.cfg.mailroot);
	/* The parent exits last, once every child of every generation has. */
	while (!p.stopping || p.nchildren > 0) {
		siginfo_t info;
		struct timespec ts = { 1, 0 };
		int sig = sigtimedwait(&set, &info, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!p.stopping)
				log_event(LOG_INFO, "stopping", "signal=%d", sig);
			p.stopping = true;
			signal_smtp(&p, SIGTERM, ALL_GENERATIONS, 0);
			signal_queue(&p, SIGTERM);
			signal_role(&p, ROLE_MQTT, SIGTERM);
		} else if (sig == SIGHUP && !p.stopping) {
			reload(&p);
		} else if (sig == SIGCHLD || sig < 0) {
			reap(&p);
		}
	}
	log_event(LOG_INFO, "stopped", "pid=%d", (int)getpid());
	log_flush();
	parent_free(&p);
	return 0;
}
