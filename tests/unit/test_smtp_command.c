/* smtp_command_parse: a table of command lines and what each must give,
 * either the parsed fields or the exact refusal (code and enhanced code).
 * With RAWMAIL_SEED_DIR set, main() also writes every line of the tables
 * into that directory as the seed corpus of tests/fuzz/fuzz_smtp_command.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp/command.h"
#include "util/buf.h"

/* Every field a successful parse sets; NULL strings mean "". */
struct want {
	enum smtp_verb verb;
	const char *helo;
	const char *arg;
	bool arg_truncated;
	const char *local;
	const char *domain;
	enum smtp_domain_kind kind;
	bool quoted, utf8, bare_ip, route;
	bool null_sender;
	bool has_size;
	uint64_t size;
	enum smtp_body_type body;
	bool smtputf8;
	uint64_t chunk;
	bool last;
};

struct cmd_case {
	const char *line;
	size_t len;
	unsigned flags;
	uint64_t max_size;
	bool ok;
	struct want want;  /* on error only .verb is checked */
	int code;
	const char *enhanced;
};

/* Flags: H after HELO (no ESMTP parameters), E after EHLO, B bare IPs. */
#define H 0u
#define E ((unsigned)SMTP_PARSE_EHLO_SEEN)
#define B ((unsigned)SMTP_PARSE_BARE_IP)
#define MAX 10485760u

/* sizeof, not strlen: a line may hold NUL octets. */
#define LINE(s) .line = (s), .len = sizeof(s) - 1
#define OK(s, fl, max, ...) \
	{ LINE(s), .flags = (fl), .max_size = (max), .ok = true, .want = { __VA_ARGS__ } }
#define ERR(s, fl, max, v, c, e) \
	{ LINE(s), .flags = (fl), .max_size = (max), .ok = false, .want = { .verb = (v) }, \
	  .code = (c), .enhanced = (e) }

#define V(x) .verb = SMTP_CMD_##x
#define ADDR(l, d) .local = (l), .domain = (d), .kind = SMTP_DOMAIN_NAME
#define MAILOK(s, fl, max, ...) OK(s, fl, max, V(MAIL), __VA_ARGS__)
#define RCPTOK(s, fl, max, ...) OK(s, fl, max, V(RCPT), __VA_ARGS__)
#define MAILERR(s, fl, max, c, e) ERR(s, fl, max, SMTP_CMD_MAIL, c, e)
#define RCPTERR(s, fl, max, c, e) ERR(s, fl, max, SMTP_CMD_RCPT, c, e)
#define A "MAIL FROM:<a@example.com>"
#define R "RCPT TO:<bob@example.com>"

