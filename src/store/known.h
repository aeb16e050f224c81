/* The smtp process's memory of mailboxes the store said exist (or granted):
 * a RCPT to one of them needs no question to the store, so the common case
 * (mail to an existing mailbox) costs no round trip (issue 8, item 4).
 * Bounded: at most KNOWN_MAX names, each forgotten after KNOWN_TTL_S (a
 * Maildir removed meanwhile is created again by the next message, without
 * counting against the creation limits: a bounded leak, at most KNOWN_MAX
 * per KNOWN_TTL_S).  Names come only from the store's answers about
 * mailboxes that exist or were granted, so a client cannot fill it with
 * names of its choosing.  Pure: the caller gives the time. */
#ifndef RAWMAIL_STORE_KNOWN_H
#define RAWMAIL_STORE_KNOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KNOWN_MAX 4096
#define KNOWN_TTL_S 600
#define KNOWN_BUCKETS 1024

struct known_entry;

struct known {
	struct known_entry *buckets[KNOWN_BUCKETS];
	size_t count;
};

void known_init(struct known *k);
void known_free(struct known *k);
bool known_has(struct known *k, const char *name, int64_t now);
/* Adds name (or refreshes it); when full, everything is forgotten first. */
void known_add(struct known *k, const char *name, int64_t now);

#endif
