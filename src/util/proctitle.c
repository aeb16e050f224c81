#include "util/proctitle.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

/* The contiguous memory that held the argument and environment strings at
 * exec: [area, area + area_len). */
static char *area;
static size_t area_len;
/* The heap copies of the strings, kept here for the life of the process:
 * argv's slots may be permuted or overwritten (getopt, a command's own
 * parsing) and environ replaced (setenv), and a copy reachable only from
 * there would be reported lost by valgrind.  Never freed; volatile, or
 * the compiler drops stores that nothing here reads. */
static char **volatile kept_args;
static char **volatile kept_env;

void proctitle_init(int argc, char **argv)
{
	if (argc < 1 || !argv[0])
		return;
	/* The kernel lays the strings out one after another: argv's, then the
	 * environment's.  Take the run that is contiguous from argv[0]. */
	char *start = argv[0];
	char *end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++) {
		if (argv[i] != end)
			break;
		end = argv[i] + strlen(argv[i]) + 1;
	}
	size_t nenv = 0;
	while (environ && environ[nenv])
		nenv++;
	char **env = calloc(nenv + 1, sizeof(*env));
	char **args = calloc((size_t)argc, sizeof(*args));
	if (!env || !args)
		goto fail;
	for (int i = 0; i < argc; i++)
		if (!(args[i] = strdup(argv[i])))
			goto fail;
	for (size_t i = 0; i < nenv; i++) {
		if (!(env[i] = strdup(environ[i])))
			goto fail;
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
	}
	for (int i = 0; i < argc; i++)
		argv[i] = args[i];
	kept_args = args;
	kept_env = env;
	environ = env;
	area = start;
	area_len = (size_t)(end - start);
	return;
fail:
	if (args)
		for (int i = 0; i < argc; i++)
			free(args[i]);
	if (env)
		for (size_t i = 0; i < nenv; i++)
			free(env[i]);
	free(args);
	free(env);
}

void proctitle_set(const char *title)
{
	/* PR_SET_NAME truncates to 15 octets itself. */
	prctl(PR_SET_NAME, title, 0, 0, 0);
	if (!area || area_len < 2)
		return;
	size_t n = strlen(title);
	if (n > area_len - 1)
		n = area_len - 1;
	memcpy(area, title, n);
	/* Zeros after the title: /proc/PID/cmdline then reads as one
	 * argument, the title. */
	memset(area + n, 0, area_len - n);
}
