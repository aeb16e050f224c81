/* Unit tests for the aliases file (src/msg/aliases.c): the /etc/aliases
 * format (comments, continuation lines, quoted targets, case), what is
 * left out with a warning (pipes, files, :include:, lines without a
 * colon, names given twice), what refuses the whole file (NUL, limits),
 * and expansion: nesting, self-reference, "\name", local domains through
 * the callback, duplicates, loops and depth.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the table's files as
 * seeds for tests/fuzz/fuzz_msg_aliases.c (selector octet 0: the harness
 * reads the rest as the file and expands "root"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/aliases.h"
#include "testutil.h"
#include "util/limits.h"

struct warnings {
	size_t n;
	size_t line[16];
	char why[16][128];
};

static void collect(void *arg, size_t line, const char *why)
{
	struct warnings *w = arg;
	if (w->n < 16) {
		w->line[w->n] = line;
		snprintf(w->why[w->n], sizeof(w->why[0]), "%s", why);
	}
	w->n++;
}

static const char *seeds[] = {
	"root: alice, bob@example.org\n",
	"# comment\npostmaster: root\nroot: alice,\n  carol\n\tdave\n",
	"root: \"|/usr/bin/procmail\", /var/log/mail, :include:/etc/list, alice\n",
	"a: b\nb: a\nroot: a\n",
	"root: root, alice\nalice: \\alice, x@localhost\n",
	"nocolon line\n  stray continuation\nRoot: Alice\nroot: other\n",
	"\"quoted\": x\nroot: \"a, b\"@example.org\r\n",
};

static void test_format(void **state)
{
	struct msg_aliases a;
	struct warnings w = { 0 };
	char err[256];
	const char *text = "# the admins\n"
	                   "Root: alice, Bob@Example.ORG\n"
	                   "\n"
	                   "team: alice,\n"
	                   "    carol\n"
	                   "\t, dave\n"
	                   "# a comment between does not end the entry\n"
	                   "  ,erin\n"
	                   "quoted: \"alice, the first\"@example.org, x\r\n";
	assert_int_equal(msg_aliases_parse(text, strlen(text), &a, collect, &w, err, sizeof(err)), 0);
	assert_int_equal(w.n, 0);
	assert_int_equal(a.n, 3);
	const struct msg_alias *root = msg_aliases_find(&a, "ROOT");
	assert_non_null(root);
	assert_string_equal(root->name, "root");
	assert_int_equal(root->line, 2);
	assert_int_equal(root->ntargets, 2);
	assert_string_equal(root->targets[0], "alice");
	assert_string_equal(root->targets[1], "Bob@Example.ORG");
	const struct msg_alias *team = msg_aliases_find(&a, "team");
	assert_non_null(team);
	assert_int_equal(team->ntargets, 4);
	assert_string_equal(team->targets[1], "carol");
	assert_string_equal(team->targets[3], "erin");
	const struct msg_alias *q = msg_aliases_find(&a, "quoted");
	assert_int_equal(q->ntargets, 2);
	assert_string_equal(q->targets[0], "alice, the first");
	assert_string_equal(q->targets[1], "x");
	assert_null(msg_aliases_find(&a, "alice"));
	msg_aliases_free(&a);
}

static void test_left_out(void **state)
{
	struct msg_aliases a;
	struct warnings w = { 0 };
	char err[256];
	const char *text = "root: \"|/usr/bin/procmail -a\", /var/log/mail, :include:/etc/l, alice\n"
	                   "nocolon\n"
	                   "  stray\n"
	                   "pipe: |cat\n"
	                   "root: other\n"
	                   "we ird: x\n"
	                   "ctl: a\x01" "b\n";
	assert_int_equal(msg_aliases_parse(text, strlen(text), &a, collect, &w, err, sizeof(err)), 0);
	/* root's three unsupported targets, nocolon, stray is a continuation
	 * of the refused nocolon line (joined, refused once), pipe's only
	 * target and then pipe itself, root again, the space, the control. */
	const struct msg_alias *root = msg_aliases_find(&a, "root");
	assert_non_null(root);
	assert_int_equal(root->ntargets, 1);
	assert_string_equal(root->targets[0], "alice");
	assert_null(msg_aliases_find(&a, "pipe"));
	assert_null(msg_aliases_find(&a, "ctl"));
	assert_int_equal(a.n, 1);
	assert_true(w.n >= 8);
	assert_non_null(strstr(w.why[0], "pipe"));
	assert_non_null(strstr(w.why[1], "file"));
	assert_non_null(strstr(w.why[2], ":include:"));
	assert_int_equal(w.line[3], 2);
	bool again = false;
	for (size_t i = 0; i < w.n && i < 16; i++)
		again = again || (w.line[i] == 5 && strstr(w.why[i], "first entry"));
	assert_true(again);
	msg_aliases_free(&a);
}

