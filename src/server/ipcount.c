#include "server/ipcount.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* key[0]: 4 for IPv4 (an IPv4-mapped IPv6 address counts as IPv4), 6 for
 * IPv6, 0xff for a tombstone that keeps probe chains intact. */
#define TOMBSTONE 0xff
#define CAP_MIN 64

/* Keeps the first bits of addr; the rest of key stays zero. */
static void key_prefix(unsigned char *key, const unsigned char *addr, unsigned bits)
{
	memcpy(key, addr, bits / 8);
	if (bits % 8)
		key[bits / 8] = (unsigned char)(addr[bits / 8] & (0xff00u >> (bits % 8)));
}

static void make_key(const struct ipcount *t, const struct sockaddr *sa, unsigned char key[17])
{
	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		key_prefix(key + 1, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr,
		           t->prefix4);
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = 4;
			key_prefix(key + 1, a->s6_addr + 12, t->prefix4);
		} else {
			key[0] = 6;
			key_prefix(key + 1, a->s6_addr, t->prefix6);
		}
	}
}

static uint64_t hash_key(const unsigned char key[17])
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (int i = 0; i < 17; i++) {
		h ^= key[i];
		h *= 1099511628211ull;
	}
	return h;
}

void ipcount_init(struct ipcount *t, unsigned prefix4, unsigned prefix6)
{
	memset(t, 0, sizeof(*t));
	t->prefix4 = (unsigned char)(prefix4 > 32 ? 32 : prefix4);
	t->prefix6 = (unsigned char)(prefix6 > 128 ? 128 : prefix6);
}

void ipcount_free(struct ipcount *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->used = t->live = 0;
}

static struct ipcount_entry *find(struct ipcount *t, const unsigned char key[17], bool insert)
{
	if (!t->cap)
		return NULL;
	size_t mask = t->cap - 1;
	size_t i = (size_t)hash_key(key) & mask;
	struct ipcount_entry *free_slot = NULL;
	for (size_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
		struct ipcount_entry *e = &t->slots[i];
		if (e->key[0] == 0)
			return insert ? (free_slot ? free_slot : e) : NULL;
		if (e->key[0] == TOMBSTONE) {
			if (!free_slot)
				free_slot = e;
			continue;
		}
		if (!memcmp(e->key, key, 17))
			return e;
	}
	return insert ? free_slot : NULL;
}

/* The table size for n live entries: a load of at most 1/4 right after a
 * rehash, so at least cap/4 insertions (growth at 1/2) or the loss of half
 * the entries (shrinking below 1/16) come before the next one. */
static size_t cap_for(size_t n)
{
	size_t cap = CAP_MIN;
	while (cap < n * 4)
		cap *= 2;
	return cap;
}

/* Moves the live entries into a new table of cap slots, leaving the
 * tombstones behind. */
static bool rehash(struct ipcount *t, size_t cap)
{
	struct ipcount old = *t;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old.slots;
		return false;
	}
	t->cap = cap;
	t->used = 0;
	for (size_t i = 0; i < old.cap; i++) {
		struct ipcount_entry *e = &old.slots[i];
		if (e->key[0] == 0 || e->key[0] == TOMBSTONE)
			continue;
		*find(t, e->key, true) = *e;
		t->used++;
	}
	t->rehashes++;
	free(old.slots);
	return true;
}

unsigned ipcount_add(struct ipcount *t, const struct sockaddr *sa)
{
	unsigned char key[17];
	make_key(t, sa, key);
	/* Keep the load (tombstones included) under 1/2 so probes stay
	 * short; the rehash sizes the table for the live entries, so it
	 * may clean tombstones without growing. */
	if ((t->used + 1) * 2 > t->cap && !rehash(t, cap_for(t->live + 1)))
		return 0;
	struct ipcount_entry *e = find(t, key, true);
	if (!e)
		return 0;
	if (e->key[0] == 0 || e->key[0] == TOMBSTONE) {
		if (e->key[0] == 0)
			t->used++;
		memcpy(e->key, key, 17);
		e->count = 0;
		t->live++;
	}
	return ++e->count;
}

void ipcount_remove(struct ipcount *t, const struct sockaddr *sa)
{
	unsigned char key[17];
	make_key(t, sa, key);
	struct ipcount_entry *e = find(t, key, false);
	if (!e || e->count == 0 || --e->count > 0)
		return;
	t->live--;
	size_t mask = t->cap - 1;
	size_t i = (size_t)(e - t->slots);
	if (t->slots[(i + 1) & mask].key[0] == 0) {
		/* No probe chain runs through here: the slot, and the
		 * tombstones just before it, can be empty again. */
		do {
			t->slots[i].key[0] = 0;
			t->used--;
			i = (i - 1) & mask;
		} while (t->slots[i].key[0] == TOMBSTONE);
	} else {
		e->key[0] = TOMBSTONE;
	}
	/* Shrink when under 1/16 full; a failed allocation keeps the larger
	 * table, which still works. */
	if (t->cap > CAP_MIN && t->live * 16 < t->cap)
		rehash(t, cap_for(t->live));
}
