/* libFuzzer harness for the server session state machine: arbitrary client
 * bytes, framed the way server/conn.c frames them, with the store answering
 * at once, late, or failing.  Invariants: every reply is well formed (one
 * or more "DDD[- ]..." lines ending in CRLF), content is only committed
 * after a DATA or BDAT, and nothing leaks (ASan). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/session.h"

struct fuzz_ctx {
	struct smtp_session s;
	struct smtp_session_config cfg;
	unsigned char mode;   /* from the first input byte */
	bool pending_commit;
	bool pending_rcpt;    /* a RCPT waits for its asynchronous answer */
	bool tls_pending;
	bool pending_auth, auth_ok;
	size_t content;       /* octets written in the current message */
	bool begun;
};

static void check_reply(const char *data, size_t len)
{
	/* Every reply line: three digits, ' ' or '-', text, CRLF; no bare CR/LF. */
	size_t i = 0;
	while (i < len) {
		if (len - i < 5 || data[i] < '2' || data[i] > '5' || data[i + 1] < '0' ||
		    data[i + 1] > '9' || data[i + 2] < '0' || data[i + 2] > '9' ||
		    (data[i + 3] != ' ' && data[i + 3] != '-'))
			abort();
		const char *crlf = memchr(data + i, '\n', len - i);
		if (!crlf || crlf == data + i || crlf[-1] != '\r')
			abort();
		for (const char *p = data + i; p < crlf - 1; p++)
			if (*p == '\r' || *p == '\0')
				abort();
		i = (size_t)(crlf - data) + 1;
	}
}

static void op_send(void *ctx, const char *data, size_t len)
{
	check_reply(data, len);
}

static bool op_mail(void *ctx, struct smtp_transaction *t, const struct smtp_command *cmd,
                    struct smtp_reply *reply)
{
	struct fuzz_ctx *f = ctx;
	memcpy(t->qid, "FUZZQID", 8);
	if (f->mode & 0x10) {
		smtp_reply_set(reply, 452, "4.3.1", "Insufficient system storage");
		return false;
	}
	return true;
}

static enum smtp_rcpt_status op_rcpt(void *ctx, const struct smtp_transaction *t,
                                     const struct smtp_address *a, char **mailbox,
                                     struct smtp_reply *reply)
{
	struct fuzz_ctx *f = ctx;
	if (a->local_len && a->local[0] == 'x') {
		smtp_reply_set(reply, 554, "5.7.1", "Relay access denied");
		return SMTP_RCPT_REFUSE;
	}
	if (a->local_len && a->local[0] == 'n') {
		/* A new mailbox: the store is asked (issue 8, item 4). */
		if (f->pending_rcpt)
			abort(); /* a second RCPT read while one waits */
		f->pending_rcpt = true;
		return SMTP_RCPT_PENDING;
	}
	*mailbox = strdup("box");
	return SMTP_RCPT_ACCEPT;
}

static bool op_begin(void *ctx, struct smtp_transaction *t, struct smtp_reply *reply)
{
	struct fuzz_ctx *f = ctx;
	if (f->begun || t->nrcpts == 0)
		abort(); /* content without recipients, or twice */
	f->begun = true;
	f->content = 0;
	return true;
}

static bool op_write(void *ctx, struct smtp_transaction *t, const char *data, size_t len)
{
	struct fuzz_ctx *f = ctx;
	if (!f->begun)
		abort();
	f->content += len;
	return !(f->mode & 0x20) || f->content < 100;
}

static void op_commit(void *ctx, struct smtp_transaction *t)
{
	struct fuzz_ctx *f = ctx;
	if (!f->begun || t->content.stored_size > f->cfg.max_message_size)
		abort();
	f->begun = false;
	f->pending_commit = true;
}

static void op_abort(void *ctx, struct smtp_transaction *t)
{
	struct fuzz_ctx *f = ctx;
	if (!f->begun)
		abort();
	f->begun = false;
}

static void op_starttls(void *ctx)
{
	struct fuzz_ctx *f = ctx;
	f->tls_pending = true;
}

