/* The store end to end: a forked store_process_run on a socketpair with a
 * temporary mailroot, driven through store_client on a libevent loop (or,
 * to test the store's distrust of its peer, through raw frames), and a fake
 * store to test the client when the store goes away.
 *
 * STORE_E2E_N sets the number of messages of the batching test (default
 * 2000); its throughput is printed, never asserted (benchmarks are not
 * tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "queue/spool.h"
#include "store/frame.h"
#include "msg/dkim.h"
#include "store/maildir.h"
#include "store/outbox.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/log.h"

#define SENDER "sender@example.com"
#define RECEIVED "Received: from client.example (client.example [192.0.2.7])\n\tby mx.example; Sat, 23 Nov 2024 13:00:00 +0000\n"
#define TIMEOUT_S 120

struct harness {
	char dir[64];            /* holds the mailroot and the store's log */
	char root[96];
	char log[96];
	char spool[128];
	pid_t pid;
	int fd;                  /* our end of the socketpair */
	struct event_base *base;
	struct event *deadline;
	struct store_client *sc;
	int lost;
	bool timed_out;
};

struct result {
	int calls;
	enum store_result r;
};

static void on_done(void *arg, enum store_result r)
{
	struct result *res = arg;
	res->calls++;
	res->r = r;
}

static void on_lost(void *arg)
{
	struct harness *h = arg;
	h->lost++;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct harness *h = arg;
	h->timed_out = true;
	event_base_loopbreak(h->base);
}

enum child_mode { CHILD_PLAIN, CHILD_TMPFS };

/* The creation limits of the next store_start (struct store_config). */
static unsigned newbox_per_client = 20, newbox_total = 200;
/* The spool of the next store_start (issue 10): NULL for none, else a
 * name under the harness's directory (made by the test) or, with
 * spool_in_tmpfs, under the mailroot, made by the child on its tmpfs. */
static const char *spool_name = NULL;
static bool spool_in_tmpfs = false;
/* The DKIM keys of the next store_start (issue 11), and the signer (a
 * login's senders field) send_msg gives. */
static const struct store_dkim_key *dkim_keys = NULL;
static size_t dkim_nkeys = 0;
static const char *signer = NULL;
/* The outbox of the next store_start (issue 12), and the client send_msg
 * gives. */
static bool outbox_on = false;
static const char *client_ip = NULL, *client_helo = NULL;
/* Runs before the next store_start forks (its mailroot not yet made). */
static void (*before_store)(const struct harness *h) = NULL;

/* Forks the store.  In CHILD_TMPFS mode the child first mounts a 1 MiB
 * tmpfs on the mailroot in a mount namespace of its own, and exits 77 if
 * it may not. */
static void store_start(struct harness *h, enum store_sync_mode sync, enum child_mode mode)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/rawmail-e2e-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->root, sizeof(h->root), "%s/mail", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/store.log", h->dir);
	if (spool_name)
		snprintf(h->spool, sizeof(h->spool), "%s/%s", spool_in_tmpfs ? h->root : h->dir,
		         spool_name);
	if (before_store)
		before_store(h);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	h->pid = fork();
	assert_true(h->pid >= 0);
	if (h->pid == 0) {
		close(sv[0]);
		int logfd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (logfd >= 0) {
			dup2(logfd, STDERR_FILENO);
			close(logfd);
		}
		log_init("store", LOG_DEBUG);
		if (mode == CHILD_TMPFS) {
			if (mkdir(h->root, 0700) < 0)
				_exit(78);
			if (unshare(CLONE_NEWNS) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
				_exit(77);
			if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
			    mount("tmpfs", h->root, "tmpfs", 0, "size=1m,mode=0700") < 0)
				_exit(77);
		}
		/* As serve's parent does: the caller makes and opens the mail root. */
		if (mode != CHILD_TMPFS && mkdir(h->root, 0700) < 0 && errno != EEXIST)
			_exit(78);
		if (spool_name && spool_in_tmpfs) {
			struct queue_spool *sp;
			char why[256];
			if (queue_spool_open(h->spool, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why)) != QUEUE_OK)
				_exit(78);
			queue_spool_close(sp);
		}
		struct store_config cfg = { .mailroot = h->root,
		                            .rootfd = open(h->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
		                            .hostname = "mx.example:25", .sync = sync,
		                            .new_mailboxes_per_client = newbox_per_client,
		                            .new_mailboxes_total = newbox_total,
		                            .spool = spool_name ? h->spool : NULL,
		                            .dkim = dkim_keys, .ndkim = dkim_nkeys,
		                            .outbox = outbox_on, .outbox_fd = -1 };
		int rc = store_process_run(&cfg, sv[1]);
		log_flush();
		exit(rc == 0 ? 0 : 1);
	}
	close(sv[1]);
	h->fd = sv[0];
}

static void client_start(struct harness *h)
{
	h->base = event_base_new();
	assert_non_null(h->base);
	h->deadline = evtimer_new(h->base, on_deadline, h);
	struct timeval tv = { TIMEOUT_S, 0 };
	evtimer_add(h->deadline, &tv);
	h->sc = store_client_new(h->base, h->fd, on_lost, h);
	assert_non_null(h->sc);
	h->fd = -1; /* the client owns it */
}

/* Runs the loop until *count reaches want (or the deadline). */
static void run_until(struct harness *h, const int *count, int want)
{
	while (*count < want && !h->timed_out)
		event_base_loop(h->base, EVLOOP_ONCE);
	assert_false(h->timed_out);
}

/* A sanitizer report from the store lands in its log (its stderr). */
static void assert_log_clean(const struct harness *h)
{
	FILE *fp = fopen(h->log, "r");
	if (!fp)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), fp)) {
		if (strstr(line, "Sanitizer") || strstr(line, "runtime error:"))
			fail_msg("store log %s: %s", h->log, line);
	}
	fclose(fp);
}

/* Closes the client, waits for the store; returns its exit status. */
static int store_stop(struct harness *h)
{
	if (h->sc)
		store_client_free(h->sc);
	h->sc = NULL;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	if (h->deadline)
		event_free(h->deadline);
	if (h->base)
		event_base_free(h->base);
	h->base = NULL;
	h->deadline = NULL;
	int status;
	assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
	assert_log_clean(h);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void cleanup(struct harness *h)
{
	if (getenv("STORE_E2E_KEEP"))
		return;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- files ---- */

static size_t list_dir(const struct harness *h, const char *mailbox, const char *dir,
                       char (**names)[MAILDIR_NAME_MAX + 1])
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", h->root, mailbox, dir);
	*names = NULL;
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			*names = realloc(*names, cap * sizeof(**names));
		}
		snprintf((*names)[n++], MAILDIR_NAME_MAX + 1, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static size_t count_dir(const struct harness *h, const char *mailbox, const char *dir)
{
	char (*names)[MAILDIR_NAME_MAX + 1];
	size_t n = list_dir(h, mailbox, dir, &names);
	free(names);
	return n;
}

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *p = malloc((size_t)st.st_size + 1);
	size_t off = 0;
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, p + off, (size_t)st.st_size - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	close(fd);
	*len = off;
	return p;
}

/* The qid in a name: between the 'Q' after "P<pid>" and the next '.' or
 * '_<seq>'. */
static void name_qid(const char *name, char *qid, size_t qidlen)
{
	const char *p = strchr(name, 'P');
	assert_non_null(p);
	p = strchr(p, 'Q');
	assert_non_null(p);
	p++;
	size_t n = strcspn(p, "._");
	assert_true(n < qidlen);
	memcpy(qid, p, n);
	qid[n] = '\0';
}

static void assert_name_sizes(const char *name, const char *data, size_t len)
{
	const char *s = strstr(name, ",S="), *w = strstr(name, ",W=");
	assert_non_null(s);
	assert_non_null(w);
	assert_int_equal(strtoull(s + 3, NULL, 10), len);
	assert_int_equal(strtoull(w + 3, NULL, 10), len + maildir_count_lf(data, len));
	/* The host, with ':' escaped. */
	assert_non_null(strstr(name, ".mx.example\\07225,S="));
}

/* The head of a file for one recipient: X-Original-To as given, then
 * Delivered-To naming the mailbox with the address's domain. */
static const char *head_for(char *out, size_t n, const char *address, const char *mailbox)
{
	const char *at = strrchr(address, '@');
	snprintf(out, n, "X-Original-To: %s\nDelivered-To: %s%s\n", address, mailbox, at ? at : "");
	return out;
}

static void expect_bytes(const char *data, size_t len, const char *head, const char *content,
                         size_t content_len)
{
	struct buf want;
	buf_init(&want, 64u << 20);
	buf_printf(&want, "Return-Path: <%s>\n%s%s", SENDER, head, RECEIVED);
	buf_append(&want, content, content_len);
	assert_int_equal(len, want.len);
	assert_memory_equal(data, want.data, len);
	buf_free(&want);
}

/* The one file of qid in mailbox/new, whose head (the lines between
 * Return-Path and Received) must be head. */
static void expect_file(const struct harness *h, const char *mailbox, const char *qid,
                        const char *head, const char *content, size_t content_len)
{
	char (*names)[MAILDIR_NAME_MAX + 1];
	size_t n = list_dir(h, mailbox, "new", &names);
	int found = 0;
	for (size_t i = 0; i < n; i++) {
		char q[80];
		name_qid(names[i], q, sizeof(q));
		if (strcmp(q, qid) != 0)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s/new/%s", h->root, mailbox, names[i]);
		size_t len;
		char *data = read_file(path, &len);
		found++;
		expect_bytes(data, len, head, content, content_len);
		assert_name_sizes(names[i], data, len);
		free(data);
	}
	free(names);
	assert_int_equal(found, 1);
}

/* expect_file for a message with one recipient in mailbox. */
static void expect_one(const struct harness *h, const char *mailbox, const char *qid,
                       const char *address, const char *content, size_t content_len)
{
	char head[1024];
	expect_file(h, mailbox, qid, head_for(head, sizeof(head), address, mailbox), content,
	            content_len);
}

/* ---- driving a message ---- */

static struct store_txn *send_msg(struct harness *h, const char *qid,
                                  const struct store_recipient *r, size_t n, const char *content,
                                  size_t len, size_t chunk)
{
	struct store_txn *t = store_txn_begin(h->sc, qid, SENDER, r, n, RECEIVED, signer, client_ip,
	                                      client_helo);
	assert_non_null(t);
	for (size_t off = 0; off < len; off += chunk)
		assert_int_equal(store_txn_write(t, content + off, len - off < chunk ? len - off : chunk), 0);
	return t;
}

static char *make_content(size_t len, unsigned seed)
{
	char *p = malloc(len);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		/* Mostly text with line ends, some arbitrary octets (NUL too). */
		unsigned v = (x >> 16) & 0xff;
		p[i] = v < 8 ? '\n' : v < 200 ? (char)(' ' + v % 90) : (char)v;
	}
	return p;
}

