/* The SMTP command parser (server side).  One line in (without its line
 * ending), one validated struct out: validate first, then act (OpenSMTPD). */
#ifndef RAWMAIL_SMTP_COMMAND_H
#define RAWMAIL_SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/address.h"
#include "smtp/reply.h"

enum smtp_verb {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_DATA,
	SMTP_CMD_BDAT, SMTP_CMD_RSET, SMTP_CMD_NOOP, SMTP_CMD_QUIT, SMTP_CMD_VRFY,
	SMTP_CMD_EXPN, SMTP_CMD_HELP, SMTP_CMD_STARTTLS, SMTP_CMD_AUTH,
};

enum smtp_body_type { SMTP_BODY_UNSPECIFIED = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_command {
	enum smtp_verb verb;
	/* HELO / EHLO: the client's name or address literal as sent (syntax
	 * checked loosely: printable ASCII, no spaces, at most 255 octets). */
	char helo[SMTP_DOMAIN_MAX + 1];
	/* MAIL / RCPT */
	struct smtp_address addr;
	bool null_sender;                 /* MAIL FROM:<> */
	bool has_size; uint64_t size;     /* SIZE=n (RFC 1870) */
	enum smtp_body_type body;         /* BODY= (RFC 6152) */
	bool smtputf8;                    /* SMTPUTF8 (RFC 6531) */
	/* BDAT n [LAST] (RFC 3030) */
	uint64_t chunk_size; bool last;
	/* VRFY / EXPN / HELP / NOOP / AUTH: the raw argument (may be empty),
	 * NUL-terminated copy truncated to fit.  It may hold any byte but NUL
	 * (control bytes included): escape it before logging or echoing. */
	char arg[SMTP_PATH_MAX + 1];
	/* Added: arg was cut to fit.  For AUTH a cut argument is refused
	 * instead (500 5.5.6, RFC 4954 §6), so this is never set for AUTH. */
	bool arg_truncated;
};

/* Which extensions the session has announced: a parameter of an extension
 * that was not offered is refused (555 5.5.4). */
enum {
	SMTP_PARSE_EHLO_SEEN = 1 << 0, /* the session used EHLO (ESMTP params allowed) */
	SMTP_PARSE_BARE_IP = 1 << 1,   /* pass SMTP_ADDR_BARE_IP to the address parser */
	SMTP_PARSE_AUTH = 1 << 2,      /* AUTH was offered: MAIL's AUTH= is taken (RFC 4954 §5) */
};

/* Parses one command line.  line[0..len) excludes the CRLF; it may hold any
 * byte, including NUL (refused).  Verbs are case-insensitive; "MAIL FROM:"
 * and "RCPT TO:" allow spaces after the colon (common clients send them);
 * paths without brackets are accepted (SMTP_ADDR_NO_BRACKETS).
 * Returns true and fills *cmd on success; on error returns false and fills
 * *err with the reply to send (500 5.5.2 unknown command or line with NUL,
 * 501 5.5.4 bad arguments, 501 5.1.7 bad sender, 501 5.1.3 bad recipient,
 * 553 5.6.7 UTF-8 without SMTPUTF8, 555 5.5.4 unknown MAIL/RCPT parameter,
 * 552 5.3.4 for a SIZE over max_size (pass 0 for no check)); also 500 5.5.2
 * for a line over SMTP_COMMAND_LINE_MAX octets (without its CRLF) and 500
 * 5.5.6 for an AUTH argument too long for arg.
 * *cmd is always cleared first.  On error cmd->verb still names the verb
 * when it was recognised (SMTP_CMD_UNKNOWN otherwise), so the session can
 * log it and, for a refused BDAT, knows that chunk octets may follow; the
 * other fields are then unspecified.
 * Order of checks: line, verb, argument syntax, path syntax, parameter
 * syntax, then SIZE against max_size, then (MAIL) UTF-8 without SMTPUTF8.
 * RCPT paths may be UTF-8 whatever the parameters (cmd->addr.utf8 tells):
 * the session checks them against the transaction's SMTPUTF8. */
bool smtp_command_parse(const char *line, size_t len, unsigned flags, uint64_t max_size,
                        struct smtp_command *cmd, struct smtp_reply *err);

const char *smtp_verb_name(enum smtp_verb v);

#endif
