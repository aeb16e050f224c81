/* libFuzzer harness for smtp_command_parse.  The input is one command line
 * as the network sends it (without CRLF), so the seeds written by
 * tests/unit/test_smtp_command (RAWMAIL_SEED_DIR) are used as they are;
 * each input is parsed under every combination of parser flags and with
 * and without a size limit.
 *
 * Invariants (abort() on violation):
 *   failure: a 5xx code with an enhanced code of the same class (RFC 3463
 *            via RFC 2034 §4), clean text, and smtp_reply_write gives one
 *            line ending in CRLF with no other CR or LF;
 *   success: every string NUL-terminated within its array, the fields of
 *            other verbs left empty, the rules of the parameters kept. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/command.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static size_t bounded_strlen(const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);

	CHECK(nul != NULL);
	return (size_t)(nul - s);
}

static unsigned char ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

static void check_error(const struct smtp_reply *err)
{
	CHECK(err->code >= 500 && err->code <= 555);
	CHECK(err->enhanced != NULL);
	CHECK(err->enhanced[0] == '5' && err->enhanced[1] == '.');
	size_t tlen = bounded_strlen(err->text, sizeof err->text);
	CHECK(tlen > 0);
	for (size_t i = 0; i < tlen; i++)
		CHECK((unsigned char)err->text[i] >= 0x20 && err->text[i] != 0x7f);

	struct buf out;
	buf_init(&out, 1024);
	CHECK(smtp_reply_write(&out, err) == 0);
	CHECK(out.len >= 4 + strlen(err->enhanced) + 2);
	CHECK(out.data[0] == '0' + err->code / 100);
	CHECK(out.data[3] == ' ');
	CHECK(memcmp(out.data + 4, err->enhanced, strlen(err->enhanced)) == 0);
	CHECK(out.data[out.len - 2] == '\r' && out.data[out.len - 1] == '\n');
	CHECK(memchr(out.data, '\r', out.len - 2) == NULL);
	CHECK(memchr(out.data, '\n', out.len - 2) == NULL);
	CHECK(memchr(out.data, '\0', out.len) == NULL);
	buf_free(&out);
}

static void check_success(const struct smtp_command *cmd, const char *line, size_t len,
                          unsigned flags, uint64_t max_size)
{
	CHECK(cmd->verb > SMTP_CMD_UNKNOWN && cmd->verb <= SMTP_CMD_AUTH);
	CHECK(memchr(line, '\0', len) == NULL);

	/* the line starts with the verb's name, in any case */
	const char *name = smtp_verb_name(cmd->verb);
	size_t nlen = strlen(name);
	CHECK(len >= nlen);
	for (size_t i = 0; i < nlen; i++)
		CHECK(ascii_upper((unsigned char)line[i]) == (unsigned char)name[i]);
	CHECK(len == nlen || line[nlen] == ' ');

	size_t hlen = bounded_strlen(cmd->helo, sizeof cmd->helo);
	if (cmd->verb == SMTP_CMD_HELO || cmd->verb == SMTP_CMD_EHLO) {
		CHECK(hlen > 0 && hlen <= SMTP_DOMAIN_MAX);
		for (size_t i = 0; i < hlen; i++)
			CHECK(cmd->helo[i] > ' ' && cmd->helo[i] < 0x7f);
	} else {
		CHECK(hlen == 0);
	}

	size_t alen = bounded_strlen(cmd->arg, sizeof cmd->arg);
	CHECK(alen < sizeof cmd->arg);
	CHECK(!cmd->arg_truncated || alen == sizeof cmd->arg - 1);
	/* the argument is a copy of part of the line */
	CHECK(alen == 0 || memmem(line, len, cmd->arg, alen) != NULL);
	if (alen > 0 || cmd->arg_truncated)
		CHECK(cmd->verb == SMTP_CMD_NOOP || cmd->verb == SMTP_CMD_HELP ||
		      cmd->verb == SMTP_CMD_VRFY || cmd->verb == SMTP_CMD_EXPN ||
		      cmd->verb == SMTP_CMD_AUTH);
	CHECK(!(cmd->verb == SMTP_CMD_AUTH && cmd->arg_truncated));

	const struct smtp_address *a = &cmd->addr;
	size_t llen = bounded_strlen(a->local, sizeof a->local);
	CHECK(llen == a->local_len && llen <= SMTP_LOCAL_PART_MAX);
	size_t dlen = bounded_strlen(a->domain, sizeof a->domain);
	bool path = cmd->verb == SMTP_CMD_MAIL || cmd->verb == SMTP_CMD_RCPT;
	if (!path)
		CHECK(llen == 0 && dlen == 0 && a->kind == SMTP_DOMAIN_NONE);
	else
		/* RFC 5321 §4.1.2: a Quoted-string may be empty, so ""@domain
		 * is a valid path whose local part is empty. */
		CHECK(llen > 0 || a->local_quoted || (cmd->verb == SMTP_CMD_MAIL && cmd->null_sender));
	CHECK(!cmd->null_sender || (cmd->verb == SMTP_CMD_MAIL && llen == 0 && dlen == 0));
	CHECK(!a->bare_ip || (flags & SMTP_PARSE_BARE_IP));

	if (cmd->verb != SMTP_CMD_MAIL)
		CHECK(!cmd->has_size && cmd->size == 0 && cmd->body == SMTP_BODY_UNSPECIFIED &&
		      !cmd->smtputf8);
	if (!(flags & SMTP_PARSE_EHLO_SEEN))
		CHECK(!cmd->has_size && cmd->body == SMTP_BODY_UNSPECIFIED && !cmd->smtputf8);
	CHECK(cmd->has_size || cmd->size == 0);
	CHECK(!cmd->has_size || max_size == 0 || cmd->size <= max_size);
	CHECK(cmd->body <= SMTP_BODY_8BITMIME);
	/* RFC 6531: no UTF-8 sender without SMTPUTF8 */
	CHECK(cmd->verb != SMTP_CMD_MAIL || !a->utf8 || cmd->smtputf8);
	if (cmd->verb != SMTP_CMD_BDAT)
		CHECK(cmd->chunk_size == 0 && !cmd->last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flag_sets[] = {
		0,
		SMTP_PARSE_EHLO_SEEN,
		SMTP_PARSE_BARE_IP,
		SMTP_PARSE_EHLO_SEEN | SMTP_PARSE_BARE_IP,
	};
	static const uint64_t max_sizes[] = { 0, 1000, UINT64_MAX };
	const char *line = (const char *)data;

	for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
		for (size_t m = 0; m < sizeof max_sizes / sizeof max_sizes[0]; m++) {
			struct smtp_command cmd;
			struct smtp_reply err;

			memset(&err, 0, sizeof err);
			if (smtp_command_parse(line, size, flag_sets[f], max_sizes[m], &cmd, &err))
				check_success(&cmd, line, size, flag_sets[f], max_sizes[m]);
			else
				check_error(&err);
		}
	}
	return 0;
}
