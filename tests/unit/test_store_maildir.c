/* Maildir names (escapes, S= and W=), the errno mapping, and one message's
 * files on a real directory without the event loop: dedupe, streaming, the
 * sizes in the name against the bytes on disk, all-or-none removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/commit.h"
#include "store/maildir.h"
#include "store/message.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/log.h"

static void test_host_escape(void **state)
{
	char out[MAILDIR_HOST_MAX + 1];
	assert_string_equal(maildir_host_escape("mx.example.org", out, sizeof(out)), "mx.example.org");
	assert_string_equal(maildir_host_escape("a/b:c", out, sizeof(out)), "a\\057b\\072c");
	assert_string_equal(maildir_host_escape("::", out, sizeof(out)), "\\072\\072");
	assert_string_equal(maildir_host_escape("", out, sizeof(out)), "");
	/* Cut to fit, never in the middle of an escape. */
	char small[7];
	assert_string_equal(maildir_host_escape("ab/cd", small, sizeof(small)), "ab\\057");
	assert_string_equal(maildir_host_escape("abc/d", small, sizeof(small)), "abc");
	char longhost[200];
	memset(longhost, 'h', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	char big[300];
	assert_int_equal(strlen(maildir_host_escape(longhost, big, sizeof(big))), MAILDIR_HOST_MAX);
}

static void test_name(void **state)
{
	char out[MAILDIR_NAME_MAX + 1];
	struct maildir_unique u = {
		.sec = 1732370000, .usec = 123456, .pid = 4242, .qid = "ABC-1_x", .seq = 0,
		.host = "mx.example.org",
	};
	assert_int_equal(maildir_name(out, sizeof(out), &u, true, 10, 12), 56);
	assert_string_equal(out, "1732370000.M123456P4242QABC-1_x.mx.example.org,S=10,W=12");
	maildir_name(out, sizeof(out), &u, false, 10, 12);
	assert_string_equal(out, "1732370000.M123456P4242QABC-1_x.mx.example.org");
	u.seq = 3;
	u.usec = 7;
	maildir_name(out, sizeof(out), &u, true, 0, 0);
	assert_string_equal(out, "1732370000.M7P4242QABC-1_x_3.mx.example.org,S=0,W=0");
	char tiny[20];
	assert_int_equal(maildir_name(tiny, sizeof(tiny), &u, true, 1, 1), -1);

	/* The longest name the store can make still fits a directory entry. */
	char qid[65], host[MAILDIR_HOST_MAX + 1];
	memset(qid, 'q', 64);
	qid[64] = '\0';
	memset(host, 'h', MAILDIR_HOST_MAX);
	host[MAILDIR_HOST_MAX] = '\0';
	struct maildir_unique worst = {
		.sec = INT64_MAX, .usec = 999999, .pid = 0x7fffffffL, .qid = qid, .seq = UINT32_MAX,
		.host = host,
	};
	assert_true(maildir_name(out, sizeof(out), &worst, true, UINT64_MAX, UINT64_MAX) > 0);
}

static void test_count_lf(void **state)
{
	assert_int_equal(maildir_count_lf("", 0), 0);
	assert_int_equal(maildir_count_lf("a\nb\n\n", 5), 3);
	assert_int_equal(maildir_count_lf("abc", 3), 0);
	assert_int_equal(maildir_count_lf("\n\nx", 1), 1);
}

static void test_errno_result(void **state)
{
	assert_int_equal(maildir_errno_result(ENOSPC), STORE_NOSPACE);
	assert_int_equal(maildir_errno_result(EDQUOT), STORE_NOSPACE);
	assert_int_equal(maildir_errno_result(EIO), STORE_TEMPFAIL);
	assert_int_equal(maildir_errno_result(EACCES), STORE_TEMPFAIL);
	assert_int_equal(maildir_errno_result(EEXIST), STORE_TEMPFAIL);
	assert_int_equal(maildir_errno_result(EMFILE), STORE_TEMPFAIL);
	assert_int_equal(maildir_errno_result(EFBIG), STORE_TEMPFAIL);
}

/* ---- on disk ---- */

