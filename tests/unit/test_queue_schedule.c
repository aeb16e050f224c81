/* The queue's clock decisions: durations, retry schedules (with the error
 * text a user sees for a bad item), next attempt, expiry, delay warning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "queue/schedule.h"

static const struct {
	const char *in;
	int64_t want;       /* -1: refused */
	const char *why;    /* a part of the error text */
} durations[] = {
	{ "0", 0, NULL },
	{ "90", 90, NULL },
	{ "90s", 90, NULL },
	{ "5m", 300, NULL },
	{ "1h", 3600, NULL },
	{ "5d", 432000, NULL },
	{ "3650d", 3650LL * 86400, NULL },
	{ "3651d", -1, "too long" },
	{ "315360001", -1, "too long" },
	{ "99999999999999999999999", -1, "too long" },
	{ "", -1, "is empty" },
	{ "m", -1, "does not start with a number" },
	{ "-5m", -1, "does not start with a number" },
	{ "+5", -1, "does not start with a number" },
	{ " 5m", -1, "does not start with a number" },
	{ "5 m", -1, "unknown unit" },
	{ "5x", -1, "unknown unit" },
	{ "5M", -1, "unknown unit" },
	{ "5mm", -1, "text after its unit" },
	{ "5m ", -1, "text after its unit" },
	{ "1.5h", -1, "unknown unit" },
};

static void test_durations(void **state)
{
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		int64_t v = -7;
		char why[200] = "";
		int rc = queue_duration_parse(durations[i].in, &v, why, sizeof(why));
		if (durations[i].want >= 0) {
			if (rc != 0 || v != durations[i].want)
				fail_msg("\"%s\": rc %d v %lld (%s)", durations[i].in, rc, (long long)v, why);
		} else if (rc != -1 || !strstr(why, durations[i].why)) {
			fail_msg("\"%s\": rc %d why \"%s\", want \"%s\"", durations[i].in, rc, why,
			         durations[i].why);
		}
	}
}

static const struct {
	const char *in;
	size_t n;
	int64_t steps[4];
	const char *why;   /* NULL: accepted */
} schedules[] = {
	{ "5m,10m,20m,40m,1h", 5, { 300, 600, 1200, 2400 }, NULL },
	{ "1s", 1, { 1 }, NULL },
	{ "30,2m", 2, { 30, 120 }, NULL },
	{ "5m,,1h", 0, { 0 }, "item 2 \"\" is empty" },
	{ "5m,10x", 0, { 0 }, "item 2 \"10x\" has an unknown unit" },
	{ "0", 0, { 0 }, "item 1 \"0\" is zero" },
	{ "", 0, { 0 }, "item 1 \"\" is empty" },
	{ "5m,", 0, { 0 }, "item 2 \"\" is empty" },
	{ ",5m", 0, { 0 }, "item 1" },
	{ "1m,2m,\x1b[2J", 0, { 0 }, "item 3 \"?[2J\" does not start" },
	{ "1m,9999d", 0, { 0 }, "item 2 \"9999d\" is too long" },
};

static void test_schedules(void **state)
{
	for (size_t i = 0; i < sizeof(schedules) / sizeof(schedules[0]); i++) {
		struct queue_schedule s;
		char why[200] = "";
		int rc = queue_schedule_parse(schedules[i].in, &s, why, sizeof(why));
		if (!schedules[i].why) {
			if (rc != 0 || s.n != schedules[i].n)
				fail_msg("\"%s\": rc %d n %zu (%s)", schedules[i].in, rc, s.n, why);
			for (size_t k = 0; k < s.n && k < 4; k++)
				assert_int_equal(s.step[k], schedules[i].steps[k]);
		} else if (rc != -1 || !strstr(why, schedules[i].why)) {
			fail_msg("\"%s\": rc %d why \"%s\", want \"%s\"", schedules[i].in, rc, why,
			         schedules[i].why);
		}
	}
}

static void test_schedule_too_many_items(void **state)
{
	char list[4 * (QUEUE_SCHEDULE_MAX + 1)];
	size_t len = 0;
	for (int i = 0; i <= QUEUE_SCHEDULE_MAX; i++) {
		memcpy(list + len, i ? ",1s" : "1s", i ? 3 : 2);
		len += i ? 3 : 2;
	}
	list[len] = '\0';
	struct queue_schedule s;
	char why[200];
	assert_int_equal(queue_schedule_parse(list, &s, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "more than 32 items"));
	list[strlen(list) - 3] = '\0';
	assert_int_equal(queue_schedule_parse(list, &s, why, sizeof(why)), 0);
	assert_int_equal(s.n, QUEUE_SCHEDULE_MAX);
}

static void test_next_attempt(void **state)
{
	struct queue_schedule s;
	queue_schedule_default(&s);
	assert_int_equal(s.n, 5);
	static const struct { uint32_t k; int64_t last, want; } t[] = {
		{ 0, 1000, 1300 },  /* no attempt yet counts as the first */
		{ 1, 1000, 1300 }, { 2, 1000, 1600 }, { 3, 1000, 2200 },
		{ 4, 1000, 3400 }, { 5, 1000, 4600 }, { 6, 1000, 4600 },
		{ 4000000000u, 1000, 4600 },  /* the last step repeats */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (queue_schedule_next(&s, t[i].k, t[i].last) != t[i].want)
			fail_msg("attempt %u: %lld", t[i].k,
			         (long long)queue_schedule_next(&s, t[i].k, t[i].last));
	struct queue_schedule one;
	char why[100];
	assert_int_equal(queue_schedule_parse("1s", &one, why, sizeof(why)), 0);
	assert_int_equal(queue_schedule_next(&one, 7, 50), 51);
}

static void test_expiry_and_warning(void **state)
{
	static const struct { int64_t created, lifetime, now; int expired; } e[] = {
		{ 1000, 432000, 1000, 0 },
		{ 1000, 432000, 432999, 0 },
		{ 1000, 432000, 433000, 1 },  /* at created + lifetime */
		{ 1000, 432000, 900000, 1 },
		{ 1000, 0, 1000, 1 },
		{ 1000, 60, 500, 0 },         /* clock stepped back */
	};
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		if (queue_expired(e[i].created, e[i].lifetime, e[i].now) != e[i].expired)
			fail_msg("expired case %zu", i);
	static const struct { int64_t created, delay; int warned; int64_t now; int due; } w[] = {
		{ 1000, 0, 0, 99999999, 0 },   /* 0: off */
		{ 1000, 14400, 0, 15399, 0 },
		{ 1000, 14400, 0, 15400, 1 },
		{ 1000, 14400, 1, 15400, 0 },  /* only once */
		{ 1000, 14400, 0, 999999, 1 },
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (queue_delay_warning_due(w[i].created, w[i].delay, w[i].warned, w[i].now) != w[i].due)
			fail_msg("warning case %zu", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_schedules),
		cmocka_unit_test(test_schedule_too_many_items),
		cmocka_unit_test(test_next_attempt),
		cmocka_unit_test(test_expiry_and_warning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
