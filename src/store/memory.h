/* The store's budget for message content held in memory (issue 8, item 5).
 * Each message keeps up to STORE_MEMORY_MESSAGE_MAX in memory until its
 * batch; without a cap on their sum, 400 sessions that stall after 255 KiB
 * grew the store by 100 MiB.  The budget counts the buffers of every
 * message in memory and finds the largest, so that the caller can move it
 * to its tmp/ file (stream it) before the sum passes STORE_MEMORY_TOTAL_MAX.
 *
 * Intrusive, like txnmap: the node lives in the caller's struct.  Nodes are
 * kept in lists by size class, so the largest is found in constant time
 * (to within one class) however many messages wait. */
#ifndef RAWMAIL_STORE_MEMORY_H
#define RAWMAIL_STORE_MEMORY_H

#include <stdbool.h>
#include <stddef.h>

/* Classes of STORE_MEMORY_CLASS_SIZE octets; the last holds everything
 * larger. */
#define STORE_MEMORY_CLASSES 17
#define STORE_MEMORY_CLASS_SIZE (16u * 1024u)

struct store_memory_node {
	struct store_memory_node *prev, *next;
	size_t bytes;       /* counted for this node; 0: not in any list */
	unsigned cls;
};

struct store_memory {
	size_t total;       /* sum of every node's bytes */
	size_t max;         /* the budget */
	struct store_memory_node *classes[STORE_MEMORY_CLASSES];
};

void store_memory_init(struct store_memory *b, size_t max);
/* Counts bytes for n from now on (0 takes it out of the budget). */
void store_memory_set(struct store_memory *b, struct store_memory_node *n, size_t bytes);
/* True if adding more octets would pass the budget. */
bool store_memory_over(const struct store_memory *b, size_t more);
/* The node with the most bytes (to within one class), NULL if none. */
struct store_memory_node *store_memory_largest(const struct store_memory *b);

#endif
