/* The SMTP command parser (server side): one line in, one validated struct
 * or one error reply out.  The grammar is RFC 5321 §4.1.1 and §4.1.2 with
 * the leniencies real clients need (lower-case verbs, spaces after
 * "MAIL FROM:", paths without brackets), plus the parameters of SIZE
 * (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531) and CHUNKING
 * (RFC 3030).  Reply codes: RFC 5321 §4.2.3, enhanced codes RFC 3463 as
 * RFC 2034 asks. */
#include "smtp/command.h"

#include <string.h>

/* Indexed by enum smtp_verb: the verb table of the parser and the names
 * for logs are one table, so they cannot drift apart. */
static const char *const verb_names[] = {
	[SMTP_CMD_UNKNOWN] = "UNKNOWN",
	[SMTP_CMD_HELO] = "HELO",
	[SMTP_CMD_EHLO] = "EHLO",
	[SMTP_CMD_MAIL] = "MAIL",
	[SMTP_CMD_RCPT] = "RCPT",
	[SMTP_CMD_DATA] = "DATA",
	[SMTP_CMD_BDAT] = "BDAT",
	[SMTP_CMD_RSET] = "RSET",
	[SMTP_CMD_NOOP] = "NOOP",
	[SMTP_CMD_QUIT] = "QUIT",
	[SMTP_CMD_VRFY] = "VRFY",
	[SMTP_CMD_EXPN] = "EXPN",
	[SMTP_CMD_HELP] = "HELP",
	[SMTP_CMD_STARTTLS] = "STARTTLS",
	[SMTP_CMD_AUTH] = "AUTH",
};
#define VERB_COUNT (sizeof verb_names / sizeof verb_names[0])

const char *smtp_verb_name(enum smtp_verb v)
{
	if ((unsigned)v >= VERB_COUNT || verb_names[v] == NULL)
		return "UNKNOWN";
	return verb_names[v];
}

/* RFC 5321 §2.4: verbs and parameter keywords are case-insensitive.  ASCII
 * only, never the locale's toupper(). */
static unsigned char ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	unsigned char u = ascii_upper((unsigned char)c);

	return is_digit(c) || (u >= 'A' && u <= 'Z');
}

/* s[0..len) starts with the upper-case literal lit, ignoring ASCII case. */
static bool starts_with_word(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	if (len < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_upper((unsigned char)s[i]) != (unsigned char)lit[i])
			return false;
	return true;
}

/* s[0..len) is exactly the upper-case literal lit, ignoring ASCII case. */
static bool equals_word(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && starts_with_word(s, len, lit);
}

static size_t skip_spaces(const char **p, size_t *n)
{
	size_t k = 0;

	while (k < *n && (*p)[k] == ' ')
		k++;
	*p += k;
	*n -= k;
	return k;
}

static size_t token_length(const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] != ' ')
		k++;
	return k;
}

/* Decimal digits into *out.  Returns false if p[0..n) is empty or holds a
 * non-digit; *overflow says the value did not fit in 64 bits (then *out
 * is UINT64_MAX).  Leading zeros never overflow. */
static bool parse_digits(const char *p, size_t n, uint64_t *out, bool *overflow)
{
	uint64_t v = 0;

	*overflow = false;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			*overflow = true;
		else
			v = v * 10 + d;
	}
	*out = *overflow ? UINT64_MAX : v;
	return true;
}

static bool syntax_error(struct smtp_reply *err, const char *text)
{
	smtp_reply_set(err, 501, "5.5.4", "%s", text);
	return false;
}

/* HELO / EHLO: RFC 5321 §4.1.1.1 asks for a Domain or address-literal.
 * Many clients send a bare host name, "localhost" or an unbracketed IP, so
 * the check is loose (Postfix's default): one word of printable ASCII of
 * at most 255 octets.  The name only ends up in Received: and logs, both
 * of which escape it. */
static bool parse_helo(struct smtp_command *cmd, const char *arg, size_t alen,
                       struct smtp_reply *err)
{
	bool ok = alen > 0 && alen <= SMTP_DOMAIN_MAX;

	for (size_t i = 0; ok && i < alen; i++)
		ok = arg[i] > ' ' && arg[i] < 0x7f;
	if (!ok) {
		smtp_reply_set(err, 501, "5.5.4", "Syntax: %s hostname", smtp_verb_name(cmd->verb));
		return false;
	}
	memcpy(cmd->helo, arg, alen);
	cmd->helo[alen] = '\0';
	return true;
}

