/* The delay before a "wrong password" answer, per client network across
 * connections (issue 10: "a delay that grows per client address across
 * connections").  The auth process keeps one table for everything the
 * smtp processes of its generation ask.
 *
 * A failure for client key K returns how long to wait before answering:
 * 1 s for the first failure, doubling for each further one up to 16 s.
 * K is forgotten AUTH_DELAY_FORGET_S after its last failure, and at once
 * on a success from K.  Guessing from one network is then at best one
 * password per 16 s per connection it holds open (the smtp process limits
 * connections per address and failures per connection), while a person
 * who mistyped once waits a second.
 *
 * Bounded: at most max_keys keys (AUTH_DELAY_KEYS_MAX for the process).
 * Entries are kept in order of last failure, so the forgotten ones are
 * dropped from the front as time passes, and when the table is full the
 * key with the oldest last failure is evicted: that is the one nearest
 * to being forgotten anyway, and a flood of new networks only shortens
 * the memory of the quietest client (never grows memory).  Lookup is a
 * hash over the key, seeded by the caller so that nobody can aim keys at
 * one chain.  Pure: the clock (seconds, monotonic) is passed in. */
#ifndef RAWMAIL_AUTH_DELAY_H
#define RAWMAIL_AUTH_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "auth/wire.h"

#define AUTH_DELAY_FIRST_S 1u
#define AUTH_DELAY_MAX_S 16u
#define AUTH_DELAY_FORGET_S 900
#define AUTH_DELAY_KEYS_MAX 65536u

struct auth_delay;

/* An empty table of at most max_keys (>= 1) keys, or NULL (no memory). */
struct auth_delay *auth_delay_new(size_t max_keys, uint64_t seed);
void auth_delay_free(struct auth_delay *d);

/* A failure from key at now: the seconds to wait before answering (1, 2,
 * 4, 8, 16, 16, ...).  Out of memory, it still answers as for a first
 * failure (the delay is a brake, not a record). */
unsigned auth_delay_failure(struct auth_delay *d, int64_t now, const uint8_t key[AUTH_WIRE_KEY_LEN]);
/* A success from key: its failures are forgotten. */
void auth_delay_success(struct auth_delay *d, const uint8_t key[AUTH_WIRE_KEY_LEN]);
/* Keys remembered at now (forgets the expired ones first): for tests. */
size_t auth_delay_count(struct auth_delay *d, int64_t now);

#endif