static void test_single(void **state)
{
	enum store_sync_mode modes[] = { STORE_SYNC_SYNCFS, STORE_SYNC_FSYNC };
	for (size_t k = 0; k < 2; k++) {
		struct harness h;
		store_start(&h, modes[k], CHILD_PLAIN);
		client_start(&h);
		assert_true(store_client_alive(h.sc));
		const char *body = "Subject: hello\n\nHello, world.\n";
		struct store_recipient r = { "alice+news@example.org", "alice" };
		struct result res = { 0 };
		struct store_txn *t = send_msg(&h, "S1", &r, 1, body, strlen(body), 7);
		store_txn_commit(t, on_done, &res);
		run_until(&h, &res.calls, 1);
		assert_int_equal(res.r, STORE_OK);
		expect_file(&h, "alice", "S1",
		            "X-Original-To: alice+news@example.org\nDelivered-To: alice@example.org\n", body,
		            strlen(body));
		assert_int_equal(count_dir(&h, "alice", "tmp"), 0);
		assert_int_equal(count_dir(&h, "alice", "cur"), 0);
		struct stat st;
		char path[256];
		snprintf(path, sizeof(path), "%s/alice/new", h.root);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
		assert_int_equal(stat(h.root, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
		/* The space report came with the batch. */
		assert_true(store_client_free_space(h.sc) != UINT64_MAX);
		assert_true(store_client_free_space(h.sc) > 0);
		assert_int_equal(store_stop(&h), 0);
		assert_int_equal(h.lost, 0);
		cleanup(&h);
	}
}

static void test_multi_recipient(void **state)
{
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	client_start(&h);
	const char *body = "Subject: to many\n\nbody\n";
	struct store_recipient r[] = {
		{ "alice@example.org", "alice" },
		{ "bob@example.org", "bob" },
		{ "alice+x@example.org", "alice" },
		{ "alice@example.org", "alice" },  /* a duplicate: no second file */
		{ "carol@[192.0.2.1]", "carol" },
		/* Delivered-To takes the domain of the first recipient given,
		 * folded; X-Original-To keeps each as given. */
		{ "ZED@Long.Example.ORG", "zed" },
		{ "zed+1@b.org", "zed" },
		{ "dan@[IPv6:2001:DB8::1]", "dan" },
		{ "yan@longer.example.org", "yan" },
		{ "yan+a@x.org", "yan" },
	};
	struct result res = { 0 };
	struct store_txn *t = send_msg(&h, "M1", r, 10, body, strlen(body), 100);
	store_txn_commit(t, on_done, &res);
	run_until(&h, &res.calls, 1);
	assert_int_equal(res.r, STORE_OK);
	/* One copy per mailbox (issue 8, item 4): alice's names both of
	 * her addresses, once each. */
	assert_int_equal(count_dir(&h, "alice", "new"), 1);
	assert_int_equal(count_dir(&h, "bob", "new"), 1);
	assert_int_equal(count_dir(&h, "carol", "new"), 1);
	expect_file(&h, "alice", "M1",
	            "X-Original-To: alice+x@example.org\nX-Original-To: alice@example.org\n"
	            "Delivered-To: alice@example.org\n",
	            body, strlen(body));
	expect_one(&h, "bob", "M1", "bob@example.org", body, strlen(body));
	expect_one(&h, "carol", "M1", "carol@[192.0.2.1]", body, strlen(body));
	expect_file(&h, "zed", "M1",
	            "X-Original-To: ZED@Long.Example.ORG\nX-Original-To: zed+1@b.org\n"
	            "Delivered-To: zed@long.example.org\n",
	            body, strlen(body));
	expect_file(&h, "yan", "M1",
	            "X-Original-To: yan+a@x.org\nX-Original-To: yan@longer.example.org\n"
	            "Delivered-To: yan@longer.example.org\n",
	            body, strlen(body));
	expect_file(&h, "dan", "M1",
	            "X-Original-To: dan@[IPv6:2001:DB8::1]\nDelivered-To: dan@[IPv6:2001:DB8::1]\n",
	            body, strlen(body));
	assert_int_equal(store_stop(&h), 0);
	cleanup(&h);
}

static void test_large_streamed(void **state)
{
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	client_start(&h);
	size_t len = 1024 * 1024;
	char *body = make_content(len, 1);
	struct store_recipient r[] = { { "big@example.org", "big" }, { "copy@example.org", "copy" } };
	struct result res = { 0 };
	struct store_txn *t = send_msg(&h, "L1", r, 2, body, len, 16 * 1024);
	store_txn_commit(t, on_done, &res);
	/* Bigger than one DATA frame in one call, too. */
	struct result res2 = { 0 };
	struct store_txn *t2 = send_msg(&h, "L2", r, 1, body, len, len);
	store_txn_commit(t2, on_done, &res2);
	run_until(&h, &res.calls, 1);
	run_until(&h, &res2.calls, 1);
	assert_int_equal(res.r, STORE_OK);
	assert_int_equal(res2.r, STORE_OK);
	expect_one(&h, "big", "L1", "big@example.org", body, len);
	expect_one(&h, "copy", "L1", "copy@example.org", body, len);
	expect_one(&h, "big", "L2", "big@example.org", body, len);
	assert_int_equal(count_dir(&h, "big", "tmp") + count_dir(&h, "copy", "tmp"), 0);
	assert_int_equal(store_stop(&h), 0);
	free(body);
	cleanup(&h);
}

static void test_abort(void **state)
{
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	client_start(&h);
	size_t len = STORE_MEMORY_MESSAGE_MAX + 50000;
	char *body = make_content(len, 2);
	struct store_recipient r = { "ab@example.org", "ab" };
	/* A streamed one and an in-memory one, both aborted. */
	struct store_txn *t1 = send_msg(&h, "A1", &r, 1, body, len, 8192);
	struct store_txn *t2 = send_msg(&h, "A2", &r, 1, body, 100, 100);
	/* Let the store see the first: its tmp file must exist. */
	struct result res0 = { 0 };
	struct store_txn *t0 = send_msg(&h, "A0", &r, 1, "x\n", 2, 2);
	store_txn_commit(t0, on_done, &res0);
	run_until(&h, &res0.calls, 1);
	assert_int_equal(count_dir(&h, "ab", "tmp"), 1);
	store_txn_abort(t1);
	store_txn_abort(t2);
	struct result res = { 0 };
	struct store_txn *t3 = send_msg(&h, "A3", &r, 1, "kept\n", 5, 5);
	store_txn_commit(t3, on_done, &res);
	run_until(&h, &res.calls, 1);
	assert_int_equal(res.r, STORE_OK);
	assert_int_equal(count_dir(&h, "ab", "tmp"), 0);
	assert_int_equal(count_dir(&h, "ab", "new"), 2);
	expect_one(&h, "ab", "A0", "ab@example.org", "x\n", 2);
	expect_one(&h, "ab", "A3", "ab@example.org", "kept\n", 5);

	/* The client going away mid-message: the store removes its file. */
	struct store_txn *t4 = send_msg(&h, "A4", &r, 1, body, len, 65536);
	struct result res5 = { 0 };
	struct store_txn *t5 = send_msg(&h, "A5", &r, 1, "y\n", 2, 2);
	store_txn_commit(t5, on_done, &res5);
	run_until(&h, &res5.calls, 1);
	assert_int_equal(count_dir(&h, "ab", "tmp"), 1);
	assert_int_equal(store_stop(&h), 0);
	assert_int_equal(count_dir(&h, "ab", "tmp"), 0);
	assert_int_equal(count_dir(&h, "ab", "new"), 3);
	store_txn_abort(t4); /* after the client: only frees it */
	free(body);
	cleanup(&h);
}

/* Parses the store's log for its batch lines: how many, largest n. */
static void batch_stats(const struct harness *h, size_t *batches, size_t *max_n, size_t *stored)
{
	size_t len;
	char *log = read_file(h->log, &len);
	*batches = *max_n = *stored = 0;
	for (char *p = log; p < log + len;) {
		char *nl = memchr(p, '\n', (size_t)(log + len - p));
		if (!nl)
			break;
		*nl = '\0';
		char *b = strstr(p, "event=batch n=");
		if (b) {
			size_t n = strtoul(b + strlen("event=batch n="), NULL, 10);
			(*batches)++;
			if (n > *max_n)
				*max_n = n;
		}
		if (strstr(p, "event=stored "))
			(*stored)++;
		p = nl + 1;
	}
	free(log);
}

#define NBOXES 10

static size_t bench_n(void)
{
	const char *env = getenv("STORE_E2E_N");
	return env ? strtoul(env, NULL, 10) : 2000;
}

/* Message i of a benchmark: mailbox, address, body, qid. */
static void bench_msg(size_t i, char *qid, char *box, char *addr, char *body, size_t bodylen)
{
	snprintf(qid, 32, "B%05zu", i);
	snprintf(box, 16, "box%zu", i % NBOXES);
	snprintf(addr, 64, "user%zu@example.org", i % NBOXES);
	snprintf(body, bodylen, "Subject: message %zu\n\nbody of %zu\n", i, i);
}

static struct store_txn *bench_send(struct harness *h, size_t i)
{
	char qid[32], box[16], addr[64], body[128];
	bench_msg(i, qid, box, addr, body, sizeof(body));
	struct store_recipient r = { addr, box };
	return send_msg(h, qid, &r, 1, body, strlen(body), sizeof(body));
}

/* Every file byte-exact, each message exactly once, nothing left in tmp/,
 * one "stored" line each; prints the batch figures. */
static void bench_verify(struct harness *h, size_t n, const char *what, double secs)
{
	bool *seen = calloc(n, sizeof(*seen));
	size_t total = 0;
	for (size_t b = 0; b < NBOXES; b++) {
		char box[16];
		snprintf(box, sizeof(box), "box%zu", b);
		char (*names)[MAILDIR_NAME_MAX + 1];
		size_t k = list_dir(h, box, "new", &names);
		for (size_t j = 0; j < k; j++) {
			char qid[80], path[1024], q2[32], box2[16], addr[64], body[128];
			name_qid(names[j], qid, sizeof(qid));
			size_t i = strtoul(qid + 1, NULL, 10);
			assert_true(i < n && i % NBOXES == b);
			assert_false(seen[i]);
			seen[i] = true;
			bench_msg(i, q2, box2, addr, body, sizeof(body));
			snprintf(path, sizeof(path), "%s/%s/new/%s", h->root, box, names[j]);
			size_t len;
			char *data = read_file(path, &len);
			char head[256];
			expect_bytes(data, len, head_for(head, sizeof(head), addr, box), body,
			             strlen(body));
			assert_name_sizes(names[j], data, len);
			free(data);
		}
		total += k;
		free(names);
		assert_int_equal(count_dir(h, box, "tmp"), 0);
	}
	assert_int_equal(total, n);
	size_t batches, max_n, stored;
	batch_stats(h, &batches, &max_n, &stored);
	assert_int_equal(stored, n);
	print_message("%s: %zu messages in %.3f s = %.0f msg/s, %zu batches (mean %.1f, max %zu)\n",
	              what, n, secs, (double)n / secs, batches,
	              batches ? (double)n / (double)batches : 0.0, max_n);
	free(seen);
}

static double secs_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void wait_first_space(struct harness *h)
{
	/* So that the timing excludes the fork and the store's start. */
	while (store_client_free_space(h->sc) == UINT64_MAX && !h->timed_out)
		event_base_loop(h->base, EVLOOP_ONCE);
}

/* All messages sent at once, as many sessions finishing DATA together. */
static void many_in_flight(enum store_sync_mode sync)
{
	size_t n = bench_n();
	struct harness h;
	store_start(&h, sync, CHILD_PLAIN);
	client_start(&h);
	wait_first_space(&h);
	struct result *res = calloc(n, sizeof(*res));
	int done = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < n; i++) {
		store_txn_commit(bench_send(&h, i), on_done, &res[i]);
		/* Let the loop turn now and then, as sessions would. */
		if (i % 50 == 49)
			event_base_loop(h.base, EVLOOP_NONBLOCK);
	}
	for (;;) {
		done = 0;
		for (size_t i = 0; i < n; i++)
			done += res[i].calls;
		if ((size_t)done == n || h.timed_out)
			break;
		event_base_loop(h.base, EVLOOP_ONCE);
	}
	double secs = secs_since(&t0);
	assert_false(h.timed_out);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_int_equal(res[i].r, STORE_OK);
	}
	assert_int_equal(store_stop(&h), 0);
	bench_verify(&h, n, sync == STORE_SYNC_FSYNC ? "in flight, fsync" : "in flight, syncfs", secs);
	free(res);
	cleanup(&h);
}

