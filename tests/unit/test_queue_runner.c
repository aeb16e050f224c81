/* The runner's decisions (queue/runner.h): an envelope, an attempt's
 * results and the clock in; the new envelope and what to bounce out.
 * Also the split of a recorded reply into Remote-MTA and diagnostic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "queue/runner.h"
#include "util/id.h"

#define T0 1700000000LL

static void env_make(struct queue_envelope *env, const char *sender, unsigned flags, size_t n)
{
	*env = (struct queue_envelope){ .created = T0, .flags = flags };
	snprintf(env->id, sizeof(env->id), "testid");
	assert_int_equal(queue_envelope_set_sender(env, sender), 0);
	for (size_t i = 0; i < n; i++) {
		char a[64];
		snprintf(a, sizeof(a), "r%zu@example.test", i);
		assert_int_equal(queue_envelope_add_rcpt(env, a, NULL), 0);
	}
}

static void policy(struct queue_policy *p)
{
	queue_policy_default(p);
	char why[128];
	assert_int_equal(queue_schedule_parse("1m,10m", &p->schedule, why, sizeof(why)), 0);
}

static void test_mixed_results(void **state)
{
	struct queue_envelope env;
	struct queue_policy pol;
	struct queue_decision d;
	env_make(&env, "alice@example.test", 0, 3);
	policy(&pol);
	size_t idx[] = { 0, 1, 2 };
	struct queue_result res[] = {
		{ QUEUE_OUTCOME_DELIVERED, "mx [192.0.2.1]: 250 ok" },
		{ QUEUE_OUTCOME_TEMPORARY, "mx [192.0.2.1]: 451 4.7.1 greylisted" },
		{ QUEUE_OUTCOME_PERMANENT, "mx [192.0.2.1]: 550 5.1.1 no such user" },
	};
	assert_int_equal(queue_runner_decide(&env, idx, res, 3, T0 + 5, &pol, &d), 0);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(env.rcpts[1].state, QUEUE_RCPT_QUEUED);
	assert_int_equal(env.rcpts[1].attempts, 1);
	assert_int_equal(env.rcpts[1].next, T0 + 5 + 60);
	assert_int_equal(env.rcpts[1].last_attempt, T0 + 5);
	assert_string_equal(env.rcpts[1].last, "mx [192.0.2.1]: 451 4.7.1 greylisted");
	assert_int_equal(env.rcpts[2].state, QUEUE_RCPT_BOUNCED);
	assert_int_equal(d.nfailed, 1);
	assert_int_equal(d.failed[0], 2);
	assert_null(d.status[0]);
	assert_false(d.finished);
	assert_int_equal(d.ndelayed, 0);
	queue_decision_free(&d);

	/* The second attempt at the greylisted one: next on the second step,
	 * and the second step repeats. */
	size_t one[] = { 1 };
	struct queue_result again = { QUEUE_OUTCOME_TEMPORARY, "mx [192.0.2.1]: 451 again" };
	assert_int_equal(queue_runner_decide(&env, one, &again, 1, T0 + 70, &pol, &d), 0);
	assert_int_equal(env.rcpts[1].next, T0 + 70 + 600);
	queue_decision_free(&d);
	assert_int_equal(queue_runner_decide(&env, one, &again, 1, T0 + 700, &pol, &d), 0);
	assert_int_equal(env.rcpts[1].attempts, 3);
	assert_int_equal(env.rcpts[1].next, T0 + 700 + 600);
	queue_decision_free(&d);
	struct queue_result ok = { QUEUE_OUTCOME_DELIVERED, NULL };
	assert_int_equal(queue_runner_decide(&env, one, &ok, 1, T0 + 1400, &pol, &d), 0);
	assert_true(d.finished);
	assert_int_equal(d.nfailed, 0);
	/* No reply given: the last one stays. */
	assert_string_equal(env.rcpts[1].last, "mx [192.0.2.1]: 451 again");
	queue_decision_free(&d);
	queue_envelope_free(&env);
}

