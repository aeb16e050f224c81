/* Unit tests for the local/remote split (src/queue/split.c): which
 * recipients are local (no domain, or a domain the callback calls this
 * host), alias expansion into local and remote targets, the merge of the
 * targets' results onto each recipient (temporary wins, then permanent),
 * an alias loop refused permanently with its path, and results owed when
 * nothing was handed to a deliverer still coming from the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "queue/split.h"

/* A deliverer that records what it was given and answers when told. */
struct fake {
	int calls;
	char rcpts[8][64];
	char originals[8][64];
	size_t n;
	queue_deliver_done_fn done;
	void *arg;
	int fail;        /* submit returns -1 */
};

static int fake_submit(void *ctx, const struct queue_delivery *d, queue_deliver_done_fn done,
                       void *arg, char *why, size_t whylen)
{
	struct fake *f = ctx;
	f->calls++;
	if (f->fail) {
		snprintf(why, whylen, "local delivery needs root");
		return -1;
	}
	f->n = d->n;
	for (size_t i = 0; i < d->n && i < 8; i++) {
		snprintf(f->rcpts[i], sizeof(f->rcpts[i]), "%s", d->rcpts[i]);
		snprintf(f->originals[i], sizeof(f->originals[i]), "%s", d->originals[i]);
	}
	f->done = done;
	f->arg = arg;
	return 0;
}

struct got {
	int calls;
	size_t n;
	enum queue_outcome outcome[8];
	char last[8][128];
};

static void got_done(void *arg, const struct queue_result *res, size_t n)
{
	struct got *g = arg;
	g->calls++;
	g->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		g->outcome[i] = res[i].outcome;
		snprintf(g->last[i], sizeof(g->last[i]), "%s", res[i].last ? res[i].last : "");
	}
}

