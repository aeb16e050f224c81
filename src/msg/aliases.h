/* The aliases file, in the /etc/aliases format of sendmail and Postfix
 * (aliases(5)), for local mail (issue 9): parse it, and expand a local
 * name into the mailboxes and remote addresses its mail goes to.
 *
 *     # comment
 *     root: alice, bob@example.org
 *     postmaster: root
 *     team: alice,
 *         carol            (a line starting with white space continues)
 *
 * Pure (no I/O: the caller reads the file), bounded by ALIASES_* in
 * util/limits.h, fuzzed (tests/fuzz/fuzz_msg_aliases.c).  It lives in
 * msg/ beside the other parsers of mail text (address lists, DSNs)
 * rather than in queue/, since nothing in it is about the spool, and
 * serve may use it one day for its own local names.
 *
 * Only forwarding is supported: `:include:`, `|command` and `/file`
 * targets are not (the issue does not need them, and running commands
 * or writing files as root from a mail file is what they cost); each is
 * reported through the warn callback and left out.  `\name` delivers to
 * the mailbox name without further expansion, as in sendmail. */
#ifndef RAWMAIL_MSG_ALIASES_H
#define RAWMAIL_MSG_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

struct msg_alias {
	char *name;          /* lower case, no ':' or white space */
	char **targets;      /* as written, quotes removed; "\name" kept */
	size_t ntargets;     /* at least 1 */
	size_t line;         /* where it starts (1-based) */
};

struct msg_aliases {
	struct msg_alias *v;
	size_t n;
};

/* A line that is left out (and why), for the caller's log. */
typedef void (*msg_aliases_warn_fn)(void *arg, size_t line, const char *why);

/* Parses len octets of text into *out (freed with msg_aliases_free, also
 * after an error).  A line that is not "name: targets" and a target that
 * is not supported are left out with a warning; a name given twice keeps
 * its first entry (warned).  -1 with err for what makes the whole file
 * unusable: too large, a logical line over ALIASES_LINE_MAX, a NUL
 * octet, more than ALIASES_ENTRIES_MAX entries, out of memory. */
int msg_aliases_parse(const char *text, size_t len, struct msg_aliases *out,
                      msg_aliases_warn_fn warn, void *arg, char *err, size_t errlen);
void msg_aliases_free(struct msg_aliases *a);

/* The entry for name (compared without case), or NULL. */
const struct msg_alias *msg_aliases_find(const struct msg_aliases *a, const char *name);

/* Tells whether an address with a domain is local (localhost, this
 * host's names); if so writes its local part (lower case) into name. */
typedef bool (*msg_aliases_local_fn)(void *arg, const char *addr, char *name, size_t namelen);

struct msg_aliases_result {
	char **addrs;    /* local names (no '@') or remote addresses, no duplicates */
	size_t n;
};

/* Expands the local name (lower case) through a: a name without an
 * entry is a mailbox; a target naming the alias itself is its mailbox
 * (`root: root, alice`); other local targets are expanded in turn.
 * 0 with out filled (free with msg_aliases_result_free), or -1 with why:
 * a loop ("alias loop: a -> b -> a"), nesting deeper than
 * ALIASES_DEPTH_MAX, more than ALIASES_TARGETS_MAX targets, or out of
 * memory (*oom true: the only temporary reason). */
int msg_aliases_expand(const struct msg_aliases *a, const char *name, msg_aliases_local_fn local,
                       void *arg, struct msg_aliases_result *out, bool *oom, char *why,
                       size_t whylen);
void msg_aliases_result_free(struct msg_aliases_result *r);

#endif
