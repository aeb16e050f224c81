/* `sendmail -bs`: SMTP on standard input and output, the way Symfony
 * Mailer and Laravel submit mail by default (and Postfix's sendmail -bs
 * serves).  The server session of smtp/session.h, the one `serve` drives
 * over sockets, is driven here with blocking reads and writes: greeting,
 * EHLO/HELO, MAIL, RCPT, DATA or BDAT (dot-unstuffing and bare line
 * endings by the session's content decoder), RSET, QUIT.
 *
 * This is local submission by a user of this machine, so RCPT takes any
 * destination the address parser accepts (no relay rules: the user could
 * run `rawmail send` as well); domains go in their A-label form, as send
 * writes them.  Each accepted message is completed as the sendmail entry
 * completes one (a missing From, Date, Message-ID added; Bcc removed),
 * given a Received: line naming the user, queued durably in the spool
 * (queue/spool.h) before its 250, and its first attempt is started in
 * the background (cli/queue_kick.h), as Postfix's sendmail does.
 *
 * Exit status: 0 after QUIT or an end of input between transactions; 75
 * when the spool cannot be opened (421 to the client) or the input ended
 * inside a transaction (nothing of it is queued). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/queue_kick.h"
#include "cli/send.h"
#include "dns/mx.h"
#include "msg/header.h"
#include "msg/raw.h"
#include "queue/maildrop.h"
#include "queue/spool.h"
#include "smtp/session.h"
#include "util/buf.h"
#include "util/hostname.h"
#include "util/id.h"
#include "util/limits.h"

/* Bad commands before 421 and the end: as serve's default. */
#define BS_MAX_ERRORS 20
#define BS_READ_CHUNK 65536

struct bs {
	const struct send_opts *o;
	struct smtp_session s;
	struct queue_spool *sp;  /* NULL when drop is set */
	const char *drop;        /* a user's: the system spool's maildrop */
	char dir[4096];          /* the spool's directory */
	char host[256];
	struct buf out;          /* replies not yet written */
	char *in;                /* input read, not yet taken by the session */
	size_t in_start, in_len, in_cap;
	bool discarding;         /* inside an overlong command line */
	bool out_failed;         /* the client no longer reads */
	struct buf msg;          /* the message as decoded, with CR LF line ends */
};

/* ---- output ---------------------------------------------------------- */

static void bs_flush(struct bs *b)
{
	size_t off = 0;
	while (off < b->out.len && !b->out_failed) {
		ssize_t n = write(STDOUT_FILENO, b->out.data + off, b->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			b->out_failed = true;
			break;
		}
		off += (size_t)n;
	}
	buf_reset(&b->out);
}

static void op_send(void *ctx, const char *data, size_t len)
{
	struct bs *b = ctx;
	if (buf_append(&b->out, data, len) < 0) {
		/* Replies are short; a full buffer means a client that sends
		 * without reading (pipelining) and has filled it: write now. */
		bs_flush(b);
		buf_append(&b->out, data, len);
	}
}

/* ---- the session's questions ------------------------------------------ */

static bool op_mail(void *ctx, struct smtp_transaction *t, const struct smtp_command *cmd,
                    struct smtp_reply *reply)
{
	id_new(t->qid);
	return true;
}

/* Any destination the parser accepted, with a domain: a name (in its
 * A-label form, RFC 5890, as rawmail send writes it) or an IP literal. */