static const struct cmd_case cases[] = {
	/* HELO / EHLO: one word of printable ASCII, at most 255 octets */
	OK("HELO client.example", H, 0, V(HELO), .helo = "client.example"),
	OK("helo client.example", H, 0, V(HELO), .helo = "client.example"),
	OK("EHLO client.example", H, 0, V(EHLO), .helo = "client.example"),
	OK("EhLo client.example", H, 0, V(EHLO), .helo = "client.example"),
	OK("EHLO [192.0.2.1]", H, 0, V(EHLO), .helo = "[192.0.2.1]"),
	OK("EHLO [IPv6:2001:db8::1]", H, 0, V(EHLO), .helo = "[IPv6:2001:db8::1]"),
	OK("EHLO 192.0.2.1", H, 0, V(EHLO), .helo = "192.0.2.1"),
	OK("EHLO localhost", E, 0, V(EHLO), .helo = "localhost"),
	OK("EHLO client.example ", H, 0, V(EHLO), .helo = "client.example"),
	OK("EHLO    client.example   ", H, 0, V(EHLO), .helo = "client.example"),
	OK("HELO x", H, 0, V(HELO), .helo = "x"),
	ERR("EHLO", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("HELO", H, 0, SMTP_CMD_HELO, 501, "5.5.4"),
	ERR("EHLO ", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("HELO a b", H, 0, SMTP_CMD_HELO, 501, "5.5.4"),
	ERR("EHLO client.example extra", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("EHLO a\tb", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("EHLO caf\xc3\xa9.example", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("EHLO a\x7f", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("EHLO a\rb", H, 0, SMTP_CMD_EHLO, 501, "5.5.4"),
	ERR("EHLO\tclient.example", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("EHLOclient.example", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),

	/* MAIL FROM: verb and keyword in any case, spaces after the colon */
	MAILOK(A, H, 0, ADDR("a", "example.com")),
	MAILOK("mail from:<a@example.com>", H, 0, ADDR("a", "example.com")),
	MAILOK("MaIl FrOm:<a@example.com>", H, 0, ADDR("a", "example.com")),
	MAILOK("MAIL FROM: <a@example.com>", H, 0, ADDR("a", "example.com")),
	MAILOK("MAIL FROM:   <a@example.com>", H, 0, ADDR("a", "example.com")),
	MAILOK("MAIL  FROM:<a@example.com>", H, 0, ADDR("a", "example.com")),
	MAILOK("MAIL FROM:<a@example.com> ", H, 0, ADDR("a", "example.com")),
	MAILOK("MAIL FROM:a@example.com", H, 0, ADDR("a", "example.com")),
	MAILOK("MAIL FROM:a@example.com SIZE=5", E, 0, ADDR("a", "example.com"),
	       .has_size = true, .size = 5),
	MAILOK("MAIL FROM:<>", H, 0, .null_sender = true),
	MAILOK("MAIL FROM: <>", E, 0, .null_sender = true),
	MAILOK("MAIL FROM:<> SIZE=10", E, MAX, .null_sender = true, .has_size = true, .size = 10),
	MAILOK("MAIL FROM:<a@[192.0.2.1]>", H, 0, .local = "a", .domain = "192.0.2.1",
	       .kind = SMTP_DOMAIN_IPV4),
	MAILOK("MAIL FROM:<a@192.0.2.1>", B, 0, .local = "a", .domain = "192.0.2.1",
	       .kind = SMTP_DOMAIN_IPV4, .bare_ip = true),
	MAILOK("MAIL FROM:<\"john doe\"@example.com>", H, 0, ADDR("john doe", "example.com"),
	       .quoted = true),
	MAILOK("MAIL FROM:<@relay.example:a@example.com>", H, 0, ADDR("a", "example.com"),
	       .route = true),
	MAILERR("MAIL FROM :<a@example.com>", H, 0, 501, "5.5.4"),
	MAILERR("MAIL FROM<a@example.com>", H, 0, 501, "5.5.4"),
	MAILERR("MAIL FROM a@example.com", H, 0, 501, "5.5.4"),
	MAILERR("MAIL FROM", H, 0, 501, "5.5.4"),
	MAILERR("MAIL TO:<a@example.com>", H, 0, 501, "5.5.4"),
	MAILERR("MAIL", H, 0, 501, "5.5.4"),
	MAILERR("MAIL ", H, 0, 501, "5.5.4"),
	MAILERR("MAIL FROM:", H, 0, 501, "5.5.4"),
	MAILERR("MAIL FROM:   ", H, 0, 501, "5.5.4"),
	MAILERR("MAIL FROM:<a@example.com", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@@example.com>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@example.com>x", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@example.com>>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<<a@example.com>>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@example.com.>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@example.com>\r", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<Postmaster>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@192.0.2.1>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a@[300.0.2.1]>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<a b@example.com>", H, 0, 501, "5.1.7"),
	MAILERR("MAIL FROM:<\xff@example.com> SMTPUTF8", E, 0, 501, "5.1.7"),

	/* RFC 6531: UTF-8 in MAIL only with the SMTPUTF8 parameter */
	MAILOK("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", E, 0,
	       ADDR("j\xc3\xb6rg", "example.com"), .utf8 = true, .smtputf8 = true),
	MAILOK("MAIL FROM:<j@b\xc3\xbc\x63her.example> smtputf8", E, 0,
	       ADDR("j", "b\xc3\xbc\x63her.example"), .utf8 = true, .smtputf8 = true),
	MAILOK("MAIL FROM:<a@example.com> SMTPUTF8", E, 0, ADDR("a", "example.com"),
	       .smtputf8 = true),
	MAILERR("MAIL FROM:<j\xc3\xb6rg@example.com>", E, 0, 553, "5.6.7"),
	MAILERR("MAIL FROM:<j\xc3\xb6rg@example.com>", H, 0, 553, "5.6.7"),
	MAILERR("MAIL FROM:<j\xc3\xb6rg@example.com> BODY=8BITMIME", E, 0, 553, "5.6.7"),
	MAILERR("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", H, 0, 555, "5.5.4"),

	/* SIZE (RFC 1870) */
	MAILOK(A " SIZE=1000", E, 0, ADDR("a", "example.com"), .has_size = true, .size = 1000),
	MAILOK(A " SIZE=1000", E, 1000, ADDR("a", "example.com"), .has_size = true,
	       .size = 1000),
	MAILOK(A " size=12", E, MAX, ADDR("a", "example.com"), .has_size = true, .size = 12),
	MAILOK(A " SIZE=0", E, MAX, ADDR("a", "example.com"), .has_size = true, .size = 0),
	MAILOK(A " SIZE=1001", E, 0, ADDR("a", "example.com"), .has_size = true, .size = 1001),
	MAILOK(A " SIZE=18446744073709551615", E, 0, ADDR("a", "example.com"),
	       .has_size = true, .size = UINT64_MAX),
	MAILOK(A " SIZE=18446744073709551616", E, 0, ADDR("a", "example.com"),
	       .has_size = true, .size = UINT64_MAX),
	MAILOK(A " SIZE=00000000000000000001", E, 0, ADDR("a", "example.com"),
	       .has_size = true, .size = 1),
	MAILERR(A " SIZE=1001", E, 1000, 552, "5.3.4"),
	MAILERR(A " SIZE=18446744073709551616", E, MAX, 552, "5.3.4"),
	MAILERR(A " SIZE=99999999999999999999", E, MAX, 552, "5.3.4"),
	MAILERR(A " SIZE=99999999999999999999999", E, MAX, 501, "5.5.4"),
	MAILERR(A " SIZE=99999999999999999999999", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=000000000000000000001", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE= 1", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=12a", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=-1", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=+1", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=0x10", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=1=2", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=1 SIZE=2", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=1 size=1", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=1000", H, 0, 555, "5.5.4"),
	MAILERR(A " SIZE=2000 FOO", E, 1000, 555, "5.5.4"),
	MAILERR(A " SIZE=2000 SIZE=1", E, 1000, 501, "5.5.4"),
	MAILERR("MAIL FROM:<j\xc3\xb6rg@example.com> SIZE=2000", E, 1000, 552, "5.3.4"),

	/* BODY (RFC 6152); BINARYMIME (RFC 3030) is not offered */
	MAILOK(A " BODY=7BIT", E, 0, ADDR("a", "example.com"), .body = SMTP_BODY_7BIT),
	MAILOK(A " BODY=8BITMIME", E, 0, ADDR("a", "example.com"), .body = SMTP_BODY_8BITMIME),
	MAILOK(A " body=8bitmime", E, 0, ADDR("a", "example.com"), .body = SMTP_BODY_8BITMIME),
	MAILOK(A " Body=7bit", E, 0, ADDR("a", "example.com"), .body = SMTP_BODY_7BIT),
	MAILERR(A " BODY=BINARYMIME", E, 0, 555, "5.5.4"),
	MAILERR(A " body=binarymime", E, 0, 555, "5.5.4"),
	MAILERR(A " BODY=8BIT", E, 0, 501, "5.5.4"),
	MAILERR(A " BODY=7BITX", E, 0, 501, "5.5.4"),
	MAILERR(A " BODY", E, 0, 501, "5.5.4"),
	MAILERR(A " BODY=", E, 0, 501, "5.5.4"),
	MAILERR(A " BODY=7BIT BODY=7BIT", E, 0, 501, "5.5.4"),
	MAILERR(A " BODY=7BIT body=8BITMIME", E, 0, 501, "5.5.4"),
	MAILERR(A " BODY=8BITMIME", H, 0, 555, "5.5.4"),

	/* SMTPUTF8 (RFC 6531): no value */
	MAILERR(A " SMTPUTF8=yes", E, 0, 501, "5.5.4"),
	MAILERR(A " SMTPUTF8 SMTPUTF8", E, 0, 501, "5.5.4"),
	MAILERR(A " SMTPUTF8", H, 0, 555, "5.5.4"),

	/* parameters together, and every other keyword */
	MAILOK(A " SIZE=100 BODY=8BITMIME SMTPUTF8", E, MAX, ADDR("a", "example.com"),
	       .has_size = true, .size = 100, .body = SMTP_BODY_8BITMIME, .smtputf8 = true),
	MAILOK(A "   SMTPUTF8   body=7BIT  SIZE=7  ", E, MAX, ADDR("a", "example.com"),
	       .has_size = true, .size = 7, .body = SMTP_BODY_7BIT, .smtputf8 = true),
	MAILERR(A " AUTH=<>", E, 0, 555, "5.5.4"),
	MAILERR(A " RET=HDRS", E, 0, 555, "5.5.4"),
	MAILERR(A " ENVID=QQ314159", E, 0, 555, "5.5.4"),
	MAILERR(A " FOO", E, 0, 555, "5.5.4"),
	MAILERR(A " X-FOO=bar", E, 0, 555, "5.5.4"),
	MAILERR(A " FOO", H, 0, 555, "5.5.4"),
	MAILERR(A " -FOO", E, 0, 501, "5.5.4"),
	MAILERR(A " F_O=1", E, 0, 501, "5.5.4"),
	MAILERR(A " =1", E, 0, 501, "5.5.4"),
	MAILERR(A " FOO==", E, 0, 501, "5.5.4"),
	MAILERR(A " FOO=\x01", E, 0, 501, "5.5.4"),
	MAILERR(A " FOO=\xc3\xa9", E, 0, 501, "5.5.4"),
	MAILERR(A " SIZE=10\tBODY=7BIT", E, 0, 501, "5.5.4"),

	/* RCPT TO: */
	RCPTOK(R, H, 0, ADDR("bob", "example.com")),
	RCPTOK("rcpt to:<bob@example.com>", H, 0, ADDR("bob", "example.com")),
	RCPTOK("RCPT TO: <bob@example.com>", H, 0, ADDR("bob", "example.com")),
	RCPTOK("RCPT   To:bob@example.com  ", H, 0, ADDR("bob", "example.com")),
	RCPTOK("RCPT TO:<postmaster>", H, 0, .local = "postmaster"),
	RCPTOK("RCPT TO:<Postmaster>", H, 0, .local = "Postmaster"),
	RCPTOK("RCPT TO:<POSTMASTER>", E, 0, .local = "POSTMASTER"),
	RCPTOK("RCPT TO:postmaster", H, 0, .local = "postmaster"),
	RCPTOK("RCPT TO:<postmaster@example.com>", H, 0, ADDR("postmaster", "example.com")),
	RCPTOK("RCPT TO:<user@192.0.2.1>", B, 0, .local = "user", .domain = "192.0.2.1",
	       .kind = SMTP_DOMAIN_IPV4, .bare_ip = true),
	RCPTOK("RCPT TO:user@192.0.2.1", B | E, 0, .local = "user", .domain = "192.0.2.1",
	       .kind = SMTP_DOMAIN_IPV4, .bare_ip = true),
	RCPTOK("RCPT TO:<user@[192.0.2.1]>", H, 0, .local = "user", .domain = "192.0.2.1",
	       .kind = SMTP_DOMAIN_IPV4),
	RCPTOK("RCPT TO:<user@[IPv6:2001:db8::1]>", H, 0, .local = "user",
	       .domain = "IPv6:2001:db8::1", .kind = SMTP_DOMAIN_IPV6),
	/* UTF-8 is syntax here; the session checks it against the MAIL */
	RCPTOK("RCPT TO:<j\xc3\xb6rg@example.com>", H, 0, ADDR("j\xc3\xb6rg", "example.com"),
	       .utf8 = true),
	/* relay tricks parse; the relay policy refuses them later */
	RCPTOK("RCPT TO:<user%other.example@example.com>", H, 0,
	       ADDR("user%other.example", "example.com")),
	RCPTOK("RCPT TO:<other.example!user@example.com>", H, 0,
	       ADDR("other.example!user", "example.com")),
	RCPTOK("RCPT TO:<@relay.example,@other.example:user@example.com>", H, 0,
	       ADDR("user", "example.com"), .route = true),
	RCPTOK("RCPT TO:<\"user@other.example\"@example.com>", H, 0,
	       ADDR("user@other.example", "example.com"), .quoted = true),
	RCPTOK("RCPT TO:<\"user%other.example\"@[192.0.2.1]>", H, 0,
	       .local = "user%other.example", .domain = "192.0.2.1",
	       .kind = SMTP_DOMAIN_IPV4, .quoted = true),
	RCPTERR("RCPT TO:<user@other.example@example.com>", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO:<>", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO:<bob>", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO:<postmaster", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO:<\"postmaster\">", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO:<user@192.0.2.1>", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO:<user@[300.1.1.1]>", H, 0, 501, "5.1.3"),
	RCPTERR(R "\r", H, 0, 501, "5.1.3"),
	RCPTERR("RCPT TO :<bob@example.com>", H, 0, 501, "5.5.4"),
	RCPTERR("RCPT FROM:<bob@example.com>", H, 0, 501, "5.5.4"),
	RCPTERR("RCPT TO", H, 0, 501, "5.5.4"),
	RCPTERR("RCPT TO:", H, 0, 501, "5.5.4"),
	RCPTERR("RCPT", H, 0, 501, "5.5.4"),
	RCPTERR("RCPT <bob@example.com>", H, 0, 501, "5.5.4"),
	/* no RCPT parameter is offered (DSN comes later) */
	RCPTERR(R " NOTIFY=NEVER", E, 0, 555, "5.5.4"),
	RCPTERR(R " ORCPT=rfc822;bob@example.com", E, 0, 555, "5.5.4"),
	RCPTERR(R " NOTIFY=NEVER", H, 0, 555, "5.5.4"),
	RCPTERR(R " SIZE=10", E, 0, 555, "5.5.4"),
	RCPTERR(R " SMTPUTF8", E, 0, 555, "5.5.4"),
	RCPTERR(R " =x", E, 0, 501, "5.5.4"),

	/* commands without arguments */
	OK("DATA", H, 0, V(DATA)),
	OK("data", H, 0, V(DATA)),
	OK("DATA ", H, 0, V(DATA)),
	OK("DATA   ", H, 0, V(DATA)),
	OK("RSET", H, 0, V(RSET)),
	OK("rSeT", H, 0, V(RSET)),
	OK("QUIT", H, 0, V(QUIT)),
	OK("quit ", H, 0, V(QUIT)),
	OK("STARTTLS", E, 0, V(STARTTLS)),
	OK("starttls", E, 0, V(STARTTLS)),
	ERR("DATA x", H, 0, SMTP_CMD_DATA, 501, "5.5.4"),
	ERR("DATA <a@example.com>", H, 0, SMTP_CMD_DATA, 501, "5.5.4"),
	ERR("RSET now", H, 0, SMTP_CMD_RSET, 501, "5.5.4"),
	ERR("QUIT bye", H, 0, SMTP_CMD_QUIT, 501, "5.5.4"),
	ERR("STARTTLS x", E, 0, SMTP_CMD_STARTTLS, 501, "5.5.4"),
	ERR("DATA\t", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("STARTTL", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("STARTTLSX", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),

	/* an optional argument, copied as sent */
	OK("NOOP", H, 0, V(NOOP)),
	OK("noop hello world", H, 0, V(NOOP), .arg = "hello world"),
	OK("NOOP   x  ", H, 0, V(NOOP), .arg = "x"),
	OK("NOOP \x01\xff\x7f", H, 0, V(NOOP), .arg = "\x01\xff\x7f"),
	OK("HELP", H, 0, V(HELP)),
	OK("HELP MAIL", H, 0, V(HELP), .arg = "MAIL"),
	OK("VRFY bob", H, 0, V(VRFY), .arg = "bob"),
	OK("vrfy <bob@example.com>", H, 0, V(VRFY), .arg = "<bob@example.com>"),
	OK("VRFY", H, 0, V(VRFY)),
	OK("EXPN staff", H, 0, V(EXPN), .arg = "staff"),
	OK("EXPN", H, 0, V(EXPN)),
	OK("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", E, 0, V(AUTH), .arg = "PLAIN dGVzdAB0ZXN0AHRlc3Q="),
	OK("auth login", E, 0, V(AUTH), .arg = "login"),
	OK("AUTH", E, 0, V(AUTH)),

	/* BDAT (RFC 3030) */
	OK("BDAT 1000", E, 0, V(BDAT), .chunk = 1000),
	OK("BDAT 0 LAST", E, 0, V(BDAT), .chunk = 0, .last = true),
	OK("BDAT 10 last", E, 0, V(BDAT), .chunk = 10, .last = true),
	OK("bdat 10 Last", E, 0, V(BDAT), .chunk = 10, .last = true),
	OK("BDAT 10   LAST", E, 0, V(BDAT), .chunk = 10, .last = true),
	OK("BDAT 10 LAST ", E, 0, V(BDAT), .chunk = 10, .last = true),
	OK("BDAT 0", E, 0, V(BDAT)),
	OK("BDAT 000000000000000000000042", E, 0, V(BDAT), .chunk = 42),
	OK("BDAT 18446744073709551615", E, 0, V(BDAT), .chunk = UINT64_MAX),
	ERR("BDAT 18446744073709551616", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 99999999999999999999999 LAST", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT -1", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT ", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT LAST", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 10 LAST x", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 10LAST", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 10 LASTX", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 10 END", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT +5", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 1e3", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 0x10", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),
	ERR("BDAT 10 LAST LAST", E, 0, SMTP_CMD_BDAT, 501, "5.5.4"),

	/* NUL octets anywhere; the verb is still reported when it was read */
	ERR("\0", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("NOOP\0", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("QUIT\0", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("\0QUIT", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("XYZZY \0", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("QUIT \0", H, 0, SMTP_CMD_QUIT, 500, "5.5.2"),
	ERR("NOOP \0 ", H, 0, SMTP_CMD_NOOP, 500, "5.5.2"),
	ERR("BDAT 10\0", E, 0, SMTP_CMD_BDAT, 500, "5.5.2"),
	ERR("BDAT 10 LAST\0", E, 0, SMTP_CMD_BDAT, 500, "5.5.2"),
	ERR("MAIL FROM:<a\0@example.com>", E, 0, SMTP_CMD_MAIL, 500, "5.5.2"),
	ERR(A " SIZE=1\0", E, 0, SMTP_CMD_MAIL, 500, "5.5.2"),
	ERR(R "\0", E, 0, SMTP_CMD_RCPT, 500, "5.5.2"),
	ERR("HELO a\0b", H, 0, SMTP_CMD_HELO, 500, "5.5.2"),

	/* garbage and near misses */
	ERR("", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR(" ", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("   NOOP", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("XYZZY", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("EHL", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("EHLOO client", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("MAILFROM:<a@example.com>", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("MAIL:FROM <a@example.com>", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("GET / HTTP/1.1", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("\xff\xfe", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("\r\n", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("QUIT\r", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("\x1b[31mQUIT", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("\xef\xbb\xbfHELO x", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
	ERR("\tNOOP", H, 0, SMTP_CMD_UNKNOWN, 500, "5.5.2"),
};

/* Cases built at start-up: lines of about 2 KiB and fields at their limits. */
#define GEN_MAX 24
static struct cmd_case gen[GEN_MAX];
static size_t ngen;
static char gen_store[GEN_MAX][SMTP_COMMAND_LINE_MAX + 16];
static char helo_255[SMTP_DOMAIN_MAX + 1];
static char arg_256[SMTP_PATH_MAX + 1];
static char local_64[SMTP_LOCAL_PART_MAX + 1];

/* prefix, then fill up to total octets, then suffix. */
static struct cmd_case *gen_add(const char *prefix, char fill, size_t total, const char *suffix)
{
	char *s = gen_store[ngen];
	size_t p = strlen(prefix), q = strlen(suffix);

	/* runs before cmocka does: a broken table aborts */
	if (ngen >= GEN_MAX || total < p + q || total >= sizeof gen_store[0])
		abort();
	memcpy(s, prefix, p);
	memset(s + p, fill, total - p - q);
	memcpy(s + total - q, suffix, q);
	struct cmd_case *c = &gen[ngen++];
	memset(c, 0, sizeof *c);
	c->line = s;
	c->len = total;
	return c;
}

static void gen_err(const char *prefix, char fill, size_t total, const char *suffix,
                    unsigned flags, enum smtp_verb v, int code, const char *enh)
{
	struct cmd_case *c = gen_add(prefix, fill, total, suffix);
	c->flags = flags;
	c->want.verb = v;
	c->code = code;
	c->enhanced = enh;
}

static void build_generated(void)
{
	const size_t L = SMTP_COMMAND_LINE_MAX;
	struct cmd_case *c;

	memset(helo_255, 'h', SMTP_DOMAIN_MAX);
	memset(arg_256, 'x', SMTP_PATH_MAX);
	memset(local_64, 'l', SMTP_LOCAL_PART_MAX);

	/* the longest line taken: 2048 octets without CRLF; arg is cut */
	c = gen_add("NOOP ", 'x', L, "");
	c->ok = true;
	c->want = (struct want){ V(NOOP), .arg = arg_256, .arg_truncated = true };
	c = gen_add("NOOP ", 'x', 5 + SMTP_PATH_MAX, "");
	c->ok = true;
	c->want = (struct want){ V(NOOP), .arg = arg_256 };
	c = gen_add("VRFY ", 'x', 6 + SMTP_PATH_MAX, "");
	c->ok = true;
	c->want = (struct want){ V(VRFY), .arg = arg_256, .arg_truncated = true };
	c = gen_add(R, ' ', L, "");
	c->ok = true;
	c->want = (struct want){ V(RCPT), ADDR("bob", "example.com") };
	c = gen_add("HELO ", 'h', 5 + SMTP_DOMAIN_MAX, "");
	c->ok = true;
	c->want = (struct want){ V(HELO), .helo = helo_255 };
	c = gen_add("MAIL FROM:<", 'l', 11 + SMTP_LOCAL_PART_MAX + 13, "@example.com>");
	c->ok = true;
	c->want = (struct want){ V(MAIL), ADDR(local_64, "example.com") };
	c = gen_add("BDAT ", '0', L, "7 LAST");
	c->ok = true;
	c->flags = E;
	c->want = (struct want){ V(BDAT), .chunk = 7, .last = true };

	gen_err("NOOP ", 'x', L + 1, "", H, SMTP_CMD_UNKNOWN, 500, "5.5.2");
	gen_err("", 'A', L, "", H, SMTP_CMD_UNKNOWN, 500, "5.5.2");
	gen_err("", '\xff', L, "", H, SMTP_CMD_UNKNOWN, 500, "5.5.2");
	gen_err("", '\0', L, "", H, SMTP_CMD_UNKNOWN, 500, "5.5.2");
	gen_err("", ' ', L, "", H, SMTP_CMD_UNKNOWN, 500, "5.5.2");
	gen_err("NOOP ", 'x', L, "", H, SMTP_CMD_NOOP, 500, "5.5.2");
	gen_store[ngen - 1][L - 1] = '\0'; /* a NUL as the very last octet */
	gen_err("HELO ", 'h', 6 + SMTP_DOMAIN_MAX, "", H, SMTP_CMD_HELO, 501, "5.5.4");
	gen_err("EHLO ", 'h', L, "", H, SMTP_CMD_EHLO, 501, "5.5.4");
	gen_err("MAIL FROM:<", 'l', 12 + SMTP_LOCAL_PART_MAX + 13, "@example.com>", H,
	        SMTP_CMD_MAIL, 501, "5.1.7");
	gen_err("MAIL FROM:<", 'l', L, "@example.com>", H, SMTP_CMD_MAIL, 501, "5.1.7");
	gen_err("RCPT TO:<a@", 'd', L, ".example>", H, SMTP_CMD_RCPT, 501, "5.1.3");
	gen_err(A " SIZE=", '9', L, "", E, SMTP_CMD_MAIL, 501, "5.5.4");
	gen_err(A " X", 'X', L, "", E, SMTP_CMD_MAIL, 555, "5.5.4");
	gen_err("AUTH PLAIN ", 'A', L, "", E, SMTP_CMD_AUTH, 500, "5.5.6");
	gen_err("BDAT ", '9', L, "", E, SMTP_CMD_BDAT, 501, "5.5.4");
}

/* Escapes a line for failure messages. */
static const char *show(const char *s, size_t n)
{
	static char out[160];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < sizeof out; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			int w = snprintf(out + o, sizeof out - o, "\\x%02x", c);
			o += (size_t)w;
		}
	}
	out[o < sizeof out ? o : sizeof out - 1] = '\0';
	return out;
}

static bool str_is(const char *got, const char *want)
{
	return strcmp(got, want != NULL ? want : "") == 0;
}

/* Mismatches are printed with the case, and counted. */
#define EXPECT(cond)                                                                      \
	do {                                                                              \
		if (!(cond)) {                                                            \
			print_error("case %zu \"%s\": %s\n", idx, show(c->line, c->len), \
			            #cond);                                               \
			bad++;                                                            \
		}                                                                         \
	} while (0)

static bool text_is_clean(const char *t, size_t cap)
{
	size_t n = strnlen(t, cap);

	if (n == cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			return false;
	return true;
}

static int run_case(const struct cmd_case *c, size_t idx)
{
	struct smtp_command cmd;
	struct smtp_reply err;
	int bad = 0;

	/* poison: the parser must clear the struct itself */
	memset(&cmd, 0xa5, sizeof cmd);
	memset(&err, 0, sizeof err);
	bool ok = smtp_command_parse(c->line, c->len, c->flags, c->max_size, &cmd, &err);
	EXPECT(ok == c->ok);
	if (ok != c->ok) {
		if (!ok)
			print_error("    got %d %s %s\n", err.code, err.enhanced ? err.enhanced : "-",
			            err.text);
		return bad;
	}
	EXPECT(cmd.verb == c->want.verb);
	if (!ok) {
		EXPECT(err.code == c->code);
		EXPECT(err.enhanced != NULL && strcmp(err.enhanced, c->enhanced) == 0);
		EXPECT(err.text[0] != '\0');
		EXPECT(text_is_clean(err.text, sizeof err.text));
		if (bad)
			print_error("    got %d %s %s\n", err.code, err.enhanced ? err.enhanced : "-",
			            err.text);
		return bad;
	}
	const struct want *w = &c->want;
	EXPECT(str_is(cmd.helo, w->helo));
	EXPECT(str_is(cmd.arg, w->arg));
	EXPECT(cmd.arg_truncated == w->arg_truncated);
	EXPECT(str_is(cmd.addr.local, w->local));
	EXPECT(cmd.addr.local_len == strlen(w->local != NULL ? w->local : ""));
	EXPECT(str_is(cmd.addr.domain, w->domain));
	EXPECT(cmd.addr.kind == w->kind);
	EXPECT(cmd.addr.local_quoted == w->quoted);
	EXPECT(cmd.addr.utf8 == w->utf8);
	EXPECT(cmd.addr.bare_ip == w->bare_ip);
	EXPECT(cmd.addr.had_source_route == w->route);
	EXPECT(cmd.null_sender == w->null_sender);
	EXPECT(cmd.has_size == w->has_size);
	EXPECT(cmd.size == w->size);
	EXPECT(cmd.body == w->body);
	EXPECT(cmd.smtputf8 == w->smtputf8);
	EXPECT(cmd.chunk_size == w->chunk);
	EXPECT(cmd.last == w->last);
	return bad;
}

static void test_table(void **state)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		bad += run_case(&cases[i], i);
	assert_int_equal(bad, 0);
}

static void test_generated(void **state)
{
	int bad = 0;

	for (size_t i = 0; i < ngen; i++)
		bad += run_case(&gen[i], 1000 + i);
	assert_int_equal(bad, 0);
}

/* Every refusal of the tables formats as exactly one reply line. */
static void test_error_replies_format(void **state)
{
	struct buf out;

	buf_init(&out, 4096);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct smtp_command cmd;
		struct smtp_reply err;
		if (smtp_command_parse(cases[i].line, cases[i].len, cases[i].flags,
		                       cases[i].max_size, &cmd, &err))
			continue;
		buf_reset(&out);
		assert_int_equal(smtp_reply_write(&out, &err), 0);
		assert_true(out.len >= 5);
		assert_memory_equal(out.data + out.len - 2, "\r\n", 2);
		assert_null(memchr(out.data, '\r', out.len - 2));
		assert_null(memchr(out.data, '\n', out.len - 2));
		assert_int_equal(out.data[3], ' ');
		assert_memory_equal(out.data + 4, err.enhanced, strlen(err.enhanced));
	}
	buf_free(&out);
}

/* The struct is cleared even when the parse fails at once. */
static void test_cleared_on_error(void **state)
{
	struct smtp_command cmd;
	struct smtp_reply err;

	memset(&cmd, 0x5a, sizeof cmd);
	assert_false(smtp_command_parse("XYZZY", 5, E, 0, &cmd, &err));
	assert_int_equal(cmd.verb, SMTP_CMD_UNKNOWN);
	assert_string_equal(cmd.helo, "");
	assert_string_equal(cmd.arg, "");
	assert_false(cmd.has_size);
	assert_int_equal(err.code, 500);
	assert_string_equal(err.text, "Command unrecognized");

	memset(&cmd, 0x5a, sizeof cmd);
	assert_false(smtp_command_parse(NULL, 0, E, 0, &cmd, &err));
	assert_int_equal(err.code, 500);
	assert_string_equal(err.enhanced, "5.5.2");
}

/* The SIZE limit message is the one RFC 1870 §6.1 suggests. */
static void test_size_text(void **state)
{
	struct smtp_command cmd;
	struct smtp_reply err;
	static const char line[] = A " SIZE=2";

	assert_false(smtp_command_parse(line, sizeof line - 1, E, 1, &cmd, &err));
	assert_int_equal(err.code, 552);
	assert_string_equal(err.text, "Message size exceeds fixed maximum message size");
	assert_false(smtp_command_parse("DATA x", 6, E, 0, &cmd, &err));
	assert_string_equal(err.text, "Syntax error, no parameters allowed");
}

static void test_verb_names(void **state)
{
	static const struct {
		enum smtp_verb v;
		const char *name;
	} names[] = {
		{ SMTP_CMD_UNKNOWN, "UNKNOWN" }, { SMTP_CMD_HELO, "HELO" },
		{ SMTP_CMD_EHLO, "EHLO" },       { SMTP_CMD_MAIL, "MAIL" },
		{ SMTP_CMD_RCPT, "RCPT" },       { SMTP_CMD_DATA, "DATA" },
		{ SMTP_CMD_BDAT, "BDAT" },       { SMTP_CMD_RSET, "RSET" },
		{ SMTP_CMD_NOOP, "NOOP" },       { SMTP_CMD_QUIT, "QUIT" },
		{ SMTP_CMD_VRFY, "VRFY" },       { SMTP_CMD_EXPN, "EXPN" },
		{ SMTP_CMD_HELP, "HELP" },       { SMTP_CMD_STARTTLS, "STARTTLS" },
		{ SMTP_CMD_AUTH, "AUTH" },
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		assert_string_equal(smtp_verb_name(names[i].v), names[i].name);
		/* and each name parses back to its verb */
		if (names[i].v != SMTP_CMD_UNKNOWN) {
			struct smtp_command cmd;
			struct smtp_reply err;
			smtp_command_parse(names[i].name, strlen(names[i].name), E, 0, &cmd, &err);
			assert_int_equal(cmd.verb, names[i].v);
		}
	}
	assert_string_equal(smtp_verb_name((enum smtp_verb)999), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)-1), "UNKNOWN");
}

/* The fuzzer's seed corpus: one file per table line. */
static int write_seeds(const char *dir)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0] + ngen; i++) {
		const struct cmd_case *c = i < sizeof cases / sizeof cases[0] ?
		                           &cases[i] : &gen[i - sizeof cases / sizeof cases[0]];
		char path[4096];
		int w = snprintf(path, sizeof path, "%s/command-%04zu", dir, i);
		if (w < 0 || (size_t)w >= sizeof path) {
			fprintf(stderr, "seed directory name too long: %s\n", dir);
			return -1;
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
			return -1;
		}
		ssize_t got = write(fd, c->line, c->len);
		if (got < 0 || (size_t)got != c->len || close(fd) < 0) {
			fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
			return -1;
		}
		n++;
	}
	fprintf(stderr, "wrote %zu seeds to %s\n", n, dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_generated),
		cmocka_unit_test(test_error_replies_format),
		cmocka_unit_test(test_cleared_on_error),
		cmocka_unit_test(test_size_text),
		cmocka_unit_test(test_verb_names),
	};
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");

	build_generated();
	if (seed_dir != NULL && seed_dir[0] != '\0' && write_seeds(seed_dir) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
