/* rawmail serve's parent process: opens the listeners and reads the keys
 * (as root if started so), then runs two unprivileged children, store and
 * smtp, restarting them on SIGHUP (reload) or if one dies, and stopping
 * them on SIGTERM.  See DESIGN.md, "Processes and privileges". */
#ifndef RAWMAIL_SERVER_SERVE_H
#define RAWMAIL_SERVER_SERVE_H

#include <stddef.h>

#include "server/config.h"

/* The settings given on the command line, kept so that a reload applies
 * them again on top of the re-read file. */
struct serve_args {
	const char *config_file;   /* -c, or NULL */
	const char **keys;
	const char **values;
	size_t n;
};

/* Builds a configuration: defaults, then the file, then the flags.
 * false with err set. */
bool serve_load_config(const struct serve_args *args, struct serve_config *cfg, char *err,
                       size_t errlen);

/* Runs the server until SIGTERM/SIGINT; returns the process exit code. */
int serve_main(const struct serve_args *args);

#endif