struct fixture {
	char root[64];
	struct store_env env;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/rawmail-maildir-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	f->env.rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->env.pid = 4242;
	f->env.sync = STORE_SYNC_SYNCFS;
	maildir_host_escape("host/x:y", f->env.host, sizeof(f->env.host));
	*state = f;
	return f->env.rootfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	close(f->env.rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Names in root/mailbox/dir, sorted; returns how many (at most max). */
static size_t list_dir(const struct fixture *f, const char *mailbox, const char *dir,
                       char names[][MAILDIR_NAME_MAX + 1], size_t max)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", f->root, mailbox, dir);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n < max)
			snprintf(names[n], MAILDIR_NAME_MAX + 1, "%s", e->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n < max ? n : max, MAILDIR_NAME_MAX + 1, (int (*)(const void *, const void *))strcmp);
	return n;
}

static char *read_file(const struct fixture *f, const char *mailbox, const char *dir,
                       const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s/%s", f->root, mailbox, dir, name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	struct buf b;
	buf_init(&b, 64u << 20);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		assert_int_equal(buf_append(&b, chunk, n), 0);
	fclose(fp);
	return buf_release(&b, len);
}

/* Checks ,S= and ,W= in name against the file's bytes. */
static void assert_sizes(const char *name, const char *data, size_t len)
{
	const char *s = strstr(name, ",S=");
	const char *w = strstr(name, ",W=");
	assert_non_null(s);
	assert_non_null(w);
	uint64_t size = strtoull(s + 3, NULL, 10);
	uint64_t wsize = strtoull(w + 3, NULL, 10);
	assert_int_equal(size, len);
	assert_int_equal(wsize, len + maildir_count_lf(data, len));
}

static struct store_msg *make_msg(const char *qid, const struct store_recipient *r, size_t n,
                                  const char *received)
{
	struct buf b;
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, 1, qid, "sender@example.com", r, n, received, NULL, NULL, NULL), 0);
	struct frame_begin fb;
	const char *why;
	assert_int_equal(frame_decode_begin((uint8_t *)b.data + FRAME_HEADER_LEN, b.len - FRAME_HEADER_LEN,
	                                    &fb, &why), FRAME_OK);
	struct store_msg *m = store_msg_new(&fb);
	assert_non_null(m);
	buf_free(&b);
	return m;
}