static void test_many_syncfs(void **state)
{
	many_in_flight(STORE_SYNC_SYNCFS);
}

static void test_many_fsync(void **state)
{
	many_in_flight(STORE_SYNC_FSYNC);
}

/* Closed loop: CONCURRENCY sessions, each sending its next message when
 * the last one is answered, as SMTP clients waiting for 250 do. */
#define CONCURRENCY 20

struct bench {
	struct harness *h;
	size_t n, next;
	int done;
	int failed;
};

struct slot {
	struct bench *b;
};

static void on_slot_done(void *arg, enum store_result r)
{
	struct slot *s = arg;
	struct bench *b = s->b;
	b->done++;
	if (r != STORE_OK)
		b->failed++;
	if (b->next < b->n)
		store_txn_commit(bench_send(b->h, b->next++), on_slot_done, s);
}

static void closed_loop(enum store_sync_mode sync)
{
	struct harness h;
	store_start(&h, sync, CHILD_PLAIN);
	client_start(&h);
	wait_first_space(&h);
	struct bench b = { .h = &h, .n = bench_n() };
	struct slot slots[CONCURRENCY];
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < CONCURRENCY && b.next < b.n; i++) {
		slots[i].b = &b;
		store_txn_commit(bench_send(&h, b.next++), on_slot_done, &slots[i]);
	}
	run_until(&h, &b.done, (int)b.n);
	double secs = secs_since(&t0);
	assert_int_equal(b.failed, 0);
	assert_int_equal(store_stop(&h), 0);
	char what[64];
	snprintf(what, sizeof(what), "%d sessions, %s", CONCURRENCY,
	         sync == STORE_SYNC_FSYNC ? "fsync" : "syncfs");
	bench_verify(&h, b.n, what, secs);
	cleanup(&h);
}

static void test_closed_loop_syncfs(void **state)
{
	closed_loop(STORE_SYNC_SYNCFS);
}

static void test_closed_loop_fsync(void **state)
{
	closed_loop(STORE_SYNC_FSYNC);
}

/* ---- the store distrusts its client ---- */

static void raw_send(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len > 0) {
		ssize_t n = write(fd, c, len);
		assert_true(n > 0);
		c += n;
		len -= (size_t)n;
	}
}

