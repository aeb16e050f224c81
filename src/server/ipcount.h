/* Connections per client network, for max-connections-per-ip: an open
 * addressing hash table keyed by the client's address cut to a prefix
 * (IPv4 /32 and IPv6 /64 by default: one IPv6 customer has a whole /64).
 * Its size follows the live entries: it grows and shrinks with them and
 * rehashes away the tombstones left by departed clients, so millions of
 * distinct addresses that came and went cost nothing once gone, and every
 * rehash is paid for by a number of operations proportional to its size. */
#ifndef RAWMAIL_SERVER_IPCOUNT_H
#define RAWMAIL_SERVER_IPCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct ipcount_entry {
	unsigned char key[17]; /* family tag + 16 address bytes; key[0] == 0: empty */
	unsigned count;
};

struct ipcount {
	struct ipcount_entry *slots;
	size_t cap;               /* power of two, or 0 before the first add */
	size_t used;              /* live entries plus tombstones */
	size_t live;              /* entries with count > 0 */
	unsigned long rehashes;   /* for tests and statistics */
	unsigned char prefix4, prefix6;
};

/* prefix4 (8..32) and prefix6 (16..128): the bits of an address that name
 * one client. */
void ipcount_init(struct ipcount *t, unsigned prefix4, unsigned prefix6);
void ipcount_free(struct ipcount *t);
/* Adds one connection for sa; returns the new count, or 0 if memory ran
 * out (the caller refuses the connection). */
unsigned ipcount_add(struct ipcount *t, const struct sockaddr *sa);
/* Removes one connection added for sa (the same client network). */
void ipcount_remove(struct ipcount *t, const struct sockaddr *sa);

#endif
