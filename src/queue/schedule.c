#include "queue/schedule.h"

#include <stdio.h>
#include <string.h>

/* One duration from text[0..len): digits, then at most one unit. */
static int duration_parse(const char *text, size_t len, int64_t *out, const char **what)
{
	size_t i = 0;
	int64_t v = 0;
	if (len == 0) {
		*what = "is empty";
		return -1;
	}
	while (i < len && text[i] >= '0' && text[i] <= '9') {
		v = v * 10 + (text[i] - '0');
		if (v > QUEUE_DURATION_MAX) {
			*what = "is too long (at most 3650d)";
			return -1;
		}
		i++;
	}
	if (i == 0) {
		*what = "does not start with a number (e.g. 90s, 5m, 1h, 2d)";
		return -1;
	}
	int64_t unit = 1;
	if (i < len) {
		switch (text[i]) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default:
			*what = "has an unknown unit (use s, m, h or d)";
			return -1;
		}
		if (++i != len) {
			*what = "has text after its unit";
			return -1;
		}
	}
	if (v > QUEUE_DURATION_MAX / unit) {
		*what = "is too long (at most 3650d)";
		return -1;
	}
	*out = v * unit;
	return 0;
}

/* Quotes at most 40 octets of the offending text, printable ASCII only,
 * so an error message never carries control bytes to a terminal. */
static void quote(char *dst, size_t dstlen, const char *p, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && i < 40 && o + 2 < dstlen; i++)
		dst[o++] = (p[i] > 0x20 && p[i] < 0x7f) ? p[i] : '?';
	if (len > 40 && o + 4 < dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

int queue_duration_parse(const char *text, int64_t *seconds, char *why, size_t whylen)
{
	const char *what;
	size_t len = strlen(text);
	if (duration_parse(text, len, seconds, &what) == 0)
		return 0;
	char q[48];
	quote(q, sizeof(q), text, len);
	snprintf(why, whylen, "duration \"%s\" %s", q, what);
	return -1;
}

int queue_schedule_parse(const char *text, struct queue_schedule *s, char *why, size_t whylen)
{
	size_t n = 0;
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *what = NULL;
		int64_t v;
		if (n == QUEUE_SCHEDULE_MAX) {
			snprintf(why, whylen, "retry schedule has more than %d items", QUEUE_SCHEDULE_MAX);
			return -1;
		}
		if (duration_parse(p, len, &v, &what) == 0 && v == 0)
			what = "is zero (the shortest retry is 1s)";
		if (what) {
			char q[48];
			quote(q, sizeof(q), p, len);
			snprintf(why, whylen, "retry schedule item %zu \"%s\" %s", n + 1, q, what);
			return -1;
		}
		s->step[n++] = v;
		if (!comma)
			break;
		p = comma + 1;
	}
	s->n = n;
	return 0;
}

void queue_schedule_default(struct queue_schedule *s)
{
	char why[128];
	int rc = queue_schedule_parse(QUEUE_SCHEDULE_DEFAULT, s, why, sizeof(why));
	(void)rc;
}

int64_t queue_schedule_next(const struct queue_schedule *s, uint32_t attempts, int64_t last)
{
	size_t k = attempts == 0 ? 1 : attempts;
	if (k > s->n)
		k = s->n;
	return last + s->step[k - 1];
}

bool queue_expired(int64_t created, int64_t lifetime, int64_t now)
{
	return now >= created + lifetime;
}

bool queue_delay_warning_due(int64_t created, int64_t delay, bool warned, int64_t now)
{
	return delay > 0 && !warned && now >= created + delay;
}
