/* The server session state machine, tested by transcripts: what the client
 * sends, and the exact replies the session must give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/session.h"

/* With RAWMAIL_SEED_DIR set, each test's client input is also written out
 * as a seed for tests/fuzz/fuzz_smtp_session.c (its first byte picks the
 * harness's mode: 0, defaults). */
static const char *seed_dir;
static unsigned seed_count;

struct fake {
	char seed[8192];
	size_t seedlen;
	struct smtp_session s;
	struct smtp_session_config cfg;
	char out[65536];
	size_t outlen;
	char content[65536];
	size_t contentlen;
	int commits, aborts, begins, starttls;
	int rcpt_asks;      /* RCPTs answered SMTP_RCPT_PENDING */
	char *asked;        /* the mailbox of the last one */
	const char *rest;   /* input not read while the session waits */
	size_t restlen;
	bool auto_commit;   /* answer message_commit with 250 at once */
	bool fail_write;
	bool check_pipelining; /* answer input_pending from what feed() holds */
	size_t pending;     /* octets fed after the current command line */
	int auths;          /* ops->auth calls */
	char auth_user[300], auth_password[1100];
};

static void op_send(void *ctx, const char *data, size_t len)
{
	struct fake *f = ctx;
	assert_true(f->outlen + len < sizeof(f->out));
	memcpy(f->out + f->outlen, data, len);
	f->outlen += len;
	f->out[f->outlen] = '\0';
}

static bool op_mail(void *ctx, struct smtp_transaction *t, const struct smtp_command *cmd,
                    struct smtp_reply *reply)
{
	snprintf(t->qid, sizeof(t->qid), "QID1");
	if (!strcmp(t->sender, "full@example.test")) {
		smtp_reply_set(reply, 452, "4.3.1", "Insufficient system storage");
		return false;
	}
	return true;
}

/* "nobody" is refused at once; a local part starting with "new" needs an
 * asynchronous answer (as a mailbox the store must be asked about). */
static enum smtp_rcpt_status op_rcpt(void *ctx, const struct smtp_transaction *t,
                                     const struct smtp_address *a, char **mailbox,
                                     struct smtp_reply *reply)
{
	struct fake *f = ctx;
	if (!strcmp(a->local, "nobody")) {
		smtp_reply_set(reply, 550, "5.1.1", "Mailbox unavailable");
		return SMTP_RCPT_REFUSE;
	}
	if (!strncmp(a->local, "new", 3)) {
		f->rcpt_asks++;
		free(f->asked);
		f->asked = strdup(a->local);
		return SMTP_RCPT_PENDING;
	}
	*mailbox = strdup(a->local);
	return SMTP_RCPT_ACCEPT;
}

static bool op_begin(void *ctx, struct smtp_transaction *t, struct smtp_reply *reply)
{
	struct fake *f = ctx;
	f->begins++;
	f->contentlen = 0;
	return true;
}

static bool op_write(void *ctx, struct smtp_transaction *t, const char *data, size_t len)
{
	struct fake *f = ctx;
	if (f->fail_write)
		return false;
	assert_true(f->contentlen + len < sizeof(f->content));
	memcpy(f->content + f->contentlen, data, len);
	f->contentlen += len;
	f->content[f->contentlen] = '\0';
	return true;
}

static void op_commit(void *ctx, struct smtp_transaction *t)
{
	struct fake *f = ctx;
	f->commits++;
	if (f->auto_commit) {
		struct smtp_reply r;
		smtp_reply_set(&r, 250, "2.0.0", "Ok: queued as %s", t->qid);
		smtp_session_message_done(&f->s, &r);
	}
}

static void op_abort(void *ctx, struct smtp_transaction *t)
{
	struct fake *f = ctx;
	f->aborts++;
}

static void op_starttls(void *ctx)
{
	struct fake *f = ctx;
	f->starttls++;
}

static bool op_input_pending(void *ctx)
{
	struct fake *f = ctx;
	return f->check_pipelining && f->pending > 0;
}

