/* The auth process end to end: a forked auth_process_load +
 * auth_process_run on a socketpair with a temporary users file holding
 * yescrypt hashes made now, driven through the smtp process's
 * auth_client (server/auth_client.c) on a libevent loop, or through raw
 * frames.  Delays are measured: lower bounds asserted, upper bounds only
 * where a wrong delay would be seconds off, and orderings rather than
 * short times (the machine may be loaded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/process.h"
#include "auth/verify.h"
#include "auth/wire.h"
#include "server/auth_client.h"
#include "util/log.h"

#define TIMEOUT_S 60
#define ALICE_SENDERS "alice@example.org,@example.net"

struct harness {
	char dir[64];
	char users[96];
	char log[96];
	pid_t pid;
	struct event_base *base;
	struct event *deadline;
	struct auth_client *ac;
	int lost;
	bool timed_out;
};

struct answer {
	int calls;
	enum auth_answer a;
	char senders[256];
	bool senders_null;
	double sent, at;     /* monotonic seconds */
	int order;           /* 1 for the first answer of the test, ... */
};

static int answers_so_far;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_answer(void *arg, enum auth_answer a, const char *senders)
{
	struct answer *r = arg;
	r->calls++;
	r->a = a;
	r->at = now();
	r->order = ++answers_so_far;
	r->senders_null = senders == NULL;
	snprintf(r->senders, sizeof(r->senders), "%s", senders ? senders : "");
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

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* alice (senders) and bob (any sender), password "secret" and "hunter 2". */
static void users_write(const char *path)
{
	char setting[128], alice[256], bob[256], text[1024];
	assert_int_equal(auth_setting_new(setting, sizeof(setting)), 0);
	assert_int_equal(auth_hash_make("secret", setting, alice, sizeof(alice)), 0);
	assert_int_equal(auth_setting_new(setting, sizeof(setting)), 0);
	assert_int_equal(auth_hash_make("hunter 2", setting, bob, sizeof(bob)), 0);
	snprintf(text, sizeof(text), "# test users\nalice:%s:alice@example.org, @example.net\nbob:%s\n",
	         alice, bob);
	write_file(path, text);
}

/* Forks the auth process as serve will: load, then run on the socketpair.
 * With raw_fd, our end is returned there instead of given to a client. */
static void auth_start(struct harness *h, int *raw_fd)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/rawmail-auth-e2e-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->users, sizeof(h->users), "%s/users", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/auth.log", h->dir);
	users_write(h->users);
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
		log_init("auth", LOG_DEBUG);
		struct auth_users users;
		char err[512];
		if (auth_process_load(h->users, &users, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			_exit(78);
		}
		int rc = auth_process_run(&users, sv[1]);
		auth_users_free(&users);
		log_flush();
		_exit(rc == 0 ? 0 : 1);
	}
	close(sv[1]);
	h->base = event_base_new();
	assert_non_null(h->base);
	h->deadline = evtimer_new(h->base, on_deadline, h);
	struct timeval tv = { TIMEOUT_S, 0 };
	evtimer_add(h->deadline, &tv);
	if (raw_fd) {
		*raw_fd = sv[0];
		return;
	}
	h->ac = auth_client_new(h->base, sv[0], on_lost, h);
	assert_non_null(h->ac);
	answers_so_far = 0;
}

static void run_until(struct harness *h, const int *count, int want)
{
	while (*count < want && !h->timed_out)
		event_base_loop(h->base, EVLOOP_ONCE);
	assert_false(h->timed_out);
}

static void run_for(struct harness *h, double seconds)
{
	double end = now() + seconds;
	while (now() < end && !h->timed_out) {
		struct timeval tv = { 0, 50000 };
		event_base_loopexit(h->base, &tv);
		event_base_dispatch(h->base);
	}
}

/* A sanitizer report from the auth process lands in its log. */
static void assert_log_clean(const struct harness *h)
{
	FILE *fp = fopen(h->log, "r");
	if (!fp)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), fp)) {
		if (strstr(line, "Sanitizer") || strstr(line, "runtime error:"))
			fail_msg("auth log %s: %s", h->log, line);
	}
	fclose(fp);
}

