#include "store/known.h"

#include <stdlib.h>
#include <string.h>

struct known_entry {
	struct known_entry *next;
	int64_t added;
	char name[];
};

void known_init(struct known *k)
{
	memset(k, 0, sizeof(*k));
}

void known_free(struct known *k)
{
	for (size_t i = 0; i < KNOWN_BUCKETS; i++) {
		struct known_entry *e = k->buckets[i];
		while (e) {
			struct known_entry *next = e->next;
			free(e);
			e = next;
		}
		k->buckets[i] = NULL;
	}
	k->count = 0;
}

/* FNV-1a. */
static size_t bucket_of(const char *name)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % KNOWN_BUCKETS;
}

/* The entry for name, dropping the expired ones met on the way. */
static struct known_entry **find(struct known *k, const char *name, int64_t now)
{
	struct known_entry **pp = &k->buckets[bucket_of(name)];
	while (*pp) {
		struct known_entry *e = *pp;
		if (now - e->added >= KNOWN_TTL_S) {
			*pp = e->next;
			free(e);
			k->count--;
			continue;
		}
		if (!strcmp(e->name, name))
			return pp;
		pp = &e->next;
	}
	return pp;
}

bool known_has(struct known *k, const char *name, int64_t now)
{
	return *find(k, name, now) != NULL;
}

void known_add(struct known *k, const char *name, int64_t now)
{
	struct known_entry **pp = find(k, name, now);
	if (*pp) {
		(*pp)->added = now;
		return;
	}
	if (k->count >= KNOWN_MAX) {
		known_free(k);
		pp = &k->buckets[bucket_of(name)];
	}
	size_t len = strlen(name);
	struct known_entry *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return; /* only a cache */
	e->next = NULL;
	e->added = now;
	memcpy(e->name, name, len + 1);
	*pp = e;
	k->count++;
}
