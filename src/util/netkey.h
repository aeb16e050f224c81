/* A client's network as a fixed key (per-client limits that must hold
 * across connections: new Maildirs per hour, AUTH failure delays): an
 * IPv4 address, or an IPv6 /64 (one customer's network: keying /128s
 * would give it 2^64 fresh budgets); IPv4-mapped IPv6 counts as IPv4. */
#ifndef RAWMAIL_UTIL_NETKEY_H
#define RAWMAIL_UTIL_NETKEY_H

#include <stdint.h>
#include <sys/socket.h>

/* key[0] is 4 or 6 (0 for another family or NULL), then the address
 * octets, zero-padded. */
#define NETKEY_LEN 17

void netkey_from_sockaddr(const struct sockaddr *sa, uint8_t key[NETKEY_LEN]);

#endif
