/* Where the queue lives when --spool is not given (issue 9, QUEUE.md
 * "Wave 2 decisions"): /var/spool/rawmail for root; for anyone else a
 * spool of their own that their `rawmail queue run` picks up, under
 * $XDG_STATE_HOME (XDG Base Directory Specification: "state data that
 * should persist between restarts"), default ~/.local/state. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "queue/maildrop.h"

#define SPOOL_ROOT_DEFAULT "/var/spool/rawmail"

/* The user's home: $HOME, else the password database. */
static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	if (home && home[0] == '/')
		return home;
	struct passwd *pw = getpwuid(geteuid());
	return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

const char *cli_spool_dir(const char *given, char *out, size_t outlen, char *why, size_t whylen)
{
	int n;
	if (given) {
		n = snprintf(out, outlen, "%s", given);
	} else if (geteuid() == 0) {
		n = snprintf(out, outlen, "%s", SPOOL_ROOT_DEFAULT);
	} else {
		const char *state = getenv("XDG_STATE_HOME");
		const char *home = home_dir();
		/* The specification: a relative $XDG_STATE_HOME is invalid and
		 * is ignored. */
		if (state && state[0] == '/')
			n = snprintf(out, outlen, "%s/rawmail/spool", state);
		else if (home)
			n = snprintf(out, outlen, "%s/.local/state/rawmail/spool", home);
		else {
			snprintf(why, whylen, "no spool directory: no home directory; give --spool DIR");
			return NULL;
		}
	}
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(why, whylen, "spool directory name too long");
		return NULL;
	}
	return out;
}

const char *cli_maildrop_spool(const char *given)
{
	if (geteuid() == 0)
		return NULL;
	const char *dir = given ? given : SPOOL_ROOT_DEFAULT;
	struct stat st;
	if (stat(dir, &st) == 0 && st.st_uid == geteuid())
		return NULL;   /* a spool of their own */
	return queue_maildrop_usable(dir) ? dir : NULL;
}