static void raw_begin(int fd, uint64_t txn, const char *qid, const struct store_recipient *r,
                      size_t n)
{
	struct buf b;
	buf_init(&b, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	assert_int_equal(frame_encode_begin(&b, txn, qid, SENDER, r, n, RECEIVED, NULL, NULL, NULL), 0);
	raw_send(fd, b.data, b.len);
	buf_free(&b);
}

static void raw_data(int fd, uint64_t txn, const char *data, size_t len)
{
	uint8_t hdr[FRAME_DATA_HEADER_LEN];
	frame_encode_data_header(hdr, txn, len);
	raw_send(fd, hdr, sizeof(hdr));
	raw_send(fd, data, len);
}

static void raw_txn(int fd, enum frame_type type, uint64_t txn)
{
	uint8_t f[FRAME_TXN_LEN];
	frame_encode_txn(f, type, txn);
	raw_send(fd, f, sizeof(f));
}

/* Reads frames until a RESULT (SPACE frames are skipped); returns its
 * txn and value, or -1 at EOF. */
static int raw_result(int fd, uint64_t *txn, enum store_result *r)
{
	for (;;) {
		uint8_t f[FRAME_RESULT_LEN];
		size_t got = 0;
		while (got < FRAME_HEADER_LEN) {
			ssize_t n = read(fd, f + got, FRAME_HEADER_LEN - got);
			if (n <= 0)
				return -1;
			got += (size_t)n;
		}
		enum frame_type type;
		size_t len;
		assert_int_equal(frame_header_decode(f, got, FRAME_FROM_STORE, &type, &len, NULL), FRAME_OK);
		while (got < FRAME_HEADER_LEN + len) {
			ssize_t n = read(fd, f + got, FRAME_HEADER_LEN + len - got);
			assert_true(n > 0);
			got += (size_t)n;
		}
		if (type == FRAME_RESULT) {
			assert_int_equal(frame_decode_result(f + FRAME_HEADER_LEN, len, txn, r, NULL), FRAME_OK);
			return 0;
		}
	}
}

static void test_hostile_client(void **state)
{
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	uint64_t txn;
	enum store_result r;

	/* Unsafe mailbox names: refused per message, never used as paths. */
	const char *bad[] = { "../escape", ".hidden", "a/b", "..", "x\ny" };
	for (size_t i = 0; i < 5; i++) {
		struct store_recipient rc[] = { { "ok@example.org", "okbox" }, { "x@example.org", bad[i] } };
		raw_begin(h.fd, 10 + i, "H1", rc, 2);
		raw_data(h.fd, 10 + i, "body\n", 5);
		raw_txn(h.fd, FRAME_COMMIT, 10 + i);
		assert_int_equal(raw_result(h.fd, &txn, &r), 0);
		assert_int_equal(txn, 10 + i);
		assert_int_equal(r, STORE_TEMPFAIL);
	}
	/* A qid that would change the file name's shape. */
	struct store_recipient ok = { "ok@example.org", "okbox" };
	raw_begin(h.fd, 20, "../../x", &ok, 1);
	raw_txn(h.fd, FRAME_COMMIT, 20);
	assert_int_equal(raw_result(h.fd, &txn, &r), 0);
	assert_int_equal(r, STORE_TEMPFAIL);
	struct stat st;
	char path[256];
	snprintf(path, sizeof(path), "%s/escape", h.dir);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(count_dir(&h, "okbox", "new"), 0);

	/* A good message still works on the same connection. */
	raw_begin(h.fd, 21, "H2", &ok, 1);
	raw_data(h.fd, 21, "fine\n", 5);
	raw_txn(h.fd, FRAME_COMMIT, 21);
	assert_int_equal(raw_result(h.fd, &txn, &r), 0);
	assert_int_equal(r, STORE_OK);

	/* A reused txn id is a protocol error: the store stops, exit 1. */
	raw_begin(h.fd, 21, "H3", &ok, 1);
	assert_int_equal(raw_result(h.fd, &txn, &r), -1);
	assert_int_equal(store_stop(&h), 1);
	cleanup(&h);

	/* Other protocol errors, each on a fresh store. */
	static const uint8_t garbage[][FRAME_HEADER_LEN + 8] = {
		{ 0xff, 0xff, 0xff, 0xff, FRAME_BEGIN },           /* 4 GiB BEGIN */
		{ 0, 0, 0, 8, FRAME_RESULT },                       /* the store's own frame */
		{ 0, 0, 0, 8, 99 },                                 /* unknown type */
		{ 0, 0, 0, 8, FRAME_COMMIT, 0, 0, 0, 0, 0, 0, 0, 9 }, /* unknown txn */
		{ 0, 0, 0, 9, FRAME_DATA, 0, 0, 0, 0, 0, 0, 0, 9 },   /* DATA for unknown txn (+1 octet below) */
	};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
		raw_begin(h.fd, 1, "G1", &ok, 1);
		raw_data(h.fd, 1, "partial\n", 8);
		raw_send(h.fd, garbage[i], sizeof(garbage[i]));
		if (garbage[i][4] == FRAME_DATA)
			raw_send(h.fd, "z", 1);
		assert_int_equal(raw_result(h.fd, &txn, &r), -1);
		assert_int_equal(store_stop(&h), 1);
		/* What the broken connection had begun is gone. */
		assert_int_equal(count_dir(&h, "okbox", "tmp"), 0);
		assert_int_equal(count_dir(&h, "okbox", "new"), 0);
		cleanup(&h);
	}

	/* DATA after COMMIT. */
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	raw_begin(h.fd, 1, "G2", &ok, 1);
	raw_txn(h.fd, FRAME_COMMIT, 1);
	raw_data(h.fd, 1, "late\n", 5);
	/* Either the commit was answered before the DATA was read, or the
	 * whole connection was dropped first; never a file plus an error. */
	int got = raw_result(h.fd, &txn, &r);
	assert_int_equal(store_stop(&h), 1);
	assert_int_equal(count_dir(&h, "okbox", "new"), got == 0 ? 1 : 0);
	cleanup(&h);
}

/* The client half-closes after COMMIT: the store still answers, then
 * exits 0. */
static void test_eof_after_commit(void **state)
{
	struct harness h;
	store_start(&h, STORE_SYNC_FSYNC, CHILD_PLAIN);
	struct store_recipient ok = { "ok@example.org", "okbox" };
	raw_begin(h.fd, 1, "E1", &ok, 1);
	raw_data(h.fd, 1, "one\n", 4);
	raw_txn(h.fd, FRAME_COMMIT, 1);
	raw_begin(h.fd, 2, "E2", &ok, 1);
	raw_data(h.fd, 2, "two\n", 4);
	shutdown(h.fd, SHUT_WR);
	uint64_t txn;
	enum store_result r;
	assert_int_equal(raw_result(h.fd, &txn, &r), 0);
	assert_int_equal(txn, 1);
	assert_int_equal(r, STORE_OK);
	assert_int_equal(raw_result(h.fd, &txn, &r), -1);
	assert_int_equal(store_stop(&h), 0);
	assert_int_equal(count_dir(&h, "okbox", "new"), 1);
	assert_int_equal(count_dir(&h, "okbox", "tmp"), 0);
	cleanup(&h);
}

/* Issue 8, item 5: messages held in memory share one budget.  N open
 * messages of 250 KiB each, more than STORE_MEMORY_TOTAL_MAX together: the
 * store streams the excess to tmp/ before any is committed, and every one
 * is still stored byte for byte when committed. */
static void test_memory_budget(void **state)
{
	enum { N = 200 };
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	client_start(&h);
	size_t len = 250 * 1024;
	char *body = make_content(len, 4);
	struct store_recipient r = { "mem@example.org", "mem" };
	struct store_txn *t[N];
	char qid[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(qid[i], sizeof(qid[i]), "MB%d", i);
		t[i] = send_msg(&h, qid[i], &r, 1, body, len, 65536);
	}
	/* A small message after them: once it is answered the store has
	 * taken every DATA frame before it. */
	struct result fence = { 0 };
	struct store_txn *f = send_msg(&h, "MBF", &r, 1, "x\n", 2, 2);
	store_txn_commit(f, on_done, &fence);
	run_until(&h, &fence.calls, 1);
	assert_int_equal(fence.r, STORE_OK);
	size_t in_memory_max = STORE_MEMORY_TOTAL_MAX / len;
	size_t streamed = count_dir(&h, "mem", "tmp");
	print_message("%d open messages of %zu KiB: %zu streamed to tmp/ early\n", N, len / 1024,
	              streamed);
	assert_true(streamed >= N - in_memory_max);
	struct result res[N];
	memset(res, 0, sizeof(res));
	int done = 0;
	for (int i = 0; i < N; i++)
		store_txn_commit(t[i], on_done, &res[i]);
	while (done < N && !h.timed_out) {
		event_base_loop(h.base, EVLOOP_ONCE);
		done = 0;
		for (int i = 0; i < N; i++)
			done += res[i].calls;
	}
	assert_false(h.timed_out);
	for (int i = 0; i < N; i++) {
		assert_int_equal(res[i].r, STORE_OK);
		expect_one(&h, "mem", qid[i], "mem@example.org", body, len);
	}
	assert_int_equal(count_dir(&h, "mem", "tmp"), 0);
	assert_int_equal(store_stop(&h), 0);
	free(body);
	cleanup(&h);
}

/* The mailbox question at RCPT (issue 8, item 4), through a real store:
 * a Maildir that exists, new ones up to the client's limit, another
 * client, a name the store refuses, a cancelled question, and the client's
 * memory of what exists. */
struct asked {
	int calls;
	enum store_mailbox_answer a;
};

static void on_answer(void *arg, enum store_mailbox_answer a)
{
	struct asked *r = arg;
	r->calls++;
	r->a = a;
}

static void test_mailbox_ask(void **state)
{
	struct harness h;
	newbox_per_client = 2;
	newbox_total = 3;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	newbox_per_client = 20;
	newbox_total = 200;
	client_start(&h);
	char path[256];
	snprintf(path, sizeof(path), "%s/here", h.root);
	/* The store makes the mail root at start: wait for its first report. */
	while (store_client_free_space(h.sc) == UINT64_MAX && !h.timed_out)
		event_base_loop(h.base, EVLOOP_ONCE);
	assert_int_equal(mkdir(path, 0700), 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201) };
	struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000202) };
	const struct {
		const char *mailbox;
		const struct sockaddr_in *client;
		enum store_mailbox_answer want;
	} cases[] = {
		{ "here", &a, STORE_MAILBOX_EXISTS },
		{ "n1", &a, STORE_MAILBOX_GRANTED },
		{ "n1", &a, STORE_MAILBOX_GRANTED }, /* asked again: not counted */
		{ "n2", &a, STORE_MAILBOX_GRANTED },
		{ "n3", &a, STORE_MAILBOX_LIMIT_CLIENT },
		{ "n4", &b, STORE_MAILBOX_GRANTED },
		{ "n5", &b, STORE_MAILBOX_LIMIT_TOTAL },
		{ ".hidden", &b, STORE_MAILBOX_ERROR },
		{ "here", &b, STORE_MAILBOX_EXISTS },
	};
	assert_false(store_mailbox_known(h.sc, "here"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct asked r = { 0 }, cancelled = { 0 };
		/* A cancelled question first: its answer must not be delivered. */
		struct store_query *q = store_mailbox_ask(h.sc, "here", (struct sockaddr *)&a,
		                                          on_answer, &cancelled);
		assert_non_null(q);
		store_mailbox_cancel(q);
		assert_non_null(store_mailbox_ask(h.sc, cases[i].mailbox,
		                                  (const struct sockaddr *)cases[i].client, on_answer,
		                                  &r));
		assert_int_equal(r.calls, 0); /* never inside the call */
		run_until(&h, &r.calls, 1);
		assert_int_equal(cancelled.calls, 0);
		if (r.a != cases[i].want)
			fail_msg("%s: answer %d, want %d", cases[i].mailbox, r.a, cases[i].want);
	}
	assert_true(store_mailbox_known(h.sc, "here"));
	assert_true(store_mailbox_known(h.sc, "n2"));
	assert_false(store_mailbox_known(h.sc, "n3"));
	/* Questions answer nothing is ever created by asking. */
	snprintf(path, sizeof(path), "%s/n1", h.root);
	struct stat st;
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(store_stop(&h), 0);
	assert_int_equal(h.lost, 0);
	cleanup(&h);
}

