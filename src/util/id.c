#include "util/id.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint32_t id_counter;
static uint32_t id_salt;

void id_init(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (uint32_t)ts.tv_nsec;
	}
	id_salt = (r ^ ((uint32_t)getpid() * 2654435761u)) & 0xffff;
	id_counter = r >> 16;
}

static void hex(char *out, uint64_t v, int digits)
{
	static const char digit[] = "0123456789ABCDEF";
	for (int i = digits - 1; i >= 0; i--) {
		out[i] = digit[v & 15];
		v >>= 4;
	}
}

void id_new(char *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* 9 hex digits of seconds, 5 of microseconds, 4 of a counter that
	 * never repeats within 65536 ids of one process, 4 of salt that
	 * tells processes apart: sortable, and unique even when the clock
	 * steps back. */
	hex(out, (uint64_t)ts.tv_sec, 9);
	hex(out + 9, (uint64_t)(ts.tv_nsec / 1000), 5);
	hex(out + 14, id_counter++ & 0xffff, 4);
	hex(out + 18, id_salt, 4);
	out[ID_LEN] = '\0';
}
