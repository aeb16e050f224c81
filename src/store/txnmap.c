#include "store/txnmap.h"

#include <stdlib.h>

#define TXNMAP_INITIAL 64

static size_t txnmap_slot(const struct txnmap *m, uint64_t id)
{
	/* Ids are sequential: Fibonacci hashing spreads them over the high
	 * bits, which the shift brings down. */
	return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & m->mask;
}

void txnmap_init(struct txnmap *m)
{
	m->buckets = NULL;
	m->mask = 0;
	m->count = 0;
	m->scan = 0;
}

static int txnmap_grow(struct txnmap *m)
{
	size_t n = m->buckets ? (m->mask + 1) * 2 : TXNMAP_INITIAL;
	struct txnmap_node **b = calloc(n, sizeof(*b));
	if (!b)
		return -1;
	struct txnmap old = *m;
	m->buckets = b;
	m->mask = n - 1;
	if (old.buckets) {
		for (size_t i = 0; i <= old.mask; i++) {
			struct txnmap_node *e = old.buckets[i];
			while (e) {
				struct txnmap_node *next = e->next;
				size_t s = txnmap_slot(m, e->id);
				e->next = b[s];
				b[s] = e;
				e = next;
			}
		}
		free(old.buckets);
	}
	return 0;
}

int txnmap_insert(struct txnmap *m, struct txnmap_node *n)
{
	if (!m->buckets || m->count >= m->mask + 1) {
		/* Growing is only an optimisation once buckets exist. */
		if (txnmap_grow(m) < 0 && !m->buckets)
			return -1;
	}
	size_t s = txnmap_slot(m, n->id);
	n->next = m->buckets[s];
	m->buckets[s] = n;
	m->count++;
	return 0;
}

struct txnmap_node *txnmap_find(const struct txnmap *m, uint64_t id)
{
	if (!m->buckets)
		return NULL;
	struct txnmap_node *e = m->buckets[txnmap_slot(m, id)];
	while (e && e->id != id)
		e = e->next;
	return e;
}

void txnmap_remove(struct txnmap *m, struct txnmap_node *n)
{
	struct txnmap_node **pp = &m->buckets[txnmap_slot(m, n->id)];
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = n->next;
		n->next = NULL;
		m->count--;
	}
}

struct txnmap_node *txnmap_pop(struct txnmap *m)
{
	if (!m->count)
		return NULL;
	/* Buckets before scan were empty at the last pop; an insert since then
	 * may have filled one, hence the wrap-around. */
	for (size_t k = 0; k <= m->mask; k++) {
		size_t i = (m->scan + k) & m->mask;
		struct txnmap_node *e = m->buckets[i];
		if (e) {
			m->scan = i;
			m->buckets[i] = e->next;
			e->next = NULL;
			m->count--;
			return e;
		}
	}
	return NULL;
}

void txnmap_free(struct txnmap *m)
{
	free(m->buckets);
	txnmap_init(m);
}