static void op_auth(void *ctx, const char *user, const char *password)
{
	struct fake *f = ctx;
	f->auths++;
	snprintf(f->auth_user, sizeof(f->auth_user), "%s", user);
	snprintf(f->auth_password, sizeof(f->auth_password), "%s", password);
}

static const struct smtp_session_ops ops = {
	.auth = op_auth,
	.send = op_send,
	.mail = op_mail,
	.rcpt = op_rcpt,
	.message_begin = op_begin,
	.message_write = op_write,
	.message_commit = op_commit,
	.message_abort = op_abort,
	.starttls = op_starttls,
	.input_pending = op_input_pending,
};

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->cfg.hostname = "mx.test";
	f->cfg.max_message_size = 1000;
	f->cfg.max_recipients = 100;
	f->cfg.max_errors = 5;
	f->cfg.max_auth_failures = 3;
	f->cfg.bare_policy = SMTP_BARE_NORMALIZE;
	f->auto_commit = true;
	smtp_session_init(&f->s, &f->cfg, &ops, f, true);
	smtp_session_greet(&f->s);
	return f;
}

static void seed_write(const struct fake *f)
{
	if (!seed_dir || f->seedlen == 0)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/session-%03u", seed_dir, seed_count++);
	FILE *out = fopen(path, "wb");
	if (!out)
		return;
	fputc(0, out);
	fwrite(f->seed, 1, f->seedlen, out);
	fclose(out);
}

static void fake_free(struct fake *f)
{
	seed_write(f);
	smtp_session_free(&f->s);
	free(f->asked);
	free(f);
}

/* Feeds client bytes the way server/conn.c does: command lines in LINE
 * mode (split at LF), raw bytes in DATA mode. */
static void feed_raw(struct fake *f, const char *in, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		if (f->s.mode == SMTP_INPUT_LINE) {
			const char *lf = memchr(in + pos, '\n', len - pos);
			assert_non_null(lf);
			size_t n = (size_t)(lf - (in + pos));
			size_t linelen = n && in[pos + n - 1] == '\r' ? n - 1 : n;
			f->pending = len - (pos + n + 1);
			smtp_session_line(&f->s, in + pos, linelen);
			pos += n + 1;
		} else if (f->s.mode == SMTP_INPUT_DATA) {
			size_t used = smtp_session_data(&f->s, in + pos, len - pos);
			assert_true(used > 0);
			pos += used;
		} else {
			break;
		}
	}
	/* What the session did not read waits in the caller's buffer, as
	 * conn.c keeps it in its evbuffer. */
	f->rest = in + pos;
	f->restlen = len - pos;
}

static void feed(struct fake *f, const char *in, size_t len)
{
	if (len <= sizeof(f->seed) - f->seedlen) {
		memcpy(f->seed + f->seedlen, in, len);
		f->seedlen += len;
	}
	feed_raw(f, in, len);
}

static void feeds(struct fake *f, const char *in)
{
	feed(f, in, strlen(in));
}

/* The asynchronous answer to the pending RCPT (mailbox NULL: refused
 * with 450 4.7.1), then the input that waited behind it. */
static void rcpt_answer(struct fake *f, const char *mailbox)
{
	struct smtp_reply r;
	smtp_reply_set(&r, 450, "4.7.1", "Too many new mailboxes, try again later");
	smtp_session_rcpt_done(&f->s, mailbox ? strdup(mailbox) : NULL, &r);
	const char *rest = f->rest;
	size_t restlen = f->restlen;
	f->rest = NULL;
	f->restlen = 0;
	if (rest && restlen)
		feed_raw(f, rest, restlen);
}

static void clear(struct fake *f)
{
	f->outlen = 0;
	f->out[0] = '\0';
}

/* Asserts the output since the last call, then forgets it. */
static void expect(struct fake *f, const char *want)
{
	if (strcmp(f->out, want) != 0)
		fail_msg("replies differ\n--- got:\n%s--- want:\n%s", f->out, want);
	clear(f);
	f->out[0] = '\0';
}

