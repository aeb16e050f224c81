/* How the harnesses that check "same result whatever the read sizes" cut
 * their input: pattern 0 is byte by byte; any other pattern is a
 * pseudo-random sequence of pieces of 0..pattern octets (empty reads
 * too), the same sequence for the same pattern, so a crash replays. */
#ifndef RAWMAIL_FUZZ_PIECES_H
#define RAWMAIL_FUZZ_PIECES_H

#include <stddef.h>
#include <stdint.h>

struct pieces {
	uint32_t rng;
	unsigned pattern;
};

static inline void pieces_init(struct pieces *p, unsigned pattern)
{
	p->rng = pattern * 2654435761u + 1;
	p->pattern = pattern;
}

/* The next piece's length, at most left. */
static inline size_t pieces_next(struct pieces *p, size_t left)
{
	size_t piece = 1;
	if (p->pattern) {
		p->rng = p->rng * 1103515245u + 12345u;
		piece = (p->rng >> 16) % (p->pattern + 1);
	}
	return piece < left ? piece : left;
}

#endif
