/* A detached `rawmail queue run ID` (queue_kick.h). */
#include "cli/queue_kick.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/fingerprint.h"

/* 2 per option at most: --spool, --dns, --port, --tls, --cafile, --helo,
 * --timeout, -4/-6, the three queue options, --mailroot, --aliases, the pins; "queue run",
 * the id, argv[0] and NULL. */
#define KICK_ARGS_MAX (2 * (18 + CLIENT_OUTBOUND_PINS_MAX + CLIENT_RELAY_ROUTES_MAX) + 8)

static const char *kick_program = "/proc/self/exe";

void cli_queue_kick_program_set(const char *path)
{
	kick_program = path;
}

static const char *tls_name(enum cli_tls t)
{
	switch (t) {
	case CLI_TLS_NONE:
		return "none";
	case CLI_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case CLI_TLS_REQUIRE:
		return "require";
	case CLI_TLS_VERIFY:
		return "verify";
	}
	return "opportunistic";
}

int cli_queue_daemon_hold(const char *spool)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", spool, CLI_QUEUE_DAEMON_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool cli_queue_daemon_running(const char *spool)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", spool, CLI_QUEUE_DAEMON_LOCK);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;   /* no serve has run the queue here */
	/* A shared lock is granted unless someone holds it exclusively: a
	 * live serve queue process (a dead one's lock died with it). */
	bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* Kicked runners not reaped yet: sendmail -bs kicks once per message and
 * lives on, so its children are reaped (without waiting) at the next
 * kick; the plain sendmail entry exits at once and init adopts them. */
static pid_t kicked[64];
static size_t nkicked;

static void kicked_reap(void)
{
	size_t k = 0;
	for (size_t i = 0; i < nkicked; i++)
		if (waitpid(kicked[i], NULL, WNOHANG) == 0)
			kicked[k++] = kicked[i];
	nkicked = k;
}

/* The kick lock, taken: its descriptor (never CLI_QUEUE_GATHER_FD, which
 * it is duplicated onto in the runner), or -1 with errno (EWOULDBLOCK:
 * a runner is gathering). */
static int kick_lock_take(const char *spool)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", spool, CLI_QUEUE_KICK_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	if (fd == CLI_QUEUE_GATHER_FD) {
		int d = fcntl(fd, F_DUPFD_CLOEXEC, CLI_QUEUE_GATHER_FD + 1);
		close(fd);
		fd = d;
	}
	return fd;
}