/* A full filesystem: a 1 MiB tmpfs in the store's own mount namespace. */
static void test_no_space(void **state)
{
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_TMPFS);
	client_start(&h);
	size_t len = 2 * 1024 * 1024;
	char *body = make_content(len, 3);
	struct store_recipient r = { "full@example.org", "full" };
	struct result big = { 0 }, small = { 0 }, mem = { 0 };
	struct store_txn *t = send_msg(&h, "F1", &r, 1, body, len, 65536);
	store_txn_commit(t, on_done, &big);
	run_until(&h, &big.calls, 1);
	if (h.lost) {
		int status = store_stop(&h);
		cleanup(&h);
		free(body);
		if (status == 77)
			skip();
		fail_msg("store exited %d", status);
	}
	assert_int_equal(big.r, STORE_NOSPACE);
	/* An in-memory one whose copies cannot fit: NOSPACE from the batch's
	 * space check, before any copy is written (issue 8, item 4). */
	struct store_recipient many[8];
	char addrs[8][32], boxes[8][16];
	for (int i = 0; i < 8; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "u%d@example.org", i);
		snprintf(boxes[i], sizeof(boxes[i]), "full%d", i);
		many[i] = (struct store_recipient){ addrs[i], boxes[i] };
	}
	t = send_msg(&h, "F2", many, 8, body, STORE_MEMORY_MESSAGE_MAX, 65536);
	store_txn_commit(t, on_done, &mem);
	run_until(&h, &mem.calls, 1);
	assert_int_equal(mem.r, STORE_NOSPACE);
	/* The failed messages' files were removed: a small one fits. */
	t = send_msg(&h, "F3", &r, 1, "small\n", 6, 6);
	store_txn_commit(t, on_done, &small);
	run_until(&h, &small.calls, 1);
	assert_int_equal(small.r, STORE_OK);
	assert_true(store_client_free_space(h.sc) <= 1024 * 1024);
	assert_int_equal(store_stop(&h), 0);
	free(body);
	cleanup(&h);
}

/* ---- relayed recipients (issue 10) ---- */

/* text with each LF as CR LF: the spool's form. */
static void append_crlf(struct buf *out, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n')
			assert_int_equal(buf_append(out, "\r", 1), 0);
		assert_int_equal(buf_append(out, &text[i], 1), 0);
	}
}

static struct queue_spool *spool_make(const struct harness *h)
{
	struct queue_spool *sp;
	char why[512];
	assert_int_equal(queue_spool_open(h->spool, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why)),
	                 QUEUE_OK);
	return sp;
}

static size_t spool_count(const struct harness *h, const char *sub)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", h->spool, sub);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The spool's one entry: its envelope (the caller frees it) and its
 * message, loaded under the lock, which checks size and SHA-256. */
static void spool_one(struct queue_spool *sp, struct queue_envelope *env, struct buf *msg)
{
	struct queue_spool_list *l;
	char why[512];
	const char *id;
	assert_int_equal(queue_spool_list_open(sp, &l, why, sizeof(why)), QUEUE_OK);
	assert_int_equal(queue_spool_list_count(l), 1);
	struct queue_envelope listed = { 0 };
	assert_int_equal(queue_spool_list_next(l, &listed, &id, why, sizeof(why)), 1);
	struct queue_lock lk;
	assert_int_equal(queue_spool_lock(sp, listed.id, &lk, why, sizeof(why)), QUEUE_OK);
	buf_init(msg, 64u << 20);
	assert_int_equal(queue_spool_load(sp, &lk, env, msg, why, sizeof(why)), QUEUE_OK);
	queue_spool_unlock(&lk);
	queue_envelope_free(&listed);
	queue_spool_list_close(l);
}

static void expect_relayed(struct queue_spool *sp, const char *const *rcpts, size_t n,
                           const char *content, size_t content_len, unsigned flags)
{
	struct queue_envelope env = { 0 };
	struct buf msg, want;
	spool_one(sp, &env, &msg);
	assert_string_equal(env.sender, SENDER);
	assert_int_equal(env.origin, QUEUE_ORIGIN_SUBMISSION);
	assert_int_equal(env.flags, flags);
	assert_int_equal(env.nrcpts, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(env.rcpts[i].addr, rcpts[i]);
		assert_null(env.rcpts[i].orcpt);
		assert_int_equal(env.rcpts[i].state, QUEUE_RCPT_QUEUED);
	}
	/* The received text and the content, CR LF: no Return-Path, no
	 * Delivered-To (the next hop adds neither). */
	buf_init(&want, 64u << 20);
	append_crlf(&want, RECEIVED, strlen(RECEIVED));
	append_crlf(&want, content, content_len);
	assert_int_equal(env.size, want.len);
	assert_int_equal(msg.len, want.len);
	assert_memory_equal(msg.data, want.data, want.len);
	buf_free(&want);
	buf_free(&msg);
	queue_envelope_free(&env);
}

/* One local and two relayed recipients (one given twice): the Maildir
 * file for the local one (naming no relayed address), one spool entry for
 * the others, each once. */
static void test_relay_mixed(void **state)
{
	enum store_sync_mode modes[] = { STORE_SYNC_SYNCFS, STORE_SYNC_FSYNC };
	spool_name = "spool";
	for (size_t k = 0; k < 2; k++) {
		struct harness h;
		store_start(&h, modes[k], CHILD_PLAIN);
		struct queue_spool *sp = spool_make(&h);
		client_start(&h);
		const char *body = "Subject: out\n\nTo the world.\n.\n";
		struct store_recipient r[] = { { "far@example.net", NULL },
		                               { "alice@example.org", "alice" },
		                               { "other@example.com", NULL },
		                               { "far@example.net", NULL } };
		struct result res = { 0 };
		struct store_txn *t = send_msg(&h, "R1", r, 4, body, strlen(body), 5);
		store_txn_commit(t, on_done, &res);
		run_until(&h, &res.calls, 1);
		assert_int_equal(res.r, STORE_OK);
		expect_one(&h, "alice", "R1", "alice@example.org", body, strlen(body));
		const char *relayed[] = { "far@example.net", "other@example.com" };
		expect_relayed(sp, relayed, 2, body, strlen(body), 0);
		assert_int_equal(spool_count(&h, "tmp"), 0);
		queue_spool_close(sp);
		assert_int_equal(store_stop(&h), 0);
		cleanup(&h);
	}
	spool_name = NULL;
}

/* Relayed only: no Maildir at all, a message over the in-memory size (no
 * file to stream into), a UTF-8 address (SMTPUTF8). */
static void test_relay_only(void **state)
{
	spool_name = "spool";
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	struct queue_spool *sp = spool_make(&h);
	client_start(&h);
	size_t len = 3 * STORE_MEMORY_MESSAGE_MAX + 17;
	char *body = make_content(len, 11);
	struct store_recipient r = { "\xc3\xa9l\xc3\xa8ve@example.net", NULL };
	struct result res = { 0 };
	struct store_txn *t = send_msg(&h, "R2", &r, 1, body, len, 65536);
	store_txn_commit(t, on_done, &res);
	run_until(&h, &res.calls, 1);
	assert_int_equal(res.r, STORE_OK);
	const char *relayed[] = { r.address };
	expect_relayed(sp, relayed, 1, body, len, QUEUE_FLAG_SMTPUTF8);
	DIR *d = opendir(h.root);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		assert_true(e->d_name[0] == '.'); /* no Maildir made */
	closedir(d);
	queue_spool_close(sp);
	assert_int_equal(store_stop(&h), 0);
	free(body);
	cleanup(&h);
	spool_name = NULL;
}

/* Issue 11: a login's relayed message is DKIM-signed in the store when
 * the login's senders field allows its one From address (the field in
 * front, the rest byte for byte as unsigned); not when the field does not
 * allow it, when there are two From fields, when there is no field (a
 * login that may use any sender, a trusted network), nor for a From
 * domain without a key. */
