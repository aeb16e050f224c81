#include "server/ipcount.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* key[0]: 4 for IPv4 (an IPv4-mapped IPv6 address counts as IPv4), 6 for
 * IPv6, 0xff for a tombstone that keeps probe chains intact. */
#define TOMBSTONE 0xff

static void make_key(const struct sockaddr *sa, unsigned char key[17])
{
	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = 4;
			memcpy(key + 1, a->s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a->s6_addr, 16);
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

void ipcount_init(struct ipcount *t)
{
	memset(t, 0, sizeof(*t));
}

void ipcount_free(struct ipcount *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
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

static bool grow(struct ipcount *t)
{
	struct ipcount old = *t;
	size_t cap = old.cap ? old.cap * 2 : 64;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		*t = old;
		return false;
	}
	t->cap = cap;
	t->used = 0;
	for (size_t i = 0; i < old.cap; i++) {
		struct ipcount_entry *e = &old.slots[i];
		if (e->key[0] == 0 || e->key[0] == TOMBSTONE)
			continue;
		struct ipcount_entry *n = find(t, e->key, true);
		*n = *e;
		t->used++;
	}
	free(old.slots);
	return true;
}

unsigned ipcount_add(struct ipcount *t, const struct sockaddr *sa)
{
	unsigned char key[17];
	make_key(sa, key);
	/* Keep the load under 1/2 so probes stay short. */
	if ((t->used + 1) * 2 > t->cap && !grow(t))
		return 0;
	struct ipcount_entry *e = find(t, key, true);
	if (!e)
		return 0;
	if (e->key[0] == 0 || e->key[0] == TOMBSTONE) {
		if (e->key[0] == 0)
			t->used++;
		memcpy(e->key, key, 17);
		e->count = 0;
	}
	return ++e->count;
}

void ipcount_remove(struct ipcount *t, const struct sockaddr *sa)
{
	unsigned char key[17];
	make_key(sa, key);
	struct ipcount_entry *e = find(t, key, false);
	if (!e || e->count == 0)
		return;
	if (--e->count == 0)
		e->key[0] = TOMBSTONE;
}