void cli_queue_gather(const char *spool)
{
	struct timespec ts = { 0, CLI_QUEUE_GATHER_MS * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	char path[4200];
	struct stat want, got;
	snprintf(path, sizeof(path), "%s/%s", spool, CLI_QUEUE_KICK_LOCK);
	if (stat(path, &want) == 0 && fstat(CLI_QUEUE_GATHER_FD, &got) == 0 &&
	    want.st_dev == got.st_dev && want.st_ino == got.st_ino)
		close(CLI_QUEUE_GATHER_FD);
}

bool cli_queue_kick(const struct send_opts *o, const char *spool, const char *id)
{
	/* rawmail serve runs this spool's queue: its inotify watch on env/
	 * has seen the entry arrive, and its pass makes the first attempt
	 * (with serve's delivery settings).  Another runner would only race
	 * it for the entry's lock. */
	if (cli_queue_daemon_running(spool))
		return true;
	/* A runner started for an earlier entry is still gathering: its
	 * pass takes this one too.  Without the lock (a spool we may not
	 * write a file in), one runner for this entry alone, as before. */
	int lock = kick_lock_take(spool);
	if (lock < 0 && errno == EWOULDBLOCK)
		return true;
	const struct cli_delivery *d = &o->delivery;
	char port[16], timeout[16];
	char pins[CLIENT_OUTBOUND_PINS_MAX][TLS_FINGERPRINT_TEXT_SIZE];
	char *argv[KICK_ARGS_MAX];
	size_t n = 0;
#define ARG(s) (argv[n++] = (char *)(s))
	ARG("rawmail");
	ARG("queue");
	ARG("run");
	ARG("--spool");
	ARG(spool);
	/* The settings in effect here (file and flags together) as flags:
	 * the runner reads the same settings file, and flags win there. */
	if (o->config) {
		ARG("--config");
		ARG(o->config);
	}
	if (d->dns) {
		ARG("--dns");
		ARG(d->dns);
	}
	snprintf(port, sizeof(port), "%u", d->port);
	ARG("--port");
	ARG(port);
	ARG("--tls");
	ARG(tls_name(d->tls));
	/* Kept by cli_delivery_finish only where used (verify, or the relay's). */
	if (d->cafile) {
		ARG("--cafile");
		ARG(d->cafile);
	}
	for (size_t i = 0; i < d->npins && i < CLIENT_OUTBOUND_PINS_MAX; i++) {
		tls_fingerprint_format(d->pins[i], pins[i]);
		ARG("--tls-fingerprint");
		ARG(pins[i]);
	}
	if (!d->family_auto)
		ARG(d->family == DNS_FAMILY_V4_ONLY ? "-4" : "-6");
	if (d->helo) {
		ARG("--helo");
		ARG(d->helo);
	}
	snprintf(timeout, sizeof(timeout), "%d", d->timeout);
	ARG("--timeout");
	ARG(timeout);
	/* Relay and routes (the file's again too: the same values). */
	if (d->relay_text || d->relay_off) {
		ARG("--relay");
		ARG(d->relay_text ? d->relay_text : "none");   /* none: not the file's either */
	}
	char routes[CLIENT_RELAY_ROUTES_MAX][2 * SMTP_DOMAIN_MAX + 16];
	for (size_t i = 0; i < d->nroutes && i < CLIENT_RELAY_ROUTES_MAX; i++) {
		char host[SMTP_DOMAIN_MAX + 16];
		client_relay_host_format(&d->routes[i].to, host, sizeof(host));
		snprintf(routes[i], sizeof(routes[i]), "%s=%s", d->routes[i].domain, host);
		ARG("--route");
		ARG(routes[i]);
	}
	if (d->auth_user) {
		ARG("--auth-user");
		ARG(d->auth_user);
		ARG("--auth-password-file");
		ARG(d->auth_password_file);
	}
	if (o->queue.retry_schedule) {
		ARG("--retry-schedule");
		ARG(o->queue.retry_schedule);
	}
	if (o->queue.max_queue_lifetime) {
		ARG("--max-queue-lifetime");
		ARG(o->queue.max_queue_lifetime);
	}
	if (o->queue.delay_warning) {
		ARG("--delay-warning");
		ARG(o->queue.delay_warning);
	}
	/* Local mail: as this process was told (a file's value is read
	 * again by the runner). */
	if (o->mailroot) {
		ARG("--mailroot");
		ARG(o->mailroot);
	}
	if (o->aliases) {
		ARG("--aliases");
		ARG(o->aliases);
	}
	if (lock >= 0) {
		ARG("--gather");
	} else {
		ARG("--");
		ARG(id);
	}
	argv[n] = NULL;
#undef ARG
	fflush(NULL);
	kicked_reap();
	/* posix_spawn: glibc starts the child with clone(CLONE_VM |
	 * CLONE_VFORK), so the caller pays neither a copy of its page tables
	 * (a fork) nor a second fork to detach: POSIX_SPAWN_SETSID gives the
	 * runner a session of its own (no terminal's signals, not killed with
	 * the caller's process group: cron's job, PHP's worker).  Its stdin,
	 * stdout and stderr are /dev/null, and nothing else of the caller's
	 * stays open: a program that reads our output until EOF through
	 * another descriptor must not wait for the delivery. */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	if (posix_spawn_file_actions_init(&fa) != 0) {
		if (lock >= 0)
			close(lock);
		return false;
	}
	if (posix_spawnattr_init(&attr) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		if (lock >= 0)
			close(lock);
		return false;
	}
	pid_t pid = -1;
	int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* The kick lock goes with the runner (the lock belongs to the open
	 * file, so it stays held when this process exits). */
	if (rc == 0 && lock >= 0)
		rc = posix_spawn_file_actions_adddup2(&fa, lock, CLI_QUEUE_GATHER_FD);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, lock >= 0 ? CLI_QUEUE_GATHER_FD + 1
		                                                             : 3);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
	if (rc == 0)
		rc = posix_spawn(&pid, kick_program, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (lock >= 0)
		close(lock);
	if (rc != 0)
		return false;
	if (nkicked < sizeof(kicked) / sizeof(kicked[0]))
		kicked[nkicked++] = pid;
	return true;
}