static void test_greeting_and_ehlo(void **state)
{
	struct fake *f = fake_new();
	expect(f, "220 mx.test ESMTP rawmail\r\n");
	feeds(f, "EHLO client.test\r\n");
	expect(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	          "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
	feeds(f, "HELO client.test\r\n");
	expect(f, "250 mx.test\r\n");
	fake_free(f);
}

static void test_full_transaction(void **state)
{
	struct fake *f = fake_new();
	expect(f, "220 mx.test ESMTP rawmail\r\n");
	feeds(f, "HELO c\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
	expect(f, "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	feeds(f, "Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
	expect(f, "250 2.0.0 Ok: queued as QID1\r\n221 2.0.0 Bye\r\n");
	assert_string_equal(f->content, "Subject: x\n\n.dot\n");
	assert_int_equal(f->commits, 1);
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	fake_free(f);
}

static void test_order_errors(void **state)
{
	struct fake *f = fake_new();
	expect(f, "220 mx.test ESMTP rawmail\r\n");
	feeds(f, "MAIL FROM:<a@example.test>\r\n");
	expect(f, "503 5.5.1 Send HELO or EHLO first\r\n");
	feeds(f, "EHLO c\r\n");
	clear(f);
	feeds(f, "RCPT TO:<b@example.test>\r\nDATA\r\n");
	expect(f, "503 5.5.1 Need MAIL before RCPT\r\n503 5.5.1 Need MAIL before DATA\r\n");
	feeds(f, "MAIL FROM:<a@example.test>\r\nMAIL FROM:<a@example.test>\r\nDATA\r\n");
	expect(f, "250 2.1.0 Ok\r\n503 5.5.1 Nested MAIL command\r\n503 5.5.1 Need RCPT before DATA\r\n");
	feeds(f, "RCPT TO:<nobody@example.test>\r\nDATA\r\nRSET\r\nNOOP\r\nVRFY x\r\n");
	expect(f, "550 5.1.1 Mailbox unavailable\r\n554 5.5.1 No valid recipients\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
	          "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
	fake_free(f);
}

static void test_mail_refused_by_policy(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<full@example.test>\r\nRCPT TO:<b@x>\r\n");
	expect(f, "220 mx.test ESMTP rawmail\r\n"
	          "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	          "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
	          "452 4.3.1 Insufficient system storage\r\n503 5.5.1 Need MAIL before RCPT\r\n");
	fake_free(f);
}

static void test_too_many_recipients(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "HELO c\r\nMAIL FROM:<>\r\n");
	clear(f);
	for (int i = 0; i < 100; i++)
		feeds(f, "RCPT TO:<u@example.test>\r\n");
	clear(f);
	feeds(f, "RCPT TO:<u@example.test>\r\n");
	expect(f, "452 4.5.3 Too many recipients\r\n");
	assert_int_equal(f->s.txn->nrcpts, 100);
	fake_free(f);
}

static void test_message_too_big(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\n");
	clear(f);
	char big[3000];
	memset(big, 'x', sizeof(big));
	memcpy(big + sizeof(big) - 5, "\r\n.\r\n", 5);
	feed(f, big, sizeof(big));
	expect(f, "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	assert_int_equal(f->commits, 0);
	assert_int_equal(f->aborts, 1);
	assert_false(smtp_session_in_transaction(&f->s));
	feeds(f, "NOOP\r\n");
	expect(f, "250 2.0.0 Ok\r\n");
	fake_free(f);
}

static void test_bare_newline_reject(void **state)
{
	struct fake *f = fake_new();
	f->cfg.bare_policy = SMTP_BARE_REJECT;
	feeds(f, "HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\n");
	clear(f);
	/* The smuggling attempt: "\n.\n" must not end DATA; the real end does. */
	feeds(f, "a\n.\nMAIL FROM:<evil@x>\r\n.\r\n");
	expect(f, "550 5.6.0 Message refused: bare CR or LF in message (SMTP smuggling protection)\r\n");
	assert_int_equal(f->commits, 0);
	fake_free(f);
}

static void test_smuggling_normalized(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\n");
	clear(f);
	feeds(f, "a\r\n.\nRCPT TO:<evil@x>\r\n.\r\n");
	expect(f, "250 2.0.0 Ok: queued as QID1\r\n");
	assert_int_equal(f->commits, 1);
	assert_non_null(strstr(f->content, "RCPT TO:<evil@x>"));
	fake_free(f);
}

static void test_bdat(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\n");
	clear(f);
	feeds(f, "BDAT 7\r\nab\r\ncd\rBDAT 2 LAST\r\n\nx");
	assert_string_equal(f->out, "250 2.0.0 7 octets received\r\n250 2.0.0 Ok: queued as QID1\r\n");
	/* The CR ending the first chunk pairs with the LF starting the next. */
	assert_string_equal(f->content, "ab\ncd\nx");
	clear(f);
	/* DATA after BDAT in one transaction, and BDAT without MAIL. */
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nBDAT 1\r\nzDATA\r\n");
	expect(f, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 1 octets received\r\n"
	          "503 5.5.1 DATA after BDAT\r\n");
	feeds(f, "RSET\r\nBDAT 4 LAST\r\nQUITNOOP\r\n");
	expect(f, "250 2.0.0 Ok\r\n503 5.5.1 Need MAIL before BDAT\r\n250 2.0.0 Ok\r\n");
	fake_free(f);
}

static void test_bdat_empty_last(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\n");
	clear(f);
	feeds(f, "BDAT 2\r\nhiBDAT 0 LAST\r\n");
	expect(f, "250 2.0.0 2 octets received\r\n250 2.0.0 Ok: queued as QID1\r\n");
	assert_string_equal(f->content, "hi");
	fake_free(f);
}

static void test_bdat_malformed_closes(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\n");
	clear(f);
	feeds(f, "BDAT 10 LASTLY\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	assert_int_equal(strncmp(f->out, "501 5.5.4", 9), 0);
	assert_int_equal(f->commits, 0);
	fake_free(f);
}

static void test_starttls(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@b.test>\r\nSTARTTLS\r\nRSET\r\n");
	clear(f);
	feeds(f, "STARTTLS\r\n");
	expect(f, "220 2.0.0 Ready to start TLS\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_WAIT);
	assert_int_equal(f->starttls, 1);
	/* Input after STARTTLS is ignored until the handshake is done. */
	smtp_session_line(&f->s, "NOOP", 4);
	expect(f, "");
	smtp_session_tls_started(&f->s);
	feeds(f, "MAIL FROM:<a@b.test>\r\nEHLO c\r\nSTARTTLS\r\n");
	expect(f, "503 5.5.1 Send HELO or EHLO first\r\n"
	          "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	          "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
	          "503 5.5.1 TLS already active\r\n");
	fake_free(f);
}

static void test_starttls_in_transaction(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@b.test>\r\n");
	clear(f);
	feeds(f, "STARTTLS\r\n");
	expect(f, "503 5.5.1 MAIL transaction in progress\r\n");
	fake_free(f);
}

static void test_error_limit(void **state)
{
	struct fake *f = fake_new();
	clear(f);
	for (int i = 0; i < 4; i++)
		feeds(f, "BOGUS\r\n");
	expect(f, "500 5.5.2 Command unrecognized\r\n500 5.5.2 Command unrecognized\r\n"
	          "500 5.5.2 Command unrecognized\r\n500 5.5.2 Command unrecognized\r\n");
	feeds(f, "BOGUS\r\n");
	expect(f, "500 5.5.2 Command unrecognized\r\n421 4.7.0 Too many errors, closing connection\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	fake_free(f);
}

static void test_line_too_long_and_utf8(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\n");
	clear(f);
	smtp_session_line_too_long(&f->s);
	expect(f, "500 5.5.2 Line too long\r\n");
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<j\xc3\xb6rg@b.test>\r\n");
	expect(f, "250 2.1.0 Ok\r\n553 5.6.7 Non-ASCII address needs SMTPUTF8 on MAIL\r\n");
	feeds(f, "RSET\r\nMAIL FROM:<a@b.test> SMTPUTF8\r\nRCPT TO:<j\xc3\xb6rg@b.test>\r\n");
	expect(f, "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	fake_free(f);
}

static void test_async_commit_and_shutdown(void **state)
{
	struct fake *f = fake_new();
	f->auto_commit = false;
	feeds(f, "HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\nhi\r\n.\r\n");
	clear(f);
	assert_int_equal(f->s.mode, SMTP_INPUT_WAIT);
	/* Shutdown waits for the store's answer. */
	smtp_session_shutdown(&f->s, "bye");
	expect(f, "");
	struct smtp_reply r;
	smtp_reply_set(&r, 451, "4.3.0", "Local error");
	smtp_session_message_done(&f->s, &r);
	expect(f, "451 4.3.0 Local error\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_LINE);
	smtp_session_shutdown(&f->s, "Server shutting down");
	expect(f, "421 4.3.2 Server shutting down\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	fake_free(f);
}

static void test_write_failure(void **state)
{
	struct fake *f = fake_new();
	f->fail_write = true;
	feeds(f, "HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\nhi\r\n.\r\n");
	assert_non_null(strstr(f->out, "451 4.3.0 Local error in processing"));
	assert_int_equal(f->commits, 0);
	fake_free(f);
}

/* RFC 5322 §2.3 and RFC 6152 §3 (8BITMIME): NUL is not message text.  It
 * is refused once the content has ended, in DATA and in BDAT. */
static void test_nul_refused(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\n");
	clear(f);
	feed(f, "a\0b\r\n.\r\n", 8);
	expect(f, "554 5.6.0 Message refused: NUL octet in message\r\n");
	assert_int_equal(f->commits, 0);
	assert_int_equal(f->aborts, 1);
	assert_false(smtp_session_in_transaction(&f->s));
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\n");
	clear(f);
	feed(f, "BDAT 2\r\nx\0BDAT 1 LAST\r\ny", 24);
	expect(f, "250 2.0.0 2 octets received\r\n"
	          "554 5.6.0 Message refused: NUL octet in message\r\n");
	assert_int_equal(f->commits, 0);
	assert_int_equal(f->aborts, 2);
	assert_false(smtp_session_in_transaction(&f->s));
	/* The session goes on: a clean message is accepted. */
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nBDAT 2 LAST\r\nok");
	expect(f, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as QID1\r\n");
	assert_int_equal(f->commits, 1);
	fake_free(f);
}

/* RFC 2920 §3.1: DATA is the last command of a group; content that arrives
 * with it, before the 354, is refused and the session closed (Postfix's
 * smtpd_forbid_unauth_pipelining).  BDAT chunks may be pipelined (RFC 3030
 * §4.2). */
static void test_content_before_354(void **state)
{
	struct fake *f = fake_new();
	f->check_pipelining = true;
	feeds(f, "EHLO c\r\n");
	clear(f);
	/* Correct pipelining: DATA last in its group, then the content. */
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\n");
	expect(f, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	feeds(f, "hello\r\n.\r\n");
	expect(f, "250 2.0.0 Ok: queued as QID1\r\n");
	/* BDAT chunks pipelined with their commands are fine. */
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nBDAT 2\r\nhiBDAT 3 LAST\r\nyou");
	expect(f, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 2 octets received\r\n"
	          "250 2.0.0 Ok: queued as QID1\r\n");
	assert_int_equal(f->commits, 2);
	assert_int_equal(f->begins, 2);
	/* MAIL, RCPT, DATA and the message in one write. */
	feeds(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@b.test>\r\nDATA\r\nevil\r\n.\r\n");
	expect(f, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	          "554 5.5.0 Protocol error: content sent before the 354 reply to DATA\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	assert_int_equal(f->commits, 2);
	assert_int_equal(f->begins, 2);
	assert_false(smtp_session_in_transaction(&f->s));
	fake_free(f);
}

/* RCPT whose answer is asynchronous (issue 8, item 4: the store is asked
 * whether a new mailbox may be created): nothing is read or answered until
 * it comes, and pipelined commands behind it keep their order. */
static void test_rcpt_async(void **state)
{
	struct fake *f = fake_new();
	clear(f);
	feeds(f, "EHLO c\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<newbox@example.test>\r\n"
	         "RCPT TO:<old@example.test>\r\nDATA\r\n");
	expect(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	          "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
	          "250 2.1.0 Ok\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_WAIT);
	assert_int_equal(f->rcpt_asks, 1);
	assert_string_equal(f->asked, "newbox");
	assert_true(smtp_session_in_transaction(&f->s));
	/* Lines offered meanwhile are not taken. */
	smtp_session_line(&f->s, "NOOP", 4);
	expect(f, "");
	rcpt_answer(f, "newbox");
	expect(f, "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(f->s.txn->nrcpts, 2);
	assert_string_equal(f->s.txn->rcpts[0].address, "newbox@example.test");
	assert_string_equal(f->s.txn->rcpts[0].mailbox, "newbox");
	assert_string_equal(f->s.txn->rcpts[1].mailbox, "old");
	assert_int_equal(f->s.txn->nmailboxes, 2);
	feeds(f, "hi\r\n.\r\n");
	expect(f, "250 2.0.0 Ok: queued as QID1\r\n");
	fake_free(f);
}

/* A refused asynchronous RCPT: its reply in its place; DATA after only
 * refused recipients gets 554 (RFC 2920 §3.1). */
static void test_rcpt_async_refused(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\n");
	clear(f);
	feeds(f, "MAIL FROM:<a@example.test>\r\nRCPT TO:<new1@example.test>\r\nDATA\r\n");
	expect(f, "250 2.1.0 Ok\r\n");
	rcpt_answer(f, NULL);
	expect(f, "450 4.7.1 Too many new mailboxes, try again later\r\n"
	          "554 5.5.1 No valid recipients\r\n");
	/* Two in a row, the first refused, the second accepted. */
	feeds(f, "RSET\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<new2@example.test>\r\n"
	         "RCPT TO:<new3@example.test>\r\nDATA\r\n");
	expect(f, "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n");
	rcpt_answer(f, NULL);
	expect(f, "450 4.7.1 Too many new mailboxes, try again later\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_WAIT);
	assert_string_equal(f->asked, "new3");
	rcpt_answer(f, "new3");
	expect(f, "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(f->s.txn->nrcpts, 1);
	fake_free(f);
}

/* Shutdown or the connection lost while a RCPT waits: 421 now; the late
 * answer changes nothing and leaks nothing. */
static void test_rcpt_async_shutdown(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<newbox@example.test>\r\n");
	clear(f);
	smtp_session_shutdown(&f->s, "Server shutting down");
	expect(f, "421 4.3.2 Server shutting down\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	rcpt_answer(f, "newbox");
	expect(f, "");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	fake_free(f);

	f = fake_new();
	feeds(f, "EHLO c\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<newbox@example.test>\r\n");
	fake_free(f); /* freed while waiting: no leak (ASan) */
}


/* ---- AUTH (RFC 4954) ---------------------------------------------------- */

#define EHLO_TLS_AUTH                                                         \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"       \
	"250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"               \
	"250 AUTH PLAIN LOGIN\r\n"

/* The answer to the pending AUTH, then the input that waited behind it. */
static void auth_answer(struct fake *f, enum smtp_auth_result r)
{
	smtp_session_auth_done(&f->s, r);
	const char *rest = f->rest;
	size_t restlen = f->restlen;
	f->rest = NULL;
	f->restlen = 0;
	if (rest && restlen)
		feed_raw(f, rest, restlen);
}

static void test_auth_not_offered(void **state)
{
	struct fake *f = fake_new();
	feeds(f, "EHLO c\r\n");
	clear(f);
	feeds(f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.test> AUTH=<>\r\n");
	expect(f, "502 5.5.1 AUTH not available\r\n555 5.5.4 Unsupported parameter AUTH\r\n");
	assert_int_equal(f->auths, 0);
	assert_int_equal(smtp_session_line_max(&f->s), SMTP_COMMAND_LINE_MAX);
	fake_free(f);
}

static void test_auth_only_under_tls(void **state)
{
	struct fake *f = fake_new();
	f->s.auth_offer = SMTP_AUTH_AFTER_TLS;
	clear(f);
	feeds(f, "EHLO c\r\n");
	/* Not announced before TLS, and refused (RFC 4954 §6). */
	expect(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	          "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
	assert_int_equal(smtp_session_line_max(&f->s), SMTP_COMMAND_LINE_MAX);
	feeds(f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	expect(f, "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
	assert_int_equal(f->auths, 0);
	smtp_session_tls_started(&f->s);
	feeds(f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nEHLO c\r\n");
	expect(f, "503 5.5.1 Send EHLO first\r\n" EHLO_TLS_AUTH);
	assert_int_equal(smtp_session_line_max(&f->s), SMTP_AUTH_LINE_MAX);
	/* PLAIN with an initial response; pipelined input waits. */
	feeds(f, "auth plain AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.test> AUTH=<>\r\n");
	expect(f, "");
	assert_int_equal(f->auths, 1);
	assert_string_equal(f->auth_user, "alice");
	assert_string_equal(f->auth_password, "secret");
	assert_int_equal(f->s.mode, SMTP_INPUT_WAIT);
	auth_answer(f, SMTP_AUTH_OK);
	expect(f, "235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n");
	assert_string_equal(f->s.auth_user, "alice");
	feeds(f, "RSET\r\nAUTH LOGIN\r\nEHLO c\r\n");
	/* One login per session; no AUTH announced after it. */
	expect(f, "250 2.0.0 Ok\r\n503 5.5.1 Already authenticated\r\n"
	          "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
	          "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
	assert_string_equal(f->s.auth_user, "alice");
	fake_free(f);
}

static void test_auth_login_and_failure_limit(void **state)
{
	struct fake *f = fake_new();
	f->s.auth_offer = SMTP_AUTH_ANYTIME;
	feeds(f, "EHLO c\r\n");
	clear(f);
	for (int i = 0; i < 3; i++) {
		feeds(f, "AUTH LOGIN\r\n");
		expect(f, "334 VXNlcm5hbWU6\r\n");
		assert_int_equal(smtp_session_line_max(&f->s), SMTP_AUTH_LINE_MAX);
		feeds(f, "Ym9i\r\n");
		expect(f, "334 UGFzc3dvcmQ6\r\n");
		feeds(f, "d3Jvbmc=\r\n");
		assert_int_equal(f->auths, i + 1);
		assert_string_equal(f->auth_user, "bob");
		assert_string_equal(f->auth_password, "wrong");
		auth_answer(f, SMTP_AUTH_FAIL);
		if (i < 2)
			expect(f, "535 5.7.8 Authentication credentials invalid\r\n");
	}
	expect(f, "535 5.7.8 Authentication credentials invalid\r\n"
	          "421 4.7.0 Too many authentication failures, closing connection\r\n");
	assert_int_equal(f->s.mode, SMTP_INPUT_CLOSE);
	assert_null(f->s.auth_user);
	fake_free(f);
}

static void test_auth_malformed_exchanges(void **state)
{
	struct fake *f = fake_new();
	f->cfg.max_errors = 20; /* each malformed exchange counts as an error */
	f->s.auth_offer = SMTP_AUTH_ANYTIME;
	feeds(f, "EHLO c\r\n");
	clear(f);
	feeds(f, "AUTH PLAIN\r\n");
	expect(f, "334 \r\n");
	feeds(f, "*\r\n");
	expect(f, "501 5.0.0 Authentication cancelled\r\n");
	feeds(f, "AUTH PLAIN\r\n");
	expect(f, "334 \r\n");
	feeds(f, "not base64!\r\n");
	expect(f, "501 5.5.2 Cannot Base64-decode client response\r\n");
	feeds(f, "AUTH PLAIN\r\n");
	expect(f, "334 \r\n");
	smtp_session_line_too_long(&f->s);
	expect(f, "500 5.5.6 Authentication Exchange line is too long\r\n");
	feeds(f, "AUTH CRAM-MD5\r\nAUTH\r\n");
	expect(f, "504 5.5.4 Unrecognized authentication type\r\n"
	          "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
	/* An empty password is a failed login, not a malformed exchange. */
	feeds(f, "AUTH PLAIN AGFsaWNlAA==\r\n");
	expect(f, "535 5.7.8 Authentication credentials invalid\r\n");
	assert_int_equal(f->s.auth_failures, 1);
	assert_int_equal(f->auths, 0);
	/* In a transaction. */
	feeds(f, "MAIL FROM:<a@b.test>\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	expect(f, "250 2.1.0 Ok\r\n503 5.5.1 AUTH not allowed during a mail transaction\r\n");
	fake_free(f);
}

static void test_auth_required_and_tempfail(void **state)
{
	struct fake *f = fake_new();
	f->s.auth_offer = SMTP_AUTH_ANYTIME;
	f->s.auth_required = true;
	feeds(f, "EHLO c\r\n");
	clear(f);
	feeds(f, "MAIL FROM:<a@b.test>\r\n");
	expect(f, "530 5.7.0 Authentication required\r\n");
	feeds(f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	auth_answer(f, SMTP_AUTH_TEMPFAIL);
	expect(f, "454 4.7.0 Temporary authentication failure\r\n");
	assert_int_equal(f->s.auth_failures, 0);
	feeds(f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	auth_answer(f, SMTP_AUTH_OK);
	feeds(f, "MAIL FROM:<a@b.test>\r\n");
	expect(f, "235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n");
	/* Shut down while a check is pending: the answer is then ignored. */
	fake_free(f);
	f = fake_new();
	f->s.auth_offer = SMTP_AUTH_ANYTIME;
	feeds(f, "EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	clear(f);
	smtp_session_shutdown(&f->s, "Server shutting down");
	expect(f, "421 4.3.2 Server shutting down\r\n");
	smtp_session_auth_done(&f->s, SMTP_AUTH_OK);
	expect(f, "");
	assert_null(f->s.auth_user);
	fake_free(f);
}

int main(void)
{
	seed_dir = getenv("RAWMAIL_SEED_DIR");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_ehlo),
		cmocka_unit_test(test_full_transaction),
		cmocka_unit_test(test_order_errors),
		cmocka_unit_test(test_mail_refused_by_policy),
		cmocka_unit_test(test_too_many_recipients),
		cmocka_unit_test(test_message_too_big),
		cmocka_unit_test(test_bare_newline_reject),
		cmocka_unit_test(test_smuggling_normalized),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_bdat_empty_last),
		cmocka_unit_test(test_bdat_malformed_closes),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_starttls_in_transaction),
		cmocka_unit_test(test_error_limit),
		cmocka_unit_test(test_line_too_long_and_utf8),
		cmocka_unit_test(test_async_commit_and_shutdown),
		cmocka_unit_test(test_write_failure),
		cmocka_unit_test(test_nul_refused),
		cmocka_unit_test(test_content_before_354),
		cmocka_unit_test(test_rcpt_async),
		cmocka_unit_test(test_rcpt_async_refused),
		cmocka_unit_test(test_rcpt_async_shutdown),
		cmocka_unit_test(test_auth_not_offered),
		cmocka_unit_test(test_auth_only_under_tls),
		cmocka_unit_test(test_auth_login_and_failure_limit),
		cmocka_unit_test(test_auth_malformed_exchanges),
		cmocka_unit_test(test_auth_required_and_tempfail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