static void test_expired(void **state)
{
	struct queue_envelope env;
	struct queue_policy pol;
	struct queue_decision d;
	env_make(&env, "alice@example.test", 0, 1);
	policy(&pol);
	pol.lifetime = 3600;
	size_t idx[] = { 0 };
	struct queue_result res = { QUEUE_OUTCOME_TEMPORARY, "mx [192.0.2.1]: 451 busy" };
	assert_int_equal(queue_runner_decide(&env, idx, &res, 1, T0 + 3599, &pol, &d), 0);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_QUEUED);
	queue_decision_free(&d);
	assert_int_equal(queue_runner_decide(&env, idx, &res, 1, T0 + 3600, &pol, &d), 0);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_BOUNCED);
	assert_int_equal(d.nfailed, 1);
	assert_string_equal(d.status[0], "4.4.7");
	assert_string_equal(env.rcpts[0].last, "mx [192.0.2.1]: 451 busy");
	assert_true(d.finished);
	queue_decision_free(&d);
	queue_envelope_free(&env);
}

/* RFC 5321 §4.5.5: never a DSN to the null sender or for a bounce; and
 * send's own first attempt reports instead of bouncing. */
static void test_no_bounce(void **state)
{
	static const struct {
		const char *sender;
		unsigned flags;
		bool bounce_policy;
	} cases[] = {
		{ "", 0, true },
		{ "alice@example.test", QUEUE_FLAG_BOUNCE, true },
		{ "alice@example.test", 0, false },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct queue_envelope env;
		struct queue_policy pol;
		struct queue_decision d;
		env_make(&env, cases[c].sender, cases[c].flags, 2);
		policy(&pol);
		pol.bounce = cases[c].bounce_policy;
		pol.delay_warning = 1;
		size_t idx[] = { 0, 1 };
		struct queue_result res[] = {
			{ QUEUE_OUTCOME_PERMANENT, "550 no" },
			{ QUEUE_OUTCOME_TEMPORARY, "451 later" },
		};
		assert_int_equal(queue_runner_decide(&env, idx, res, 2, T0 + 100, &pol, &d), 0);
		assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_FAILED);
		assert_int_equal(d.nfailed, 0);
		assert_int_equal(d.failed_now, 1);
		assert_int_equal(d.ndelayed, 0);
		assert_false(env.flags & QUEUE_FLAG_WARNED);
		assert_false(d.finished);
		queue_decision_free(&d);
		queue_envelope_free(&env);
	}
}

static void test_delay_warning_once(void **state)
{
	struct queue_envelope env;
	struct queue_policy pol;
	struct queue_decision d;
	env_make(&env, "alice@example.test", 0, 2);
	policy(&pol);
	pol.delay_warning = 3600;
	size_t idx[] = { 0, 1 };
	struct queue_result res[] = {
		{ QUEUE_OUTCOME_TEMPORARY, "451 a" },
		{ QUEUE_OUTCOME_DELIVERED, "250 b" },
	};
	assert_int_equal(queue_runner_decide(&env, idx, res, 2, T0 + 60, &pol, &d), 0);
	assert_int_equal(d.ndelayed, 0);
	queue_decision_free(&d);
	size_t first[] = { 0 };
	assert_int_equal(queue_runner_decide(&env, first, res, 1, T0 + 3600, &pol, &d), 0);
	assert_int_equal(d.ndelayed, 1);
	assert_int_equal(d.delayed[0], 0);
	assert_true(env.flags & QUEUE_FLAG_WARNED);
	/* The DSN could not be queued: warned again next time. */
	queue_runner_unbounce(&env, &d, false, true, T0 + 3600, &pol);
	assert_false(env.flags & QUEUE_FLAG_WARNED);
	queue_decision_free(&d);
	assert_int_equal(queue_runner_decide(&env, first, res, 1, T0 + 4000, &pol, &d), 0);
	assert_int_equal(d.ndelayed, 1);
	queue_decision_free(&d);
	assert_int_equal(queue_runner_decide(&env, first, res, 1, T0 + 5000, &pol, &d), 0);
	assert_int_equal(d.ndelayed, 0);
	queue_decision_free(&d);
	queue_envelope_free(&env);
}

/* Only queued recipients are touched: a result for one already delivered
 * (or failed at send's first attempt) changes nothing. */