/* RFC 3030 §2: "BDAT" SP chunk-size [ SP end-marker ], chunk-size =
 * 1*DIGIT, end-marker = "LAST".  A chunk size past 64 bits is refused: the
 * session could not count the octets that follow anyway. */
static bool parse_bdat(struct smtp_command *cmd, const char *p, size_t n, struct smtp_reply *err)
{
	size_t k = token_length(p, n);
	bool overflow;

	if (!parse_digits(p, k, &cmd->chunk_size, &overflow) || overflow) {
		cmd->chunk_size = 0;
		return syntax_error(err, "Syntax: BDAT chunk-size [LAST]");
	}
	p += k;
	n -= k;
	skip_spaces(&p, &n);
	if (n == 0)
		return true;
	if (!equals_word(p, n, "LAST"))
		return syntax_error(err, "Syntax: BDAT chunk-size [LAST]");
	cmd->last = true;
	return true;
}

/* RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool esmtp_keyword_valid(const char *p, size_t n)
{
	if (n == 0 || !is_alnum(p[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(p[i]) && p[i] != '-')
			return false;
	return true;
}

/* RFC 5321 §4.1.2: esmtp-value = 1*(%d33-60 / %d62-126), i.e. printable
 * ASCII except "=" (RFC 6531 §3.3 widens it only for parameters we do not
 * take). */
static bool esmtp_value_valid(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 33 || p[i] > 126 || p[i] == '=')
			return false;
	return true;
}

struct params_seen {
	bool size, body, smtputf8, auth;
};

/* One MAIL parameter, keyword[=value], syntax already checked. */
static bool parse_mail_param(struct smtp_command *cmd, const char *key, size_t klen,
                             const char *val, size_t vlen, bool has_val, unsigned flags,
                             struct params_seen *seen, struct smtp_reply *err)
{
	if (equals_word(key, klen, "SIZE")) {
		/* RFC 1870 §3: size-value ::= 1*20DIGIT.  Twenty digits can
		 * exceed 2^64-1; such a size is larger than anything we could
		 * take, so it saturates and the size check refuses it. */
		bool overflow;
		if (seen->size)
			return syntax_error(err, "Duplicate SIZE parameter");
		seen->size = true;
		if (!has_val || vlen > 20 || !parse_digits(val, vlen, &cmd->size, &overflow)) {
			cmd->size = 0;
			return syntax_error(err, "Bad SIZE parameter value");
		}
		cmd->has_size = true;
		return true;
	}
	if (equals_word(key, klen, "BODY")) {
		/* RFC 6152 §2: BODY=7BIT or BODY=8BITMIME.  BINARYMIME (RFC
		 * 3030 §3) is a known value we do not offer. */
		if (seen->body)
			return syntax_error(err, "Duplicate BODY parameter");
		seen->body = true;
		if (!has_val)
			return syntax_error(err, "Bad BODY parameter value");
		if (equals_word(val, vlen, "7BIT")) {
			cmd->body = SMTP_BODY_7BIT;
		} else if (equals_word(val, vlen, "8BITMIME")) {
			cmd->body = SMTP_BODY_8BITMIME;
		} else if (equals_word(val, vlen, "BINARYMIME")) {
			smtp_reply_set(err, 555, "5.5.4", "BODY=BINARYMIME is not supported");
			return false;
		} else {
			return syntax_error(err, "Bad BODY parameter value");
		}
		return true;
	}
	if (equals_word(key, klen, "SMTPUTF8")) {
		/* RFC 6531 §3.4: the SMTPUTF8 parameter has no value. */
		if (seen->smtputf8)
			return syntax_error(err, "Duplicate SMTPUTF8 parameter");
		seen->smtputf8 = true;
		if (has_val)
			return syntax_error(err, "SMTPUTF8 takes no value");
		cmd->smtputf8 = true;
		return true;
	}
	if ((flags & SMTP_PARSE_AUTH) && equals_word(key, klen, "AUTH")) {
		/* RFC 4954 §5: AUTH=xtext or AUTH=<>, the identity a relaying
		 * client vouches for.  It is taken and ignored: a submission
		 * server trusts only its own logins (§5 lets it). */
		if (seen->auth)
			return syntax_error(err, "Duplicate AUTH parameter");
		seen->auth = true;
		if (!has_val)
			return syntax_error(err, "Bad AUTH parameter value");
		return true;
	}
	/* RFC 5321 §4.1.1.11: 555 for a parameter not recognised or not
	 * implemented (AUTH= where AUTH is not offered, RET=, ENVID=). */
	smtp_reply_set(err, 555, "5.5.4", "Unsupported parameter %.*s",
	               (int)(klen > 32 ? 32 : klen), key);
	return false;
}