static bool this_host(void *arg, const char *addr, char *name, size_t namelen)
{
	const char *at = strrchr(addr, '@');
	if (!at || (strcasecmp(at + 1, "localhost") && strcasecmp(at + 1, "vm.example")))
		return false;
	snprintf(name, namelen, "%.*s", (int)(at - addr), addr);
	for (char *c = name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return true;
}

struct fixture {
	struct event_base *base;
	struct msg_aliases aliases;
	struct fake local, remote;
	struct queue_split s;
	struct queue_deliverer dl;
};

static void fixture_init(struct fixture *fx, const char *aliases)
{
	memset(fx, 0, sizeof(*fx));
	fx->base = event_base_new();
	assert_non_null(fx->base);
	char err[256];
	assert_int_equal(msg_aliases_parse(aliases, strlen(aliases), &fx->aliases, NULL, NULL, err,
	                                   sizeof(err)),
	                 0);
	fx->s = (struct queue_split){ .base = fx->base,
		                      .local = { fake_submit, &fx->local },
		                      .remote = { fake_submit, &fx->remote },
		                      .aliases = &fx->aliases,
		                      .is_local = this_host };
	queue_split_deliverer(&fx->s, &fx->dl);
}

static void fixture_free(struct fixture *fx)
{
	msg_aliases_free(&fx->aliases);
	event_base_free(fx->base);
}

static void test_is_local(void **state)
{
	struct fixture fx;
	fixture_init(&fx, "");
	char name[64];
	assert_true(queue_split_is_local(&fx.s, "Root", name, sizeof(name)));
	assert_string_equal(name, "root");
	assert_true(queue_split_is_local(&fx.s, "root@LOCALHOST", name, sizeof(name)));
	assert_string_equal(name, "root");
	assert_true(queue_split_is_local(&fx.s, "alice@vm.example", name, sizeof(name)));
	assert_false(queue_split_is_local(&fx.s, "alice@example.org", name, sizeof(name)));
	assert_false(queue_split_is_local(&fx.s, "alice@[127.0.0.1]", name, sizeof(name)));
	assert_false(queue_split_is_local(&fx.s, "", name, sizeof(name)));
	fx.s.is_local = NULL;
	assert_false(queue_split_is_local(&fx.s, "root@localhost", name, sizeof(name)));
	fixture_free(&fx);
}

static void test_split_and_merge(void **state)
{
	struct fixture fx;
	fixture_init(&fx, "root: alice, bob@[127.0.0.2]\nloop: l2\nl2: loop@localhost\n");
	const char *rcpts[] = { "root", "x@example.org", "Carol@vm.example", "loop" };
	const char *originals[] = { "root", "X@example.org", "Carol@vm.example", "loop" };
	struct queue_delivery d = { .id = "id", .sender = "s@example.org", .data = "x", .len = 1,
		                    .rcpts = rcpts, .originals = originals, .n = 4 };
	struct got g = { 0 };
	char why[256];
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	assert_int_equal(g.calls, 0);   /* never from inside submit */
	assert_int_equal(fx.local.calls, 1);
	assert_int_equal(fx.local.n, 2);
	assert_string_equal(fx.local.rcpts[0], "alice");
	assert_string_equal(fx.local.originals[0], "root");
	assert_string_equal(fx.local.rcpts[1], "carol");
	assert_int_equal(fx.remote.calls, 1);
	assert_int_equal(fx.remote.n, 2);
	assert_string_equal(fx.remote.rcpts[0], "bob@[127.0.0.2]");
	assert_string_equal(fx.remote.originals[0], "root");
	assert_string_equal(fx.remote.rcpts[1], "x@example.org");
	assert_string_equal(fx.remote.originals[1], "X@example.org");

	struct queue_result lres[] = { { QUEUE_OUTCOME_DELIVERED, "maildir alice" },
		                       { QUEUE_OUTCOME_DELIVERED, "maildir carol" } };
	fx.local.done(fx.local.arg, lres, 2);
	assert_int_equal(g.calls, 0);   /* the remote part is still out */
	struct queue_result rres[] = { { QUEUE_OUTCOME_TEMPORARY, "451 4.7.1 greylisted" },
		                       { QUEUE_OUTCOME_PERMANENT, "550 5.1.1 no such user" } };
	fx.remote.done(fx.remote.arg, rres, 2);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.n, 4);
	/* root: alice delivered, bob greylisted: tried again as a whole. */
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_TEMPORARY);
	assert_string_equal(g.last[0], "451 4.7.1 greylisted");
	assert_int_equal(g.outcome[1], QUEUE_OUTCOME_PERMANENT);
	assert_int_equal(g.outcome[2], QUEUE_OUTCOME_DELIVERED);
	assert_string_equal(g.last[2], "maildir carol");
	assert_int_equal(g.outcome[3], QUEUE_OUTCOME_PERMANENT);
	assert_string_equal(g.last[3], "alias loop: loop -> l2 -> loop");
	fixture_free(&fx);
}

static void test_nothing_submitted(void **state)
{
	struct fixture fx;
	fixture_init(&fx, "loop: loop2\nloop2: loop\n");
	fx.local.fail = 1;
	const char *rcpts[] = { "loop", "root@localhost" };
	struct queue_delivery d = { .id = "id", .sender = "", .data = "x", .len = 1,
		                    .rcpts = rcpts, .originals = rcpts, .n = 2 };
	struct got g = { 0 };
	char why[256];
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	assert_int_equal(fx.local.calls, 1);
	assert_int_equal(fx.remote.calls, 0);
	assert_int_equal(g.calls, 0);
	event_base_loop(fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_PERMANENT);
	assert_non_null(strstr(g.last[0], "alias loop"));
	/* The local deliverer refused: a temporary failure with its reason. */
	assert_int_equal(g.outcome[1], QUEUE_OUTCOME_TEMPORARY);
	assert_string_equal(g.last[1], "local delivery needs root");
	fixture_free(&fx);
}

