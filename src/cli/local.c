/* Local mail (local.h): this host's names, the aliases file, and the
 * Maildir deliverer that hands each message to a store process of its
 * own, forked for the delivery and ended when it is done. */
#include "cli/local.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/policy.h"
#include "store/outbox.h"
#include "store/store.h"
#include "util/hostname.h"
#include "util/limits.h"
#include "util/log.h"

/* The user a mail root made here belongs to, as serve's (serve.c). */
#define LOCAL_MAIL_USER "mail"

void cli_local_names_init(struct cli_local_names *n)
{
	hostname_get(n->host, sizeof(n->host), "/etc/hosts");
	size_t dot = strcspn(n->host, ".");
	snprintf(n->short_name, sizeof(n->short_name), "%.*s", (int)dot, n->host);
}

bool cli_local_domain(void *names, const char *addr, char *name, size_t namelen)
{
	const struct cli_local_names *n = names;
	const char *at = strrchr(addr, '@');
	if (!at || at == addr)
		return false;
	const char *dom = at + 1;
	size_t dlen = strlen(dom);
	/* A trailing root dot names the same host (RFC 1035 §3.1). */
	if (dlen > 1 && dom[dlen - 1] == '.')
		dlen--;
	bool local = (dlen == 9 && !strncasecmp(dom, "localhost", 9)) ||
	             (dlen == strlen(n->host) && !strncasecmp(dom, n->host, dlen)) ||
	             (dlen == strlen(n->short_name) && !strncasecmp(dom, n->short_name, dlen));
	if (!local || (size_t)(at - addr) >= namelen)
		return false;
	snprintf(name, namelen, "%.*s", (int)(at - addr), addr);
	for (char *c = name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return true;
}

static void aliases_warn(void *arg, size_t line, const char *why)
{
	log_event(LOG_WARN, "aliases", "file=%s line=%zu why=\"%s\"", (const char *)arg, line, why);
}

int cli_aliases_read(const char *prog, const char *path, struct msg_aliases *out,
                     msg_aliases_warn_fn warn, void *arg, const char **path_used)
{
	*out = (struct msg_aliases){ 0 };
	*path_used = NULL;
	bool given = path != NULL;
	if (!path)
		path = CLI_ALIASES_DEFAULT;
	if (!path[0])
		return 0;
	*path_used = path;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!given && errno == ENOENT) {
			*path_used = NULL;
			return 0;
		}
		fprintf(stderr, "%s: aliases file %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	char *text = malloc(ALIASES_FILE_MAX + 1);
	size_t len = 0;
	ssize_t r = 0;
	while (text && len <= ALIASES_FILE_MAX &&
	       (r = read(fd, text + len, ALIASES_FILE_MAX + 1 - len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		len += (size_t)r;
	}
	int e = errno;
	close(fd);
	if (!text || r < 0) {
		fprintf(stderr, "%s: aliases file %s: %s\n", prog, path,
		        text ? strerror(e) : "out of memory");
		free(text);
		return -1;
	}
	char err[256];
	int rc = msg_aliases_parse(text, len, out, warn, arg ? arg : (void *)path, err, sizeof(err));
	free(text);
	if (rc != 0) {
		/* "line N: why" from the parser: said as FILE:N, as compilers
		 * and the settings file do. */
		char *end = NULL;
		unsigned long line = 0;
		if (!strncmp(err, "line ", 5))
			line = strtoul(err + 5, &end, 10);
		if (line > 0 && end && end[0] == ':' && end[1] == ' ')
			fprintf(stderr, "%s: %s:%lu: %s (aliases file)\n", prog, path, line, end + 2);
		else
			fprintf(stderr, "%s: aliases file %s: %s\n", prog, path, err);
		msg_aliases_free(out);
		return -1;
	}
	return 0;
}

int cli_aliases_load(const char *prog, const char *path, struct msg_aliases *out)
{
	const char *used;
	return cli_aliases_read(prog, path, out, aliases_warn, NULL, &used);
}

struct cli_local {
	struct event_base *base;
	char *mailroot;
	struct cli_local_names names;
	size_t active;               /* jobs submitted whose done has not run */
	int held_fd;                 /* cli_local_hold: the mail root, opened early; -1 */
	int outbox_fd;               /* cli_local_events: MQTT events outbox; -1 */
};

/* One message in delivery: its store process and what it answers. */
struct local_job {
	struct cli_local *l;
	queue_deliver_done_fn done;
	void *arg;
	size_t n;
	struct queue_result *res;
	char **last;
	struct store_client *sc;
	pid_t pid;
};

struct cli_local *cli_local_new(struct event_base *base, const char *mailroot,
                                const struct cli_local_names *names)
{
	struct cli_local *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->base = base;
	l->held_fd = -1;
	l->outbox_fd = -1;
	l->names = *names;
	if (!(l->mailroot = strdup(mailroot ? mailroot : CLI_MAILROOT_DEFAULT))) {
		free(l);
		return NULL;
	}
	return l;
}

void cli_local_hold(struct cli_local *l)
{
	if (l->held_fd < 0)
		l->held_fd = open(l->mailroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

void cli_local_events(struct cli_local *l, uid_t uid, gid_t gid)
{
	if (l->held_fd < 0 || l->outbox_fd >= 0)
		return;
	bool root = geteuid() == 0;
	l->outbox_fd = outbox_dir_open(l->held_fd, root ? (long)uid : -1, root ? (long)gid : -1);
	if (l->outbox_fd < 0)
		log_event(LOG_ERROR, "outbox_unusable", "dir=%s/%s error=\"%s\" action=\"local mail "
		          "is delivered without its MQTT events\"", l->mailroot, OUTBOX_DIR,
		          strerror(errno));
}

size_t cli_local_active(const struct cli_local *l)
{
	return l ? l->active : 0;
}

void cli_local_free(struct cli_local *l)
{
	if (!l)
		return;
	if (l->held_fd >= 0)
		close(l->held_fd);
	if (l->outbox_fd >= 0)
		close(l->outbox_fd);
	free(l->mailroot);
	free(l);
}

/* The mail root, opened (made, as serve makes it, when missing) with its
 * owner; -1 with why, a reason the message stays queued for. */
static int mailroot_open(const struct cli_local *l, uid_t *uid, gid_t *gid, char *why,
                         size_t whylen)
{
	bool root = geteuid() == 0;
	if (mkdir(l->mailroot, 0700) == 0 && root) {
		struct passwd *pw = getpwnam(LOCAL_MAIL_USER);
		if (!pw || pw->pw_uid == 0 || chown(l->mailroot, pw->pw_uid, pw->pw_gid) != 0) {
			snprintf(why, whylen, "cannot give the new mail root %s to user '%s' (the "
			                      "store never runs as root)",
			         l->mailroot, LOCAL_MAIL_USER);
			return -1;
		}
	}
	int fd = l->held_fd >= 0 ? fcntl(l->held_fd, F_DUPFD_CLOEXEC, 0)
	                          : open(l->mailroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot open the mail root %s: %s", l->mailroot,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (root && st.st_uid == 0) {
		snprintf(why, whylen, "the mail root %s is owned by root, and the store never runs "
		                      "as root: give it to the mail user (chown -R %s: %s)",
		         l->mailroot, LOCAL_MAIL_USER, l->mailroot);
		close(fd);
		return -1;
	}
	if (!root && st.st_uid != geteuid()) {
		snprintf(why, whylen, "local delivery needs root or the mail root's owner (uid %u, "
		                      "mail root %s); run `rawmail queue run` as root",
		         (unsigned)st.st_uid, l->mailroot);
		close(fd);
		return -1;
	}
	*uid = st.st_uid;
	*gid = st.st_gid;
	return fd;
}

static void job_free(struct local_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->last[i]);
	free(j->last);
	free(j->res);
	free(j);
}

static void job_set(struct local_job *j, size_t i, enum queue_outcome o, const char *text)
{
	free(j->last[i]);
	j->last[i] = strdup(text);
	j->res[i] = (struct queue_result){ o, j->last[i] ? j->last[i] : "out of memory" };
}

/* Until the store process has exited: it does once its socket is
 * closed, which libevent may do only when the loop runs again after
 * store_client_free, so the wait cannot block. */
static void job_reap(evutil_socket_t fd, short what, void *arg)
{
	struct local_job *j = arg;
	int status;
	pid_t r = j->pid > 0 ? waitpid(j->pid, &status, WNOHANG) : -1;
	if (r == 0 || (r < 0 && errno == EINTR)) {
		static const struct timeval later = { 0, 5000 };
		if (event_base_once(j->l->base, -1, EV_TIMEOUT, job_reap, j, &later) == 0)
			return;
	}
	j->l->active--;
	j->done(j->arg, j->res, j->n);
	job_free(j);
}

/* From the loop, after the store's answer: end the store process, then
 * report once it is gone. */
static void job_finish(evutil_socket_t fd, short what, void *arg)
{
	struct local_job *j = arg;
	if (j->sc)
		store_client_free(j->sc);
	j->sc = NULL;
	job_reap(-1, 0, j);
}

static void job_committed(void *arg, enum store_result r)
{
	struct local_job *j = arg;
	for (size_t i = 0; i < j->n; i++) {
		if (j->res[i].outcome != QUEUE_OUTCOME_DELIVERED)
			continue;   /* a mailbox name refused before */
		if (r == STORE_OK)
			continue;
		job_set(j, i, QUEUE_OUTCOME_TEMPORARY,
		        r == STORE_NOSPACE ? "local delivery: 452 4.3.1 the mail root's disk is full"
		                           : "local delivery: 451 4.3.0 the store could not write "
		                             "the message (see its log line)");
	}
	static const struct timeval now = { 0, 0 };
	if (event_base_once(j->l->base, -1, EV_TIMEOUT, job_finish, j, &now) != 0)
		job_finish(-1, 0, j);
}

static void store_lost(void *arg)
{
	/* Every committed txn already got STORE_TEMPFAIL. */
}

/* The store process: the same one serve forks, dropped to the mail
 * root's owner when run as root. */
static int fd_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Closes every descriptor from 3 up but keep[0..n). */
static int close_except(int *keep, size_t n)
{
	qsort(keep, n, sizeof(*keep), fd_cmp);
	unsigned from = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < from)
			continue;
		if ((unsigned)keep[i] > from && close_range(from, (unsigned)keep[i] - 1, 0) != 0)
			return -1;
		from = (unsigned)keep[i] + 1;
	}
	return close_range(from, ~0u, 0);
}

static void store_child(const struct cli_local *l, int rootfd, int sock, uid_t uid, gid_t gid)
{
	/* Nothing of the runner's goes with it: the spool's directories and
	 * locked entries (root's, 0700) must not reach the mail user, and a
	 * lock held here would outlive the runner's own unlock.  The outbox
	 * (serve's queue process with the MQTT bridge on) is a copy: the
	 * store takes over what it is given. */
	int outbox = l->outbox_fd >= 0 ? dup(l->outbox_fd) : -1;
	int keep[3] = { rootfd, sock, outbox };
	if (close_except(keep, 3) != 0) {
		log_event(LOG_ERROR, "drop_failed", "role=store error=\"close_range: %s\"",
		          strerror(errno));
		log_flush();
		_exit(71);
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	log_init("store", LOG_INFO);
	if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0 ||
	                       geteuid() == 0)) {
		log_event(LOG_ERROR, "drop_failed", "role=store error=\"%s\"", strerror(errno));
		log_flush();
		_exit(71);
	}
	struct store_config sc = { .mailroot = l->mailroot, .rootfd = rootfd,
		                   .hostname = l->names.host, .sync = STORE_SYNC_FSYNC,
		                   .new_mailboxes_per_client = SMTP_NEW_MAILBOXES_MAX,
		                   .new_mailboxes_total = SMTP_NEW_MAILBOXES_MAX,
		                   /* Local mail's MQTT events (issue 12), when serve's
		                    * queue process asked for them. */
		                   .outbox = outbox >= 0, .outbox_fd = outbox };
	int rc = store_process_run(&sc, sock);
	log_flush();
	_exit(rc == 0 ? 0 : 71);
}

/* RFC 5321 §4.4: a Received: line for the hop into the mailbox, as serve's
 * store writes one (LF line ends, folded, ending in LF). */
static void received_line(char *out, size_t outlen, const char *host, const char *id)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	if (!localtime_r(&now, &tm) ||
	    !strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm))
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	snprintf(out, outlen, "Received: by %s (rawmail local delivery) id %s;\n\t%s\n", host, id,
	         date);
}

