/* A detached `rawmail queue run ID` (queue_kick.h). */
#include "cli/queue_kick.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/fingerprint.h"

/* 2 per option at most: --spool, --dns, --port, --tls, --cafile, --helo,
 * --timeout, -4/-6, the three queue options, --mailroot, --aliases, the pins; "queue run",
 * the id, argv[0] and NULL. */
#define KICK_ARGS_MAX (2 * (14 + CLIENT_OUTBOUND_PINS_MAX) + 8)

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

/* In the grandchild: only async-signal-safe calls until exec (the
 * parent may have had threads, e.g. a listing's readers). */
static void kick_exec(char **argv)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	/* Nothing else of the caller's stays open: a program that reads our
	 * output until EOF through another descriptor must not wait for the
	 * delivery. */
	close_range(3, ~0u, 0);
	execv("/proc/self/exe", argv);
	_exit(127);
}

bool cli_queue_kick(const struct send_opts *o, const char *spool, const char *id)
{
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
	if (d->cafile && d->tls == CLI_TLS_VERIFY) {
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
	ARG("--");
	ARG(id);
	argv[n] = NULL;
#undef ARG
	fflush(NULL);
	pid_t child = fork();
	if (child < 0)
		return false;
	if (child == 0) {
		/* A session of its own: no terminal's signals, and not killed
		 * with the caller's process group (cron's job, PHP's worker). */
		setsid();
		pid_t grandchild = fork();
		if (grandchild == 0)
			kick_exec(argv);
		_exit(grandchild < 0 ? 1 : 0);
	}
	int status = 0;
	pid_t got;
	while ((got = waitpid(child, &status, 0)) < 0 && errno == EINTR)
		;
	return got == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
