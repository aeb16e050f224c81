/* tool_dkim_sign KEY DOMAIN SELECTOR N < MESSAGE
 *
 * Signs the message on standard input N times with dkim_sign (src/msg/
 * dkim_sign.c), as `rawmail send` does before queueing, and prints the
 * last DKIM-Signature field, then "us_per_message X" (wall time of the
 * loop, divided by N) on standard error.  For bench/dkim.py, which
 * compares the signing cost with dkimpy and opendkim on the same
 * messages.  Exits 0, 64 on a usage error, 1 when signing fails. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "msg/dkim.h"
#include "util/buf.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: tool_dkim_sign KEY DOMAIN SELECTOR N < MESSAGE\n");
		return 64;
	}
	long n = strtol(argv[4], NULL, 10);
	if (n < 1)
		return 64;
	struct buf msg;
	buf_init(&msg, 1u << 30);
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(&msg, chunk, got) != 0)
			return 1;
	char err[512];
	struct dkim_key *key = NULL;
	if (dkim_key_load(argv[1], &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "tool_dkim_sign: %s\n", err);
		return 1;
	}
	struct buf out;
	buf_init(&out, 1u << 20);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		out.len = 0;
		if (dkim_sign(key, argv[2], argv[3], time(NULL), msg.data, msg.len, &out, err,
		              sizeof(err)) != 0) {
			fprintf(stderr, "tool_dkim_sign: %s\n", err);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / n;
	fwrite(out.data, 1, out.len, stdout);
	fprintf(stderr, "us_per_message %.1f\n", us);
	dkim_key_free(key);
	buf_free(&out);
	buf_free(&msg);
	return 0;
}