static enum smtp_rcpt_status op_rcpt(void *ctx, const struct smtp_transaction *t,
                                     const struct smtp_address *a, char **mailbox,
                                     struct smtp_reply *reply)
{
	if (a->kind == SMTP_DOMAIN_NONE) {
		/* RFC 5321 §4.1.1.3 makes <postmaster> valid; this machine has
		 * no local delivery to give it (or <root>) yet. */
		smtp_reply_set(reply, 550, "5.1.3",
		               "Recipient needs a domain (user@example.com): no local delivery");
		return SMTP_RCPT_REFUSE;
	}
	if (a->kind == SMTP_DOMAIN_GENERAL || a->had_source_route) {
		smtp_reply_set(reply, 553, "5.1.2",
		               a->had_source_route ? "Source routes are not supported"
		                                   : "Only IPv4 and IPv6 address literals can be delivered to");
		return SMTP_RCPT_REFUSE;
	}
	char domain[SMTP_DOMAIN_MAX + 8], err[200];
	if (a->kind == SMTP_DOMAIN_NAME) {
		if (!dns_domain_to_ascii(a->domain, domain, sizeof(domain), err, sizeof(err))) {
			smtp_reply_set(reply, 553, "5.1.2", "Bad recipient domain: %s", err);
			return SMTP_RCPT_REFUSE;
		}
	} else {
		snprintf(domain, sizeof(domain), "[%s]", a->domain);
	}
	/* The local part as the session formats it (quoted when it must be):
	 * what comes before the last '@' of the whole address. */
	char whole[SMTP_PATH_MAX + 8];
	const char *at;
	if (smtp_address_format(a, whole, sizeof(whole)) < 0 || !(at = strrchr(whole, '@'))) {
		smtp_reply_set(reply, 501, "5.1.3", "Bad recipient address syntax");
		return SMTP_RCPT_REFUSE;
	}
	size_t n = (size_t)(at - whole) + strlen(domain) + 2;
	char *addr = malloc(n);
	if (!addr) {
		smtp_reply_set(reply, 452, "4.3.0", "Out of memory, try again later");
		return SMTP_RCPT_REFUSE;
	}
	snprintf(addr, n, "%.*s@%s", (int)(at - whole), whole, domain);
	*mailbox = addr;
	return SMTP_RCPT_ACCEPT;
}

static bool op_message_begin(void *ctx, struct smtp_transaction *t, struct smtp_reply *reply)
{
	struct bs *b = ctx;
	buf_reset(&b->msg);
	return true;
}

/* The session gives LF line ends; the spool keeps CR LF (QUEUE.md: the
 * bytes the engine sends), so each LF is written as CR LF on the way in. */
static bool op_message_write(void *ctx, struct smtp_transaction *t, const char *data, size_t len)
{
	struct bs *b = ctx;
	const char *end = data + len;
	while (data < end) {
		const char *nl = memchr(data, '\n', (size_t)(end - data));
		size_t n = nl ? (size_t)(nl - data) : (size_t)(end - data);
		if (buf_append(&b->msg, data, n) < 0 || (nl && buf_append(&b->msg, "\r\n", 2) < 0))
			return false;
		data += n + (nl != NULL);
	}
	return true;
}

static void op_message_abort(void *ctx, struct smtp_transaction *t)
{
	struct bs *b = ctx;
	buf_reset(&b->msg);
}

/* "Received: by HOST (rawmail sendmail -bs, from userid UID); DATE"
 * (RFC 5321 §4.4; Postfix writes the same for its local submissions): the
 * user who submitted is on record whatever the message says. */
static int received_line(struct buf *out, const char *host, const struct msg_stamp *st)
{
	struct buf date;
	char space[128];
	date = (struct buf){ space, 0, sizeof(space), sizeof(space) - 1 };
	struct msg_error err;
	if (msg_header_write_date(&date, st->date, st->tz_minutes, &err) != 0 || date.len < 8)
		return -1;
	/* "Date: " ... CR LF: the date-time alone. */
	return buf_printf(out, "Received: by %s (rawmail sendmail -bs, from userid %u);\r\n\t%.*s\r\n",
	                  host, (unsigned)getuid(), (int)(date.len - 8), date.data + 6);
}

/* The message as the spool keeps it: a Received: line, then the content
 * (CR LF already) completed.  0, or a refusal in reply. */
