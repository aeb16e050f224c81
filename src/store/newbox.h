/* Limits on creating new Maildirs (issue 8, item 4): one unauthenticated
 * message to 300 distinct local parts created 300 Maildirs.  At RCPT the
 * smtp process asks the store about a mailbox it has not seen exist; the
 * store, which owns the mail root, answers from the file system, and for a
 * mailbox that does not exist yet grants its creation only while the client
 * (an IPv4 address, or an IPv6 /64: one customer) created fewer than
 * per_client, and everyone together fewer than total, in the last hour.
 *
 * A grant is remembered for the hour by mailbox name: asking again for the
 * same new mailbox (the client retries, another recipient of it) is not
 * counted twice.  Pure: the caller gives the time. */
#ifndef RAWMAIL_STORE_NEWBOX_H
#define RAWMAIL_STORE_NEWBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "store/frame.h"
#include "store/store.h"

/* The window the limits count in (seconds). */
#define NEWBOX_WINDOW_S 3600
/* The client's key: family (4 or 6), then the IPv4 address or the IPv6
 * address's first 64 bits, zero-padded. */
#define NEWBOX_KEY_LEN FRAME_KEY_LEN

struct newbox_grant;

struct newbox {
	unsigned per_client;            /* 0: no mailbox is ever created by mail */
	unsigned total;
	struct newbox_grant *grants;    /* oldest first; [first, count) live */
	size_t first, count, cap;
};

void newbox_init(struct newbox *nb, unsigned per_client, unsigned total);
void newbox_free(struct newbox *nb);

/* A mailbox that does not exist: STORE_MAILBOX_GRANTED (counted, or
 * granted earlier in the window), STORE_MAILBOX_LIMIT_CLIENT,
 * STORE_MAILBOX_LIMIT_TOTAL, or STORE_MAILBOX_ERROR if memory ran out. */
enum store_mailbox_answer newbox_decide(struct newbox *nb, int64_t now,
                                        const uint8_t key[NEWBOX_KEY_LEN], const char *mailbox,
                                        size_t len);

/* The key of a client address (IPv4-mapped IPv6 counts as IPv4). */
void newbox_client_key(const struct sockaddr *sa, uint8_t key[NEWBOX_KEY_LEN]);
/* The key as text for logs: "192.0.2.1" or "2001:db8:1:2::/64". */
const char *newbox_key_text(const uint8_t key[NEWBOX_KEY_LEN], char *out, size_t outlen);

#endif
