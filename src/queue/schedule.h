/* The queue's clock decisions (issue 9): retry schedules, the maximum
 * lifetime, the delay warning.  Pure: no I/O, the clock is passed in, so
 * every decision is tested by a table. */
#ifndef RAWMAIL_QUEUE_SCHEDULE_H
#define RAWMAIL_QUEUE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest duration any option takes: 10 years (a typo such as
 * "5000000d" is refused rather than overflowing an epoch sum). */
#define QUEUE_DURATION_MAX (3650LL * 86400LL)
/* Items in a --retry-schedule list. */
#define QUEUE_SCHEDULE_MAX 32
#define QUEUE_SCHEDULE_DEFAULT "5m,10m,20m,40m,1h"
/* RFC 5321 §4.5.4.1: give up after "at least 4-5 days". */
#define QUEUE_LIFETIME_DEFAULT (5LL * 86400LL)

struct queue_schedule {
	size_t n;                           /* >= 1 */
	int64_t step[QUEUE_SCHEDULE_MAX];   /* seconds, each >= 1 */
};

/* "90", "90s", "5m", "1h", "5d": a bare number is seconds.  0 and a result
 * in *seconds, or -1 with a sentence in why (naming the text). */
int queue_duration_parse(const char *text, int64_t *seconds, char *why, size_t whylen);
/* "5m,10m,20m,40m,1h": comma-separated durations, each at least 1 s, the
 * last repeating.  0, or -1 with a sentence naming the bad item. */
int queue_schedule_parse(const char *text, struct queue_schedule *s, char *why, size_t whylen);
void queue_schedule_default(struct queue_schedule *s);

/* After attempt k (1-based) made at last: last + step[min(k, n) - 1]. */
int64_t queue_schedule_next(const struct queue_schedule *s, uint32_t attempts, int64_t last);
/* A recipient that fails temporarily at an attempt made at now has expired
 * when now >= created + lifetime: it fails permanently with 4.4.7
 * (RFC 3463 §3.5, "delivery time expired"), keeping the last reply. */
bool queue_expired(int64_t created, int64_t lifetime, int64_t now);
/* A delay warning (delay > 0) is due once: not yet sent and now >=
 * created + delay. */
bool queue_delay_warning_due(int64_t created, int64_t delay, bool warned, int64_t now);

#endif