static void test_relay_dkim_signed(void **state)
{
	struct dkim_key *key;
	char err[256];
	assert_int_equal(dkim_key_generate(DKIM_ALG_ED25519_SHA256, &key, err, sizeof(err)), 0);
	struct store_dkim_key keys[] = { { key, "example.org", "s1" } };
	dkim_keys = keys;
	dkim_nkeys = 1;
	spool_name = "spool";
	static const struct {
		const char *signer;
		const char *body;
		bool is_signed;
	} cases[] = {
		{ "@example.org", "From: Alice <alice@Example.org>\nSubject: s\n\nbody\n", true },
		{ "bob@x.test, alice@example.org", "From: alice@example.org\n\nbody\n", true },
		{ "@example.org", "From: alice@mail.example.org\n\nsub\n", false },
		/* A parent's key signs a subdomain's From (d=example.org). */
		{ "@mail.example.org", "From: alice@mail.example.org\n\nsub\n", true },
		{ "@example.org", "From: a@example.org\nFrom: b@example.org\n\nx\n", false },
		{ "@example.org", "From: a@example.org, b@example.org\n\nx\n", false },
		{ "@example.org", "Subject: no from\n\nx\n", false },
		{ NULL, "From: alice@example.org\n\nbody\n", false },
		{ "@other.test", "From: alice@example.org\n\nbody\n", false },
		{ "@other.test", "From: x@other.test\n\nbody\n", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct harness h;
		store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
		struct queue_spool *sp = spool_make(&h);
		client_start(&h);
		signer = cases[i].signer;
		struct store_recipient r = { "far@example.net", NULL };
		struct result res = { 0 };
		struct store_txn *t = send_msg(&h, "D1", &r, 1, cases[i].body,
		                               strlen(cases[i].body), 7);
		store_txn_commit(t, on_done, &res);
		run_until(&h, &res.calls, 1);
		assert_int_equal(res.r, STORE_OK);
		struct queue_envelope env = { 0 };
		struct buf msg, want;
		spool_one(sp, &env, &msg);
		buf_init(&want, 1 << 20);
		append_crlf(&want, RECEIVED, strlen(RECEIVED));
		append_crlf(&want, cases[i].body, strlen(cases[i].body));
		assert_true(msg.len >= want.len);
		/* The unsigned bytes, unchanged, at the end. */
		assert_memory_equal(msg.data + msg.len - want.len, want.data, want.len);
		assert_int_equal(env.size, msg.len);
		size_t extra = msg.len - want.len;
		if (cases[i].is_signed) {
			assert_true(extra > 0);
			assert_true(strncmp(msg.data, "DKIM-Signature: v=1; a=ed25519-sha256;", 38) == 0);
			assert_non_null(memmem(msg.data, extra, "d=example.org;", 14));
			assert_non_null(memmem(msg.data, extra, "s=s1;", 5));
		} else {
			assert_int_equal(extra, 0);
		}
		buf_free(&want);
		buf_free(&msg);
		queue_envelope_free(&env);
		queue_spool_close(sp);
		assert_int_equal(store_stop(&h), 0);
		cleanup(&h);
	}
	signer = NULL;
	spool_name = NULL;
	dkim_keys = NULL;
	dkim_nkeys = 0;
	dkim_key_free(key);
}

/* No spool (serve has none, or the queue process has not made it yet):
 * 451, and the local part written for the message is gone too.  Once the
 * spool exists the store opens it at the next message. */
static void test_relay_no_spool(void **state)
{
	const char *body = "Subject: x\n\nx\n";
	struct store_recipient r[] = { { "alice@example.org", "alice" },
	                               { "far@example.net", NULL } };
	for (int k = 0; k < 2; k++) {
		spool_name = k == 0 ? NULL : "spool";
		struct harness h;
		store_start(&h, k == 0 ? STORE_SYNC_FSYNC : STORE_SYNC_SYNCFS, CHILD_PLAIN);
		client_start(&h);
		struct result res = { 0 };
		struct store_txn *t = send_msg(&h, "N1", r, 2, body, strlen(body), 64);
		store_txn_commit(t, on_done, &res);
		run_until(&h, &res.calls, 1);
		assert_int_equal(res.r, STORE_TEMPFAIL);
		assert_int_equal(count_dir(&h, "alice", "new"), 0);
		assert_int_equal(count_dir(&h, "alice", "tmp"), 0);
		/* A message for local recipients alone is not affected. */
		struct result local = { 0 };
		t = send_msg(&h, "N2", r, 1, body, strlen(body), 64);
		store_txn_commit(t, on_done, &local);
		run_until(&h, &local.calls, 1);
		assert_int_equal(local.r, STORE_OK);
		assert_int_equal(count_dir(&h, "alice", "new"), 1);
		if (k == 1) {
			struct queue_spool *sp = spool_make(&h);
			struct result again = { 0 };
			t = send_msg(&h, "N3", r, 2, body, strlen(body), 64);
			store_txn_commit(t, on_done, &again);
			run_until(&h, &again.calls, 1);
			assert_int_equal(again.r, STORE_OK);
			assert_int_equal(count_dir(&h, "alice", "new"), 2);
			const char *relayed[] = { "far@example.net" };
			expect_relayed(sp, relayed, 1, body, strlen(body), 0);
			queue_spool_close(sp);
		}
		assert_int_equal(store_stop(&h), 0);
		cleanup(&h);
	}
	spool_name = NULL;
}

/* A full spool: 452 (STORE_NOSPACE), the local copy removed, nothing left
 * in the spool; a small relayed message then goes through. */
static void test_relay_no_space(void **state)
{
	spool_name = ".spool"; /* on the mailroot's 1 MiB tmpfs */
	spool_in_tmpfs = true;
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_TMPFS);
	client_start(&h);
	/* The Maildir copy fits; the spool's CR LF copy does not. */
	size_t len = 600 * 1024;
	char *body = make_content(len, 5);
	struct store_recipient r[] = { { "far@example.net", NULL },
	                               { "alice@example.org", "alice" } };
	struct result big = { 0 }, small = { 0 };
	struct store_txn *t = send_msg(&h, "X1", r, 2, body, len, 65536);
	store_txn_commit(t, on_done, &big);
	run_until(&h, &big.calls, 1);
	spool_name = NULL;
	spool_in_tmpfs = false;
	if (h.lost) {
		int status = store_stop(&h);
		cleanup(&h);
		free(body);
		if (status == 77)
			skip();
		fail_msg("store exited %d", status);
	}
	assert_int_equal(big.r, STORE_NOSPACE);
	/* Everything of X1 is gone: a message of about the same size fits
	 * in the Maildir alone again. */
	t = send_msg(&h, "X2", r, 2, "small\n", 6, 6);
	store_txn_commit(t, on_done, &small);
	run_until(&h, &small.calls, 1);
	assert_int_equal(small.r, STORE_OK);
	struct result local = { 0 };
	t = send_msg(&h, "X3", &r[1], 1, body, len, 65536);
	store_txn_commit(t, on_done, &local);
	run_until(&h, &local.calls, 1);
	assert_int_equal(local.r, STORE_OK);
	assert_int_equal(store_stop(&h), 0);
	free(body);
	cleanup(&h);
}

/* ---- the client when the store goes away ---- */

struct fake {
	struct harness h;
	int store_fd;
};

static void fake_start(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->h.fd = sv[0];
	f->store_fd = sv[1];
	f->h.pid = -1;
	client_start(&f->h);
}

static void fake_stop(struct fake *f)
{
	if (f->h.sc)
		store_client_free(f->h.sc);
	if (f->store_fd >= 0)
		close(f->store_fd);
	event_free(f->h.deadline);
	event_base_free(f->h.base);
}

static void spin(struct harness *h)
{
	for (int i = 0; i < 10; i++)
		event_base_loop(h->base, EVLOOP_NONBLOCK);
}

/* ---- the outbox (issue 12) ---- */

struct outbox_seen {
	const struct harness *h;
	char (*path)[512];          /* each record's path, in file order */
	char (*qid)[80];
	char (*to)[256];            /* each record's recipients, joined with ',' */
	size_t n, cap;
	int bad_fields;
};

static bool outbox_record(const struct outbox_event *ev, void *arg)
{
	struct outbox_seen *s = arg;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->path = realloc(s->path, s->cap * sizeof(*s->path));
		s->qid = realloc(s->qid, s->cap * sizeof(*s->qid));
		s->to = realloc(s->to, s->cap * sizeof(*s->to));
	}
	s->to[s->n][0] = '\0';
	for (size_t i = 0; i < ev->nto; i++) {
		size_t used = strlen(s->to[s->n]);
		snprintf(s->to[s->n] + used, sizeof(s->to[0]) - used, "%s%s", i ? "," : "", ev->to[i]);
	}
	snprintf(s->path[s->n], sizeof(s->path[0]), "%s", ev->path);
	snprintf(s->qid[s->n], sizeof(s->qid[0]), "%s", ev->id);
	s->n++;
	/* The record says what the file is. */
	char full[1024];
	snprintf(full, sizeof(full), "%s/%s", s->h->root, ev->path);
	struct stat st;
	size_t mlen = strlen(ev->mailbox);
	if (stat(full, &st) != 0 || (uint64_t)st.st_size != ev->size ||
	    strncmp(ev->path, ev->mailbox, mlen) != 0 || strncmp(ev->path + mlen, "/new/", 5) != 0 ||
	    strcmp(ev->from, SENDER) != 0 || ev->nto < 1 ||
	    strcmp(ev->client_ip, client_ip ? client_ip : "") != 0 ||
	    strcmp(ev->helo, client_helo ? client_helo : "") != 0 || ev->time < 1700000000)
		s->bad_fields++;
	return true;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Every outbox file of h, in name order, parsed into s; asserts that
 * every name is final (none left as NAME.tmp) and no record is bad. */
static void outbox_read(const struct harness *h, struct outbox_seen *s)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", h->root, OUTBOX_DIR);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	DIR *d = opendir(dir);
	assert_non_null(d);
	char (*names)[OUTBOX_NAME_MAX] = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!outbox_name_ok(e->d_name))
			fail_msg("outbox file with a wrong name: %s", e->d_name);
		names = realloc(names, (n + 1) * sizeof(*names));
		snprintf(names[n++], OUTBOX_NAME_MAX, "%s", e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	*s = (struct outbox_seen){ .h = h };
	for (size_t i = 0; i < n; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		size_t len, bad;
		char *data = read_file(path, &len);
		assert_true(outbox_parse(data, len, outbox_record, s, &bad) > 0);
		assert_int_equal(bad, 0);
		free(data);
	}
	free(names);
	assert_int_equal(s->bad_fields, 0);
}

static void outbox_seen_free(struct outbox_seen *s)
{
	free(s->to);
	free(s->path);
	free(s->qid);
}

/* One record per copy in new/, in the order the messages were committed
 * (one at a time here, so commit order is send order), with the
 * envelope, the client and the file's size; the outbox is 0700; nothing is
 * left as NAME.tmp. */
