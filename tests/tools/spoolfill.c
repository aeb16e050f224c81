/* tool_spoolfill — the queue's spool from outside (src/queue/spool.c), for
 * benchmarks and integration tests:
 *
 *   tool_spoolfill fill DIR N [SIZE [LATER]]   N entries of SIZE octets
 *       (default 2048, two recipients each) without a sync per file, then
 *       one syncfs: a bulk writer for bench/spool_list, not a durable
 *       enqueue.  LATER: their next attempt is that many seconds from now
 *       (default 0: due at once).
 *   tool_spoolfill list DIR            every entry listed and parsed, as
 *       `rawmail queue list` will: prints "listed N entries (E unreadable)
 *       in MS ms".
 *   tool_spoolfill enqueue DIR RCPT    the message on stdin, queued
 *       durably: "queued as ID", exit 0; else the reason on stderr and 75
 *       (temporary: a full disk) or 73 (permanent: cannot create).
 *
 * Exit 64 on a usage error. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/buf.h"
#include "util/id.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: tool_spoolfill fill DIR N [SIZE [LATER]] | list DIR | enqueue DIR RCPT\n");
	return 64;
}

static int fill(const char *dir, long n, long size, long later)
{
	struct queue_spool *sp;
	char why[512];
	if (queue_spool_open(dir, QUEUE_SPOOL_CREATE | QUEUE_SPOOL_NOSYNC, &sp, why, sizeof(why)) !=
	    QUEUE_OK) {
		fprintf(stderr, "%s\n", why);
		return 73;
	}
	char *msg = malloc((size_t)size + 1);
	int head = snprintf(msg, (size_t)size + 1,
	                    "From: bench@example.org\r\nTo: a@example.net\r\nSubject: fill\r\n\r\n");
	for (long i = head; i < size; i++)
		msg[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
	double t0 = now_ms();
	for (long i = 0; i < n; i++) {
		struct queue_envelope env = { 0 };
		char rcpt[64];
		env.created = time(NULL);
		env.origin = QUEUE_ORIGIN_SENDMAIL;
		snprintf(rcpt, sizeof(rcpt), "user%ld@d%ld.example.net", i, i % 10);
		if (queue_envelope_set_sender(&env, "bench@example.org") < 0 ||
		    queue_envelope_add_rcpt(&env, rcpt, NULL) < 0 ||
		    queue_envelope_add_rcpt(&env, "postmaster@example.net", NULL) < 0) {
			fprintf(stderr, "out of memory\n");
			return 75;
		}
		for (size_t k = 0; k < env.nrcpts; k++)
			env.rcpts[k].next = later > 0 ? env.created + later : 0;
		enum queue_status st = queue_spool_enqueue(sp, &env, msg, (size_t)size, why, sizeof(why));
		queue_envelope_free(&env);
		if (st != QUEUE_OK) {
			fprintf(stderr, "entry %ld: %s\n", i, why);
			return st == QUEUE_TEMP ? 75 : 73;
		}
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	printf("filled %ld entries of %ld octets in %.0f ms\n", n, size, now_ms() - t0);
	free(msg);
	queue_spool_close(sp);
	return 0;
}

static int list(const char *dir)
{
	struct queue_spool *sp;
	struct queue_spool_list *l;
	char why[512];
	double t0 = now_ms();
	if (queue_spool_open(dir, 0, &sp, why, sizeof(why)) != QUEUE_OK ||
	    queue_spool_list_open(sp, &l, why, sizeof(why)) != QUEUE_OK) {
		fprintf(stderr, "%s\n", why);
		return 73;
	}
	size_t ok = 0, bad = 0, rcpts = 0;
	struct queue_envelope env;
	const char *id;
	int rc;
	while ((rc = queue_spool_list_next(l, &env, &id, why, sizeof(why))) != 0) {
		if (rc < 0) {
			bad++;
			continue;
		}
		ok++;
		rcpts += env.nrcpts;
		queue_envelope_free(&env);
	}
	queue_spool_list_close(l);
	queue_spool_close(sp);
	printf("listed %zu entries, %zu recipients (%zu unreadable) in %.0f ms\n", ok, rcpts, bad,
	       now_ms() - t0);
	return 0;
}

static int enqueue(const char *dir, const char *rcpt)
{
	struct buf msg;
	char chunk[65536], why[512];
	buf_init(&msg, 64u * 1024 * 1024);
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(&msg, chunk, n) < 0) {
			fprintf(stderr, "message too large\n");
			return 73;
		}
	struct queue_spool *sp;
	enum queue_status st = queue_spool_open(dir, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why));
	if (st == QUEUE_OK) {
		struct queue_envelope env = { 0 };
		env.created = time(NULL);
		if (queue_envelope_set_sender(&env, "tool@example.org") < 0 ||
		    queue_envelope_add_rcpt(&env, rcpt, NULL) < 0) {
			fprintf(stderr, "out of memory\n");
			return 75;
		}
		st = queue_spool_enqueue(sp, &env, msg.data ? msg.data : "", msg.len, why, sizeof(why));
		if (st == QUEUE_OK)
			printf("queued as %s\n", env.id);
		queue_envelope_free(&env);
		queue_spool_close(sp);
	}
	buf_free(&msg);
	if (st == QUEUE_OK)
		return 0;
	fprintf(stderr, "not queued (%s): %s\n", queue_status_name(st), why);
	return st == QUEUE_TEMP ? 75 : 73;
}

int main(int argc, char **argv)
{
	id_init();
	if (argc >= 4 && strcmp(argv[1], "fill") == 0) {
		long n = strtol(argv[3], NULL, 10);
		long size = argc >= 5 ? strtol(argv[4], NULL, 10) : 2048;
		long later = argc >= 6 ? strtol(argv[5], NULL, 10) : 0;
		if (n < 0 || size < 100 || size > 64L * 1024 * 1024 || later < 0)
			return usage();
		return fill(argv[2], n, size, later);
	}
	if (argc == 3 && strcmp(argv[1], "list") == 0)
		return list(argv[2]);
	if (argc == 4 && strcmp(argv[1], "enqueue") == 0)
		return enqueue(argv[2], argv[3]);
	return usage();
}