static int build_message(struct bs *b, const struct smtp_transaction *t, struct buf *out,
                         struct smtp_reply *reply)
{
	int rc;
	struct msg_stamp stamp;
	send_message_stamp(&stamp, b->host);
	/* A From for a message without one: the envelope sender, or for the
	 * null sender the user at the origin (as the sendmail entry does). */
	char from[SMTP_PATH_MAX + 300];
	if (t->sender[0]) {
		snprintf(from, sizeof(from), "%s", t->sender);
	} else {
		const char *user = getenv("LOGNAME");
		snprintf(from, sizeof(from), "%s@%s", user && *user && !strpbrk(user, "@<>\r\n ")
		                                          ? user : "root",
		         b->o->origin ? b->o->origin : b->host);
	}
	/* As the sendmail entry: domainless header addresses get @origin,
	 * long lines are mended, not refused (msg/raw.h). */
	const char *origin = b->o->origin ? b->o->origin : b->host;
	struct msg_raw raw = { .from = from, .stamp = stamp, .origin = origin,
	                       .mend_long_lines = true };
	struct msg_error err = { 0 };
	/* Through the maildrop the importer writes this line itself, from
	 * the drop file's owner. */
	rc = b->drop ? 0 : received_line(out, b->host, &stamp);
	if (rc == 0)
		rc = msg_raw_prepare(&raw, b->msg.data ? b->msg.data : "", b->msg.len, out, NULL, &err);
	if (rc == 0)
		return 0;
	switch (err.status) {
	case MSG_ERR_LINE_TOO_LONG:
	case MSG_ERR_NUL:
		/* RFC 5322 §2.1.1, §2.3: refused, as rawmail send refuses it. */
		smtp_reply_set(reply, 554, "5.6.0", "Message refused: %s", err.text);
		break;
	case MSG_ERR_TOO_BIG:
		smtp_reply_set(reply, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		break;
	default:
		smtp_reply_set(reply, 451, "4.3.0", "Local error in processing, message not queued");
		break;
	}
	return -1;
}

/* The first attempt, in the background (cli/queue_kick.h), as the
 * sendmail entry starts one: the client has its 250 already.  SIGPIPE,
 * ignored here, would stay ignored across the runner's exec: the default
 * is back for the fork. */
static void bs_kick(const struct send_opts *o, const char *spool, const char *id)
{
	signal(SIGPIPE, SIG_DFL);
	if (!cli_queue_kick(o, spool, id))
		fprintf(stderr, "sendmail: queued as %s; its first attempt could not be started "
		                "(fork failed): the next queue run takes it\n",
		        id);
	signal(SIGPIPE, SIG_IGN);
}

static void op_message_commit(void *ctx, struct smtp_transaction *t)
{
	struct bs *b = ctx;
	struct smtp_reply reply = { 0 };
	struct buf message;
	/* Quoted-printable of a body with a long line (msg/raw.h) is at most
	 * about 3.12 times the content, which SIZE keeps to SEND_MESSAGE_MAX
	 * (and the queue runner reads up to 256 MiB). */
	buf_init(&message, (size_t)SEND_MESSAGE_MAX * 7 / 2 + 64 * 1024);
	struct queue_envelope env = { 0 };
	env.origin = QUEUE_ORIGIN_SENDMAIL;
	if (t->smtputf8)
		env.flags |= QUEUE_FLAG_SMTPUTF8;
	int rc = build_message(b, t, &message, &reply);
	/* DKIM keys: signed before it is queued, as rawmail send signs
	 * (cli/send_dkim.c); a key that cannot be used keeps it unqueued. */
	if (rc == 0 && b->o->ndkim > 0) {
		struct send_prepared sp = { .msg = message };
		int drc = send_dkim_hook ? send_dkim_hook(b->o, &sp) : SEND_EXIT_SOFTWARE;
		message = sp.msg;
		if (drc != 0) {
			smtp_reply_set(&reply, 451, "4.3.0", "DKIM signing failed, message not queued");
			rc = -1;
		}
	}
	if (rc == 0 && queue_envelope_set_sender(&env, t->sender) < 0)
		rc = -1;
	/* One envelope recipient per address: RCPT twice for one address
	 * must not mean two copies. */
	for (size_t i = 0; rc == 0 && i < t->nrcpts; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(t->rcpts[j].mailbox, t->rcpts[i].mailbox);
		if (seen)
			continue;
		const char *given = t->rcpts[i].address;
		if (queue_envelope_add_rcpt(&env, t->rcpts[i].mailbox,
		                            strcmp(given, t->rcpts[i].mailbox) ? given : NULL) < 0)
			rc = -1;
	}
	if (rc != 0 && reply.code == 0)
		smtp_reply_set(&reply, 451, "4.3.0", "Out of memory, message not queued");
	if (rc == 0) {
		char why[512];
		char name[ID_LEN + 1];
		enum queue_status st =
			b->drop ? queue_maildrop_submit(b->drop, &env, message.data, message.len, name,
			                                why, sizeof(why))
			        : queue_spool_enqueue(b->sp, &env, message.data, message.len, why,
			                              sizeof(why));
		if (st == QUEUE_OK) {
			/* Through the maildrop the system's queue takes it from
			 * there: nothing to start here. */
			smtp_reply_set(&reply, 250, "2.0.0", "Ok: queued as %s", env.id);
		} else {
			fprintf(stderr, "sendmail: not queued: %s\n", why);
			/* RFC 3463 X.3.1: mail system full; else a local error. */
			if (strstr(why, strerror(ENOSPC)))
				smtp_reply_set(&reply, 452, "4.3.1", "Insufficient system storage");
			else
				smtp_reply_set(&reply, 451, "4.3.0", "Local error: message not queued");
		}
	}
	buf_free(&message);
	smtp_session_message_done(&b->s, &reply);
	/* The 250 goes out before the first attempt starts: the client has its
	 * answer whatever the destination does. */
	bs_flush(b);
	if (reply.code == 250 && !b->drop)
		bs_kick(b->o, b->dir, env.id);
	queue_envelope_free(&env);
}

/* RFC 2920 §3.1: asked at DATA, which ends a pipelined group.  Input
 * buffered after the DATA line, or waiting in the pipe, was sent before
 * the 354. */
static bool op_input_pending(void *ctx)
{
	struct bs *b = ctx;
	if (b->in_len > 0)
		return true;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static const struct smtp_session_ops bs_ops = {
	.send = op_send,
	.mail = op_mail,
	.rcpt = op_rcpt,
	.message_begin = op_message_begin,
	.message_write = op_message_write,
	.message_commit = op_message_commit,
	.message_abort = op_message_abort,
	.input_pending = op_input_pending,
};

/* ---- input -------------------------------------------------------------- */

/* Reads more input: 1 read, 0 end of input, -1 timeout or error. */
static int bs_read(struct bs *b)
{
	bs_flush(b);
	if (b->in_start > 0 && b->in_len > 0) {
		memmove(b->in, b->in + b->in_start, b->in_len);
	}
	b->in_start = 0;
	if (b->in_cap - b->in_len < BS_READ_CHUNK) {
		size_t cap = b->in_len + BS_READ_CHUNK;
		char *p = realloc(b->in, cap);
		if (!p)
			return -1;
		b->in = p;
		b->in_cap = cap;
	}
	/* RFC 5321 §4.5.3.2.7: a server waits 5 minutes for a command. */
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, SMTP_TIMEOUT_SERVER_COMMAND * 1000);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -1;
	ssize_t n;
	do
		n = read(STDIN_FILENO, b->in + b->in_len, b->in_cap - b->in_len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	b->in_len += (size_t)n;
	return n > 0;
}

/* Feeds one command line if a whole one is buffered (LF or CR LF ends
 * it, as serve frames them); false if more input is needed. */
static bool bs_feed_line(struct bs *b)
{
	if (b->in_len == 0)
		return false;
	char *line = b->in + b->in_start;
	char *lf = memchr(line, '\n', b->in_len);
	if (!lf) {
		if (b->in_len > SMTP_COMMAND_LINE_MAX) {
			/* An overlong line is dropped as it arrives. */
			b->discarding = true;
			b->in_len = 0;
		}
		return false;
	}
	size_t total = (size_t)(lf - line) + 1;
	size_t len = total - 1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	b->in_start += total;
	b->in_len -= total;
	if (b->discarding || len > SMTP_COMMAND_LINE_MAX) {
		b->discarding = false;
		smtp_session_line_too_long(&b->s);
		return true;
	}
	/* The line is taken: what input_pending sees is what follows it. */
	smtp_session_line(&b->s, line, len);
	return true;
}

static bool bs_feed_data(struct bs *b)
{
	if (b->in_len == 0)
		return false;
	size_t used = smtp_session_data(&b->s, b->in + b->in_start, b->in_len);
	b->in_start += used;
	b->in_len -= used;
	return used > 0;
}

int cli_sendmail_bs(const struct send_opts *o, const char *spool_dir)
{
	/* A client that closes its end makes write fail with EPIPE (and the
	 * session end) rather than killing us mid-queue. */
	signal(SIGPIPE, SIG_IGN);
	id_init();
	struct bs b = { .o = o };
	hostname_get(b.host, sizeof(b.host), "/etc/hosts");
	buf_init(&b.out, 1024 * 1024);
	buf_init(&b.msg, 2 * (size_t)SEND_MESSAGE_MAX + 2);
	/* The spool every queueing command opens (send.h): --spool or the
	 * settings file's, else the user's default, its parents made. */
	struct send_opts with_spool = *o;
	with_spool.spool = spool_dir;
	/* A user who is not root queues through the system spool's
	 * maildrop, as the sendmail entry does (queue/maildrop.h). */
	b.drop = cli_maildrop_spool(spool_dir);
	if (!b.drop)
		b.sp = send_spool_open(&with_spool, b.dir, sizeof(b.dir));
	if (!b.sp && !b.drop) {
		/* RFC 5321 §3.1: 421 instead of the greeting when no service
		 * (send_spool_open said why on stderr). */
		char text[600];
		int n = snprintf(text, sizeof(text), "421 4.3.0 %s mail queue unavailable\r\n", b.host);
		buf_append(&b.out, text, n > 0 ? (size_t)n : 0);
		bs_flush(&b);
		buf_free(&b.out);
		buf_free(&b.msg);
		return SEND_EXIT_TEMPFAIL;
	}
	struct smtp_session_config cfg = {
		.hostname = b.host,
		.max_message_size = SEND_MESSAGE_MAX,
		.max_recipients = SEND_RCPTS_MAX < QUEUE_ENV_RCPTS_MAX ? SEND_RCPTS_MAX
		                                                       : QUEUE_ENV_RCPTS_MAX,
		.max_errors = BS_MAX_ERRORS,
		/* Local programs write LF as often as CR LF: taken as line
		 * breaks (stored CR LF), never as the end of DATA. */
		.bare_policy = SMTP_BARE_NORMALIZE,
	};
	smtp_session_init(&b.s, &cfg, &bs_ops, &b, false);
	smtp_session_greet(&b.s);
	int rc = 0;
	for (;;) {
		bool progress = false;
		if (b.s.mode == SMTP_INPUT_LINE)
			progress = bs_feed_line(&b);
		else if (b.s.mode == SMTP_INPUT_DATA)
			progress = bs_feed_data(&b);
		if (b.s.mode == SMTP_INPUT_CLOSE || b.out_failed)
			break;
		if (progress)
			continue;
		int r = bs_read(&b);
		if (r > 0)
			continue;
		if (r < 0)
			smtp_session_shutdown(&b.s, "Timeout or read error, closing");
		else if (smtp_session_in_transaction(&b.s))
			fprintf(stderr, "sendmail: the input ended inside a transaction: that message "
			                "was not queued\n");
		if (smtp_session_in_transaction(&b.s))
			rc = SEND_EXIT_TEMPFAIL;
		break;
	}
	bs_flush(&b);
	smtp_session_free(&b.s);
	queue_spool_close(b.sp);
	buf_free(&b.out);
	buf_free(&b.msg);
	free(b.in);
	return rc;
}