static void test_only_queued(void **state)
{
	struct queue_envelope env;
	struct queue_policy pol;
	struct queue_decision d;
	env_make(&env, "alice@example.test", 0, 2);
	policy(&pol);
	env.rcpts[0].state = QUEUE_RCPT_FAILED;
	env.rcpts[0].attempts = 1;
	size_t idx[] = { 0, 1, 7 };
	struct queue_result res[] = {
		{ QUEUE_OUTCOME_PERMANENT, "550 x" },
		{ QUEUE_OUTCOME_DELIVERED, "250 y" },
		{ QUEUE_OUTCOME_DELIVERED, "250 z" },
	};
	assert_int_equal(queue_runner_decide(&env, idx, res, 3, T0, &pol, &d), 0);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_FAILED);
	assert_int_equal(env.rcpts[0].attempts, 1);
	assert_null(env.rcpts[0].last);
	assert_int_equal(d.nfailed, 0);
	assert_true(d.finished);
	queue_decision_free(&d);
	queue_envelope_free(&env);
}

static void test_unbounce_requeues(void **state)
{
	struct queue_envelope env;
	struct queue_policy pol;
	struct queue_decision d;
	env_make(&env, "alice@example.test", 0, 1);
	policy(&pol);
	size_t idx[] = { 0 };
	struct queue_result res = { QUEUE_OUTCOME_PERMANENT, "550 no" };
	assert_int_equal(queue_runner_decide(&env, idx, &res, 1, T0, &pol, &d), 0);
	assert_true(d.finished);
	queue_runner_unbounce(&env, &d, true, false, T0, &pol);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_QUEUED);
	assert_int_equal(env.rcpts[0].next, T0 + 60);
	queue_decision_free(&d);
	queue_envelope_free(&env);
}

static void test_last_split(void **state)
{
	static const struct {
		const char *last, *host, *rest;
		bool reply;
	} cases[] = {
		{ "mx.example.test [192.0.2.1]: 550 5.1.1 no\n550 5.1.1 really", "mx.example.test",
		  "550 5.1.1 no\n550 5.1.1 really", true },
		{ "[127.0.0.2] [127.0.0.2]: 451 later", "[127.0.0.2]", "451 later", true },
		{ "[127.0.0.2]: 451 later", "[127.0.0.2]", "451 later", true },
		{ "[IPv6:::1]: cannot connect", "[IPv6:::1]", "cannot connect", false },
		{ "[x] no: 550 y", "", "[x] no: 550 y", false },
		{ "mx [2001:db8::1]: connection refused", "mx", "connection refused", false },
		{ "no MX or address for example.invalid", "", "no MX or address for example.invalid",
		  false },
		{ "550 bare reply", "", "550 bare reply", true },
		{ "x\nmx [1.2.3.4]: 550 late", "", "x\nmx [1.2.3.4]: 550 late", false },
		{ "", "", "", false },
		{ "55", "", "55", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64];
		const char *rest;
		bool reply;
		queue_last_split(cases[i].last, host, sizeof(host), &rest, &reply);
		assert_string_equal(host, cases[i].host);
		assert_string_equal(rest, cases[i].rest);
		assert_int_equal(reply, cases[i].reply);
	}
	char host[4];
	const char *rest;
	bool reply;
	queue_last_split("verylonghost [1.2.3.4]: 250 ok", host, sizeof(host), &rest, &reply);
	assert_string_equal(host, "ver");
	queue_last_split(NULL, host, sizeof(host), &rest, &reply);
	assert_string_equal(rest, "");
}

/* ---- the whole pass, with a fake deliverer on a real event loop ---- */

/* Answers by recipient local part: "ok" delivered, "later" temporary,
 * anything else permanent; from the loop, never inside submit. */
struct fake {
	struct event_base *base;
	size_t submits;
	size_t rcpts;
	char senders[8][64];
};

struct fake_call {
	queue_deliver_done_fn done;
	void *arg;
	struct queue_result res[8];
	size_t n;
};

static void fake_answer(evutil_socket_t fd, short what, void *arg)
{
	struct fake_call *c = arg;
	c->done(c->arg, c->res, c->n);
	free(c);
}

