/* rawmail queue list | show | delete: a placeholder until the helper
 * writing them replaces this file (issue 9). */
#include <stdio.h>

#include "cli/cli.h"

static int not_yet(const char *what)
{
	fprintf(stderr, "rawmail queue %s: not yet\n", what);
	return EXIT_USAGE;
}

int cli_queue_list(int argc, char **argv)
{
	return not_yet("list");
}

int cli_queue_show(int argc, char **argv)
{
	return not_yet("show");
}

int cli_queue_delete(int argc, char **argv)
{
	return not_yet("delete");
}