/* What the forward callback was given. */
struct forwards {
	int calls;
	int fail;
	size_t n;
	char rcpts[8][64];
	char originals[8][64];
	char data[512];
};

static int fake_forward(void *ctx, const struct queue_delivery *d, const char *const *rcpts,
                        const char *const *originals, size_t n, char *id, size_t idlen,
                        char *why, size_t whylen)
{
	struct forwards *f = ctx;
	f->calls++;
	if (f->fail) {
		snprintf(why, whylen, "spool full");
		return -1;
	}
	f->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		snprintf(f->rcpts[i], sizeof(f->rcpts[i]), "%s", rcpts[i]);
		snprintf(f->originals[i], sizeof(f->originals[i]), "%s", originals[i]);
	}
	snprintf(f->data, sizeof(f->data), "%.*s", (int)d->len, d->data);
	snprintf(id, idlen, "FWD%d", f->calls);
	return 0;
}

/* With a forward callback, an alias's remote targets become a new entry
 * once its local targets are delivered: a later failure of the forward
 * is that entry's, and never a second copy for the local ones. */
static void test_forward_after_local(void **state)
{
	struct fixture fx;
	fixture_init(&fx, "root: alice, bob@[127.0.0.2]\nops: carol, dan@example.org\n");
	struct forwards fw = { 0 };
	fx.s.forward = fake_forward;
	fx.s.forward_ctx = &fw;
	const char *rcpts[] = { "root", "ops", "x@example.org" };
	struct queue_delivery d = { .id = "id", .sender = "s@example.org", .data = "x", .len = 1,
		                    .rcpts = rcpts, .originals = rcpts, .n = 3 };
	struct got g = { 0 };
	char why[256];
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	assert_int_equal(fx.remote.n, 1);   /* only the plain remote recipient */
	assert_string_equal(fx.remote.rcpts[0], "x@example.org");
	assert_int_equal(fx.local.n, 2);
	assert_int_equal(fw.calls, 0);      /* not before the local part is in */
	struct queue_result rres[] = { { QUEUE_OUTCOME_DELIVERED, "250 ok" } };
	fx.remote.done(fx.remote.arg, rres, 1);
	/* alice delivered, carol's Maildir failed: only root's forward goes. */
	struct queue_result lres[] = { { QUEUE_OUTCOME_DELIVERED, "maildir alice" },
		                       { QUEUE_OUTCOME_TEMPORARY, "disk full" } };
	fx.local.done(fx.local.arg, lres, 2);
	assert_int_equal(fw.calls, 1);
	assert_int_equal(fw.n, 1);
	assert_string_equal(fw.rcpts[0], "bob@[127.0.0.2]");
	assert_string_equal(fw.originals[0], "root");
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_DELIVERED);
	assert_int_equal(g.outcome[1], QUEUE_OUTCOME_TEMPORARY);
	assert_string_equal(g.last[1], "disk full");
	assert_int_equal(g.outcome[2], QUEUE_OUTCOME_DELIVERED);

	/* A forward that cannot be queued: the recipient is retried. */
	fw.fail = 1;
	const char *one[] = { "root" };
	d.rcpts = d.originals = one;
	d.n = 1;
	memset(&g, 0, sizeof(g));
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	struct queue_result ok1[] = { { QUEUE_OUTCOME_DELIVERED, "maildir alice" } };
	fx.local.done(fx.local.arg, ok1, 1);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_TEMPORARY);
	assert_string_equal(g.last[0], "spool full");
	fixture_free(&fx);
}

/* Forwarding loops (msg/loop.h): a forward carries Delivered-To for the
 * name it goes out for; a message that comes back with it for a local
 * name, or one of its local targets, fails with 5.4.6; too many
 * Received: fields fail every recipient, remote ones too. */