/* Closes our end, waits for the process; its exit status. */
static int auth_stop(struct harness *h)
{
	auth_client_free(h->ac);
	h->ac = NULL;
	evtimer_del(h->deadline);
	event_free(h->deadline);
	event_base_free(h->base);
	int status;
	assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
	assert_log_clean(h);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static struct sockaddr_storage addr_of(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static struct auth_query *check(struct harness *h, const char *ip, const char *user,
                                const char *password, struct answer *r)
{
	struct sockaddr_storage ss = addr_of(ip);
	memset(r, 0, sizeof(*r));
	r->sent = now();
	struct auth_query *q =
		auth_client_check(h->ac, (struct sockaddr *)&ss, user, password, on_answer, r);
	assert_non_null(q);
	/* Never answered inside the call. */
	assert_int_equal(r->calls, 0);
	return q;
}

static void test_right_password(void **state)
{
	struct harness h;
	auth_start(&h, NULL);
	struct answer a, b;
	check(&h, "192.0.2.1", "alice", "secret", &a);
	check(&h, "2001:db8::1", "bob", "hunter 2", &b);
	run_until(&h, &b.calls, 1);
	run_until(&h, &a.calls, 1);
	assert_int_equal(a.a, AUTH_ANSWER_OK);
	assert_false(a.senders_null);
	assert_string_equal(a.senders, ALICE_SENDERS);
	assert_int_equal(b.a, AUTH_ANSWER_OK);
	assert_false(b.senders_null);
	assert_string_equal(b.senders, "");
	/* What the smtp process will do with them at MAIL. */
	assert_true(auth_senders_text_allowed(a.senders, "x@Example.NET"));
	assert_false(auth_senders_text_allowed(a.senders, "bob@example.org"));
	assert_true(auth_senders_text_allowed(b.senders, "bob@example.org"));
	printf("# right password answered in %.3f s\n", a.at - a.sent);
	assert_int_equal(auth_stop(&h), 0);
	assert_int_equal(h.lost, 0);
}

static void test_wrong_password_delay_grows(void **state)
{
	struct harness h;
	auth_start(&h, NULL);
	struct answer r;
	check(&h, "198.51.100.7", "alice", "Secret", &r);
	run_until(&h, &r.calls, 1);
	assert_int_equal(r.a, AUTH_ANSWER_FAIL);
	assert_true(r.senders_null);
	double first = r.at - r.sent;
	assert_true(first >= 1.0);
	/* Another connection from the same /24's address: the same key. */
	check(&h, "198.51.100.7", "alice", "secret2", &r);
	run_until(&h, &r.calls, 1);
	assert_int_equal(r.a, AUTH_ANSWER_FAIL);
	double second = r.at - r.sent;
	assert_true(second >= 2.0);
	/* IPv4-mapped IPv6 is the same client. */
	check(&h, "::ffff:198.51.100.7", "bob", "", &r);
	run_until(&h, &r.calls, 1);
	assert_int_equal(r.a, AUTH_ANSWER_FAIL);
	double third = r.at - r.sent;
	assert_true(third >= 4.0);
	/* A success clears it: the next failure waits 1 s again, not 8. */
	check(&h, "198.51.100.7", "alice", "secret", &r);
	run_until(&h, &r.calls, 1);
	assert_int_equal(r.a, AUTH_ANSWER_OK);
	check(&h, "198.51.100.7", "alice", "wrong", &r);
	run_until(&h, &r.calls, 1);
	assert_int_equal(r.a, AUTH_ANSWER_FAIL);
	double after_ok = r.at - r.sent;
	assert_true(after_ok >= 1.0 && after_ok < 6.0);
	printf("# wrong password delays: %.3f s, %.3f s, %.3f s; after a success %.3f s\n", first,
	       second, third, after_ok);
	assert_int_equal(auth_stop(&h), 0);
}

static void test_other_clients_not_delayed(void **state)
{
	struct harness h;
	auth_start(&h, NULL);
	/* Client A fails twice at once (1 s and 2 s, side by side). */
	struct answer a1, a2, a3, b_ok, b_fail, c_ok;
	check(&h, "203.0.113.5", "alice", "x", &a1);
	check(&h, "203.0.113.5", "alice", "y", &a2);
	run_until(&h, &a2.calls, 1);
	run_until(&h, &a1.calls, 1);
	assert_true(a2.at - a2.sent >= 2.0);
	/* Served side by side, not one after the other (3 s). */
	assert_true(a2.at - a2.sent < 2.9);
	answers_so_far = 0;
	/* A's third failure waits 4 s; meanwhile B and an IPv6 client are
	 * answered as if A did not exist. */
	check(&h, "203.0.113.5", "bob", "z", &a3);
	check(&h, "203.0.113.6", "bob", "hunter 2", &b_ok);
	check(&h, "203.0.113.6", "alice", "wrong", &b_fail);
	check(&h, "2001:db8:0:1::5", "alice", "secret", &c_ok);
	run_until(&h, &a3.calls, 1);
	assert_int_equal(b_ok.calls + b_fail.calls + c_ok.calls, 3);
	assert_int_equal(b_ok.a, AUTH_ANSWER_OK);
	assert_int_equal(c_ok.a, AUTH_ANSWER_OK);
	assert_int_equal(b_fail.a, AUTH_ANSWER_FAIL);
	assert_int_equal(a3.a, AUTH_ANSWER_FAIL);
	assert_true(b_ok.order < b_fail.order && c_ok.order < b_fail.order);
	assert_int_equal(a3.order, 4);
	/* B's failure is B's first: 1 s, not 8. */
	assert_true(b_fail.at - b_fail.sent >= 1.0);
	assert_true(a3.at - a3.sent >= 4.0);
	printf("# while A waited %.3f s: B's yes after %.3f s, B's no after %.3f s\n",
	       a3.at - a3.sent, b_ok.at - b_ok.sent, b_fail.at - b_fail.sent);
	assert_int_equal(auth_stop(&h), 0);
}

static void test_unknown_user(void **state)
{
	struct harness h;
	auth_start(&h, NULL);
	struct answer r1, r2, r3;
	check(&h, "192.0.2.10", "carol", "secret", &r1);
	check(&h, "192.0.2.11", "Alice", "secret", &r2); /* names are exact */
	check(&h, "192.0.2.12", "", "", &r3);
	run_until(&h, &r1.calls, 1);
	run_until(&h, &r2.calls, 1);
	run_until(&h, &r3.calls, 1);
	assert_int_equal(r1.a, AUTH_ANSWER_FAIL);
	assert_int_equal(r2.a, AUTH_ANSWER_FAIL);
	assert_int_equal(r3.a, AUTH_ANSWER_FAIL);
	/* Delayed like a wrong password: the delay does not tell them apart. */
	assert_true(r1.at - r1.sent >= 1.0);
	assert_true(r2.at - r2.sent >= 1.0);
	assert_int_equal(auth_stop(&h), 0);
}

static void test_cancel(void **state)
{
	struct harness h;
	auth_start(&h, NULL);
	struct answer gone_ok, gone_fail, later;
	struct auth_query *q1 = check(&h, "192.0.2.20", "alice", "secret", &gone_ok);
	struct auth_query *q2 = check(&h, "192.0.2.21", "alice", "nope", &gone_fail);
	auth_query_cancel(q1);
	auth_query_cancel(q2);
	/* The same key's next failure waits 2 s: by then both answers came. */
	check(&h, "192.0.2.21", "alice", "nope again", &later);
	run_until(&h, &later.calls, 1);
	assert_int_equal(later.a, AUTH_ANSWER_FAIL);
	assert_true(later.at - later.sent >= 2.0);
	assert_int_equal(gone_ok.calls, 0);
	assert_int_equal(gone_fail.calls, 0);
	assert_true(auth_client_alive(h.ac));
	assert_int_equal(auth_stop(&h), 0);
}

static void test_process_killed(void **state)
{
	struct harness h;
	auth_start(&h, NULL);
	struct answer ok, pending1, pending2, cancelled;
	check(&h, "192.0.2.30", "bob", "hunter 2", &ok);
	run_until(&h, &ok.calls, 1);
	check(&h, "192.0.2.31", "bob", "wrong", &pending1);
	check(&h, "192.0.2.32", "alice", "secret", &pending2);
	struct auth_query *q = check(&h, "192.0.2.33", "alice", "wrong", &cancelled);
	auth_query_cancel(q);
	/* Killed before the delayed answer (and perhaps before reading). */
	run_for(&h, 0.2);
	assert_int_equal(kill(h.pid, SIGKILL), 0);
	run_until(&h, &pending1.calls, 1);
	run_until(&h, &h.lost, 1);
	assert_int_equal(pending1.a, AUTH_ANSWER_TEMPFAIL);
	assert_true(pending1.senders_null);
	/* pending2 may have been answered before the kill. */
	assert_int_equal(pending2.calls, 1);
	assert_true(pending2.a == AUTH_ANSWER_TEMPFAIL || pending2.a == AUTH_ANSWER_OK);
	assert_int_equal(cancelled.calls, 0);
	assert_int_equal(h.lost, 1);
	assert_false(auth_client_alive(h.ac));
	struct sockaddr_storage ss = addr_of("192.0.2.34");
	assert_null(auth_client_check(h.ac, (struct sockaddr *)&ss, "bob", "hunter 2", on_answer,
	                              &ok));
	assert_int_equal(auth_stop(&h), 128 + SIGKILL);
}

/* The process ends when the smtp process closes its end (0), without
 * waiting to send the answers still delayed, and ends with an error on a frame that breaks
 * the format. */
static void test_process_ends(void **state)
{
	struct harness h;
	int fd;
	auth_start(&h, &fd);
	uint8_t key[AUTH_WIRE_KEY_LEN] = { 4, 192, 0, 2, 40 };
	uint8_t f[AUTH_WIRE_CHECK_FRAME_MAX];
	size_t n = auth_wire_encode_check(f, 1, key, "alice", 5, "wrong", 5);
	assert_int_equal(write(fd, f, n), (ssize_t)n);
	usleep(200 * 1000);
	/* Our end closed for writing: the process ends without waiting to
	 * send the delayed no (nobody would read it). */
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	char c;
	assert_int_equal(read(fd, &c, 1), 0);
	close(fd);
	assert_int_equal(auth_stop(&h), 0);

	auth_start(&h, &fd);
	/* An ANSWER sent to the auth process. */
	uint8_t a[AUTH_WIRE_ANSWER_FRAME_MAX];
	n = auth_wire_encode_answer(a, 1, AUTH_WIRE_OK, NULL, 0);
	assert_int_equal(write(fd, a, n), (ssize_t)n);
	assert_int_equal(read(fd, &c, 1), 0); /* closed without an answer */
	close(fd);
	assert_int_equal(auth_stop(&h), 1);
}

/* Raw frames: a CHECK split across writes is answered once whole. */
static void test_split_frame(void **state)
{
	struct harness h;
	int fd;
	auth_start(&h, &fd);
	uint8_t key[AUTH_WIRE_KEY_LEN] = { 4, 192, 0, 2, 50 };
	uint8_t f[AUTH_WIRE_CHECK_FRAME_MAX * 2];
	size_t n = auth_wire_encode_check(f, 77, key, "bob", 3, "hunter 2", 8);
	size_t n2 = auth_wire_encode_check(f + n, 78, key, "alice", 5, "secret", 6);
	for (size_t i = 0; i < n + n2; i++) {
		assert_int_equal(write(fd, f + i, 1), 1);
		if (i % 7 == 0)
			usleep(1000);
	}
	uint8_t in[256];
	size_t got = 0, want = 2 * (AUTH_WIRE_HEADER_LEN + AUTH_WIRE_ANSWER_MIN) + strlen(ALICE_SENDERS);
	while (got < want) {
		ssize_t r = read(fd, in + got, sizeof(in) - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(got, want);
	size_t len;
	const char *why;
	struct auth_wire_answer a;
	assert_int_equal(auth_wire_header_decode(in, got, AUTH_WIRE_ANSWER, &len, &why), AUTH_WIRE_DONE);
	assert_int_equal(auth_wire_decode_answer(in + 5, len, &a, &why), AUTH_WIRE_DONE);
	assert_true(a.id == 77 && a.result == AUTH_WIRE_OK && a.senders_len == 0);
	size_t off = 5 + len;
	assert_int_equal(auth_wire_header_decode(in + off, got - off, AUTH_WIRE_ANSWER, &len, &why),
	                 AUTH_WIRE_DONE);
	assert_int_equal(auth_wire_decode_answer(in + off + 5, len, &a, &why), AUTH_WIRE_DONE);
	assert_true(a.id == 78 && a.result == AUTH_WIRE_OK);
	assert_memory_equal(a.senders, ALICE_SENDERS, strlen(ALICE_SENDERS));
	close(fd);
	assert_int_equal(auth_stop(&h), 0);
}

/* The client against a fake auth process on a bare socketpair: the CHECK
 * it sends says what was asked (the frame written from the wiped-on-free
 * reference intact), an answer is delivered with its senders, and an
 * answer the client cannot trust (an unknown id, a malformed frame) loses
 * the connection: TEMPFAIL for what is pending, on_lost once. */
static void read_check(int fd, struct auth_wire_check *c, uint8_t *buf, size_t bufsize)
{
	size_t got = 0, len = 0;
	const char *why;
	for (;;) {
		ssize_t r = read(fd, buf + got, bufsize - got);
		assert_true(r > 0);
		got += (size_t)r;
		if (auth_wire_header_decode(buf, got, AUTH_WIRE_CHECK, &len, &why) == AUTH_WIRE_DONE &&
		    got >= AUTH_WIRE_HEADER_LEN + len)
			break;
	}
	assert_int_equal(got, AUTH_WIRE_HEADER_LEN + len);
	assert_int_equal(auth_wire_decode_check(buf + AUTH_WIRE_HEADER_LEN, len, c, &why),
	                 AUTH_WIRE_DONE);
}

static void test_client_against_fake(void **state)
{
	struct harness h;
	memset(&h, 0, sizeof(h));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	h.base = event_base_new();
	h.deadline = evtimer_new(h.base, on_deadline, &h);
	struct timeval tv = { TIMEOUT_S, 0 };
	evtimer_add(h.deadline, &tv);
	h.ac = auth_client_new(h.base, sv[0], on_lost, &h);
	assert_non_null(h.ac);
	answers_so_far = 0;

	struct answer r1, r2, r3;
	check(&h, "2001:db8:7:8:9::1", "alice", "pa ss\xff", &r1);
	check(&h, "192.0.2.60", "bob", "x", &r2);
	run_for(&h, 0.1); /* let the bufferevent write */
	uint8_t buf[2 * AUTH_WIRE_CHECK_FRAME_MAX];
	struct auth_wire_check c;
	read_check(sv[1], &c, buf, AUTH_WIRE_HEADER_LEN + AUTH_WIRE_CHECK_MIN + 5 + 6);
	uint8_t key6[AUTH_WIRE_KEY_LEN] = { 6, 0x20, 0x01, 0x0d, 0xb8, 0, 7, 0, 8 };
	assert_memory_equal(c.key, key6, AUTH_WIRE_KEY_LEN);
	assert_int_equal(c.user_len, 5);
	assert_memory_equal(c.user, "alice", 5);
	assert_int_equal(c.password_len, 6);
	assert_memory_equal(c.password, "pa ss\xff", 6);
	uint64_t id1 = c.id;
	read_check(sv[1], &c, buf, sizeof(buf));
	assert_memory_equal(c.user, "bob", 3);
	assert_true(c.id != id1);

	uint8_t a[AUTH_WIRE_ANSWER_FRAME_MAX];
	size_t n = auth_wire_encode_answer(a, id1, AUTH_WIRE_OK, "@example.org", 12);
	assert_int_equal(write(sv[1], a, n), (ssize_t)n);
	run_until(&h, &r1.calls, 1);
	assert_int_equal(r1.a, AUTH_ANSWER_OK);
	assert_string_equal(r1.senders, "@example.org");
	/* The same id again: unknown now. */
	check(&h, "192.0.2.61", "carol", "y", &r3);
	assert_int_equal(write(sv[1], a, n), (ssize_t)n);
	run_until(&h, &h.lost, 1);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.a, AUTH_ANSWER_TEMPFAIL);
	assert_true(r2.senders_null);
	assert_int_equal(r3.calls, 1);
	assert_int_equal(r3.a, AUTH_ANSWER_TEMPFAIL);
	assert_int_equal(r1.calls, 1);
	run_for(&h, 0.1);
	assert_int_equal(h.lost, 1);
	auth_client_free(h.ac);
	close(sv[1]);

	/* A frame of the wrong type. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	h.lost = 0;
	h.ac = auth_client_new(h.base, sv[0], on_lost, &h);
	check(&h, "192.0.2.62", "bob", "x", &r1);
	uint8_t k[AUTH_WIRE_KEY_LEN] = { 4 };
	n = auth_wire_encode_check(buf, 1, k, "a", 1, "b", 1);
	assert_int_equal(write(sv[1], buf, n), (ssize_t)n);
	run_until(&h, &h.lost, 1);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.a, AUTH_ANSWER_TEMPFAIL);
	auth_client_free(h.ac);
	close(sv[1]);
	evtimer_del(h.deadline);
	event_free(h.deadline);
	event_base_free(h.base);
}

static void test_load_refuses(void **state)
{
	char dir[] = "/tmp/rawmail-auth-load-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], err[512];
	snprintf(path, sizeof(path), "%s/users", dir);
	struct auth_users u;
	assert_int_equal(auth_process_load(path, &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	write_file(path, "# ok\nalice:cleartext\n");
	assert_int_equal(auth_process_load(path, &u, err, sizeof(err)), -1);
	char want[160];
	snprintf(want, sizeof(want), "%s:2: ", path);
	assert_memory_equal(err, want, strlen(want));
	assert_int_equal(u.n, 0);
	assert_int_equal(auth_process_load(dir, &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	users_write(path);
	assert_int_equal(auth_process_load(path, &u, err, sizeof(err)), 0);
	assert_int_equal(u.n, 2);
	auth_users_free(&u);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	/* As serve does: a write to a killed auth process is an error, not
	 * a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_refuses),
		cmocka_unit_test(test_right_password),
		cmocka_unit_test(test_wrong_password_delay_grows),
		cmocka_unit_test(test_other_clients_not_delayed),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_process_killed),
		cmocka_unit_test(test_process_ends),
		cmocka_unit_test(test_split_frame),
		cmocka_unit_test(test_client_against_fake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