static int fake_submit(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
                       void *arg, char *why, size_t whylen)
{
	struct fake *f = ctx;
	struct fake_call *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_true(d->n <= 8);
	c->done = done;
	c->arg = arg;
	c->n = d->n;
	if (f->submits < 8)
		snprintf(f->senders[f->submits], sizeof(f->senders[0]), "%s", d->sender);
	f->submits++;
	f->rcpts += d->n;
	for (size_t i = 0; i < d->n; i++) {
		const char *r = d->rcpts[i];
		c->res[i].outcome = !strncmp(r, "ok@", 3)      ? QUEUE_OUTCOME_DELIVERED
		                    : !strncmp(r, "later@", 6) ? QUEUE_OUTCOME_TEMPORARY
		                                               : QUEUE_OUTCOME_PERMANENT;
		c->res[i].last = c->res[i].outcome == QUEUE_OUTCOME_PERMANENT
		                         ? "mx.example.test [192.0.2.1]: 550 5.1.1 no such user"
		                         : "mx.example.test [192.0.2.1]: 451 4.7.1 later";
	}
	event_base_once(f->base, -1, EV_TIMEOUT, fake_answer, c, NULL);
	return 0;
}

static void pass_done(void *arg, const struct queue_run_stats *st)
{
	struct queue_run_stats *out = arg;
	*out = *st;
}

static const char message[] = "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n";

