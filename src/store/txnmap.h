/* Transactions by id: both halves of the store keep every message in
 * flight in one of these (the client to find the callback a RESULT is for,
 * the store process to find the message a DATA or COMMIT is for).
 * Intrusive: the node lives inside the caller's struct, so insertion
 * allocates nothing but the occasional bucket array. */
#ifndef RAWMAIL_STORE_TXNMAP_H
#define RAWMAIL_STORE_TXNMAP_H

#include <stddef.h>
#include <stdint.h>

struct txnmap_node {
	uint64_t id;
	struct txnmap_node *next;
};

struct txnmap {
	struct txnmap_node **buckets;
	size_t mask;    /* bucket count - 1 (a power of two), 0 before the first insert */
	size_t count;
	size_t scan;    /* where txnmap_pop looks first */
};

void txnmap_init(struct txnmap *m);
/* Adds n (n->id set, not already present): 0, or -1 if memory ran out. */
int txnmap_insert(struct txnmap *m, struct txnmap_node *n);
struct txnmap_node *txnmap_find(const struct txnmap *m, uint64_t id);
/* Removes n, which must be in m. */
void txnmap_remove(struct txnmap *m, struct txnmap_node *n);
/* Removes and returns any node, NULL when empty: for tearing down. */
struct txnmap_node *txnmap_pop(struct txnmap *m);
/* Frees the buckets (the nodes belong to the caller). */
void txnmap_free(struct txnmap *m);

#endif