static void test_forwarding_loop(void **state)
{
	struct fixture fx;
	fixture_init(&fx, "root: alice, bob@[127.0.0.2]\nops: carol\n");
	struct forwards fw = { 0 };
	fx.s.forward = fake_forward;
	fx.s.forward_ctx = &fw;
	fx.s.host = "vm.example";
	const char *one[] = { "root" };
	const char *msg = "Subject: x\r\n\r\nbody\r\n";
	struct queue_delivery d = { .id = "id", .sender = "s@example.org", .data = msg,
		                    .len = strlen(msg), .rcpts = one, .originals = one, .n = 1 };
	struct got g = { 0 };
	char why[256];
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	struct queue_result ok1[] = { { QUEUE_OUTCOME_DELIVERED, "maildir alice" } };
	fx.local.done(fx.local.arg, ok1, 1);
	assert_int_equal(fw.calls, 1);
	assert_string_equal(fw.data, "Delivered-To: root@vm.example\r\nSubject: x\r\n\r\nbody\r\n");
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_DELIVERED);

	/* It comes back (a host that forwards it to us again): refused,
	 * neither delivered to alice nor forwarded again. */
	d.data = fw.data;
	d.len = strlen(fw.data);
	memset(&g, 0, sizeof(g));
	int local_calls = fx.local.calls;
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	event_base_loop(fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_PERMANENT);
	assert_non_null(strstr(g.last[0], "5.4.6 mail forwarding loop for root@vm.example"));
	assert_int_equal(fx.local.calls, local_calls);
	assert_int_equal(fw.calls, 1);

	/* A local target already delivered to: ops -> carol, and the message
	 * has Delivered-To: carol@vm.example. */
	const char *ops[] = { "ops" };
	const char *back = "Delivered-To: CAROL@vm.example\r\nSubject: x\r\n\r\n";
	d = (struct queue_delivery){ .id = "id", .sender = "s@example.org", .data = back,
		                     .len = strlen(back), .rcpts = ops, .originals = ops, .n = 1 };
	memset(&g, 0, sizeof(g));
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	event_base_loop(fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_PERMANENT);
	assert_non_null(strstr(g.last[0], "loop for carol@vm.example"));
	assert_int_equal(fx.local.calls, local_calls);

	/* 101 Received: fields: every recipient, remote ones too. */
	char many[101 * 16 + 32];
	size_t used = 0;
	for (int i = 0; i < 101; i++)
		used += (size_t)snprintf(many + used, sizeof(many) - used, "Received: x\r\n");
	snprintf(many + used, sizeof(many) - used, "\r\nbody\r\n");
	const char *two[] = { "x@example.org", "root" };
	d = (struct queue_delivery){ .id = "id", .sender = "s@example.org", .data = many,
		                     .len = strlen(many), .rcpts = two, .originals = two, .n = 2 };
	memset(&g, 0, sizeof(g));
	int remote_calls = fx.remote.calls;
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	event_base_loop(fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_PERMANENT);
	assert_int_equal(g.outcome[1], QUEUE_OUTCOME_PERMANENT);
	assert_non_null(strstr(g.last[0], "554 5.4.6"));
	assert_int_equal(fx.remote.calls, remote_calls);
	/* 100 are fine. */
	many[0] = 'X';   /* X-eceived: one fewer */
	memset(&g, 0, sizeof(g));
	assert_int_equal(fx.dl.submit(fx.dl.ctx, &d, got_done, &g, why, sizeof(why)), 0);
	assert_int_equal(fx.remote.calls, remote_calls + 1);
	struct queue_result r1[] = { { QUEUE_OUTCOME_DELIVERED, "250 ok" } };
	fx.remote.done(fx.remote.arg, r1, 1);
	fx.local.done(fx.local.arg, ok1, 1);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.outcome[0], QUEUE_OUTCOME_DELIVERED);
	fixture_free(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_local),
		cmocka_unit_test(test_split_and_merge),
		cmocka_unit_test(test_nothing_submitted),
		cmocka_unit_test(test_forward_after_local),
		cmocka_unit_test(test_forwarding_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