static void test_mailbox_dirs(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_ensure(f->env.rootfd, "box", true), 0);
	assert_int_equal(maildir_ensure(f->env.rootfd, "box", true), 0);
	const char *dirs[] = { "box", "box/tmp", "box/new", "box/cur" };
	for (size_t i = 0; i < 4; i++) {
		struct stat st;
		assert_int_equal(fstatat(f->env.rootfd, dirs[i], &st, 0), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	/* A file where a directory should be is an error, not a surprise. */
	int fd = openat(f->env.rootfd, "plainfile", O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(maildir_ensure(f->env.rootfd, "plainfile", false), -1);
	assert_int_equal(errno, ENOTDIR);
}

static void test_rename_never_replaces(void **state)
{
	struct fixture *f = *state;
	int fd = maildir_create_tmp(f->env.rootfd, "box", "one", false);
	assert_true(fd >= 0);
	close(fd);
	/* O_EXCL: a second create of the same name fails. */
	assert_int_equal(maildir_create_tmp(f->env.rootfd, "box", "one", false), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(maildir_rename(f->env.rootfd, "box", "one", "final", false), 0);
	fd = maildir_create_tmp(f->env.rootfd, "box", "two", false);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(maildir_rename(f->env.rootfd, "box", "two", "final", false), -1);
	assert_int_equal(errno, EEXIST);
	size_t len;
	char *data = read_file(f, "box", "new", "final", &len);
	assert_int_equal(len, 0);
	free(data);
	maildir_unlink(f->env.rootfd, "box", "tmp", "two");
	char names[4][MAILDIR_NAME_MAX + 1];
	assert_int_equal(list_dir(f, "box", "tmp", names, 4), 0);
	/* new/ removed under us is recreated. */
	maildir_unlink(f->env.rootfd, "box", "new", "final");
	assert_int_equal(unlinkat(f->env.rootfd, "box/new", AT_REMOVEDIR), 0);
	fd = maildir_create_tmp(f->env.rootfd, "box", "three", false);
	close(fd);
	assert_int_equal(maildir_rename(f->env.rootfd, "box", "three", "three", true), 0);
	assert_int_equal(maildir_fsync(f->env.rootfd, "box", "new", "three"), 0);
	assert_int_equal(maildir_fsync(f->env.rootfd, "box", "new", NULL), 0);
}

static void test_copy(void **state)
{
	struct fixture *f = *state;
	int src = maildir_create_tmp(f->env.rootfd, "c", "src", false);
	int dst = maildir_create_tmp(f->env.rootfd, "c", "dst", false);
	char *big = malloc(300000);
	for (size_t i = 0; i < 300000; i++)
		big[i] = (char)('a' + i % 26);
	struct iovec iov = { big, 300000 };
	assert_int_equal(maildir_write_all(src, &iov, 1), 0);
	assert_int_equal(write(dst, "HDR", 3), 3);
	assert_int_equal(maildir_copy(src, 1000, dst, 299000), 0);
	close(src);
	close(dst);
	size_t len;
	char *data = read_file(f, "c", "tmp", "dst", &len);
	assert_int_equal(len, 3 + 299000);
	assert_memory_equal(data, "HDR", 3);
	assert_memory_equal(data + 3, big + 1000, 299000);
	free(data);
	free(big);
}

/* head: the X-Original-To and Delivered-To lines; a bare address stands
 * for its one X-Original-To and the mailbox at its domain. */
static void check_file(const struct fixture *f, const char *mailbox, const char *name,
                       const char *head, const char *received, const char *content,
                       size_t content_len)
{
	size_t len;
	char *data = read_file(f, mailbox, "new", name, &len);
	struct buf want;
	buf_init(&want, 64u << 20);
	buf_printf(&want, "Return-Path: <sender@example.com>\n");
	if (strchr(head, '\n'))
		buf_printf(&want, "%s", head);
	else
		buf_printf(&want, "X-Original-To: %s\nDelivered-To: %s%s\n", head, mailbox,
		           strrchr(head, '@'));
	buf_printf(&want, "%s", received);
	buf_append(&want, content, content_len);
	assert_int_equal(len, want.len);
	assert_memory_equal(data, want.data, len);
	assert_sizes(name, data, len);
	assert_non_null(strstr(name, ".host\\057x\\072y,S="));
	buf_free(&want);
	free(data);
}

static void test_message_in_memory(void **state)
{
	struct fixture *f = *state;
	const struct store_recipient r[] = {
		{ "b@example.org", "bob" },
		{ "a+x@example.org", "alice" },
		{ "a+y@example.org", "alice" },
		{ "b@example.org", "bob" },   /* the same again: one file */
	};
	const char *received = "Received: from x\n\tby y; date\n";
	struct store_msg *m = make_msg("Q1", r, 4, received);
	assert_int_equal(m->nfiles, 2); /* one per mailbox */
	const char *body = "Subject: hi\n\nline one\nline two\n";
	store_msg_append(&f->env, m, body, 10);
	store_msg_append(&f->env, m, body + 10, strlen(body) - 10);
	assert_false(m->streaming);
	struct store_msg *batch[] = { m };
	store_commit_batch(&f->env, batch, 1);
	assert_int_equal(m->result, STORE_OK);

	char names[4][MAILDIR_NAME_MAX + 1];
	assert_int_equal(list_dir(f, "alice", "new", names, 4), 1);
	assert_non_null(strstr(names[0], "P4242QQ1.host"));
	/* Both addresses of alice's one copy, sorted: a+x then a+y. */
	check_file(f, "alice", names[0],
	           "X-Original-To: a+x@example.org\nX-Original-To: a+y@example.org\n"
	           "Delivered-To: alice@example.org\n",
	           received, body, strlen(body));
	assert_int_equal(list_dir(f, "bob", "new", names, 4), 1);
	assert_non_null(strstr(names[0], "P4242QQ1.host"));
	check_file(f, "bob", names[0], "b@example.org", received, body, strlen(body));
	assert_int_equal(list_dir(f, "alice", "tmp", names, 4), 0);
	assert_int_equal(list_dir(f, "bob", "tmp", names, 4), 0);
	store_msg_free(m);
}

static void test_message_streamed(void **state)
{
	struct fixture *f = *state;
	f->env.sync = STORE_SYNC_FSYNC;
	const struct store_recipient r[] = { { "a@x", "one" }, { "b@x", "two" }, { "c@x", "three" } };
	struct store_msg *m = make_msg("Q2", r, 3, "");
	size_t total = STORE_MEMORY_MESSAGE_MAX * 3 + 17;
	char *content = malloc(total);
	for (size_t i = 0; i < total; i++)
		content[i] = i % 71 == 70 ? '\n' : (char)('A' + i % 26);
	for (size_t off = 0; off < total; off += 5000)
		store_msg_append(&f->env, m, content + off, total - off < 5000 ? total - off : 5000);
	assert_true(m->streaming);
	/* Streaming writes one file; the others are made by the batch. */
	char names[4][MAILDIR_NAME_MAX + 1];
	size_t in_tmp = list_dir(f, "one", "tmp", names, 4) + list_dir(f, "two", "tmp", names, 4) +
	                list_dir(f, "three", "tmp", names, 4);
	assert_int_equal(in_tmp, 1);
	struct store_msg *batch[] = { m };
	store_commit_batch(&f->env, batch, 1);
	assert_int_equal(m->result, STORE_OK);
	const char *boxes[] = { "one", "two", "three" }, *addrs[] = { "a@x", "b@x", "c@x" };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(list_dir(f, boxes[i], "new", names, 4), 1);
		check_file(f, boxes[i], names[0], addrs[i], "", content, total);
		assert_int_equal(list_dir(f, boxes[i], "tmp", names, 4), 0);
	}
	store_msg_free(m);
	free(content);
}

static void test_message_discard(void **state)
{
	struct fixture *f = *state;
	const struct store_recipient r[] = { { "a@x", "d1" }, { "b@x", "d2" } };
	struct store_msg *m = make_msg("Q3", r, 2, "");
	char *content = calloc(1, STORE_MEMORY_MESSAGE_MAX + 1);
	store_msg_append(&f->env, m, content, STORE_MEMORY_MESSAGE_MAX + 1);
	assert_true(m->streaming);
	char names[4][MAILDIR_NAME_MAX + 1];
	assert_int_equal(list_dir(f, "d1", "tmp", names, 4) + list_dir(f, "d2", "tmp", names, 4), 1);
	store_msg_discard(&f->env, m);
	assert_int_equal(list_dir(f, "d1", "tmp", names, 4) + list_dir(f, "d2", "tmp", names, 4), 0);
	store_msg_free(m);
	free(content);
}

/* A rename that fails for the second file takes the first out of new/. */
static void test_message_rename_all_or_none(void **state)
{
	struct fixture *f = *state;
	const struct store_recipient r[] = { { "a@x", "r1" }, { "b@x", "r2" } };
	struct store_msg *m = make_msg("Q4", r, 2, "");
	store_msg_append(&f->env, m, "x\n", 2);
	store_msg_write(&f->env, m);
	assert_int_equal(m->result, STORE_OK);
	/* Sorted: r1 first, r2 second; make r2's new/ unusable. */
	assert_int_equal(unlinkat(f->env.rootfd, "r2/new", AT_REMOVEDIR), 0);
	int fd = openat(f->env.rootfd, "r2/new", O_CREAT | O_WRONLY, 0600);
	close(fd);
	store_msg_rename(&f->env, m);
	assert_int_equal(m->result, STORE_TEMPFAIL);
	char names[4][MAILDIR_NAME_MAX + 1];
	assert_int_equal(list_dir(f, "r1", "new", names, 4), 0);
	assert_int_equal(list_dir(f, "r1", "tmp", names, 4), 0);
	assert_int_equal(list_dir(f, "r2", "tmp", names, 4), 0);
	store_msg_free(m);
}

/* frame_begin_check failing: the message exists, failed, with no file. */
static void test_message_bad_mailbox(void **state)
{
	struct fixture *f = *state;
	const struct store_recipient r[] = { { "a@x", "../escape" } };
	struct store_msg *m = make_msg("Q5", r, 1, "");
	assert_int_equal(m->result, STORE_TEMPFAIL);
	assert_int_equal(m->nfiles, 0);
	store_msg_append(&f->env, m, "x", 1);
	struct store_msg *batch[] = { m };
	store_commit_batch(&f->env, batch, 1);
	assert_int_equal(m->result, STORE_TEMPFAIL);
	struct stat st;
	assert_int_equal(fstatat(f->env.rootfd, "../escape", &st, 0), -1);
	store_msg_free(m);
}

/* ---- symlinks inside the mail root (issue 8 item 9) ---- */

/* A directory outside the mail root, laid out as a Maildir so that a store
 * that followed a link would find everything it needs there. */
static void make_outside(char *out, size_t outlen)
{
	snprintf(out, outlen, "/tmp/rawmail-outside-XXXXXX");
	assert_non_null(mkdtemp(out));
	char path[128];
	const char *subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", out, subs[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
}

static size_t count_outside(const char *outside)
{
	size_t n = 0;
	const char *subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", outside, subs[i]);
		DIR *d = opendir(path);
		assert_non_null(d);
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

static void remove_outside(const char *outside)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", outside);
	assert_int_equal(system(cmd), 0);
}

/* mail/bob -> /elsewhere: nothing is created there, the error says why. */
static void check_symlinked_mailbox(struct fixture *f)
{
	char outside[64];
	make_outside(outside, sizeof(outside));
	assert_int_equal(symlinkat(outside, f->env.rootfd, "bob"), 0);
	assert_int_equal(maildir_create_tmp(f->env.rootfd, "bob", "one", false), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(maildir_create_tmp(f->env.rootfd, "bob", "one", true), -1);
	assert_int_equal(maildir_ensure(f->env.rootfd, "bob", true), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(maildir_open_dir(f->env.rootfd, "bob", "tmp"), -1);
	assert_int_equal(errno, ELOOP);
	/* The same through a whole message and a batch. */
	const struct store_recipient r[] = { { "bob@x", "bob" } };
	struct store_msg *m = make_msg("QL", r, 1, "");
	store_msg_append(&f->env, m, "x\n", 2);
	struct store_msg *batch[] = { m };
	store_commit_batch(&f->env, batch, 1);
	assert_int_equal(m->result, STORE_TEMPFAIL);
	store_msg_free(m);
	assert_int_equal(count_outside(outside), 0);
	remove_outside(outside);
}

/* A real Maildir whose tmp/ or new/ is a link out of the mail root. */
static void check_symlinked_subdir(struct fixture *f)
{
	char outside[64];
	make_outside(outside, sizeof(outside));
	char target[128];
	/* tmp/ links out: no file is created. */
	assert_int_equal(maildir_ensure(f->env.rootfd, "t", false), 0);
	assert_int_equal(unlinkat(f->env.rootfd, "t/tmp", AT_REMOVEDIR), 0);
	snprintf(target, sizeof(target), "%s/tmp", outside);
	assert_int_equal(symlinkat(target, f->env.rootfd, "t/tmp"), 0);
	assert_int_equal(maildir_create_tmp(f->env.rootfd, "t", "one", false), -1);
	assert_int_equal(errno, ELOOP);
	/* A file put there by someone else is not removed through the link. */
	char planted[160];
	snprintf(planted, sizeof(planted), "%s/tmp/planted", outside);
	int fd = open(planted, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	maildir_unlink(f->env.rootfd, "t", "tmp", "planted");
	assert_int_equal(access(planted, F_OK), 0);
	assert_int_equal(unlink(planted), 0);
	/* new/ links out: the rename is refused and the file stays in tmp/. */
	assert_int_equal(maildir_ensure(f->env.rootfd, "n", false), 0);
	assert_int_equal(unlinkat(f->env.rootfd, "n/new", AT_REMOVEDIR), 0);
	snprintf(target, sizeof(target), "%s/new", outside);
	assert_int_equal(symlinkat(target, f->env.rootfd, "n/new"), 0);
	fd = maildir_create_tmp(f->env.rootfd, "n", "one", false);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(maildir_rename(f->env.rootfd, "n", "one", "one", false), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(maildir_fsync(f->env.rootfd, "n", "new", NULL), -1);
	char names[4][MAILDIR_NAME_MAX + 1];
	assert_int_equal(list_dir(f, "n", "tmp", names, 4), 1);
	assert_int_equal(count_outside(outside), 0);
	remove_outside(outside);
}

static void test_symlinked_mailbox(void **state)
{
	check_symlinked_mailbox(*state);
}

static void test_symlinked_subdir(void **state)
{
	check_symlinked_subdir(*state);
}

/* The same where openat2 is missing (kernels before 5.6): the walk one
 * directory at a time with O_NOFOLLOW. */
static void test_symlinked_mailbox_walk(void **state)
{
	maildir_resolve_walk(true);
	check_symlinked_mailbox(*state);
	maildir_resolve_walk(false);
}

static void test_symlinked_subdir_walk(void **state)
{
	maildir_resolve_walk(true);
	check_symlinked_subdir(*state);
	maildir_resolve_walk(false);
}

/* A mount point or any real directory stays fine, through both paths. */
static void test_resolve_plain(void **state)
{
	struct fixture *f = *state;
	for (int walk = 0; walk < 2; walk++) {
		maildir_resolve_walk(walk);
		const char *box = walk ? "w" : "o";
		int fd = maildir_create_tmp(f->env.rootfd, box, "one", true);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(maildir_rename(f->env.rootfd, box, "one", "one", true), 0);
		assert_int_equal(maildir_fsync(f->env.rootfd, box, "new", "one"), 0);
		int dfd = maildir_open_dir(f->env.rootfd, box, "new");
		assert_true(dfd >= 0);
		close(dfd);
		/* Nothing above the mail root is reachable. */
		assert_int_equal(maildir_open_dir(f->env.rootfd, "..", "tmp"), -1);
		maildir_unlink(f->env.rootfd, box, "new", "one");
		char names[4][MAILDIR_NAME_MAX + 1];
		assert_int_equal(list_dir(f, box, "new", names, 4), 0);
	}
	maildir_resolve_walk(false);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_escape),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_count_lf),
		cmocka_unit_test(test_errno_result),
		cmocka_unit_test_setup_teardown(test_mailbox_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_never_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_streamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_rename_all_or_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_bad_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_subdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_mailbox_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinked_subdir_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_plain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