static void outbox_records(enum store_sync_mode sync)
{
	outbox_on = true;
	client_ip = "2001:db8::7";
	client_helo = "my camera \x01\xc3\xa9 %41\n@1 0";
	struct harness h;
	store_start(&h, sync, CHILD_PLAIN);
	client_start(&h);
	const char *body = "Subject: motion\n\nmotion detected\n";
	struct store_recipient r[] = {
		{ "cam+1@example.org", "cam" }, { "bob@example.org", "bob" },
		{ "Cam@example.org", "cam" },   { "\xc3\xa9l\xc3\xa8ve@example.org", "\xc3\xa9l\xc3\xa8ve" },
	};
	size_t copies = 0;
	for (int i = 0; i < 12; i++) {
		char qid[16];
		snprintf(qid, sizeof(qid), "OB%02d", i);
		size_t nr = (size_t)(i % 4) + 1;
		struct result res = { 0 };
		store_txn_commit(send_msg(&h, qid, r, nr, body, strlen(body), 9), on_done, &res);
		run_until(&h, &res.calls, 1);
		assert_int_equal(res.r, STORE_OK);
		copies += nr >= 3 ? nr - 1 : nr; /* cam twice is one copy */
	}
	assert_int_equal(store_stop(&h), 0);
	struct outbox_seen s;
	outbox_read(&h, &s);
	assert_int_equal(s.n, copies);
	size_t files = count_dir(&h, "cam", "new") + count_dir(&h, "bob", "new") +
	               count_dir(&h, "\xc3\xa9l\xc3\xa8ve", "new");
	assert_int_equal(files, copies);
	/* A copy's recipients: each distinct address given for its mailbox,
	 * in RCPT order (OB02 went to cam+1, bob and Cam). */
	size_t checked = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (strcmp(s.qid[i], "OB02") != 0)
			continue;
		checked++;
		if (strncmp(s.path[i], "cam/", 4) == 0)
			assert_string_equal(s.to[i], "cam+1@example.org,Cam@example.org");
		else
			assert_string_equal(s.to[i], "bob@example.org");
	}
	assert_int_equal(checked, 2);
	/* Commit order: the qids rise through the records, and no copy is
	 * there twice. */
	for (size_t i = 1; i < s.n; i++) {
		assert_true(strcmp(s.qid[i - 1], s.qid[i]) <= 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s.path[i], s.path[j]);
	}
	outbox_seen_free(&s);
	cleanup(&h);
	outbox_on = false;
	client_ip = client_helo = NULL;
}

static void test_outbox_syncfs(void **state)
{
	outbox_records(STORE_SYNC_SYNCFS);
}

static void test_outbox_fsync(void **state)
{
	outbox_records(STORE_SYNC_FSYNC);
}

/* Many messages in flight: records still one per copy, in answer order
 * (the order the done callbacks ran, which is the RESULT order). */
struct answered {
	char qid[64][16];
	int n;
};

struct answered_slot {
	struct answered *a;
	char qid[16];
};

static void on_answered(void *arg, enum store_result r)
{
	struct answered_slot *s = arg;
	assert_int_equal(r, STORE_OK);
	snprintf(s->a->qid[s->a->n++], sizeof(s->a->qid[0]), "%s", s->qid);
}

static void test_outbox_batched(void **state)
{
	outbox_on = true;
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	client_start(&h);
	struct answered a = { .n = 0 };
	struct answered_slot slots[64];
	struct store_recipient r = { "box@example.org", "box" };
	for (int i = 0; i < 64; i++) {
		slots[i].a = &a;
		snprintf(slots[i].qid, sizeof(slots[i].qid), "B%03d", i);
		store_txn_commit(send_msg(&h, slots[i].qid, &r, 1, "x\n", 2, 2), on_answered, &slots[i]);
	}
	run_until(&h, &a.n, 64);
	assert_int_equal(store_stop(&h), 0);
	struct outbox_seen s;
	outbox_read(&h, &s);
	assert_int_equal(s.n, 64);
	for (int i = 0; i < 64; i++)
		assert_string_equal(s.qid[i], a.qid[i]);
	outbox_seen_free(&s);
	cleanup(&h);
	outbox_on = false;
}

/* FS_IOC_SETFLAGS on a directory: 0, or -1 where the filesystem has no
 * such flags. */
static int set_immutable(const char *dir, bool on)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int flags;
	int rc = ioctl(fd, FS_IOC_GETFLAGS, &flags);
	if (rc == 0) {
		flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
		rc = ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
	return rc;
}

/* An outbox file that cannot be written fails the round's messages with
 * 451 and leaves no copy in new/: a 250 never goes without its event. */
static void test_outbox_write_fails(void **state)
{
	outbox_on = true;
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	client_start(&h);
	struct store_recipient r = { "box@example.org", "box" };
	struct result res = { 0 };
	store_txn_commit(send_msg(&h, "W1", &r, 1, "x\n", 2, 2), on_done, &res);
	run_until(&h, &res.calls, 1);
	assert_int_equal(res.r, STORE_OK);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", h.root, OUTBOX_DIR);
	if (set_immutable(dir, true) < 0) {
		assert_int_equal(store_stop(&h), 0);
		cleanup(&h);
		outbox_on = false;
		skip();
	}
	store_txn_commit(send_msg(&h, "W2", &r, 1, "y\n", 2, 2), on_done, &res);
	run_until(&h, &res.calls, 2);
	assert_int_equal(set_immutable(dir, false), 0);
	assert_int_equal(res.r, STORE_TEMPFAIL);
	assert_int_equal(count_dir(&h, "box", "new"), 1);
	assert_int_equal(count_dir(&h, "box", "tmp"), 0);
	store_txn_commit(send_msg(&h, "W3", &r, 1, "z\n", 2, 2), on_done, &res);
	run_until(&h, &res.calls, 3);
	assert_int_equal(res.r, STORE_OK);
	assert_int_equal(store_stop(&h), 0);
	struct outbox_seen seen;
	outbox_read(&h, &seen);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.qid[0], "W1");
	assert_string_equal(seen.qid[1], "W3");
	outbox_seen_free(&seen);
	cleanup(&h);
	outbox_on = false;
}

/* A message that fails at its relayed part, after the round's sync,
 * leaves new/ again: its record leaves the outbox with it, in the same
 * round as a message that was stored, or alone; both sync modes. */
static void test_outbox_relay_fails(void **state)
{
	const char *body = "Subject: x\n\nx\n";
	struct store_recipient r[] = { { "alice@example.org", "alice" },
	                               { "far@example.net", NULL } };
	outbox_on = true;
	for (int k = 0; k < 2; k++) {
		struct harness h;
		store_start(&h, k == 0 ? STORE_SYNC_FSYNC : STORE_SYNC_SYNCFS, CHILD_PLAIN);
		client_start(&h);
		struct result a = { 0 }, b = { 0 }, c = { 0 };
		/* No spool: the second one fails at its relayed part. */
		store_txn_commit(send_msg(&h, "L1", r, 1, body, strlen(body), 64), on_done, &a);
		store_txn_commit(send_msg(&h, "L2", r, 2, body, strlen(body), 64), on_done, &b);
		store_txn_commit(send_msg(&h, "L3", r, 1, body, strlen(body), 64), on_done, &c);
		run_until(&h, &a.calls, 1);
		run_until(&h, &b.calls, 1);
		run_until(&h, &c.calls, 1);
		assert_int_equal(a.r, STORE_OK);
		assert_int_equal(b.r, STORE_TEMPFAIL);
		assert_int_equal(c.r, STORE_OK);
		struct result d = { 0 };
		store_txn_commit(send_msg(&h, "L4", r, 2, body, strlen(body), 64), on_done, &d);
		run_until(&h, &d.calls, 1);
		assert_int_equal(d.r, STORE_TEMPFAIL);
		assert_int_equal(store_stop(&h), 0);
		assert_int_equal(count_dir(&h, "alice", "new"), 2);
		struct outbox_seen seen;
		outbox_read(&h, &seen);
		assert_int_equal(seen.n, 2);
		assert_string_equal(seen.qid[0], "L1");
		assert_string_equal(seen.qid[1], "L3");
		outbox_seen_free(&seen);
		cleanup(&h);
	}
	outbox_on = false;
}

/* Crash recovery: a store at start publishes (renames to NAME) the
 * NAME.tmp files of writers that are gone, and leaves alone those of a
 * writer still alive (the other store of a reload) and foreign names. */
static pid_t recovery_dead;

static void recovery_files(const struct harness *h)
{
	char dir[256], path[512];
	snprintf(dir, sizeof(dir), "%s/.rawmail", h->root);
	assert_int_equal(mkdir(h->root, 0700), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/%s", h->root, OUTBOX_DIR);
	assert_int_equal(mkdir(dir, 0700), 0);
	char dead_tmp[OUTBOX_NAME_MAX], live_tmp[OUTBOX_NAME_MAX];
	outbox_name_format(dead_tmp, 1, recovery_dead, true);
	outbox_name_format(live_tmp, 2, getpid(), true);
	const char *names[] = { dead_tmp, live_tmp, "0000000000000003-12.part" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "@1 00000000\n", 12), 12);
		close(fd);
	}
}

static bool outbox_exists(const struct harness *h, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", h->root, OUTBOX_DIR, name);
	return access(path, F_OK) == 0;
}