/* The message as the store takes it: LF line ends (the spool has CRLF). */
static int write_lf(struct store_txn *t, const char *p, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n') {
			if (store_txn_write(t, p + start, i - start) != 0)
				return -1;
			start = i + 1;
		}
	}
	return start < len ? store_txn_write(t, p + start, len - start) : 0;
}

int cli_local_submit(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
                     void *arg, char *why, size_t whylen)
{
	struct cli_local *l = ctx;
	struct local_job *j = calloc(1, sizeof(*j));
	struct store_recipient *rcpts = calloc(d->n ? d->n : 1, sizeof(*rcpts));
	char **mailboxes = calloc(d->n ? d->n : 1, sizeof(*mailboxes));
	char **addresses = calloc(d->n ? d->n : 1, sizeof(*addresses));
	int rootfd = -1, sv[2] = { -1, -1 }, rc = -1;
	size_t nstore = 0;
	if (!j || !rcpts || !mailboxes || !addresses ||
	    !(j->res = calloc(d->n ? d->n : 1, sizeof(*j->res))) ||
	    !(j->last = calloc(d->n ? d->n : 1, sizeof(*j->last)))) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	j->l = l;
	j->done = done;
	j->arg = arg;
	j->n = d->n;
	uid_t uid;
	gid_t gid;
	if ((rootfd = mailroot_open(l, &uid, &gid, why, whylen)) < 0)
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		const char *name = d->rcpts[i];
		char text[600];
		mailboxes[i] = policy_mailbox_name(name, strlen(name));
		if (!mailboxes[i]) {
			snprintf(text, sizeof(text), "local delivery: 550 5.1.3 '%s' cannot be a "
			                             "mailbox name", name);
			job_set(j, i, QUEUE_OUTCOME_PERMANENT, text);
			continue;
		}
		/* Delivered-To names the mailbox at this host (RFC 9228). */
		size_t alen = strlen(name) + strlen(l->names.host) + 2;
		if (!(addresses[i] = malloc(alen))) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
		snprintf(addresses[i], alen, "%s@%s", name, l->names.host);
		snprintf(text, sizeof(text), "local delivery: delivered to the Maildir %s/%s",
		         l->mailroot, mailboxes[i]);
		job_set(j, i, QUEUE_OUTCOME_DELIVERED, text);
		rcpts[nstore++] = (struct store_recipient){ addresses[i], mailboxes[i] };
	}
	if (nstore == 0) {
		/* Nothing to write: the refusals still come from the loop. */
		static const struct timeval now = { 0, 0 };
		j->pid = -1;
		if (event_base_once(l->base, -1, EV_TIMEOUT, job_finish, j, &now) != 0) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
		j = NULL;
		rc = 0;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(why, whylen, "cannot start local delivery: %s", strerror(errno));
		goto out;
	}
	log_flush();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "cannot start local delivery: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(sv[0]);
		store_child(l, rootfd, sv[1], uid, gid);
	}
	close(sv[1]);
	sv[1] = -1;
	j->pid = pid;
	j->sc = store_client_new(l->base, sv[0], store_lost, j);
	sv[0] = -1;
	char received[512];
	received_line(received, sizeof(received), l->names.host, d->id);
	struct store_txn *t = j->sc ? store_txn_begin(j->sc, d->id, d->sender, rcpts, nstore,
	                                              received, NULL, NULL, NULL)
	                            : NULL;
	if (!t || write_lf(t, d->data, d->len) != 0) {
		if (t)
			store_txn_abort(t);
		if (j->sc)
			store_client_free(j->sc);
		/* Its socket closes with the loop's next turn; then it exits
		 * and is reaped by whoever waits next (a zombie meanwhile). */
		kill(pid, SIGTERM);
		snprintf(why, whylen, "cannot start local delivery: out of memory");
		goto out;
	}
	l->active++;
	store_txn_commit(t, job_committed, j);
	j = NULL;
	rc = 0;
out:
	if (rootfd >= 0)
		close(rootfd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	for (size_t i = 0; i < d->n; i++) {
		if (mailboxes)
			free(mailboxes[i]);
		if (addresses)
			free(addresses[i]);
	}
	free(mailboxes);
	free(addresses);
	free(rcpts);
	if (j)
		job_free(j);
	return rc;
}
