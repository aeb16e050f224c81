/* Connections per client address, for max-connections-per-ip: an open
 * addressing hash table that grows with the number of distinct addresses,
 * so 10,000 connections from 10,000 addresses stay O(1) each. */
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
	size_t cap;   /* power of two */
	size_t used;  /* entries with count > 0, plus tombstones */
};

void ipcount_init(struct ipcount *t);
void ipcount_free(struct ipcount *t);
/* Adds one connection for sa; returns the new count, or 0 if memory ran
 * out (the caller refuses the connection). */
unsigned ipcount_add(struct ipcount *t, const struct sockaddr *sa);
void ipcount_remove(struct ipcount *t, const struct sockaddr *sa);

#endif