static void test_outbox_recovery(void **state)
{
	recovery_dead = fork();
	if (recovery_dead == 0)
		_exit(0);
	assert_int_equal(waitpid(recovery_dead, NULL, 0), recovery_dead);
	outbox_on = true;
	before_store = recovery_files;
	struct harness h;
	store_start(&h, STORE_SYNC_SYNCFS, CHILD_PLAIN);
	before_store = NULL;
	client_start(&h);
	/* One message: the store has started (and recovered) once it is
	 * answered. */
	struct store_recipient r = { "box@example.org", "box" };
	struct result res = { 0 };
	store_txn_commit(send_msg(&h, "R1", &r, 1, "x\n", 2, 2), on_done, &res);
	run_until(&h, &res.calls, 1);
	assert_int_equal(res.r, STORE_OK);
	char dead_tmp[OUTBOX_NAME_MAX], dead_final[OUTBOX_NAME_MAX], live_tmp[OUTBOX_NAME_MAX];
	outbox_name_format(dead_tmp, 1, recovery_dead, true);
	outbox_name_format(dead_final, 1, recovery_dead, false);
	outbox_name_format(live_tmp, 2, getpid(), true);
	assert_false(outbox_exists(&h, dead_tmp));
	assert_true(outbox_exists(&h, dead_final));
	assert_true(outbox_exists(&h, live_tmp));
	assert_true(outbox_exists(&h, "0000000000000003-12.part"));
	assert_int_equal(store_stop(&h), 0);
	cleanup(&h);
	outbox_on = false;
}


static void test_store_goes_away(void **state)
{
	struct fake f;
	fake_start(&f);
	struct store_recipient r = { "a@example.org", "a" };
	struct result res[3] = { { 0 } }, forgotten = { 0 }, later = { 0 }, after = { 0 };
	struct store_txn *t[3];
	for (int i = 0; i < 3; i++) {
		char qid[8];
		snprintf(qid, sizeof(qid), "P%d", i);
		t[i] = send_msg(&f.h, qid, &r, 1, "x\n", 2, 2);
		store_txn_commit(t[i], on_done, &res[i]);
	}
	struct store_txn *tf = send_msg(&f.h, "PF", &r, 1, "x\n", 2, 2);
	store_txn_commit(tf, on_done, &forgotten);
	store_txn_forget(tf);
	struct store_txn *open = send_msg(&f.h, "PO", &r, 1, "x\n", 2, 2);
	/* Questions pending when the store dies fail; a cancelled one is
	 * silent. */
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct asked asked = { 0 }, asked_cancelled = { 0 };
	assert_non_null(store_mailbox_ask(f.h.sc, "q", (struct sockaddr *)&sa, on_answer, &asked));
	store_mailbox_cancel(store_mailbox_ask(f.h.sc, "q2", (struct sockaddr *)&sa, on_answer,
	                                       &asked_cancelled));
	spin(&f.h);
	/* The frames reached the fake store. */
	char sink[65536];
	assert_true(read(f.store_fd, sink, sizeof(sink)) > 0);
	/* The store answers one, then dies. */
	uint8_t frame[FRAME_RESULT_LEN];
	frame_encode_result(frame, 2, STORE_OK);
	raw_send(f.store_fd, frame, sizeof(frame));
	uint8_t space[FRAME_SPACE_LEN];
	frame_encode_space(space, 12345);
	raw_send(f.store_fd, space, sizeof(space));
	run_until(&f.h, &res[1].calls, 1);
	assert_int_equal(res[1].r, STORE_OK);
	assert_int_equal(store_client_free_space(f.h.sc), 12345);
	close(f.store_fd);
	f.store_fd = -1;
	run_until(&f.h, &f.h.lost, 1);
	assert_int_equal(res[0].calls, 1);
	assert_int_equal(res[0].r, STORE_TEMPFAIL);
	assert_int_equal(res[1].calls, 1);
	assert_int_equal(res[2].calls, 1);
	assert_int_equal(res[2].r, STORE_TEMPFAIL);
	assert_int_equal(forgotten.calls, 0);
	assert_int_equal(asked.calls, 1);
	assert_int_equal(asked.a, STORE_MAILBOX_ERROR);
	assert_int_equal(asked_cancelled.calls, 0);
	assert_false(store_client_alive(f.h.sc));
	assert_null(store_mailbox_ask(f.h.sc, "q", (struct sockaddr *)&sa, on_answer, &asked));
	/* The open txn can no longer write; its commit fails, later. */
	assert_int_equal(store_txn_write(open, "y", 1), -1);
	store_txn_commit(open, on_done, &later);
	assert_int_equal(later.calls, 0);
	run_until(&f.h, &later.calls, 1);
	assert_int_equal(later.r, STORE_TEMPFAIL);
	/* A txn begun after the loss fails the same way. */
	struct store_txn *t4 = store_txn_begin(f.h.sc, "PA", SENDER, &r, 1, RECEIVED, NULL, NULL, NULL);
	assert_non_null(t4);
	assert_int_equal(store_txn_write(t4, "y", 1), -1);
	store_txn_commit(t4, on_done, &after);
	run_until(&f.h, &after.calls, 1);
	assert_int_equal(after.r, STORE_TEMPFAIL);
	assert_int_equal(f.h.lost, 1);
	fake_stop(&f);
}

/* A store that sends nonsense is treated as gone. */
static void test_store_misbehaves(void **state)
{
	static const uint8_t bad[][FRAME_RESULT_LEN] = {
		{ 0, 0, 0, 9, FRAME_RESULT, 0, 0, 0, 0, 0, 0, 0, 77, 0 },  /* unknown txn */
		{ 0, 0, 0, 9, FRAME_RESULT, 0, 0, 0, 0, 0, 0, 0, 1, 9 },   /* bad value */
		{ 0, 0, 0, 8, FRAME_COMMIT, 0, 0, 0, 0, 0, 0, 0, 1 },      /* a client frame */
		{ 0, 1, 0, 0, FRAME_SPACE },                              /* bad length */
		{ 0, 0, 0, 9, FRAME_RESULT, 0, 0, 0, 0, 0, 0, 0, 2, 0 },   /* before COMMIT */
		{ 0, 0, 0, 9, FRAME_ANSWER, 0, 0, 0, 0, 0, 0, 0, 9, 0 },   /* unknown question */
		{ 0, 0, 0, 9, FRAME_ANSWER, 0, 0, 0, 0, 0, 0, 0, 1, 99 },  /* bad answer */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fake f;
		fake_start(&f);
		struct store_recipient r = { "a@example.org", "a" };
		struct result res = { 0 };
		struct store_txn *t = send_msg(&f.h, "Q1", &r, 1, "x\n", 2, 2);
		store_txn_commit(t, on_done, &res);
		struct store_txn *t2 = send_msg(&f.h, "Q2", &r, 1, "x\n", 2, 2);
		spin(&f.h);
		raw_send(f.store_fd, bad[i], sizeof(bad[i]));
		run_until(&f.h, &f.h.lost, 1);
		assert_int_equal(res.calls, 1);
		assert_int_equal(res.r, STORE_TEMPFAIL);
		store_txn_abort(t2);
		fake_stop(&f);
	}
}

/* Freeing the client from inside a result callback is safe. */
static struct store_client *free_me;
static void on_done_free(void *arg, enum store_result r)
{
	on_done(arg, r);
	store_client_free(free_me);
}

static void test_free_in_callback(void **state)
{
	struct fake f;
	fake_start(&f);
	struct store_recipient r = { "a@example.org", "a" };
	struct result res1 = { 0 }, res2 = { 0 };
	struct store_txn *t1 = send_msg(&f.h, "Q1", &r, 1, "x\n", 2, 2);
	store_txn_commit(t1, on_done_free, &res1);
	struct store_txn *t2 = send_msg(&f.h, "Q2", &r, 1, "x\n", 2, 2);
	store_txn_commit(t2, on_done, &res2);
	spin(&f.h);
	uint8_t frames[2][FRAME_RESULT_LEN];
	frame_encode_result(frames[0], 1, STORE_OK);
	frame_encode_result(frames[1], 2, STORE_OK);
	free_me = f.h.sc;
	raw_send(f.store_fd, frames, sizeof(frames));
	run_until(&f.h, &res1.calls, 1);
	spin(&f.h);
	assert_int_equal(res2.calls, 0); /* freed: no more callbacks */
	f.h.sc = NULL;
	fake_stop(&f);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_multi_recipient),
		cmocka_unit_test(test_large_streamed),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_many_syncfs),
		cmocka_unit_test(test_many_fsync),
		cmocka_unit_test(test_closed_loop_syncfs),
		cmocka_unit_test(test_closed_loop_fsync),
		cmocka_unit_test(test_hostile_client),
		cmocka_unit_test(test_eof_after_commit),
		cmocka_unit_test(test_memory_budget),
		cmocka_unit_test(test_mailbox_ask),
		cmocka_unit_test(test_no_space),
		cmocka_unit_test(test_relay_mixed),
		cmocka_unit_test(test_relay_only),
		cmocka_unit_test(test_relay_dkim_signed),
		cmocka_unit_test(test_relay_no_spool),
		cmocka_unit_test(test_relay_no_space),
		cmocka_unit_test(test_outbox_syncfs),
		cmocka_unit_test(test_outbox_fsync),
		cmocka_unit_test(test_outbox_batched),
		cmocka_unit_test(test_outbox_recovery),
		cmocka_unit_test(test_outbox_write_fails),
		cmocka_unit_test(test_outbox_relay_fails),
		cmocka_unit_test(test_store_goes_away),
		cmocka_unit_test(test_store_misbehaves),
		cmocka_unit_test(test_free_in_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
