/* The spool on a temporary directory: enqueue / list / lock / load /
 * update / remove, two lockers, damaged files set aside, failures that
 * leave nothing half-written, and the cleanup of tmp/ and orphans by age.
 * (A real full disk, ENOSPC, is tests/integration/test_queue_spool.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/id.h"

static const char message[] =
	"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n";

struct fixture {
	char dir[64];
	struct queue_spool *sp;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/rawmail-spool-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	char sub[128], why[512];
	snprintf(sub, sizeof(sub), "%s/q", f->dir);
	if (queue_spool_open(sub, QUEUE_SPOOL_CREATE, &f->sp, why, sizeof(why)) != QUEUE_OK) {
		fprintf(stderr, "%s\n", why);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	queue_spool_close(f->sp);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* The names in DIR/q/SUB, sorted, joined by spaces. */
static void names_in(const struct fixture *f, const char *sub, char *out, size_t outlen)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/q/%s", f->dir, sub);
	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	assert_true(n >= 0);
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.')
			o += (size_t)snprintf(out + o, outlen - o, "%s%s", o ? " " : "", list[i]->d_name);
		free(list[i]);
	}
	free(list);
}

static void path_of(const struct fixture *f, char *out, size_t len, const char *sub,
                    const char *name)
{
	snprintf(out, len, "%s/q/%s/%s", f->dir, sub, name);
}

static void make_envelope(struct queue_envelope *env, const char *sender)
{
	memset(env, 0, sizeof(*env));
	env->created = 1700000000;
	env->origin = QUEUE_ORIGIN_SENDMAIL;
	assert_int_equal(queue_envelope_set_sender(env, sender), 0);
	assert_int_equal(queue_envelope_add_rcpt(env, "b@example.net", NULL), 0);
	assert_int_equal(queue_envelope_add_rcpt(env, "c@[192.0.2.1]", "C@[192.0.2.1]"), 0);
}

static void enqueue(struct fixture *f, const char *sender, char *id)
{
	struct queue_envelope env;
	char why[512];
	make_envelope(&env, sender);
	if (queue_spool_enqueue(f->sp, &env, message, sizeof(message) - 1, why, sizeof(why)) !=
	    QUEUE_OK)
		fail_msg("enqueue: %s", why);
	memcpy(id, env.id, sizeof(env.id));
	queue_envelope_free(&env);
}

