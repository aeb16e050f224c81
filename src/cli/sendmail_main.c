/* rawmail-sendmail: the program the sendmail link runs (Postfix's design:
 * its sendmail and postdrop are small programs without TLS).  One
 * process per message (cron, PHP, mailx) pays the dynamic loader's work
 * for every library it links, OpenSSL's above all (~1 ms of ~2.4): this
 * one links no TLS, event or DNS library.  It reads the same options and
 * settings file as rawmail's sendmail entry (sendmail_options.c) and does
 * that entry's common path itself: the message prepared and queued (or
 * dropped into the system's maildrop), the first attempt kicked off by
 * starting rawmail queue run.  Every other mode (-bs, -bp, -q, -bi,
 * --no-queue, --dry-run) it hands over to rawmail with the same command
 * line, so both behave the same, byte for byte.  rawmail is looked for
 * next to this program: both are installed in the same directory (and
 * built into the same one). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/queue_kick.h"
#include "cli/sendmail.h"

/* The full rawmail: this program's own path (links resolved), its last
 * component replaced.  false when /proc/self/exe cannot be read. */
static bool rawmail_path(char *out, size_t outlen)
{
	ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
	if (n <= 0 || (size_t)n >= outlen - 1)
		return false;
	out[n] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash || (size_t)(slash + 1 - out) + sizeof("rawmail") > outlen)
		return false;
	memcpy(slash + 1, "rawmail", sizeof("rawmail"));
	return true;
}

/* rawmail with this command line; argv[0] named sendmail, so that its
 * main() takes the sendmail entry.  Returns only when it cannot. */
static int hand_over(const char *rawmail, char **argv)
{
	const char *slash = strrchr(argv[0], '/');
	if (strcmp(slash ? slash + 1 : argv[0], "sendmail") != 0)
		argv[0] = "sendmail";
	fflush(NULL);
	execv(rawmail, argv);
	fprintf(stderr, "sendmail: cannot run %s: %s\n", rawmail, strerror(errno));
	return SEND_EXIT_OSERR;
}

int main(int argc, char **argv)
{
	char rawmail[PATH_MAX];
	if (!rawmail_path(rawmail, sizeof(rawmail))) {
		fprintf(stderr, "sendmail: cannot find rawmail (/proc/self/exe: %s)\n",
		        strerror(errno));
		return SEND_EXIT_OSERR;
	}
	struct send_opts o;
	enum sendmail_mode mode;
	int rc = sendmail_options(&o, argc, argv, &mode);
	if (rc == 0 && mode == SENDMAIL_HELP) {
		rc = sendmail_help();
	} else if (rc == 0 && mode == SENDMAIL_SEND && o.background && o.ndkim == 0) {
		/* With DKIM keys it is handed over: rawmail signs (this
		 * program links no OpenSSL). */
		cli_queue_kick_program_set(rawmail);
		rc = send_submit(&o);
	} else if (rc == 0) {
		rc = hand_over(rawmail, argv);
	}
	send_opts_free(&o);
	return rc;
}
