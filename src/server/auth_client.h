/* auth_client: the smtp process's side of the auth process's socket
 * (auth/wire.h, auth/process.h).  The smtp process never reads the users
 * file: for each AUTH it sends the client's network, the user and the
 * password, and the auth process answers yes (with the user's senders),
 * no (after the client's failure delay), or "try later".
 *
 * Every call returns at once; answers come through the event loop, never
 * from inside auth_client_check, so a session can call it from anywhere
 * without being re-entered.  When the auth process goes away (EOF, a
 * socket error, a frame that breaks the format) every pending query gets
 * AUTH_ANSWER_TEMPFAIL from the event loop, then on_lost is called; later
 * checks return NULL.
 *
 * The password goes into exactly one heap copy, the frame, which the
 * output evbuffer holds by reference (evbuffer_add_reference) and which is
 * wiped (explicit_bzero) and freed as soon as libevent has written it, or
 * when the client is freed with it unwritten; the frame's stack copy is
 * wiped at once.  What the caller holds is the caller's to wipe. */
#ifndef RAWMAIL_SERVER_AUTH_CLIENT_H
#define RAWMAIL_SERVER_AUTH_CLIENT_H

#include <stdbool.h>
#include <sys/socket.h>

struct event_base;
struct auth_client;
struct auth_query;

enum auth_answer {
	AUTH_ANSWER_OK,       /* 235 2.7.0 */
	AUTH_ANSWER_FAIL,     /* 535 5.7.8 (already delayed by the auth process) */
	AUTH_ANSWER_TEMPFAIL, /* 454 4.7.0: could not check */
};

/* Takes fd (closed by auth_client_free, or now if this fails).  on_lost
 * (may be NULL) is called once, from the event loop, after the pending
 * queries got their TEMPFAIL.  NULL if memory ran out. */
struct auth_client *auth_client_new(struct event_base *base, int fd, void (*on_lost)(void *arg),
                                    void *arg);
/* Frees the client and every query still pending: their callbacks are not
 * called, and their pointers are no longer valid (do not cancel them).
 * Safe from inside a callback (it takes effect on the way out). */
void auth_client_free(struct auth_client *ac);

/* Asks whether password is user's, for a client at address client (its
 * network, IPv4 or IPv6 /64, keys the failure delay).  user at most
 * SMTP_AUTH_NAME_MAX octets, password at most SMTP_AUTH_PASSWORD_MAX (the
 * SASL exchange's bounds, smtp/sasl.h).  cb(arg, answer, senders) is
 * called exactly once from the event loop unless cancelled: senders is
 * the user's senders field ("a@x,@y"; check a sender with
 * auth_senders_text_allowed, auth/users.h) with AUTH_ANSWER_OK, "" when
 * the user may use any sender, NULL with the other answers.  The query
 * is valid until its callback returns or it is cancelled.  NULL if the
 * auth process is gone, memory ran out or user or password breaks the
 * bounds (cb never called then). */
struct auth_query *auth_client_check(struct auth_client *ac, const struct sockaddr *client,
                                     const char *user, const char *password,
                                     void (*cb)(void *arg, enum auth_answer a,
                                                const char *senders),
                                     void *arg);
/* The session went away: cb will not be called (the query is freed when
 * the auth process's answer comes, or with the client). */
void auth_query_cancel(struct auth_query *q);

/* Whether the auth process is still reachable. */
bool auth_client_alive(const struct auth_client *ac);

#endif