/* ESMTP parameters after a MAIL or RCPT path: SP-separated
 * keyword[=value] (RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters). */
static bool parse_params(struct smtp_command *cmd, const char *p, size_t n, unsigned flags,
                         struct smtp_reply *err)
{
	struct params_seen seen = { false, false, false, false };

	for (;;) {
		skip_spaces(&p, &n);
		if (n == 0)
			return true;
		/* RFC 5321 §4.1.1.11: parameters belong to extensions, and a
		 * client that said HELO was offered none. */
		if (!(flags & SMTP_PARSE_EHLO_SEEN)) {
			smtp_reply_set(err, 555, "5.5.4", "Parameters not allowed after HELO");
			return false;
		}
		size_t tlen = token_length(p, n);
		const char *eq = memchr(p, '=', tlen);
		size_t klen = eq != NULL ? (size_t)(eq - p) : tlen;
		const char *val = eq != NULL ? eq + 1 : p + tlen;
		size_t vlen = tlen - klen - (eq != NULL ? 1 : 0);
		if (!esmtp_keyword_valid(p, klen) || (eq != NULL && !esmtp_value_valid(val, vlen)))
			return syntax_error(err, "Syntax error in parameters");
		if (cmd->verb == SMTP_CMD_RCPT) {
			/* No RCPT parameter is offered yet (DSN's NOTIFY and
			 * ORCPT, RFC 3461, come with bounces). */
			smtp_reply_set(err, 555, "5.5.4", "Unsupported parameter %.*s",
			               (int)(klen > 32 ? 32 : klen), p);
			return false;
		}
		if (!parse_mail_param(cmd, p, klen, val, vlen, eq != NULL, flags, &seen, err))
			return false;
		p += tlen;
		n -= tlen;
	}
}

static bool address_error(bool mail, enum smtp_address_status st, struct smtp_reply *err)
{
	const char *why = smtp_address_status_text(st);

	if (why == NULL)
		why = "bad address";
	if (st == SMTP_ADDR_ERR_UTF8_NOT_ALLOWED)
		/* RFC 6531 §3.7.4.1 with RFC 5248: 553 5.6.7, non-ASCII
		 * address without SMTPUTF8. */
		smtp_reply_set(err, 553, "5.6.7", "%s address: %s", mail ? "Sender" : "Recipient", why);
	else
		/* RFC 3463 §3.2: X.1.7 bad sender, X.1.3 bad recipient
		 * mailbox address syntax. */
		smtp_reply_set(err, 501, mail ? "5.1.7" : "5.1.3", "Bad %s address syntax: %s",
		               mail ? "sender" : "recipient", why);
	return false;
}

/* "MAIL FROM:" path [SP params] and "RCPT TO:" path [SP params], RFC 5321
 * §4.1.1.2 and §4.1.1.3.  The keyword ends at the colon: "MAIL FROM :" is
 * refused, since no client we know sends it and the grammar has no space
 * there.  Spaces after the colon are common (Outlook, older Exchange) and
 * taken. */
