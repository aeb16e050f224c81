/* tool_dsn --host HOST --sender ADDR [--arrival EPOCH] [--date EPOCH]
 *          [--tz MINUTES] [--random HEX48]
 *          --rcpt ADDR [--orcpt ADDR] [--action failed|delayed] [--status X.Y.Z]
 *          [--remote-mta HOST] [--reply TEXT] [--reason TEXT] [--last EPOCH]
 *          [--until EPOCH]  [--rcpt ADDR ...]...
 *
 * Prints on stdout the delivery status notification msg_dsn_build
 * (src/msg/dsn.c) makes for these arguments, with the original message
 * read from stdin.  The options after a --rcpt describe that recipient.
 * In --reply and --reason, the two characters "\n" stand for a line
 * feed, "\r" for a carriage return and "\\" for a backslash, so a test can
 * pass a multi-line reply.  An error is printed on stderr, exit status
 * msg_error_exit_code (64 for a usage error of the tool itself).  Only
 * for tests/integration/test_dsn.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/dsn.h"
#include "util/text.h"

#define TOOL_RCPTS_MAX 64
#define TOOL_INPUT_MAX (64u * 1024u * 1024u)

static long long tool_number(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "tool_dsn: not a number: %s\n", s);
		exit(64);
	}
	return v;
}

/* Decodes \n, \r and \\ in place; returns the length. */
static size_t tool_unescape(char *s)
{
	size_t o = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '\\' && (s[i + 1] == 'n' || s[i + 1] == 'r' || s[i + 1] == '\\')) {
			i++;
			s[o++] = s[i] == 'n' ? '\n' : s[i] == 'r' ? '\r' : '\\';
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	return o;
}

int main(int argc, char **argv)
{
	static struct msg_dsn_recipient rcpts[TOOL_RCPTS_MAX];
	struct msg_dsn d = { .stamp = { .date = 1739437445, .tz_minutes = 0 } };
	for (size_t i = 0; i < MSG_RANDOM_LEN; i++)
		d.stamp.random[i] = (unsigned char)(i * 7 + 1);
	struct msg_dsn_recipient *r = NULL;
	size_t n = 0;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr, "tool_dsn: %s needs a value\n", o);
			return 64;
		}
		char *v = argv[++i];
		if (!strcmp(o, "--host"))
			d.reporting_mta = v;
		else if (!strcmp(o, "--sender"))
			d.sender = v;
		else if (!strcmp(o, "--arrival"))
			d.arrival = (time_t)tool_number(v);
		else if (!strcmp(o, "--date"))
			d.stamp.date = (time_t)tool_number(v);
		else if (!strcmp(o, "--tz"))
			d.stamp.tz_minutes = (int)tool_number(v);
		else if (!strcmp(o, "--random")) {
			if (strlen(v) != 2 * MSG_RANDOM_LEN) {
				fprintf(stderr, "tool_dsn: --random takes %d hex digits\n",
				        2 * MSG_RANDOM_LEN);
				return 64;
			}
			for (size_t k = 0; k < MSG_RANDOM_LEN; k++) {
				int hi = text_hex_value((unsigned char)v[2 * k]),
				    lo = text_hex_value((unsigned char)v[2 * k + 1]);
				if (hi < 0 || lo < 0) {
					fprintf(stderr, "tool_dsn: --random: not hex\n");
					return 64;
				}
				d.stamp.random[k] = (unsigned char)(hi << 4 | lo);
			}
		} else if (!strcmp(o, "--rcpt")) {
			if (n == TOOL_RCPTS_MAX) {
				fprintf(stderr, "tool_dsn: too many recipients\n");
				return 64;
			}
			r = &rcpts[n++];
			r->final_recipient = v;
		} else if (!r) {
			fprintf(stderr, "tool_dsn: %s before any --rcpt\n", o);
			return 64;
		} else if (!strcmp(o, "--orcpt"))
			r->original_recipient = v;
		else if (!strcmp(o, "--action")) {
			if (!strcmp(v, "failed"))
				r->action = MSG_DSN_FAILED;
			else if (!strcmp(v, "delayed"))
				r->action = MSG_DSN_DELAYED;
			else {
				fprintf(stderr, "tool_dsn: --action failed|delayed\n");
				return 64;
			}
		} else if (!strcmp(o, "--status"))
			r->status = v;
		else if (!strcmp(o, "--remote-mta"))
			r->remote_mta = v;
		else if (!strcmp(o, "--reply")) {
			r->diagnostic = v;
			r->diagnostic_len = tool_unescape(v);
		} else if (!strcmp(o, "--reason")) {
			tool_unescape(v);
			r->reason = v;
		} else if (!strcmp(o, "--last"))
			r->last_attempt = (time_t)tool_number(v);
		else if (!strcmp(o, "--until"))
			r->will_retry_until = (time_t)tool_number(v);
		else {
			fprintf(stderr, "tool_dsn: unknown option %s\n", o);
			return 64;
		}
	}
	d.rcpts = rcpts;
	d.rcpt_count = n;

	struct buf in;
	buf_init(&in, TOOL_INPUT_MAX);
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(&in, chunk, got) < 0) {
			fprintf(stderr, "tool_dsn: input too big\n");
			return 65;
		}
	d.original = in.data ? in.data : "";
	d.original_len = in.len;

	struct buf out;
	buf_init(&out, TOOL_INPUT_MAX);
	struct msg_error err;
	memset(&err, 0, sizeof(err));
	if (msg_dsn_build(&d, &out, &err) < 0) {
		fprintf(stderr, "tool_dsn: %s\n", err.text);
		buf_free(&out);
		buf_free(&in);
		return msg_error_exit_code(err.status);
	}
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	buf_free(&in);
	return 0;
}
