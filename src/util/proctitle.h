/* Process names in ps: each process of rawmail serve says what it is
 * ("rawmail: parent", "rawmail: smtp", "rawmail: store"), both as its
 * command name (ps -o comm, top; PR_SET_NAME, 15 octets) and as its whole
 * command line (ps -ef, ps -o args), which Linux reads from the memory that
 * held argv and the environment at exec: there is no system call for it, so
 * the strings are moved to the heap and that memory is rewritten, as
 * nginx, Postfix and OpenSSH's setproctitle do. */
#ifndef RAWMAIL_UTIL_PROCTITLE_H
#define RAWMAIL_UTIL_PROCTITLE_H

/* Call once, first thing in main, with main's own argc and argv: copies
 * the argument and environment strings to the heap and points argv[] and
 * environ at the copies, so the original area can be reused.  If memory
 * runs out, nothing changes and proctitle_set only sets the command name. */
void proctitle_init(int argc, char **argv);
/* Sets the name seen by ps (truncated to the area argv and the environment
 * had; the command name to 15 octets). */
void proctitle_set(const char *title);

#endif