static void test_open(void **state)
{
	struct fixture *f = *state;
	char path[128], why[512];
	static const char *const subs[] = { "tmp", "msg", "env", "corrupt" };
	for (size_t i = 0; i < 4; i++) {
		struct stat st;
		path_of(f, path, sizeof(path), subs[i], "");
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	/* Without CREATE a missing spool is refused, permanently, by name. */
	struct queue_spool *sp;
	snprintf(path, sizeof(path), "%s/none", f->dir);
	assert_int_equal(queue_spool_open(path, 0, &sp, why, sizeof(why)), QUEUE_PERM);
	assert_null(sp);
	assert_non_null(strstr(why, "/none: cannot open it: No such file"));
	/* A directory that is not a spool (no env/). */
	snprintf(path, sizeof(path), "%s/q/msg", f->dir);
	assert_int_equal(queue_spool_open(path, 0, &sp, why, sizeof(why)), QUEUE_PERM);
	assert_non_null(strstr(why, "tmp/: No such file or directory (not a spool"));
	/* An existing spool opens again, with or without CREATE. */
	snprintf(path, sizeof(path), "%s/q", f->dir);
	assert_int_equal(queue_spool_open(path, 0, &sp, why, sizeof(why)), QUEUE_OK);
	queue_spool_close(sp);
	assert_int_equal(queue_spool_open(path, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why)), QUEUE_OK);
	queue_spool_close(sp);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	char why[512], names[512], id[QUEUE_ID_MAX + 1];
	enqueue(f, "", id);
	assert_int_equal(strlen(id), ID_LEN);
	names_in(f, "msg", names, sizeof(names));
	assert_string_equal(names, id);
	names_in(f, "env", names, sizeof(names));
	assert_string_equal(names, id);
	names_in(f, "tmp", names, sizeof(names));
	assert_string_equal(names, "");

	/* Listed, with the envelope as written. */
	struct queue_spool_list *l;
	struct queue_envelope env, want;
	const char *lid;
	assert_int_equal(queue_spool_list_open(f->sp, &l, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_list_count(l), 1);
	assert_int_equal(queue_spool_list_next(l, &env, &lid, why, sizeof(why)), 1);
	assert_string_equal(lid, id);
	make_envelope(&want, "");
	memcpy(want.id, id, sizeof(want.id));
	want.size = sizeof(message) - 1;
	/* SHA-256 of the message, from an independent source (sha256sum). */
	static const uint8_t digest[32] = {
		0xc1, 0xe4, 0xb7, 0xe2, 0xb4, 0x57, 0x48, 0xf9, 0x8c, 0x73, 0x39, 0xf7, 0x95, 0xfe, 0x0b, 0x7e,
		0xa8, 0xdf, 0x16, 0x83, 0x54, 0x63, 0x24, 0x06, 0xbf, 0x66, 0xfa, 0x20, 0x94, 0xe6, 0x3d, 0xaf,
	};
	memcpy(want.sha256, digest, sizeof(want.sha256));
	assert_true(queue_envelope_equal(&env, &want));
	queue_envelope_free(&env);
	assert_int_equal(queue_spool_list_next(l, &env, &lid, why, sizeof(why)), 0);
	queue_spool_list_close(l);

	/* Locked, loaded with its bytes, updated, loaded again. */
	struct queue_lock lk;
	struct buf msg;
	buf_init(&msg, 1 << 20);
	assert_int_equal(queue_spool_lock(f->sp, id, &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_load(f->sp, &lk, &env, &msg, why, sizeof(why)), QUEUE_OK);
	assert_true(queue_envelope_equal(&env, &want));
	assert_int_equal(msg.len, sizeof(message) - 1);
	assert_memory_equal(msg.data, message, msg.len);
	env.rcpts[0].state = QUEUE_RCPT_DELIVERED;
	env.rcpts[0].attempts = 1;
	env.rcpts[0].last_attempt = 1700000005;
	assert_int_equal(queue_rcpt_set_last(&env.rcpts[0], "250 2.0.0 ok"), 0);
	env.rcpts[1].attempts = 1;
	env.rcpts[1].next = 1700000305;
	assert_int_equal(queue_rcpt_set_last(&env.rcpts[1], "451-4.7.1 greylisted\n451 4.7.1 later"),
	                 0);
	assert_int_equal(queue_spool_update(f->sp, &env, why, sizeof(why)), QUEUE_OK);
	struct queue_envelope again;
	assert_int_equal(queue_spool_load(f->sp, &lk, &again, NULL, why, sizeof(why)), QUEUE_OK);
	assert_true(queue_envelope_equal(&env, &again));
	names_in(f, "tmp", names, sizeof(names));
	assert_string_equal(names, "");
	queue_envelope_free(&again);
	queue_envelope_free(&env);

	/* Removed: gone from the list, and from the disk.  The message file
	 * goes once the removal is synced (grouped: spool.c), never before
	 * the envelope; the entry is gone at once. */
	assert_int_equal(queue_spool_remove(f->sp, id, why, sizeof(why)), QUEUE_OK);
	queue_spool_unlock(&lk);
	names_in(f, "env", names, sizeof(names));
	assert_string_equal(names, "");
	assert_int_equal(queue_spool_sync_pending(f->sp, why, sizeof(why)), QUEUE_OK);
	names_in(f, "msg", names, sizeof(names));
	assert_string_equal(names, "");
	names_in(f, "env", names, sizeof(names));
	assert_string_equal(names, "");
	assert_int_equal(queue_spool_lock(f->sp, id, &lk, why, sizeof(why)), QUEUE_GONE);
	assert_int_equal(queue_spool_remove(f->sp, id, why, sizeof(why)), QUEUE_GONE);
	assert_int_equal(queue_spool_list_open(f->sp, &l, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_list_next(l, &env, &lid, why, sizeof(why)), 0);
	queue_spool_list_close(l);
	/* Ids from outside never reach a path. */
	assert_int_equal(queue_spool_lock(f->sp, "../env/x", &lk, why, sizeof(why)), QUEUE_GONE);
	queue_envelope_free(&env);
	queue_envelope_free(&want);
	buf_free(&msg);
}

static size_t count_in(const struct fixture *f, const char *sub)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/q/%s", f->dir, sub);
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Removals are synced in groups (spool.c): a message file stays until the
 * sync that makes its envelope's unlink durable, which comes after
 * QUEUE_REMOVE_PENDING_MAX removals, or at close; the entries are gone at
 * once all the same. */
/* Closes the spool (which syncs its pending removals and unlinks their
 * msg/ files: none is left) and opens it again for the teardown. */
static void close_reopen_empty(struct fixture *f)
{
	char sub[128], why[512];
	queue_spool_close(f->sp);
	f->sp = NULL;
	assert_int_equal(count_in(f, "msg"), 0);
	snprintf(sub, sizeof(sub), "%s/q", f->dir);
	assert_int_equal(queue_spool_open(sub, 0, &f->sp, why, sizeof(why)), QUEUE_OK);
}

static void test_remove_group(void **state)
{
	struct fixture *f = *state;
	enum { N = QUEUE_REMOVE_PENDING_MAX + 10 };
	static char ids[N][QUEUE_ID_MAX + 1];
	char why[512];
	for (int i = 0; i < N; i++)
		enqueue(f, "a@example.org", ids[i]);
	for (int i = 0; i < N; i++) {
		struct queue_lock lk;
		assert_int_equal(queue_spool_lock(f->sp, ids[i], &lk, why, sizeof(why)), QUEUE_OK);
		assert_int_equal(queue_spool_remove(f->sp, ids[i], why, sizeof(why)), QUEUE_OK);
		queue_spool_unlock(&lk);
	}
	assert_int_equal(count_in(f, "env"), 0);
	/* The first QUEUE_REMOVE_PENDING_MAX went with their group's sync (or
	 * sooner, on a slow machine: the group's age); never more than the
	 * rest are left. */
	assert_true(count_in(f, "msg") <= N - QUEUE_REMOVE_PENDING_MAX);
	/* A runner that listed it before: its message file may still be
	 * there, the entry is not. */
	struct queue_lock lk;
	struct queue_envelope env;
	assert_int_equal(queue_spool_lock(f->sp, ids[N - 1], &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_load(f->sp, &lk, &env, NULL, why, sizeof(why)), QUEUE_GONE);
	queue_spool_unlock(&lk);
	close_reopen_empty(f);
}

static void test_list_order(void **state)
{
	struct fixture *f = *state;
	char ids[5][QUEUE_ID_MAX + 1], why[512];
	for (int i = 0; i < 5; i++)
		enqueue(f, "a@example.org", ids[i]);
	/* Stray files in env/ are not entries. */
	char path[128];
	path_of(f, path, sizeof(path), "env", ".hidden");
	FILE *fp = fopen(path, "w");
	fclose(fp);
	struct queue_spool_list *l;
	struct queue_envelope env;
	const char *id;
	assert_int_equal(queue_spool_list_open(f->sp, &l, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_list_count(l), 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(queue_spool_list_next(l, &env, &id, why, sizeof(why)), 1);
		assert_string_equal(id, ids[i]);   /* queueing order */
		queue_envelope_free(&env);
	}
	assert_int_equal(queue_spool_list_next(l, &env, &id, why, sizeof(why)), 0);
	queue_spool_list_close(l);
}

static void test_two_lockers(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX + 1], why[512];
	enqueue(f, "a@example.org", id);
	int ready[2], done[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct queue_lock lk;
		char c = queue_spool_lock(f->sp, id, &lk, why, sizeof(why)) == QUEUE_OK ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(2);
		_exit(0);   /* the lock goes with the process */
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	struct queue_lock lk;
	assert_int_equal(queue_spool_lock(f->sp, id, &lk, why, sizeof(why)), QUEUE_BUSY);
	assert_non_null(strstr(why, "another runner has it"));
	assert_int_equal(lk.fd, -1);
	/* The holder may rewrite env/ID: the lock is on msg/ID. */
	assert_int_equal(write(done[1], "x", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(queue_spool_lock(f->sp, id, &lk, why, sizeof(why)), QUEUE_OK);
	/* A second lock in this process (another open file) is refused too. */
	struct queue_lock lk2;
	assert_int_equal(queue_spool_lock(f->sp, id, &lk2, why, sizeof(why)), QUEUE_BUSY);
	queue_spool_unlock(&lk);
	assert_int_equal(queue_spool_lock(f->sp, id, &lk2, why, sizeof(why)), QUEUE_OK);
	queue_spool_unlock(&lk2);
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	close(done[1]);
}

/* Damages one of two entries and loads it: set aside, the other intact. */
static void damage_and_load(struct fixture *f, void (*damage)(struct fixture *, const char *),
                            enum queue_status want, const char *reason, bool env_aside)
{
	char bad[QUEUE_ID_MAX + 1], good[QUEUE_ID_MAX + 1], why[512], names[512], expect[256];
	enqueue(f, "a@example.org", bad);
	enqueue(f, "a@example.org", good);
	damage(f, bad);
	struct queue_lock lk;
	struct queue_envelope env;
	struct buf msg;
	buf_init(&msg, 1 << 20);
	enum queue_status st = queue_spool_lock(f->sp, bad, &lk, why, sizeof(why));
	if (st == QUEUE_OK) {
		st = queue_spool_load(f->sp, &lk, &env, &msg, why, sizeof(why));
		queue_spool_unlock(&lk);
	}
	if (st != want || !strstr(why, reason))
		fail_msg("status %s, reason \"%s\", want \"%s\"", queue_status_name(st), why, reason);
	assert_non_null(strstr(why, bad));
	assert_int_equal(msg.len, 0);   /* nothing of a bad message handed out */
	names_in(f, "corrupt", names, sizeof(names));
	if (env_aside)
		snprintf(expect, sizeof(expect), "%s.env %s.msg", bad, bad);
	else
		snprintf(expect, sizeof(expect), "%s.env", bad);
	assert_string_equal(names, expect);
	names_in(f, "env", names, sizeof(names));
	assert_string_equal(names, good);
	names_in(f, "msg", names, sizeof(names));
	assert_string_equal(names, good);
	assert_int_equal(queue_spool_lock(f->sp, good, &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_load(f->sp, &lk, &env, &msg, why, sizeof(why)), QUEUE_OK);
	assert_memory_equal(msg.data, message, sizeof(message) - 1);
	queue_spool_unlock(&lk);
	queue_envelope_free(&env);
	buf_free(&msg);
}

static void truncate_msg(struct fixture *f, const char *id)
{
	char path[128];
	path_of(f, path, sizeof(path), "msg", id);
	assert_int_equal(truncate(path, 20), 0);
}

static void flip_msg_byte(struct fixture *f, const char *id)
{
	char path[128];
	path_of(f, path, sizeof(path), "msg", id);
	int fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, "X", 1, 30), 1);
	close(fd);
}

static void garbage_env(struct fixture *f, const char *id)
{
	char path[128];
	path_of(f, path, sizeof(path), "env", id);
	FILE *fp = fopen(path, "w");
	fputs("\x7f" "ELF garbage\n", fp);
	fclose(fp);
}

static void cut_env(struct fixture *f, const char *id)
{
	char path[128];
	struct stat st;
	path_of(f, path, sizeof(path), "env", id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void other_id_env(struct fixture *f, const char *id)
{
	/* Another entry's envelope copied over this one's. */
	char from[128], to[128], cmd[300];
	path_of(f, from, sizeof(from), "env", id);
	path_of(f, to, sizeof(to), "env", id);
	snprintf(cmd, sizeof(cmd), "sed -i 's/^id .*/id OTHER/' '%s'", to);
	assert_int_equal(system(cmd), 0);
	(void)from;
}

static void unlink_msg(struct fixture *f, const char *id)
{
	char path[128];
	path_of(f, path, sizeof(path), "msg", id);
	assert_int_equal(unlink(path), 0);
}

static void test_truncated_msg(void **state)
{
	damage_and_load(*state, truncate_msg, QUEUE_CORRUPT, "has 20 octets, its envelope says 67",
	                true);
}

static void test_changed_msg(void **state)
{
	damage_and_load(*state, flip_msg_byte, QUEUE_CORRUPT, "does not match its envelope's SHA-256",
	                true);
}

static void test_garbage_env(void **state)
{
	damage_and_load(*state, garbage_env, QUEUE_CORRUPT, ": line 1: raw byte 0x7f", true);
}

static void test_cut_env(void **state)
{
	damage_and_load(*state, cut_env, QUEUE_CORRUPT, "truncated", true);
}

static void test_other_id_env(void **state)
{
	damage_and_load(*state, other_id_env, QUEUE_CORRUPT, "names another id", true);
}

static void test_env_without_msg(void **state)
{
	damage_and_load(*state, unlink_msg, QUEUE_CORRUPT, "is missing", false);
}

static void test_list_reports_garbage(void **state)
{
	struct fixture *f = *state;
	char a[QUEUE_ID_MAX + 1], b[QUEUE_ID_MAX + 1], why[512];
	enqueue(f, "a@example.org", a);
	enqueue(f, "a@example.org", b);
	garbage_env(f, a);
	struct queue_spool_list *l;
	struct queue_envelope env;
	const char *id;
	assert_int_equal(queue_spool_list_open(f->sp, &l, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_list_next(l, &env, &id, why, sizeof(why)), -1);
	assert_string_equal(id, a);
	assert_non_null(strstr(why, "line 1"));
	assert_int_equal(queue_spool_list_next(l, &env, &id, why, sizeof(why)), 1);
	assert_string_equal(id, b);
	queue_envelope_free(&env);
	assert_int_equal(queue_spool_list_next(l, &env, &id, why, sizeof(why)), 0);
	queue_spool_list_close(l);
}

static void test_created_defaults_to_now(void **state)
{
	struct fixture *f = *state;
	struct queue_envelope env;
	char why[512];
	make_envelope(&env, "a@example.org");
	env.created = 0;
	time_t t0 = time(NULL);
	assert_int_equal(queue_spool_enqueue(f->sp, &env, message, 10, why, sizeof(why)), QUEUE_OK);
	assert_true(env.created >= t0 && env.created <= time(NULL));
	queue_envelope_free(&env);
}

/* Past 512 entries the listing reads ahead in threads: the same order, the
 * same errors, and a listing closed half-way frees what was read ahead. */
static void test_list_many(void **state)
{
	struct fixture *f = *state;
	enum { N = 1500 };
	char why[512], path[128];
	struct queue_spool *bulk;
	snprintf(path, sizeof(path), "%s/q", f->dir);
	assert_int_equal(queue_spool_open(path, QUEUE_SPOOL_NOSYNC, &bulk, why, sizeof(why)),
	                 QUEUE_OK);
	char (*ids)[QUEUE_ID_MAX + 1] = calloc(N, sizeof(*ids));
	for (int i = 0; i < N; i++) {
		struct queue_envelope env;
		make_envelope(&env, "a@example.org");
		env.created = i + 1;
		assert_int_equal(queue_spool_enqueue(bulk, &env, message, 10, why, sizeof(why)),
		                 QUEUE_OK);
		memcpy(ids[i], env.id, sizeof(env.id));
		queue_envelope_free(&env);
	}
	queue_spool_close(bulk);
	garbage_env(f, ids[700]);
	path_of(f, path, sizeof(path), "env", ids[900]);
	assert_int_equal(unlink(path), 0);   /* removed after readdir, as it were */
	for (int pass = 0; pass < 2; pass++) {
		struct queue_spool_list *l;
		struct queue_envelope env;
		const char *id;
		assert_int_equal(queue_spool_list_open(f->sp, &l, why, sizeof(why)), QUEUE_OK);
		assert_int_equal(queue_spool_list_count(l), N - 1);
		int stop = pass == 0 ? N : 100;
		for (int i = 0; i < N && i < stop; i++) {
			if (i == 900)
				continue;
			int rc = queue_spool_list_next(l, &env, &id, why, sizeof(why));
			assert_string_equal(id, ids[i]);
			if (i == 700) {
				assert_int_equal(rc, -1);
				assert_non_null(strstr(why, "line 1: raw byte 0x7f"));
				continue;
			}
			assert_int_equal(rc, 1);
			assert_int_equal(env.created, i + 1);
			queue_envelope_free(&env);
		}
		if (pass == 0)
			assert_int_equal(queue_spool_list_next(l, &env, &id, why, sizeof(why)), 0);
		queue_spool_list_close(l);
	}
	free(ids);
}

static void test_failed_enqueue_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	char why[512], names[512];
	/* An envelope the format refuses (no recipients): permanent. */
	struct queue_envelope env = { 0 };
	assert_int_equal(queue_envelope_set_sender(&env, "a@b"), 0);
	assert_int_equal(queue_spool_enqueue(f->sp, &env, message, 10, why, sizeof(why)), QUEUE_PERM);
	assert_non_null(strstr(why, "no recipients"));
	queue_envelope_free(&env);
	/* A file size limit (EFBIG) at the message, then at the envelope,
	 * in a child so that the limit stays there. */
	for (int at_env = 0; at_env < 2; at_env++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			signal(SIGXFSZ, SIG_IGN);
			struct rlimit r = { at_env ? 100 : 10, at_env ? 100 : 10 };
			setrlimit(RLIMIT_FSIZE, &r);
			struct queue_envelope e;
			make_envelope(&e, "a@example.org");
			enum queue_status st = queue_spool_enqueue(f->sp, &e, message, 20, why,
			                                           sizeof(why));
			fprintf(stderr, "%s: %s\n", queue_status_name(st), why);
			_exit(st == QUEUE_PERM && strstr(why, at_env ? ".env: " : ".msg: ") &&
			      strstr(why, "File too large") ? 0 : 1);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		static const char *const subs[] = { "tmp", "msg", "env", "corrupt" };
		for (size_t i = 0; i < 4; i++) {
			names_in(f, subs[i], names, sizeof(names));
			if (names[0])
				fail_msg("%s/ holds %s", subs[i], names);
		}
	}
}

static void set_age(struct fixture *f, const char *sub, const char *name, time_t age)
{
	char path[128];
	path_of(f, path, sizeof(path), sub, name);
	FILE *fp = fopen(path, "a");
	assert_non_null(fp);
	fclose(fp);
	struct timespec t[2] = { { time(NULL) - age, 0 }, { time(NULL) - age, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void test_cleanup(void **state)
{
	struct fixture *f = *state;
	char live[QUEUE_ID_MAX + 1], why[512], names[1024];
	enqueue(f, "a@example.org", live);
	set_age(f, "msg", live, 3 * 86400);           /* old, but an entry */
	set_age(f, "tmp", "A.msg", 86400 + 60);       /* a dead enqueue */
	set_age(f, "tmp", "B.env.12.0", 86400 + 60);  /* a dead update */
	set_age(f, "tmp", "C.msg", 86400 - 60);       /* maybe still writing */
	set_age(f, "msg", "ORPHANOLD", 3600 + 60);
	set_age(f, "msg", "ORPHANNEW", 3600 - 60);    /* maybe between renames */
	set_age(f, "msg", "ORPHANLOCKED", 7200);
	struct queue_lock lk;
	assert_int_equal(queue_spool_lock(f->sp, "ORPHANLOCKED", &lk, why, sizeof(why)), QUEUE_OK);
	struct queue_cleanup_counts c;
	assert_int_equal(queue_spool_cleanup(f->sp, time(NULL), &c, why, sizeof(why)), QUEUE_OK);
	queue_spool_unlock(&lk);
	assert_int_equal(c.tmp_removed, 2);
	assert_int_equal(c.orphans_removed, 1);
	names_in(f, "tmp", names, sizeof(names));
	assert_string_equal(names, "C.msg");
	names_in(f, "msg", names, sizeof(names));
	char want[256];
	snprintf(want, sizeof(want), "%s ORPHANLOCKED ORPHANNEW", live);
	assert_string_equal(names, want);
}

/* queue_spool_peek (queue show): envelope and header section without the
 * lock, the header's end found in CR LF or LF text, split across reads or
 * not there at all, and damage reported without setting anything aside. */
static void peek_head_of(struct fixture *f, const char *msg, size_t max, const char *want)
{
	struct queue_envelope env;
	char why[512], id[QUEUE_ID_MAX + 1];
	make_envelope(&env, "a@example.org");
	assert_int_equal(queue_spool_enqueue(f->sp, &env, msg, strlen(msg), why, sizeof(why)),
	                 QUEUE_OK);
	memcpy(id, env.id, sizeof(id));
	queue_envelope_free(&env);
	struct buf head;
	buf_init(&head, 1 << 20);
	assert_int_equal(buf_append(&head, "X", 1), 0);   /* appended to, not replaced */
	assert_int_equal(queue_spool_peek(f->sp, id, &env, &head, max, why, sizeof(why)), QUEUE_OK);
	assert_string_equal(env.id, id);
	assert_int_equal(env.nrcpts, 2);
	assert_string_equal(head.data + 1, want);
	assert_int_equal(head.len, strlen(want) + 1);
	queue_envelope_free(&env);
	buf_free(&head);
}

static void test_peek(void **state)
{
	struct fixture *f = *state;
	peek_head_of(f, message, 4096, "From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n");
	peek_head_of(f, "A: 1\nB: 2\n\nbody\n\nmore\n", 4096, "A: 1\nB: 2\n\n");
	peek_head_of(f, "\r\nbody\r\n", 4096, "\r\n");
	peek_head_of(f, "A: 1\r\nno body", 4096, "A: 1\r\nno body");
	peek_head_of(f, "A: 1\r\nB: 2\r\n\r\nbody", 8, "A: 1\r\nB:");
	/* The empty line across the 4096-octet reads. */
	char big[6000];
	memset(big, 'x', sizeof(big));
	memcpy(big, "A: ", 3);
	memcpy(big + 4094, "\r\n\r\nbody", 9);
	char want[4099];
	memcpy(want, big, 4098);
	want[4098] = '\0';
	peek_head_of(f, big, 1 << 16, want);

	char id[QUEUE_ID_MAX + 1], why[512], path[256], names[512];
	struct queue_envelope env;
	assert_int_equal(queue_spool_peek(f->sp, "0000000000000000000000", &env, NULL, 0, why,
	                                  sizeof(why)),
	                 QUEUE_GONE);
	assert_int_equal(queue_spool_peek(f->sp, "../x", &env, NULL, 0, why, sizeof(why)),
	                 QUEUE_GONE);
	/* A locked entry can be looked at. */
	enqueue(f, "a@example.org", id);
	struct queue_lock lk;
	assert_int_equal(queue_spool_lock(f->sp, id, &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_peek(f->sp, id, &env, NULL, 0, why, sizeof(why)), QUEUE_OK);
	queue_envelope_free(&env);
	queue_spool_unlock(&lk);
	/* Damage is said, and left where it is for a runner. */
	path_of(f, path, sizeof(path), "env", id);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("rawmail-queue 1\nid x\n", fp);
	fclose(fp);
	assert_int_equal(queue_spool_peek(f->sp, id, &env, NULL, 0, why, sizeof(why)),
	                 QUEUE_CORRUPT);
	assert_non_null(strstr(why, ": line "));
	names_in(f, "corrupt", names, sizeof(names));
	assert_string_equal(names, "");
}

/* queue_spool_lazy_removals (rawmail send's handle): a removal unlinks
 * both files at once, where an ordinary one keeps msg/ID until its
 * group's sync; an update still syncs as before. */
static void test_lazy_removals(void **state)
{
	struct fixture *f = *state;
	char a[QUEUE_ID_MAX + 1], b[QUEUE_ID_MAX + 1], why[512];
	struct queue_lock lk;
	enqueue(f, "a@example.org", a);
	enqueue(f, "a@example.org", b);
	assert_int_equal(queue_spool_lock(f->sp, a, &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_remove(f->sp, a, why, sizeof(why)), QUEUE_OK);
	queue_spool_unlock(&lk);
	assert_int_equal(count_in(f, "env"), 1);
	assert_int_equal(count_in(f, "msg"), 2);   /* a's until the group's sync */
	queue_spool_lazy_removals(f->sp);
	assert_int_equal(queue_spool_lock(f->sp, b, &lk, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_remove(f->sp, b, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_remove(f->sp, b, why, sizeof(why)), QUEUE_GONE);
	queue_spool_unlock(&lk);
	assert_int_equal(count_in(f, "env"), 0);
	assert_int_equal(count_in(f, "msg"), 1);   /* b's went at once */
	close_reopen_empty(f);
}

int main(void)
{
	id_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_lockers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_msg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_msg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_id_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_without_msg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_reports_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_created_defaults_to_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_enqueue_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_removals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
