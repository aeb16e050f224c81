#include "store/memory.h"

#include <string.h>

void store_memory_init(struct store_memory *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static unsigned class_of(size_t bytes)
{
	size_t c = bytes / STORE_MEMORY_CLASS_SIZE;
	return c >= STORE_MEMORY_CLASSES ? STORE_MEMORY_CLASSES - 1 : (unsigned)c;
}

static void unlink_node(struct store_memory *b, struct store_memory_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		b->classes[n->cls] = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
	b->total -= n->bytes;
	n->bytes = 0;
}

void store_memory_set(struct store_memory *b, struct store_memory_node *n, size_t bytes)
{
	if (n->bytes == bytes)
		return;
	if (n->bytes)
		unlink_node(b, n);
	if (!bytes)
		return;
	n->bytes = bytes;
	n->cls = class_of(bytes);
	n->prev = NULL;
	n->next = b->classes[n->cls];
	if (n->next)
		n->next->prev = n;
	b->classes[n->cls] = n;
	b->total += bytes;
}

bool store_memory_over(const struct store_memory *b, size_t more)
{
	return more > b->max || b->total > b->max - more;
}

struct store_memory_node *store_memory_largest(const struct store_memory *b)
{
	for (unsigned c = STORE_MEMORY_CLASSES; c-- > 0;)
		if (b->classes[c])
			return b->classes[c];
	return NULL;
}