static bool parse_path_command(struct smtp_command *cmd, const char *p, size_t n, unsigned flags,
                               uint64_t max_size, struct smtp_reply *err)
{
	bool mail = cmd->verb == SMTP_CMD_MAIL;
	const char *keyword = mail ? "FROM:" : "TO:";
	const char *usage = mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>";

	if (!starts_with_word(p, n, keyword))
		return syntax_error(err, usage);
	p += strlen(keyword);
	n -= strlen(keyword);
	skip_spaces(&p, &n);
	if (n == 0)
		return syntax_error(err, usage);

	/* The address parser is always allowed UTF-8, because whether
	 * SMTPUTF8 was given is only known after the path (the parameters
	 * follow it); for MAIL it is checked below, for RCPT the session
	 * checks it against the transaction (RFC 6531 §3.4). */
	unsigned aflags = SMTP_ADDR_NO_BRACKETS | SMTP_ADDR_UTF8;
	aflags |= mail ? SMTP_ADDR_NULL_OK : SMTP_ADDR_POSTMASTER_OK;
	if (flags & SMTP_PARSE_BARE_IP)
		aflags |= SMTP_ADDR_BARE_IP;
	size_t consumed = 0;
	enum smtp_address_status st = smtp_address_parse(p, n, aflags, &cmd->addr, &consumed);
	if (st != SMTP_ADDR_OK)
		return address_error(mail, st, err);
	/* The path must end at a space or at the end of the line:
	 * "<a@b.c>x" is a malformed path, not a parameter. */
	if (consumed == 0 || consumed > n || (consumed < n && p[consumed] != ' '))
		return address_error(mail, SMTP_ADDR_ERR_SYNTAX, err);
	if (mail)
		cmd->null_sender = cmd->addr.kind == SMTP_DOMAIN_NONE && cmd->addr.local_len == 0;

	if (!parse_params(cmd, p + consumed, n - consumed, flags, err))
		return false;
	/* Validate first, then judge: the size limit and the UTF-8 rule
	 * apply to a command whose syntax is known to be good. */
	if (mail && cmd->has_size && max_size != 0 && cmd->size > max_size) {
		/* RFC 1870 §6.1: 552, and RFC 3463 X.3.4 "message too big
		 * for system". */
		smtp_reply_set(err, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return false;
	}
	if (mail && cmd->addr.utf8 && !cmd->smtputf8)
		return address_error(mail, SMTP_ADDR_ERR_UTF8_NOT_ALLOWED, err);
	return true;
}

bool smtp_command_parse(const char *line, size_t len, unsigned flags, uint64_t max_size,
                        struct smtp_command *cmd, struct smtp_reply *err)
{
	memset(cmd, 0, sizeof *cmd);
	if (line == NULL)
		len = 0;
	/* RFC 5321 §4.5.3.1.4 allows 512 octets and lets extensions add
	 * more; util/limits.h takes Postfix's 2048.  The framer refuses
	 * longer lines first; this is the parser's own bound.  §4.2.4:
	 * "500 Line too long". */
	if (len > SMTP_COMMAND_LINE_MAX) {
		smtp_reply_set(err, 500, "5.5.2", "Line too long");
		return false;
	}
	/* Trailing spaces are tolerated: some clients send "DATA ". */
	while (len > 0 && line[len - 1] == ' ')
		len--;

	size_t vlen = token_length(line, len);
	for (size_t v = 1; v < VERB_COUNT; v++) {
		if (verb_names[v] != NULL && equals_word(line, vlen, verb_names[v])) {
			cmd->verb = (enum smtp_verb)v;
			break;
		}
	}
	/* A NUL is no SMTP character (RFC 5321 §2.3.8, §4.1.1) and would
	 * cut C strings made from the line: refuse the whole line.  The
	 * verb is looked up first so that a refused "BDAT 10\0" is still
	 * known to be a BDAT. */
	if (len > 0 && memchr(line, '\0', len) != NULL) {
		smtp_reply_set(err, 500, "5.5.2", "NUL octet in command");
		return false;
	}
	if (cmd->verb == SMTP_CMD_UNKNOWN) {
		smtp_reply_set(err, 500, "5.5.2", "Command unrecognized");
		return false;
	}
	/* RFC 5321 §4.1.1: the verb and its arguments are separated by SP;
	 * more than one is tolerated. */
	const char *arg = line + vlen;
	size_t alen = len - vlen;
	skip_spaces(&arg, &alen);

	switch (cmd->verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		return parse_helo(cmd, arg, alen, err);
	case SMTP_CMD_MAIL:
	case SMTP_CMD_RCPT:
		return parse_path_command(cmd, arg, alen, flags, max_size, err);
	case SMTP_CMD_DATA:
	case SMTP_CMD_RSET:
	case SMTP_CMD_QUIT:
	case SMTP_CMD_STARTTLS:
		/* RFC 5321 §4.1.1.4, .5, .10; RFC 3207 §4. */
		if (alen > 0)
			return syntax_error(err, "Syntax error, no parameters allowed");
		return true;
	case SMTP_CMD_BDAT:
		return parse_bdat(cmd, arg, alen, err);
	case SMTP_CMD_NOOP:
	case SMTP_CMD_HELP:
	case SMTP_CMD_VRFY:
	case SMTP_CMD_EXPN:
	case SMTP_CMD_AUTH: {
		/* RFC 5321 §4.1.1.6-9: the argument is free text the session
		 * answers or ignores; it may hold any byte but NUL. */
		size_t n = alen < sizeof cmd->arg - 1 ? alen : sizeof cmd->arg - 1;
		memcpy(cmd->arg, arg, n);
		cmd->arg[n] = '\0';
		cmd->arg_truncated = n < alen;
		if (cmd->verb == SMTP_CMD_AUTH && cmd->arg_truncated) {
			/* RFC 4954 §6: a cut initial response would only
			 * fail later and less clearly. */
			smtp_reply_set(err, 500, "5.5.6", "Authentication Exchange line is too long");
			return false;
		}
		return true;
	}
	case SMTP_CMD_UNKNOWN:
		break;
	}
	smtp_reply_set(err, 500, "5.5.2", "Command unrecognized");
	return false;
}