/* Credentials complete: answered in settle (the password "secret" logs in). */
static void op_auth(void *ctx, const char *user, const char *password)
{
	struct fuzz_ctx *f = ctx;
	if (f->pending_auth || !user[0] || !password[0])
		abort();
	f->pending_auth = true;
	f->auth_ok = !strcmp(password, "secret");
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
};

/* Answers whatever the session waits for, as conn.c would. */
static void settle(struct fuzz_ctx *f)
{
	if (f->pending_commit) {
		struct smtp_reply r;
		f->pending_commit = false;
		if (f->mode & 0x40)
			smtp_reply_set(&r, 451, "4.3.0", "Local error");
		else
			smtp_reply_set(&r, 250, "2.0.0", "Ok: queued as FUZZQID");
		smtp_session_message_done(&f->s, &r);
	}
	if (f->tls_pending) {
		f->tls_pending = false;
		smtp_session_tls_started(&f->s);
	}
	if (f->pending_auth) {
		f->pending_auth = false;
		smtp_session_auth_done(&f->s, f->auth_ok ? SMTP_AUTH_OK : SMTP_AUTH_FAIL);
	}
	if (f->pending_rcpt) {
		struct smtp_reply r;
		f->pending_rcpt = false;
		smtp_reply_set(&r, 450, "4.7.1", "Too many new mailboxes");
		smtp_session_rcpt_done(&f->s, (f->mode & 0x20) ? NULL : strdup("newbox"), &r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fuzz_ctx *f = calloc(1, sizeof(*f));
	f->mode = data[0];
	f->cfg.hostname = "mx.test";
	f->cfg.max_message_size = (f->mode & 1) ? 64 : 4096;
	f->cfg.max_recipients = 100;
	f->cfg.max_errors = (f->mode & 2) ? 3 : 50;
	f->cfg.bare_policy = (f->mode & 4) ? SMTP_BARE_REJECT : SMTP_BARE_NORMALIZE;
	f->cfg.accept_bare_ip = f->mode & 8;
	f->cfg.max_auth_failures = 3;
	smtp_session_init(&f->s, &f->cfg, &ops, f, true);
	/* The high bit offers AUTH without TLS and requires it for MAIL
	 * (a loopback submission listener). */
	if (f->mode & 0x80) {
		f->s.auth_offer = SMTP_AUTH_ANYTIME;
		f->s.auth_required = true;
	} else {
		f->s.auth_offer = SMTP_AUTH_AFTER_TLS;
	}
	smtp_session_greet(&f->s);
	const char *in = (const char *)data + 1;
	size_t len = size - 1, pos = 0;
	unsigned stalls = 0;
	while (pos < len && f->s.mode != SMTP_INPUT_CLOSE && stalls < 4) {
		if (f->s.mode == SMTP_INPUT_WAIT) {
			settle(f);
			stalls++;
			continue;
		}
		stalls = 0;
		if (f->s.mode == SMTP_INPUT_LINE) {
			const char *lf = memchr(in + pos, '\n', len - pos);
			size_t n = lf ? (size_t)(lf - (in + pos)) : len - pos;
			size_t linelen = n && in[pos + n - 1] == '\r' ? n - 1 : n;
			if (linelen > smtp_session_line_max(&f->s))
				smtp_session_line_too_long(&f->s);
			else
				smtp_session_line(&f->s, in + pos, linelen);
			pos += n + (lf ? 1 : 0);
		} else {
			/* DATA: feed in uneven pieces to exercise resumption. */
			size_t piece = 1 + (pos * 7 + f->mode) % 61;
			if (piece > len - pos)
				piece = len - pos;
			size_t used = smtp_session_data(&f->s, in + pos, piece);
			if (used > piece)
				abort();
			if (used == 0 && f->s.mode == SMTP_INPUT_DATA)
				abort(); /* DATA mode must make progress */
			pos += used;
		}
		settle(f);
	}
	smtp_session_free(&f->s);
	if (f->begun)
		abort(); /* freed with a begun message and no abort */
	free(f);
	return 0;
}
