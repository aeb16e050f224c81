/* The message `rawmail send` sends: stdin read whole, then composed (-s)
 * or checked and completed as a raw RFC 5322 message (send.h). */
#include "cli/send.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "msg/attach.h"
#include "msg/compose.h"
#include "msg/raw.h"
#include "util/hostname.h"

/* True at a line that is only "." (LF or CRLF): the end of input for a
 * sendmail called without -i (sendmail(8)'s old convention, which mail
 * programs relying on it still use). */
static bool lone_dot(const char *line, size_t len)
{
	return (len == 2 && line[0] == '.' && line[1] == '\n') ||
	       (len == 3 && line[0] == '.' && line[1] == '\r' && line[2] == '\n');
}

/* Reads all of in into b.  1 when the input is larger than b's maximum. */
static int read_input(FILE *in, bool dot_ends, struct buf *b)
{
	if (dot_ends) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		int rc = 0;
		while ((n = getline(&line, &cap, in)) > 0) {
			if (lone_dot(line, (size_t)n))
				break;
			if (buf_append(b, line, (size_t)n) != 0) {
				rc = 1;
				break;
			}
		}
		free(line);
		if (rc == 0 && ferror(in))
			rc = -1;
		return rc;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		if (buf_append(b, chunk, n) != 0)
			return 1;
	return ferror(in) ? -1 : 0;
}

void send_message_stamp(struct msg_stamp *st, const char *hostname)
{
	st->date = time(NULL);
	struct tm tm;
	st->tz_minutes = localtime_r(&st->date, &tm) ? (int)(tm.tm_gmtoff / 60) : 0;
	st->hostname = hostname;
	if (getrandom(st->random, sizeof(st->random), 0) != (ssize_t)sizeof(st->random)) {
		/* Never without entropy on Linux >= 3.17 after boot; the time and
		 * address still make a collision unlikely. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(st->random, &ts, sizeof(ts) < sizeof(st->random) ? sizeof(ts)
		                                                          : sizeof(st->random));
	}
}

static int report(const struct send_opts *o, const struct msg_error *err)
{
	fprintf(stderr, "%s: %s\n", o->prog, err->text);
	return msg_error_exit_code(err->status);
}

/* -v: what mending changed, and that nothing was lost. */
static void report_mended(const struct send_opts *o, unsigned mended)
{
	if (mended & MSG_RAW_MENDED_QP)
		fprintf(stderr, "%s: note: a body line is over 998 octets: the body is sent "
		                "quoted-printable (nothing lost)\n", o->prog);
	if (mended & MSG_RAW_MENDED_BROKEN)
		fprintf(stderr, "%s: note: a body line is over 998 octets: broken with CR LF SPACE "
		                "as Postfix does (base64 ignores it; nothing lost)\n", o->prog);
	if (mended & MSG_RAW_MENDED_FOLDED)
		fprintf(stderr, "%s: note: a header line is over 998 octets: folded\n", o->prog);
}

static int compose(const struct send_opts *o, const char *from, const char *const *to,
                   size_t nto, const struct buf *body,
                   const struct msg_stamp *stamp, struct buf *msg)
{
	struct msg_error err = { 0 };
	struct buf *files = calloc(o->nattach ? o->nattach : 1, sizeof(*files));
	struct msg_attachment *att = calloc(o->nattach ? o->nattach : 1, sizeof(*att));
	int rc = 0;
	if (!files || !att) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		rc = SEND_EXIT_OSERR;
		goto out;
	}
	for (size_t i = 0; i < o->nattach; i++) {
		buf_init(&files[i], SEND_MESSAGE_MAX);
		if (msg_attach_read_file(o->attach[i], &files[i], &err) != 0) {
			rc = report(o, &err);
			goto out;
		}
		att[i] = (struct msg_attachment){ .name = o->attach[i],
		                                  .data = files[i].data ? files[i].data : "",
		                                  .len = files[i].len };
	}
	struct msg_compose c = {
		.from = from,
		.from_name = o->from_name,
		.to = to,
		.to_count = nto,
		.subject = o->subject,
		.body = body->data ? body->data : "",
		.body_len = body->len,
		.attachments = att,
		.attachment_count = o->nattach,
		.stamp = *stamp,
	};
	if (msg_compose_build(&c, msg, &err) != 0)
		rc = report(o, &err);
out:
	if (files)
		for (size_t i = 0; i < o->nattach; i++)
			buf_free(&files[i]);
	free(files);
	free(att);
	return rc;
}

int send_message_build(const struct send_opts *o, const char *from, const char *const *to,
                       size_t nto, FILE *in, struct buf *msg, struct msg_recipients *rcpts)
{
	struct buf input;
	buf_init(&input, SEND_MESSAGE_MAX);
	int r = read_input(in, o->dot_ends, &input);
	if (r != 0) {
		if (r > 0)
			fprintf(stderr, "%s: the message is larger than %u MiB\n", o->prog,
			        SEND_MESSAGE_MAX / (1024 * 1024));
		else
			fprintf(stderr, "%s: cannot read the message from standard input: %s\n",
			        o->prog, strerror(errno));
		buf_free(&input);
		return r > 0 ? SEND_EXIT_DATAERR : SEND_EXIT_NOINPUT;
	}
	char host[256];
	hostname_get(host, sizeof(host), "/etc/hosts");
	struct msg_stamp stamp;
	send_message_stamp(&stamp, host);

	int rc = 0;
	if (o->subject || o->nattach > 0) {
		rc = compose(o, from, to, nto, &input, &stamp, msg);
	} else {
		unsigned mended = 0;
		struct msg_raw raw = {
			.from = from,
			.from_name = o->from_name,
			.stamp = stamp,
			.extract_recipients = o->extract,
			/* Postfix's sendmail and its submission service both
			 * append @myorigin; rawmail send is the same program
			 * as its sendmail entry, and a From: root is as
			 * unusable to a receiver whichever way it came. */
			.origin = o->origin ? o->origin : host,
			/* The sendmail entry (quiet) mends long lines: cron and
			 * PHP discard its error and the mail would be lost.
			 * rawmail send keeps refusing (exit 65, with the line
			 * named): someone at a terminal can fix the file. */
			.mend_long_lines = o->quiet,
			.mended = &mended,
		};
		struct msg_error err = { 0 };
		if (msg_raw_prepare(&raw, input.data ? input.data : "", input.len, msg, rcpts,
		                    &err) != 0)
			rc = report(o, &err);
		else if (o->verbose)
			report_mended(o, mended);
	}
	buf_free(&input);
	return rc;
}