static void test_refused(void **state)
{
	struct msg_aliases a;
	char err[256];
	const char nul[] = "root: a\nx: b\0c\n";
	assert_int_equal(msg_aliases_parse(nul, sizeof(nul) - 1, &a, NULL, NULL, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "line 2"));
	msg_aliases_free(&a);

	size_t big = ALIASES_LINE_MAX + 16;
	char *long_line = malloc(big);
	assert_non_null(long_line);
	memcpy(long_line, "root: ", 6);
	memset(long_line + 6, 'a', big - 6);
	assert_int_equal(msg_aliases_parse(long_line, big, &a, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer"));
	msg_aliases_free(&a);
	/* The same length reached through continuation lines. */
	for (size_t i = 100; i < big; i += 100)
		long_line[i] = '\n', long_line[i + 1] = ' ';
	assert_int_equal(msg_aliases_parse(long_line, big, &a, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer"));
	msg_aliases_free(&a);
	free(long_line);

	/* Too many entries. */
	size_t cap = (ALIASES_ENTRIES_MAX + 1) * 16, len = 0;
	char *many = malloc(cap);
	assert_non_null(many);
	for (int i = 0; i <= ALIASES_ENTRIES_MAX; i++)
		len += (size_t)snprintf(many + len, cap - len, "n%d: x\n", i);
	assert_int_equal(msg_aliases_parse(many, len, &a, NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "entries"));
	msg_aliases_free(&a);
	free(many);
}

/* localhost and "host.example" are this host in these tests. */
static bool local_domain(void *arg, const char *addr, char *name, size_t namelen)
{
	const char *at = strrchr(addr, '@');
	if (!at || (strcasecmp(at + 1, "localhost") && strcasecmp(at + 1, "host.example")))
		return false;
	snprintf(name, namelen, "%.*s", (int)(at - addr), addr);
	for (char *c = name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return true;
}

static void parse_ok(const char *text, struct msg_aliases *a)
{
	char err[256];
	assert_int_equal(msg_aliases_parse(text, strlen(text), a, NULL, NULL, err, sizeof(err)), 0);
}

static void expect(const struct msg_aliases_result *r, const char *const *want, size_t n)
{
	assert_int_equal(r->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(r->addrs[i], want[i]);
}

static void test_expand(void **state)
{
	struct msg_aliases a;
	struct msg_aliases_result r;
	bool oom;
	char why[256];
	parse_ok("root: admins, root\n"
	         "admins: alice, bob@[127.0.0.2], Carol@LocalHost\n"
	         "carol: \\carol, carol@example.org\n"
	         "postmaster: root@host.example, alice\n"
	         "mailer-daemon: postmaster\n",
	         &a);
	assert_int_equal(msg_aliases_expand(&a, "root", local_domain, NULL, &r, &oom, why,
	                                    sizeof(why)),
	                 0);
	const char *want[] = { "alice", "bob@[127.0.0.2]", "carol", "carol@example.org", "root" };
	expect(&r, want, 5);
	msg_aliases_result_free(&r);
	/* Reached twice by different ways (alice): once, and no loop. */
	assert_int_equal(msg_aliases_expand(&a, "mailer-daemon", local_domain, NULL, &r, &oom, why,
	                                    sizeof(why)),
	                 0);
	expect(&r, want, 5);
	msg_aliases_result_free(&r);
	/* A name without an entry is its own mailbox. */
	assert_int_equal(msg_aliases_expand(&a, "dave", local_domain, NULL, &r, &oom, why,
	                                    sizeof(why)),
	                 0);
	const char *dave[] = { "dave" };
	expect(&r, dave, 1);
	msg_aliases_result_free(&r);
	msg_aliases_free(&a);
}

static void test_loops(void **state)
{
	struct msg_aliases a;
	struct msg_aliases_result r;
	bool oom = true;
	char why[256];
	parse_ok("root: a\na: b\nb: root@localhost\n", &a);
	assert_int_equal(msg_aliases_expand(&a, "root", local_domain, NULL, &r, &oom, why,
	                                    sizeof(why)),
	                 -1);
	assert_false(oom);
	assert_string_equal(why, "alias loop: root -> a -> b -> root");
	assert_null(r.addrs);
	msg_aliases_free(&a);

	/* Deeper than the limit, without a loop. */
	char text[4096];
	size_t len = 0;
	for (int i = 0; i <= ALIASES_DEPTH_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "n%d: n%d\n", i, i + 1);
	parse_ok(text, &a);
	assert_int_equal(msg_aliases_expand(&a, "n0", NULL, NULL, &r, &oom, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "deeper"));
	msg_aliases_free(&a);
	/* Exactly at the limit: fine. */
	len = 0;
	for (int i = 0; i < ALIASES_DEPTH_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "n%d: n%d\n", i, i + 1);
	parse_ok(text, &a);
	assert_int_equal(msg_aliases_expand(&a, "n0", NULL, NULL, &r, &oom, why, sizeof(why)), 0);
	char last[16];
	snprintf(last, sizeof(last), "n%d", ALIASES_DEPTH_MAX);
	const char *want[] = { last };
	expect(&r, want, 1);
	msg_aliases_result_free(&r);
	msg_aliases_free(&a);
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		if (test_seed_write(dir, "aliases", i, "table", 0, seeds[i], strlen(seeds[i])) != 0)
			return -1;
	return 0;
}

static void test_seeds_parse(void **state)
{
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct msg_aliases a;
		char err[256];
		assert_int_equal(
			msg_aliases_parse(seeds[i], strlen(seeds[i]), &a, NULL, NULL, err, sizeof(err)), 0);
		msg_aliases_free(&a);
	}
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_left_out),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_seeds_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
