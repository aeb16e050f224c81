/* newaliases, sendmail -bi and sendmail -I: check the aliases file.
 *
 * Programs and admins run newaliases after editing /etc/aliases (Debian's
 * packages do it in their maintainer scripts); with sendmail and Postfix
 * it rebuilds the aliases database.  rawmail reads the file itself at
 * each delivery, so there is nothing to rebuild: the command checks what
 * a runner would make of the file, silently when all is well.
 *
 * As Postfix's postalias does, a line that is not "name: targets", a
 * target rawmail does not support (:include:, |command, /file) and a name
 * given twice are warnings ("FILE:LINE: why") and the status stays 0: the
 * runners use the rest of the file the same way.  A file the runners
 * would refuse (unreadable, too large, a NUL octet, an entry too long)
 * and a name whose mail cannot be delivered (an alias loop, nesting
 * deeper than ALIASES_DEPTH_MAX, too many targets) are errors: 78
 * (EX_CONFIG), the status rawmail's runners give a bad aliases file.
 * Postfix's newaliases says 1 for a fatal error; 78 is what every other
 * rawmail command says for a bad settings file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/local.h"
#include "cli/send.h"

struct check {
	const char *prog;
	const char *path;
	size_t warnings;
};

static void check_warn(void *arg, size_t line, const char *why)
{
	struct check *c = arg;
	c->warnings++;
	fprintf(stderr, "%s: %s:%zu: %s\n", c->prog, c->path, line, why);
}

int cli_aliases_check(const char *prog, const char *path)
{
	struct check c = { prog, path ? path : CLI_ALIASES_DEFAULT, 0 };
	struct msg_aliases a;
	const char *used = NULL;
	if (cli_aliases_read(prog, path, &a, check_warn, &c, &used) != 0)
		return SEND_EXIT_CONFIG;
	struct cli_local_names names;
	cli_local_names_init(&names);
	size_t errors = 0;
	for (size_t i = 0; i < a.n; i++) {
		struct msg_aliases_result r;
		bool oom = false;
		char why[512];
		if (msg_aliases_expand(&a, a.v[i].name, cli_local_domain, &names, &r, &oom, why,
		                       sizeof(why)) != 0) {
			fprintf(stderr, "%s: %s:%zu: %s: %s\n", prog, used ? used : c.path, a.v[i].line,
			        a.v[i].name, why);
			if (oom) {
				msg_aliases_free(&a);
				return SEND_EXIT_OSERR;
			}
			errors++;
			continue;
		}
		msg_aliases_result_free(&r);
	}
	msg_aliases_free(&a);
	return errors ? SEND_EXIT_CONFIG : 0;
}

static const char newaliases_help[] =
	"usage: newaliases [-c FILE] [--aliases FILE]\n"
	"\n"
	"Checks the aliases file (default /etc/aliases, or aliases in the settings\n"
	"file's [send] or [queue]); rawmail reads it at each delivery, so there is no\n"
	"database to rebuild.  Prints nothing when the file is good.  Lines rawmail\n"
	"leaves out are warned about as FILE:LINE (status 0, as Postfix); a file the\n"
	"queue would refuse, or an alias that loops, is an error: status 78.\n";

int cli_newaliases(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "aliases", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct send_opts o;
	send_opts_init(&o, "newaliases");
	const char *config = NULL, *aliases = NULL;
	int c, rc = 0;
	bool aliases_given = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		if (c == 'c') {
			config = optarg;
		} else if (c == 'a') {
			aliases = optarg;
			aliases_given = true;
		} else if (c == 'h') {
			fputs(newaliases_help, stdout);
			goto out;
		} else {
			fputs(newaliases_help, stderr);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "newaliases: takes no arguments (try newaliases --help)\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = send_config_load(&o, config)) != 0)
		goto out;
	rc = cli_aliases_check("newaliases", aliases_given ? aliases : o.aliases);
out:
	send_opts_free(&o);
	return rc;
}
