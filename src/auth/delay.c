#include "auth/delay.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	uint8_t key[AUTH_WIRE_KEY_LEN];
	unsigned failures;           /* saturates once the delay is at its cap */
	int64_t last;                /* time of the last failure */
	struct entry *chain;         /* next in the hash bucket */
	struct entry *prev, *next;   /* by last failure, oldest first */
};

struct auth_delay {
	struct entry **buckets;
	size_t mask;                 /* bucket count - 1 */
	size_t count, max;
	uint64_t seed;
	struct entry *oldest, *newest;
};

struct auth_delay *auth_delay_new(size_t max_keys, uint64_t seed)
{
	if (max_keys == 0)
		return NULL;
	struct auth_delay *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	size_t n = 16;
	while (n < max_keys && n < (SIZE_MAX >> 2))
		n <<= 1;
	d->buckets = calloc(n, sizeof(*d->buckets));
	if (!d->buckets) {
		free(d);
		return NULL;
	}
	d->mask = n - 1;
	d->max = max_keys;
	d->seed = seed;
	return d;
}

void auth_delay_free(struct auth_delay *d)
{
	if (!d)
		return;
	struct entry *e = d->oldest;
	while (e) {
		struct entry *next = e->next;
		free(e);
		e = next;
	}
	free(d->buckets);
	free(d);
}

/* FNV-1a, started from the seed. */
static size_t bucket_of(const struct auth_delay *d, const uint8_t *key)
{
	uint64_t h = 0xcbf29ce484222325ull ^ d->seed;
	for (size_t i = 0; i < AUTH_WIRE_KEY_LEN; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 32;
	return (size_t)h & d->mask;
}

static struct entry **slot_of(struct auth_delay *d, const uint8_t *key)
{
	struct entry **p = &d->buckets[bucket_of(d, key)];
	while (*p && memcmp((*p)->key, key, AUTH_WIRE_KEY_LEN) != 0)
		p = &(*p)->chain;
	return p;
}

static void order_unlink(struct auth_delay *d, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		d->oldest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		d->newest = e->prev;
	e->prev = e->next = NULL;
}

static void order_append(struct auth_delay *d, struct entry *e)
{
	e->prev = d->newest;
	e->next = NULL;
	if (d->newest)
		d->newest->next = e;
	else
		d->oldest = e;
	d->newest = e;
}

static void remove_entry(struct auth_delay *d, struct entry *e)
{
	struct entry **p = slot_of(d, e->key);
	*p = e->chain;
	order_unlink(d, e);
	d->count--;
	free(e);
}

/* Drops the keys whose last failure is AUTH_DELAY_FORGET_S old. */
static void forget_expired(struct auth_delay *d, int64_t now)
{
	while (d->oldest && now - d->oldest->last >= AUTH_DELAY_FORGET_S)
		remove_entry(d, d->oldest);
}

static unsigned delay_of(unsigned failures)
{
	unsigned s = AUTH_DELAY_FIRST_S;
	for (unsigned i = 1; i < failures && s < AUTH_DELAY_MAX_S; i++)
		s *= 2;
	return s < AUTH_DELAY_MAX_S ? s : AUTH_DELAY_MAX_S;
}

unsigned auth_delay_failure(struct auth_delay *d, int64_t now, const uint8_t key[AUTH_WIRE_KEY_LEN])
{
	forget_expired(d, now);
	struct entry **p = slot_of(d, key);
	struct entry *e = *p;
	if (e) {
		order_unlink(d, e);
	} else {
		if (d->count >= d->max) {
			remove_entry(d, d->oldest);
			p = slot_of(d, key); /* the chain may have changed */
		}
		e = calloc(1, sizeof(*e));
		if (!e)
			return AUTH_DELAY_FIRST_S;
		memcpy(e->key, key, AUTH_WIRE_KEY_LEN);
		e->chain = NULL;
		*p = e;
		d->count++;
	}
	/* Kept in order of last failure, so now never goes back in the
	 * list even if the clock did. */
	if (d->newest && d->newest->last > now)
		now = d->newest->last;
	e->last = now;
	if (delay_of(e->failures) < AUTH_DELAY_MAX_S)
		e->failures++;
	order_append(d, e);
	return delay_of(e->failures);
}

void auth_delay_success(struct auth_delay *d, const uint8_t key[AUTH_WIRE_KEY_LEN])
{
	struct entry *e = *slot_of(d, key);
	if (e)
		remove_entry(d, e);
}

size_t auth_delay_count(struct auth_delay *d, int64_t now)
{
	forget_expired(d, now);
	return d->count;
}
