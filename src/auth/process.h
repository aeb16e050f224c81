/* The auth process (issue 10): the only process that reads the users
 * file, answering the smtp process's CHECK frames (auth/wire.h) over a
 * socketpair.  The smtp process, which faces the network, never sees a
 * hash; this one never sees the network.
 *
 * How serve runs it (one per smtp/store generation, so a SIGHUP reload
 * re-reads the file along with the rest of the configuration):
 *
 *     fork();                               child:
 *     auth_process_load(path, &users, ...)  as root (the file may be 0600 root)
 *        -> on -1: log err, _exit(78)       (FILE:LINE: why, as users.c says)
 *     drop privileges: chroot (e.g. /var/empty), setgroups, setgid, setuid
 *        to an unprivileged user, PR_SET_PDEATHSIG
 *     rc = auth_process_run(&users, fd)     returns when the smtp process
 *        -> auth_users_free(&users); _exit(rc ? 1 : 0)      closes its end
 *
 * Each CHECK is verified at once (auth/verify.c: crypt_r, constant time;
 * an unknown user costs the same).  A yes is answered at once with the
 * user's senders field ("a,b,@c"; empty: any sender) and clears the
 * client's failures; a no is answered after the client's delay
 * (auth/delay.c: 1 s doubling to 16 s per client network, across
 * connections), by a timer per pending answer while other requests are
 * served meanwhile.  A check that cannot be made (out of memory, crypt
 * refusing the setting, more than AUTH_PROCESS_PENDING_MAX delayed answers
 * at once) is answered TEMPFAIL at once.  The CPU work of one check
 * (yescrypt: tens of milliseconds) is done in the loop: checks are served
 * one after another.
 *
 * Passwords: read with read(2) into one fixed buffer of the process (no
 * evbuffer, whose chains would be freed unwiped), wiped with
 * explicit_bzero as soon as each frame is handled; auth_verify wipes its
 * own copies.  Logs: only the process's start and stop and protocol errors
 * and auth_busy once when the delayed answers reach their bound (the
 * smtp process logs each check with its session). */
#ifndef RAWMAIL_AUTH_PROCESS_H
#define RAWMAIL_AUTH_PROCESS_H

#include <stddef.h>

#include "auth/users.h"

/* Delayed "no" answers waiting at once (each a timer): more is a flood,
 * and the next failure is answered TEMPFAIL without waiting. */
#define AUTH_PROCESS_PENDING_MAX 4096
/* Answers waiting to be written: above this the process stops reading
 * until the smtp process reads (its memory bounded by its peer's pace). */
#define AUTH_PROCESS_OUT_HIGH (256u * 1024u)

/* Reads and parses the users file (at most AUTH_USERS_FILE_MAX octets, a
 * regular file).  0 with *out filled (auth_users_free), or -1 with
 * "PATH:LINE: why" (or "PATH: why" for the whole file) in err. */
int auth_process_load(const char *users_path, struct auth_users *out, char *err, size_t errlen);

/* Serves fd (one end of a SOCK_STREAM socketpair, made non-blocking here)
 * until the peer closes it: 0.  -1 after a protocol error (logged), a
 * socket error or running out of memory.  Closes fd.  Ignores SIGPIPE
 * (a write to a peer that went away is an error return, not a signal). */
int auth_process_run(struct auth_users *users, int fd);

#endif
