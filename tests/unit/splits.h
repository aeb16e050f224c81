/* The split schedule of the resumable-parser tests (content, reply parser,
 * DATA encoder): a parser that may be handed any input in any pieces must
 * give the same result for every way of cutting it.  Each schedule entry
 * is (first, step): the first call gets `first` octets, later calls `step`
 * octets each (0: the rest at once).  Header-only: included by tests. */
#ifndef RAWMAIL_TESTS_SPLITS_H
#define RAWMAIL_TESTS_SPLITS_H

#include <stddef.h>

/* Inputs up to this long are split at every position; longer ones at
 * every position near either end and at a stride in between, which keeps
 * 100 KB cases at a few seconds under the sanitizers. */
#ifndef SPLIT_ALL_MAX /* a test may set its own before including this */
#define SPLIT_ALL_MAX 4096
#define SPLIT_EDGE 2048
#define SPLIT_STRIDE 509
#endif

typedef void (*split_fn)(void *ctx, size_t first, size_t step, const char *how);

/* Runs fn for: the whole input in one call, every two-piece split, byte by
 * byte (after an empty first call), and pieces of 2, 3 and 7 from every
 * starting offset. */
static inline void splits_run(size_t len, split_fn fn, void *ctx)
{
	static const size_t steps[] = { 2, 3, 7 };
	fn(ctx, len, 0, "one call");
	for (size_t k = 0; k <= len; k++) {
		if (len > SPLIT_ALL_MAX && k > SPLIT_EDGE && k < len - SPLIT_EDGE &&
		    k % SPLIT_STRIDE != 0)
			continue;
		fn(ctx, k, 0, "split in two");
	}
	fn(ctx, 0, 1, "byte by byte");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		for (size_t first = 0; first < steps[i]; first++)
			fn(ctx, first, steps[i], "pieces");
}

#endif
