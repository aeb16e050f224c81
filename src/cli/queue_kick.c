/* A detached `rawmail queue run ID` (queue_kick.h). */
#include "cli/queue_kick.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* 2 per option at most: --spool, --dns, --port, --tls, --cafile, --helo,
 * --timeout, -4/-6, the three queue options, the pins; "queue run",
 * the id, argv[0] and NULL. */
#define KICK_ARGS_MAX (2 * (12 + SEND_PINS_MAX) + 8)

static const char *tls_name(enum send_tls t)
{
	switch (t) {
	case SEND_TLS_NONE:
		return "none";
	case SEND_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case SEND_TLS_REQUIRE:
		return "require";
	case SEND_TLS_VERIFY:
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
	char port[16], timeout[16];
	char *argv[KICK_ARGS_MAX];
	size_t n = 0;
#define ARG(s) (argv[n++] = (char *)(s))
	ARG("rawmail");
	ARG("queue");
	ARG("run");
	ARG("--spool");
	ARG(spool);
	if (o->dns) {
		ARG("--dns");
		ARG(o->dns);
	}
	snprintf(port, sizeof(port), "%u", o->port);
	ARG("--port");
	ARG(port);
	ARG("--tls");
	ARG(tls_name(o->tls));
	if (o->cafile) {
		ARG("--cafile");
		ARG(o->cafile);
	}
	for (size_t i = 0; i < o->npins; i++) {
		ARG("--tls-fingerprint");
		ARG(o->pin_texts[i]);
	}
	if (!o->family_auto)
		ARG(o->family == DNS_FAMILY_V4_ONLY ? "-4" : "-6");
	if (o->helo) {
		ARG("--helo");
		ARG(o->helo);
	}
	snprintf(timeout, sizeof(timeout), "%d", o->timeout);
	ARG("--timeout");
	ARG(timeout);
	if (o->retry_schedule) {
		ARG("--retry-schedule");
		ARG(o->retry_schedule);
	}
	if (o->max_lifetime) {
		ARG("--max-queue-lifetime");
		ARG(o->max_lifetime);
	}
	if (o->delay_warning) {
		ARG("--delay-warning");
		ARG(o->delay_warning);
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