static void enqueue(struct queue_spool *sp, const char *sender, const char *const *rcpts,
                    size_t n, char *id)
{
	struct queue_envelope env = { 0 };
	char why[256];
	assert_int_equal(queue_envelope_set_sender(&env, sender), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(queue_envelope_add_rcpt(&env, rcpts[i], NULL), 0);
	assert_int_equal(queue_spool_enqueue(sp, &env, message, sizeof(message) - 1, why,
	                                     sizeof(why)), QUEUE_OK);
	snprintf(id, QUEUE_ID_MAX + 1, "%s", env.id);
	queue_envelope_free(&env);
}

static struct queue_run_stats run_pass(struct queue_spool *sp, struct fake *f,
                                       enum queue_run_mode mode, const char *id)
{
	struct queue_deliverer dl = { fake_submit, f };
	struct queue_runner_config cfg = { .reporting = "mx.test" };
	queue_policy_default(&cfg.policy);
	struct queue_runner *r = queue_runner_new(f->base, sp, &dl, &cfg);
	assert_non_null(r);
	struct queue_run_stats st;
	memset(&st, 0xff, sizeof(st));
	char why[256];
	assert_int_equal(queue_runner_start(r, mode, id, pass_done, &st, why, sizeof(why)), 0);
	assert_true(event_base_dispatch(f->base) >= 0);   /* runs until nothing is left */
	queue_runner_free(r);
	return st;
}

static void test_stats_format(void **state)
{
	struct queue_run_stats st = { .seen = 9, .due = 4, .attempted = 3, .delivered = 2,
		                      .deferred = 1, .failed = 1, .bounces = 1, .corrupt = 1,
		                      .busy = 0, .removed = 2, .errors = 0 };
	char out[512];
	queue_run_stats_format(&st, out, sizeof(out));
	assert_string_equal(out, "seen=9 due=4 attempted=3 delivered=2 deferred=1 failed=1 "
	                         "bounces=1 set_aside=1 busy=0 removed=2 errors=0");
	st.stopped = true;
	st.not_started = 5;
	queue_run_stats_format(&st, out, sizeof(out));
	assert_non_null(strstr(out, "errors=0 stopped=yes not_started=5"));
	char tiny[8];
	queue_run_stats_format(&st, tiny, sizeof(tiny));
	assert_string_equal(tiny, "seen=9 ");
}

static void test_pass_with_fake_deliverer(void **state)
{
	char dir[] = "/tmp/rawmail-runner-XXXXXX", spool[64], why[256];
	assert_non_null(mkdtemp(dir));
	snprintf(spool, sizeof(spool), "%s/q", dir);
	id_init();
	struct queue_spool *sp;
	assert_int_equal(queue_spool_open(spool, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why)),
	                 QUEUE_OK);
	struct fake f = { .base = event_base_new() };
	assert_non_null(f.base);
	static const char *const mixed[] = { "ok@a.test", "later@a.test", "gone@a.test" };
	static const char *const done[] = { "ok@b.test" };
	static const char *const nobody[] = { "gone@c.test" };
	char id_mixed[QUEUE_ID_MAX + 1], id_done[QUEUE_ID_MAX + 1], id_null[QUEUE_ID_MAX + 1];
	enqueue(sp, "alice@example.org", mixed, 3, id_mixed);
	enqueue(sp, "alice@example.org", done, 1, id_done);
	enqueue(sp, "", nobody, 1, id_null);

	struct queue_run_stats st = run_pass(sp, &f, QUEUE_RUN_DUE, NULL);
	/* Three messages, then the bounce of gone@a.test in the same pass
	 * (to alice, which the fake answers permanently: a bounce of a
	 * bounce is never made). */
	assert_int_equal(f.submits, 4);
	assert_string_equal(f.senders[3], "");
	assert_int_equal(st.attempted, 4);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(st.failed, 3);
	assert_int_equal(st.removed, 3);
	assert_int_equal(st.errors, 0);
	/* Seen three, due three and the bounce queued in the pass; the next
	 * attempt known from the pass itself (later@, on the schedule). */
	assert_int_equal(st.seen, 3);
	assert_int_equal(st.due, 4);
	assert_int_equal(st.bounces, 1);
	assert_true(st.next_known);
	int64_t t = (int64_t)time(NULL);
	assert_true(st.next >= t + 299 && st.next <= t + 300);

	/* Left: the mixed one, later@ queued for 5 minutes. */
	struct queue_lock lk;
	struct queue_envelope env = { 0 };
	assert_int_equal(queue_spool_lock(sp, id_mixed, &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_load(sp, &lk, &env, NULL, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(env.rcpts[1].state, QUEUE_RCPT_QUEUED);
	assert_int_equal(env.rcpts[1].attempts, 1);
	assert_int_equal(env.rcpts[2].state, QUEUE_RCPT_BOUNCED);
	assert_string_equal(env.rcpts[2].last, "mx.example.test [192.0.2.1]: 550 5.1.1 no such user");
	queue_envelope_free(&env);
	struct queue_lock other;
	assert_int_equal(queue_spool_lock(sp, id_done, &other, why, sizeof(why)), QUEUE_GONE);
	assert_int_equal(queue_spool_lock(sp, id_null, &other, why, sizeof(why)), QUEUE_GONE);

	/* Locked by someone else: skipped. */
	st = run_pass(sp, &f, QUEUE_RUN_ALL, NULL);
	assert_int_equal(st.busy, 1);
	assert_int_equal(f.submits, 4);
	queue_spool_unlock(&lk);

	/* Not due: a pass tries nothing, and still knows when it is due;
	 * a flush tries it now. */
	st = run_pass(sp, &f, QUEUE_RUN_DUE, NULL);
	assert_int_equal(st.attempted, 0);
	assert_int_equal(st.seen, 1);
	assert_int_equal(st.due, 0);
	assert_true(st.next_known && st.next >= t + 299 && st.next <= t + 300);
	st = run_pass(sp, &f, QUEUE_RUN_ALL, NULL);
	assert_int_equal(st.attempted, 1);
	assert_int_equal(f.rcpts, 3 + 1 + 1 + 1 + 1);   /* only later@ again */
	/* One id now. */
	st = run_pass(sp, &f, QUEUE_RUN_DUE, id_mixed);
	assert_int_equal(st.attempted, 1);
	assert_int_equal(st.deferred, 1);

	event_base_free(f.base);
	queue_spool_close(sp);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed_results),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_no_bounce),
		cmocka_unit_test(test_delay_warning_once),
		cmocka_unit_test(test_only_queued),
		cmocka_unit_test(test_unbounce_requeues),
		cmocka_unit_test(test_last_split),
		cmocka_unit_test(test_pass_with_fake_deliverer),
		cmocka_unit_test(test_stats_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
