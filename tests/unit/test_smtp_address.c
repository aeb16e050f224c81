/* Unit tests for the RFC 5321 path parser (src/smtp/address.c).
 *
 * One table of inputs and what the parser must make of them; every row is
 * parsed from a heap copy of exactly its length (ASan catches a read past
 * the end) and every accepted row is formatted and parsed again.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes every input of the tables
 * into that directory, one file each: the seed corpus of
 * tests/fuzz/fuzz_smtp_address.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/address.h"

/* Flags, shortened so that a row fits on a line. */
#define F_NULL SMTP_ADDR_NULL_OK
#define F_UTF8 SMTP_ADDR_UTF8
#define F_BARE SMTP_ADDR_BARE_IP
#define F_NB SMTP_ADDR_NO_BRACKETS
#define F_PM SMTP_ADDR_POSTMASTER_OK

#define K_NONE SMTP_DOMAIN_NONE
#define K_NAME SMTP_DOMAIN_NAME
#define K_IPV4 SMTP_DOMAIN_IPV4
#define K_IPV6 SMTP_DOMAIN_IPV6
#define K_GEN SMTP_DOMAIN_GENERAL

#define E_SYNTAX SMTP_ADDR_ERR_SYNTAX
#define E_LOCAL SMTP_ADDR_ERR_LOCAL_TOO_LONG
#define E_DOMAIN SMTP_ADDR_ERR_DOMAIN_TOO_LONG
#define E_PATH SMTP_ADDR_ERR_PATH_TOO_LONG
#define E_NOUTF8 SMTP_ADDR_ERR_UTF8_NOT_ALLOWED
#define E_UTF8 SMTP_ADDR_ERR_BAD_UTF8
#define E_LIT SMTP_ADDR_ERR_BAD_LITERAL

/* Expected booleans of an accepted row. */
#define P_Q 1u /* local_quoted */
#define P_B 2u /* bare_ip */
#define P_R 4u /* had_source_route */
#define P_U 8u /* utf8 */

/* consumed == the whole input */
#define ALL SIZE_MAX

/* A string literal and its length, so inputs may hold NUL octets. */
#define IN(s) s, sizeof(s) - 1

struct address_case {
	const char *in;
	size_t in_len;
	unsigned flags;
	enum smtp_address_status status;
	/* checked only when status is SMTP_ADDR_OK */
	const char *local;
	enum smtp_domain_kind kind;
	const char *domain;
	const char *ip; /* text form of out->ip for IPV4/IPV6, NULL otherwise */
	size_t consumed;
	unsigned props;
};

#define OK(in, fl, loc, k, dom, ip, cons, props) \
	{ IN(in), fl, SMTP_ADDR_OK, loc, k, dom, ip, cons, props }
#define ERR(in, fl, st) { IN(in), fl, st, NULL, K_NONE, NULL, NULL, 0, 0 }

/* Long elements, built by string concatenation. */
#define A10 "aaaaaaaaaa"
#define A60 A10 A10 A10 A10 A10 A10
#define A63 A60 "aaa"
#define A64 A60 "aaaa"
#define A65 A60 "aaaaa"
#define B10 "bbbbbbbbbb"
#define B60 B10 B10 B10 B10 B10 B10
#define B61 B60 "b"
#define B62 B60 "bb"
#define B63 B60 "bbb"
#define B64 B60 "bbbb"
#define D189 B63 "." B63 "." B61            /* 63+1+63+1+61 */
#define D190 B63 "." B63 "." B62
#define D252 B63 "." B63 "." B63 "." B60    /* 3*64+60 */
#define D253 B63 "." B63 "." B63 "." B61
#define D255 B63 "." B63 "." B63 "." B63
#define D256 B63 "." B63 "." B63 "." B62 ".b"
/* 64 quoted-pairs "\a": 130 octets written, 64 stored */
#define QE10 "\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a"
#define QE64 QE10 QE10 QE10 QE10 QE10 QE10 "\\a\\a\\a\\a"
/* U+00FC, two octets; always a separate literal so that no hex digit
 * follows the escape */
#define UE "\xc3\xbc"
#define UE10 UE UE UE UE UE UE UE UE UE UE
#define UE31 UE10 UE10 UE10 UE
#define UE32 UE31 UE
/* IPv6-full: eight groups, no "::" */
#define IPV6_FULL "2001:db8:0:0:0:0:0:1"

static const struct address_case cases[] = {
	/* --- plain paths --- */
	OK("<user@example.com>", 0, "user", K_NAME, "example.com", NULL, ALL, 0),
	OK("<User.Name@Example.COM>", 0, "User.Name", K_NAME, "Example.COM", NULL, ALL, 0),
	OK("<a@b>", 0, "a", K_NAME, "b", NULL, ALL, 0),
	OK("<a@localhost>", 0, "a", K_NAME, "localhost", NULL, ALL, 0),
	/* what follows '>' is the caller's: ESMTP parameters, or garbage */
	OK("<user@example.com> SIZE=100", 0, "user", K_NAME, "example.com", NULL, 18, 0),
	OK("<a@b>xyz", 0, "a", K_NAME, "b", NULL, 5, 0),
	OK("<a@b>>", 0, "a", K_NAME, "b", NULL, 5, 0),
	OK("<a@b.c>\0", 0, "a", K_NAME, "b.c", NULL, 7, 0),
	ERR("", 0, E_SYNTAX),
	ERR("", F_NB | F_NULL | F_PM, E_SYNTAX),
	ERR("<", 0, E_SYNTAX),
	ERR(">", 0, E_SYNTAX),
	ERR("<user@example.com", 0, E_SYNTAX),
	ERR("<user@", 0, E_SYNTAX),
	ERR("<user", 0, E_SYNTAX),
	ERR("user@example.com", 0, E_SYNTAX),
	ERR("<<a@b>>", 0, E_SYNTAX),
	ERR("<a@b@c>", 0, E_SYNTAX),
	ERR("<user>", 0, E_SYNTAX),
	ERR("<user@>", 0, E_SYNTAX),
	ERR("<@example.com>", 0, E_SYNTAX),
	ERR("<@>", 0, E_SYNTAX),
	ERR("<@:a@b>", 0, E_SYNTAX),
	ERR("<:a@b>", 0, E_SYNTAX),
	/* spaces: RFC 5321 has none inside a path; leading ones not skipped */
	ERR(" <a@b>", 0, E_SYNTAX),
	ERR("< a@b>", 0, E_SYNTAX),
	ERR("<a@b >", 0, E_SYNTAX),
	ERR("<a @b>", 0, E_SYNTAX),
	ERR("<a@ b>", 0, E_SYNTAX),
	ERR("<a\t@b>", 0, E_SYNTAX),
	ERR("<a@b\r\n>", 0, E_SYNTAX),

	/* --- null path --- */
	OK("<>", F_NULL, "", K_NONE, "", NULL, ALL, 0),
	OK("<> SIZE=10", F_NULL, "", K_NONE, "", NULL, 2, 0),
	ERR("<>", 0, E_SYNTAX),
	ERR("<>", F_NB | F_PM, E_SYNTAX),
	ERR("< >", F_NULL, E_SYNTAX),
	ERR("<\"\">", F_NULL, E_SYNTAX),
	ERR("<@a:>", F_NULL, E_SYNTAX),

	/* --- without brackets --- */
	OK("user@example.com", F_NB, "user", K_NAME, "example.com", NULL, ALL, 0),
	OK("user@example.com SIZE=1", F_NB, "user", K_NAME, "example.com", NULL, 16, 0),
	OK("<user@example.com>", F_NB, "user", K_NAME, "example.com", NULL, ALL, 0),
	OK("\"a b\"@c.d rest", F_NB, "a b", K_NAME, "c.d", NULL, 9, P_Q),
	OK("@a,@b:u@c", F_NB, "u", K_NAME, "c", NULL, ALL, P_R),
	OK("a@[1.2.3.4] x", F_NB, "a", K_IPV4, "1.2.3.4", "1.2.3.4", 11, 0),
	/* only SP ends an unbracketed path; the caller strips CRLF */
	ERR("user@example.com>", F_NB, E_SYNTAX),
	ERR("user@example.com\r", F_NB, E_SYNTAX),
	ERR("user@example.com\t", F_NB, E_SYNTAX),
	ERR("<user@example.com", F_NB, E_SYNTAX),
	ERR("user@[1.2.3.4]>", F_NB, E_SYNTAX),

	/* --- Dot-string local parts --- */
	OK("<a.b.c@d.e>", 0, "a.b.c", K_NAME, "d.e", NULL, ALL, 0),
	OK("<!#$%&'*+-/=?^_`{|}~@example.com>", 0, "!#$%&'*+-/=?^_`{|}~", K_NAME,
	   "example.com", NULL, ALL, 0),
	OK("<0@example.com>", 0, "0", K_NAME, "example.com", NULL, ALL, 0),
	ERR("<.a@b>", 0, E_SYNTAX),
	ERR("<a.@b>", 0, E_SYNTAX),
	ERR("<a..b@c>", 0, E_SYNTAX),
	ERR("<.@b>", 0, E_SYNTAX),
	ERR("<@b>", 0, E_SYNTAX),
	ERR("<a(b)@c>", 0, E_SYNTAX),
	ERR("<a,b@c>", 0, E_SYNTAX),
	ERR("<a;b@c>", 0, E_SYNTAX),
	ERR("<a[b@c>", 0, E_SYNTAX),
	ERR("<a\\b@c>", 0, E_SYNTAX),
	ERR("<a\"b@c>", 0, E_SYNTAX),
	ERR("<a\x7f" "b@c>", 0, E_SYNTAX),
	ERR("<a\x01" "b@c>", 0, E_SYNTAX),
	/* relay tricks are valid syntax; policy refuses them later */
	OK("<user%host@example.com>", 0, "user%host", K_NAME, "example.com", NULL, ALL, 0),
	OK("<host!user@example.com>", 0, "host!user", K_NAME, "example.com", NULL, ALL, 0),
	OK("<\"a@b\"@example.com>", 0, "a@b", K_NAME, "example.com", NULL, ALL, P_Q),
	OK("<\"user@evil.example\"@example.com>", 0, "user@evil.example", K_NAME,
	   "example.com", NULL, ALL, P_Q),

	/* --- Quoted-string local parts --- */
	OK("<\"john doe\"@example.com>", 0, "john doe", K_NAME, "example.com", NULL, ALL, P_Q),
	OK("<\"a\\\"b\"@c.d>", 0, "a\"b", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"a\\\\b\"@c.d>", 0, "a\\b", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"\\a\"@c.d>", 0, "a", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"\\ \"@c.d>", 0, " ", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"\\~\"@c.d>", 0, "~", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"\"@c.d>", 0, "", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"a..b\"@c.d>", 0, "a..b", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\".a\"@c.d>", 0, ".a", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"<>[]:;,()\"@c.d>", 0, "<>[]:;,()", K_NAME, "c.d", NULL, ALL, P_Q),
	OK("<\"abc\"@c.d>", 0, "abc", K_NAME, "c.d", NULL, ALL, P_Q),
	ERR("<\"a\"b@c.d>", 0, E_SYNTAX),
	ERR("<\"a\".b@c.d>", 0, E_SYNTAX),
	ERR("<a.\"b\"@c.d>", 0, E_SYNTAX),
	ERR("<\"a\"\"b\"@c.d>", 0, E_SYNTAX),
	ERR("<\"abc@c.d>", 0, E_SYNTAX),
	ERR("<\"abc", 0, E_SYNTAX),
	ERR("<\"a\\", 0, E_SYNTAX),
	ERR("<\"", 0, E_SYNTAX),
	ERR("<\"a\tb\"@c.d>", 0, E_SYNTAX),
	ERR("<\"a\\\tb\"@c.d>", 0, E_SYNTAX),     /* quoted-pair is %d32-126 */
	ERR("<\"a\\\x7f\"@c.d>", 0, E_SYNTAX),
	ERR("<\"a\x7f\"@c.d>", 0, E_SYNTAX),
	ERR("<\"a\r\nb\"@c.d>", 0, E_SYNTAX),
	ERR("<\"a\"@>", 0, E_SYNTAX),

	/* --- NUL anywhere is a syntax error --- */
	ERR("\0<a@b>", 0, E_SYNTAX),
	ERR("<\0a@b>", 0, E_SYNTAX),
	ERR("<a\0b@c.d>", 0, E_SYNTAX),
	ERR("<ab@c\0.d>", 0, E_SYNTAX),
	ERR("<ab@c.d\0>", 0, E_SYNTAX),
	ERR("<\"a\0\"@c.d>", 0, E_SYNTAX),
	ERR("<\"a\\\0\"@c.d>", 0, E_SYNTAX),
	ERR("<a@[1.2.3.4\0]>", 0, E_SYNTAX),
	ERR("<a@[x:\0]>", 0, E_SYNTAX),
	ERR("<@a\0:b@c>", 0, E_SYNTAX),
	ERR("a@b\0", F_NB, E_SYNTAX),
	ERR("<\0>", F_NULL, E_SYNTAX),

	/* --- local part length, RFC 5321 §4.5.3.1.1 (stored octets) --- */
	OK("<" A64 "@b.c>", 0, A64, K_NAME, "b.c", NULL, ALL, 0),
	ERR("<" A65 "@b.c>", 0, E_LOCAL),
	ERR("<" A64 ".a@b.c>", 0, E_LOCAL),
	ERR("<" A64 ".@b.c>", 0, E_LOCAL),
	ERR("<" A65 ">", F_PM, E_LOCAL),
	OK("<\"" A63 " \"@b.c>", 0, A63 " ", K_NAME, "b.c", NULL, ALL, P_Q),
	ERR("<\"" A64 " \"@b.c>", 0, E_LOCAL),
	OK("<\"" QE64 "\"@b.c>", 0, A64, K_NAME, "b.c", NULL, ALL, P_Q),
	ERR("<\"" QE64 "\\a\"@b.c>", 0, E_LOCAL),

	/* --- domain names --- */
	OK("<a@b--c.d>", 0, "a", K_NAME, "b--c.d", NULL, ALL, 0),
	OK("<a@xn--bcher-kva.example>", 0, "a", K_NAME, "xn--bcher-kva.example", NULL, ALL, 0),
	OK("<a@123.com>", 0, "a", K_NAME, "123.com", NULL, ALL, 0),
	OK("<a@1.2.3.4.example>", 0, "a", K_NAME, "1.2.3.4.example", NULL, ALL, 0),
	ERR("<a@-b.c>", 0, E_SYNTAX),
	ERR("<a@b-.c>", 0, E_SYNTAX),
	ERR("<a@b.-c>", 0, E_SYNTAX),
	ERR("<a@b.c->", 0, E_SYNTAX),
	ERR("<a@->", 0, E_SYNTAX),
	ERR("<a@.b>", 0, E_SYNTAX),
	ERR("<a@b.>", 0, E_SYNTAX),          /* trailing dot refused */
	ERR("<a@b..c>", 0, E_SYNTAX),
	ERR("<a@.>", 0, E_SYNTAX),
	ERR("<a@b_c.d>", 0, E_SYNTAX),
	ERR("<a@b c.d>", 0, E_SYNTAX),
	ERR("<a@b,c>", 0, E_SYNTAX),
	ERR("<a@b:c>", 0, E_SYNTAX),
	ERR("<a@b\\.c>", 0, E_SYNTAX),
	/* RFC 3696 §2: a TLD is never all-numeric */
	ERR("<a@example.123>", 0, E_SYNTAX),
	ERR("<a@example.123>", F_BARE, E_SYNTAX),
	ERR("<a@1-2.3>", F_BARE, E_SYNTAX),
	ERR("<a@123>", 0, E_SYNTAX),
	ERR("<a@1.2.3.4>", 0, E_SYNTAX),
	/* label and domain length, RFC 5321 §4.5.3.1.2 */
	OK("<a@" B63 ".com>", 0, "a", K_NAME, B63 ".com", NULL, ALL, 0),
	ERR("<a@" B64 ".com>", 0, E_DOMAIN),
	ERR("<a@com." B64 ">", 0, E_DOMAIN),
	OK("<u@" D252 ">", 0, "u", K_NAME, D252, NULL, 256, 0),
	ERR("<u@" D253 ">", 0, E_PATH),
	ERR("<u@" D255 ">", 0, E_PATH),
	ERR("<u@" D256 ">", 0, E_DOMAIN),
	ERR("<u@" D255 ".>", 0, E_DOMAIN),
	ERR("<u@" D256, 0, E_DOMAIN),
	/* path length, RFC 5321 §4.5.3.1.3: "<", 64, "@", 189, ">" is 256 */
	OK("<" A64 "@" D189 ">", 0, A64, K_NAME, D189, NULL, 256, 0),
	ERR("<" A64 "@" D190 ">", 0, E_PATH),
	OK("u@" D252, F_NB, "u", K_NAME, D252, NULL, 254, 0),
	ERR("u@" D253, F_NB, E_PATH),
	ERR("<@" B63 ",@" B63 ",@" B63 ",@" B63 ":u@c.d>", 0, E_PATH),

	/* --- IPv4 literals, RFC 5321 §4.1.3 --- */
	OK("<a@[192.0.2.1]>", 0, "a", K_IPV4, "192.0.2.1", "192.0.2.1", ALL, 0),
	OK("<a@[0.0.0.0]>", 0, "a", K_IPV4, "0.0.0.0", "0.0.0.0", ALL, 0),
	OK("<a@[255.255.255.255]>", 0, "a", K_IPV4, "255.255.255.255", "255.255.255.255",
	   ALL, 0),
	OK("<a@[10.0.0.100]> SIZE=1", 0, "a", K_IPV4, "10.0.0.100", "10.0.0.100", 16, 0),
	ERR("<a@[1.2.3.256]>", 0, E_LIT),
	ERR("<a@[256.1.1.1]>", 0, E_LIT),
	ERR("<a@[01.2.3.4]>", 0, E_LIT),     /* leading zero: octal to inet_aton */
	ERR("<a@[1.2.3.04]>", 0, E_LIT),
	ERR("<a@[1.2.3.0004]>", 0, E_LIT),
	ERR("<a@[100.100.100.1000]>", 0, E_LIT),
	ERR("<a@[1.2.3]>", 0, E_LIT),
	ERR("<a@[1.2.3.4.]>", 0, E_LIT),
	ERR("<a@[.1.2.3.4]>", 0, E_LIT),
	ERR("<a@[1.2.3.4.5]>", 0, E_LIT),
	ERR("<a@[1..3.4]>", 0, E_LIT),
	ERR("<a@[0x1.2.3.4]>", 0, E_LIT),
	ERR("<a@[16909060]>", 0, E_LIT),
	ERR("<a@[example.com]>", 0, E_LIT),
	ERR("<a@[]>", 0, E_LIT),
	ERR("<a@[ 1.2.3.4]>", 0, E_SYNTAX),  /* SP is not dcontent */
	ERR("<a@[1.2.3.4 ]>", 0, E_SYNTAX),
	ERR("<a@[1.2.3.4>", 0, E_SYNTAX),
	ERR("<a@[1.2.3.4]", 0, E_SYNTAX),
	ERR("<a@[1.2.3.4]x>", 0, E_SYNTAX),
	ERR("<a@[1.2.3.4]]>", 0, E_SYNTAX),
	ERR("<a@[[1.2.3.4]]>", 0, E_SYNTAX),
	ERR("<a@[1.2.3.4].com>", 0, E_SYNTAX),
	ERR("<a@x.[1.2.3.4]>", 0, E_SYNTAX),

	/* --- IPv6 literals: tag case-insensitive, inet_pton decides --- */
	OK("<a@[IPv6:::1]>", 0, "a", K_IPV6, "IPv6:::1", "::1", ALL, 0),
	OK("<a@[ipv6:::1]>", 0, "a", K_IPV6, "ipv6:::1", "::1", ALL, 0),
	OK("<a@[IPV6:2001:DB8::1]>", 0, "a", K_IPV6, "IPV6:2001:DB8::1", "2001:db8::1", ALL, 0),
	OK("<a@[IPv6:" IPV6_FULL "]>", 0, "a", K_IPV6, "IPv6:" IPV6_FULL, "2001:db8::1", ALL, 0),
	OK("<a@[IPv6:::]>", 0, "a", K_IPV6, "IPv6:::", "::", ALL, 0),
	OK("<a@[IPv6:1:2:3:4:5:6:1.2.3.4]>", 0, "a", K_IPV6, "IPv6:1:2:3:4:5:6:1.2.3.4",
	   "1:2:3:4:5:6:102:304", ALL, 0),
	OK("<a@[IPv6:::1.2.3.4]>", 0, "a", K_IPV6, "IPv6:::1.2.3.4", "::102:304", ALL, 0),
	/* IPv4-mapped: reported as IPv4 so both spellings compare equal */
	OK("<a@[IPv6:::ffff:127.0.0.1]>", 0, "a", K_IPV4, "IPv6:::ffff:127.0.0.1", "127.0.0.1",
	   ALL, 0),
	OK("<a@[IPv6:::FFFF:7f00:1]>", 0, "a", K_IPV4, "IPv6:::FFFF:7f00:1", "127.0.0.1", ALL, 0),
	ERR("<a@[IPv6:1.2.3.4]>", 0, E_LIT),
	ERR("<a@[IPv6:]>", 0, E_LIT),
	ERR("<a@[IPv6::::1]>", 0, E_LIT),
	ERR("<a@[IPv6:1:::2]>", 0, E_LIT),
	ERR("<a@[IPv6:::g]>", 0, E_LIT),
	ERR("<a@[IPv6:00001::]>", 0, E_LIT),
	ERR("<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, E_LIT),
	ERR("<a@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>", 0, E_LIT),
	ERR("<a@[IPv6:::ffff:01.2.3.4]>", 0, E_LIT),
	ERR("<a@[IPv6:fe80::1%eth0]>", 0, E_LIT),
	ERR("<a@[IPv6:1:2:3:4:5:6:7:8:1:2:3:4:5:6:7:8:1:2:3:4:5:6:7:8]>", 0, E_LIT),
	ERR("<a@[IPv6 ::1]>", 0, E_SYNTAX),
	ERR("<a@[IPv6: ::1]>", 0, E_SYNTAX),
	ERR("<a@[::1]>", 0, E_LIT),          /* no tag: not a General literal */
	OK("<a@[IPv:::1]>", 0, "a", K_GEN, "IPv:::1", NULL, ALL, 0), /* not the IPv6 tag */

	/* --- General-address-literal: Standardized-tag ":" 1*dcontent --- */
	OK("<a@[x-foo:bar]>", 0, "a", K_GEN, "x-foo:bar", NULL, ALL, 0),
	OK("<a@[X1:a:b>c]>", 0, "a", K_GEN, "X1:a:b>c", NULL, ALL, 0),
	OK("<a@[IPv4:1.2.3.4]>", 0, "a", K_GEN, "IPv4:1.2.3.4", NULL, ALL, 0),
	OK("<a@[-x:y]>", 0, "a", K_GEN, "-x:y", NULL, ALL, 0), /* Ldh-str may start with '-' */
	ERR("<a@[x-foo:]>", 0, E_LIT),
	ERR("<a@[x-:y]>", 0, E_LIT),
	ERR("<a@[-:y]>", 0, E_LIT),
	ERR("<a@[:y]>", 0, E_LIT),
	ERR("<a@[a_b:c]>", 0, E_LIT),
	ERR("<a@[x:a\\b]>", 0, E_SYNTAX),
	ERR("<a@[x:a b]>", 0, E_SYNTAX),
	ERR("<a@[x:a[b]>", 0, E_SYNTAX),
	/* 255 octets with the brackets fit the domain, not the path */
	ERR("<a@[x:" B63 B63 B63 B63 "]>", 0, E_DOMAIN),
	ERR("<a@[x:" B63 B63 B63 B62 "]>", 0, E_PATH),
	OK("<a@[x:" B63 B63 B62 B60 "]>", 0, "a", K_GEN, "x:" B63 B63 B62 B60, NULL, 256, 0),

	/* --- source routes: parsed, checked and dropped --- */
	OK("<@a,@b:user@c>", 0, "user", K_NAME, "c", NULL, ALL, P_R),
	OK("<@a:user@c>", 0, "user", K_NAME, "c", NULL, ALL, P_R),
	OK("<@a.example,@b.example:\"x y\"@c.example>", 0, "x y", K_NAME, "c.example", NULL,
	   ALL, P_R | P_Q),
	OK("<@[1.2.3.4]:user@c>", 0, "user", K_NAME, "c", NULL, ALL, P_R),
	OK("<@[IPv6:::1],@a:user@c>", 0, "user", K_NAME, "c", NULL, ALL, P_R),
	OK("<@a:u@[1.2.3.4]>", 0, "u", K_IPV4, "1.2.3.4", "1.2.3.4", ALL, P_R),
	ERR("<@a,b:user@c>", 0, E_SYNTAX),
	ERR("<@a,@b,user@c>", 0, E_SYNTAX),
	ERR("<@a:@b:user@c>", 0, E_SYNTAX),
	ERR("<@:user@c>", 0, E_SYNTAX),
	ERR("<@a,:user@c>", 0, E_SYNTAX),
	ERR("<@a,@:user@c>", 0, E_SYNTAX),
	ERR("<@a;@b:user@c>", 0, E_SYNTAX),
	ERR("<@-a:user@c>", 0, E_SYNTAX),
	ERR("<@a:user>", 0, E_SYNTAX),
	ERR("<@a:>", 0, E_SYNTAX),
	ERR("<@a:user@c", 0, E_SYNTAX),
	ERR("<@" B64 ":user@c>", 0, E_DOMAIN),
	ERR("<@[1.2.3.999]:user@c>", 0, E_LIT),
	ERR("<@1.2.3.4:user@c>", F_BARE, E_SYNTAX), /* no bare IPs in routes */
	ERR("<@::1:user@c>", F_BARE, E_SYNTAX),
	ERR("<@a:Postmaster>", F_PM, E_SYNTAX),
	ERR("<@a:<>>", F_NULL, E_SYNTAX),
	ERR("<@" UE ":u@c>", 0, E_NOUTF8),

	/* --- Postmaster, RFC 5321 §4.1.1.3 --- */
	OK("<Postmaster>", F_PM, "Postmaster", K_NONE, "", NULL, ALL, 0),
	OK("<postmaster>", F_PM, "postmaster", K_NONE, "", NULL, ALL, 0),
	OK("<POSTMASTER>", F_PM, "POSTMASTER", K_NONE, "", NULL, ALL, 0),
	OK("<Postmaster> NOTIFY=NEVER", F_PM, "Postmaster", K_NONE, "", NULL, 12, 0),
	OK("Postmaster", F_PM | F_NB, "Postmaster", K_NONE, "", NULL, ALL, 0),
	OK("postmaster X", F_PM | F_NB, "postmaster", K_NONE, "", NULL, 10, 0),
	OK("<Postmaster@example.com>", 0, "Postmaster", K_NAME, "example.com", NULL, ALL, 0),
	OK("<Postmaster@example.com>", F_PM, "Postmaster", K_NAME, "example.com", NULL, ALL, 0),
	ERR("<Postmaster>", 0, E_SYNTAX),
	ERR("<Postmaster>", F_NULL | F_NB, E_SYNTAX),
	ERR("Postmaster", F_PM, E_SYNTAX),
	ERR("<\"Postmaster\">", F_PM, E_SYNTAX),
	ERR("<Postmasters>", F_PM, E_SYNTAX),
	ERR("<Postmaste>", F_PM, E_SYNTAX),
	ERR("<Post.master>", F_PM, E_SYNTAX),
	ERR("<Postmaster >", F_PM, E_SYNTAX),
	ERR("<Postmaster", F_PM, E_SYNTAX),
	ERR("<Postmaster@>", F_PM, E_SYNTAX),

	/* --- UTF-8, RFC 6531 --- */
	OK("<" UE "ser@example.com>", F_UTF8, UE "ser", K_NAME, "example.com", NULL, ALL, P_U),
	OK("<user@ex" UE "mple.com>", F_UTF8, "user", K_NAME, "ex" UE "mple.com", NULL, ALL, P_U),
	OK("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", F_UTF8,
	   "\xe7\x94\xa8\xe6\x88\xb7", K_NAME, "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
	   NULL, ALL, P_U),
	OK("<\"" UE " x\"@a.b>", F_UTF8, UE " x", K_NAME, "a.b", NULL, ALL, P_Q | P_U),
	OK("<a@b.c>", F_UTF8, "a", K_NAME, "b.c", NULL, ALL, 0),
	OK("<@" UE ":u@c>", F_UTF8, "u", K_NAME, "c", NULL, ALL, P_R), /* utf8: final only */
	/* the edges of the valid ranges */
	OK("<\xc2\x80@a.b>", F_UTF8, "\xc2\x80", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xdf\xbf@a.b>", F_UTF8, "\xdf\xbf", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xe0\xa0\x80@a.b>", F_UTF8, "\xe0\xa0\x80", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xed\x9f\xbf@a.b>", F_UTF8, "\xed\x9f\xbf", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xee\x80\x80@a.b>", F_UTF8, "\xee\x80\x80", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xef\xbf\xbf@a.b>", F_UTF8, "\xef\xbf\xbf", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xf0\x90\x80\x80@a.b>", F_UTF8, "\xf0\x90\x80\x80", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xf4\x8f\xbf\xbf@a.b>", F_UTF8, "\xf4\x8f\xbf\xbf", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xf1\x80\x80\x80@a.b>", F_UTF8, "\xf1\x80\x80\x80", K_NAME, "a.b", NULL, ALL, P_U),
	OK("<\xf3\xbf\xbf\xbf@a.b>", F_UTF8, "\xf3\xbf\xbf\xbf", K_NAME, "a.b", NULL, ALL, P_U),
	/* non-ASCII without SMTPUTF8: 553 5.6.7, valid UTF-8 or not */
	ERR("<" UE "ser@example.com>", 0, E_NOUTF8),
	ERR("<user@ex" UE "mple.com>", 0, E_NOUTF8),
	ERR("<\"" UE "\"@a.b>", 0, E_NOUTF8),
	ERR("<\xff@a.b>", 0, E_NOUTF8),
	ERR(UE "@a.b", F_NB, E_NOUTF8),
	/* ill-formed UTF-8 (RFC 3629) */
	ERR("<\xc0\xaf@a.b>", F_UTF8, E_UTF8),        /* overlong '/' */
	ERR("<\xc1\xbf@a.b>", F_UTF8, E_UTF8),
	ERR("<\xe0\x80\xaf@a.b>", F_UTF8, E_UTF8),
	ERR("<\xe0\x9f\xbf@a.b>", F_UTF8, E_UTF8),
	ERR("<\xf0\x80\x80\xaf@a.b>", F_UTF8, E_UTF8),
	ERR("<\xf0\x8f\xbf\xbf@a.b>", F_UTF8, E_UTF8),
	ERR("<\xed\xa0\x80@a.b>", F_UTF8, E_UTF8),    /* surrogate U+D800 */
	ERR("<\xed\xbf\xbf@a.b>", F_UTF8, E_UTF8),    /* surrogate U+DFFF */
	ERR("<\xf4\x90\x80\x80@a.b>", F_UTF8, E_UTF8),/* U+110000 */
	ERR("<\xf5\x80\x80\x80@a.b>", F_UTF8, E_UTF8),
	ERR("<\xf8\x88\x80\x80\x80@a.b>", F_UTF8, E_UTF8),
	ERR("<\xfe@a.b>", F_UTF8, E_UTF8),
	ERR("<\xff@a.b>", F_UTF8, E_UTF8),
	ERR("<\x80@a.b>", F_UTF8, E_UTF8),            /* stray continuation */
	ERR("<a\xbf@a.b>", F_UTF8, E_UTF8),
	ERR("<\xc3@a.b>", F_UTF8, E_UTF8),            /* cut short */
	ERR("<\xe2\x82@a.b>", F_UTF8, E_UTF8),
	ERR("<\xf1\x80\x80@a.b>", F_UTF8, E_UTF8),
	ERR("<\xe2\x82\xc0@a.b>", F_UTF8, E_UTF8),      /* bad 3rd octet */
	ERR("<\xf0\x90\x80\x7f@a.b>", F_UTF8, E_UTF8),  /* bad 4th octet */
	ERR("<\xf0\x9f\x98@a.b>", F_UTF8, E_UTF8),
	ERR("<\xc3", F_UTF8, E_UTF8),
	ERR("<\xc3\xc3\xbc@a.b>", F_UTF8, E_UTF8),
	ERR("<a@b\xc3>", F_UTF8, E_UTF8),
	ERR("<\"\xed\xa0\x80\"@a.b>", F_UTF8, E_UTF8),
	ERR("<\"\\" UE "\"@a.b>", F_UTF8, E_SYNTAX),  /* quoted-pair is ASCII */
	ERR("<a@[" UE "]>", F_UTF8, E_SYNTAX),        /* literals stay ASCII */
	ERR("<a@" UE "-.com>", F_UTF8, E_SYNTAX),
	ERR("<a@-" UE ".com>", F_UTF8, E_SYNTAX),
	/* limits count octets, not characters */
	OK("<" UE32 "@a.b>", F_UTF8, UE32, K_NAME, "a.b", NULL, ALL, P_U),
	ERR("<" UE32 "a@a.b>", F_UTF8, E_LOCAL),
	ERR("<" UE31 "a" UE "@a.b>", F_UTF8, E_LOCAL),
	OK("<a@" UE31 "a.b>", F_UTF8, "a", K_NAME, UE31 "a.b", NULL, ALL, P_U),
	ERR("<a@" UE32 ".b>", F_UTF8, E_DOMAIN),

	/* --- bare IP addresses (SMTP_ADDR_BARE_IP) --- */
	OK("<a@192.0.2.1>", F_BARE, "a", K_IPV4, "192.0.2.1", "192.0.2.1", ALL, P_B),
	OK("a@192.0.2.1", F_BARE | F_NB, "a", K_IPV4, "192.0.2.1", "192.0.2.1", ALL, P_B),
	OK("a@192.0.2.1 SIZE=5", F_BARE | F_NB, "a", K_IPV4, "192.0.2.1", "192.0.2.1", 11, P_B),
	OK("<a@::1>", F_BARE, "a", K_IPV6, "IPv6:::1", "::1", ALL, P_B),
	OK("<a@2001:DB8::1>", F_BARE, "a", K_IPV6, "IPv6:2001:DB8::1", "2001:db8::1", ALL, P_B),
	OK("a@2001:db8::1 SIZE=1", F_BARE | F_NB, "a", K_IPV6, "IPv6:2001:db8::1",
	   "2001:db8::1", 13, P_B),
	OK("<a@::ffff:10.0.0.1>", F_BARE, "a", K_IPV4, "IPv6:::ffff:10.0.0.1", "10.0.0.1", ALL,
	   P_B),
	OK("<a@[1.2.3.4]>", F_BARE, "a", K_IPV4, "1.2.3.4", "1.2.3.4", ALL, 0),
	OK("<a@dead.beef>", F_BARE, "a", K_NAME, "dead.beef", NULL, ALL, 0),
	OK("<a@cafe>", F_BARE, "a", K_NAME, "cafe", NULL, ALL, 0),
	OK("<a@1.2.3.4.example>", F_BARE, "a", K_NAME, "1.2.3.4.example", NULL, ALL, 0),
	ERR("<a@192.0.2.1>", 0, E_SYNTAX),
	ERR("<a@::1>", 0, E_SYNTAX),
	ERR("<a@1.2.3.256>", F_BARE, E_LIT),
	ERR("<a@01.2.3.4>", F_BARE, E_LIT),
	ERR("<a@1.2.3>", F_BARE, E_LIT),
	ERR("<a@100.100.100.1000>", F_BARE, E_LIT),
	ERR("<a@123>", F_BARE, E_LIT),
	ERR("<a@1.2.3.4.5>", F_BARE, E_LIT),
	ERR("<a@1.2.3.4.>", F_BARE, E_SYNTAX),
	ERR("<a@abc:def>", F_BARE, E_LIT),
	ERR("<a@::1x>", F_BARE, E_SYNTAX),
	ERR("<a@fe80::1%eth0>", F_BARE, E_SYNTAX),
	ERR("<a@:::1>", F_BARE, E_LIT),
	ERR("<a@1.2.3.4:25>", F_BARE, E_LIT),
	ERR("a@::1>", F_BARE | F_NB, E_SYNTAX),
	ERR("<a@::1 >", F_BARE, E_SYNTAX),
};

/* Prints an input with its non-printable octets escaped. */
static void print_input(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 32 && c < 127 && c != '\\')
			print_message("%c", c);
		else
			print_message("\\x%02x", c);
	}
}

static int fail_case(size_t i, const struct address_case *c, const char *what)
{
	print_message("case %zu (flags %#x) <<", i, c->flags);
	print_input(c->in, c->in_len);
	print_message(">>: %s\n", what);
	return 1;
}

static bool ip_matches(const struct smtp_address *a, const char *text)
{
	unsigned char want[16];

	if (a->kind == SMTP_DOMAIN_IPV4)
		return inet_pton(AF_INET, text, want) == 1 && memcmp(a->ip, want, 4) == 0;
	return inet_pton(AF_INET6, text, want) == 1 && memcmp(a->ip, want, 16) == 0;
}

/* Formats an accepted address and parses it again inside "<>" with the
 * same flags: the local part, domain, kind and address must survive. */
static int check_round_trip(size_t i, const struct address_case *c,
                            const struct smtp_address *a)
{
	char text[SMTP_PATH_MAX * 2];
	char path[SMTP_PATH_MAX * 2 + 2];
	struct smtp_address b;
	size_t consumed;

	int n = smtp_address_format(a, text, sizeof(text));
	if (n < 0)
		return fail_case(i, c, "format failed");
	if ((size_t)n != strlen(text))
		return fail_case(i, c, "format length");
	path[0] = '<';
	memcpy(path + 1, text, (size_t)n);
	path[n + 1] = '>';
	enum smtp_address_status st = smtp_address_parse(path, (size_t)n + 2, c->flags, &b,
	                                                 &consumed);
	if (st != SMTP_ADDR_OK)
		return fail_case(i, c, "formatted address does not parse");
	if (consumed != (size_t)n + 2 || b.local_len != a->local_len ||
	    memcmp(b.local, a->local, a->local_len) != 0 || strcmp(b.domain, a->domain) != 0 ||
	    b.kind != a->kind || memcmp(b.ip, a->ip, sizeof(a->ip)) != 0 || b.utf8 != a->utf8)
		return fail_case(i, c, "formatted address parses differently");
	return 0;
}

static int check_case(size_t i, const struct address_case *c)
{
	struct smtp_address a;
	size_t consumed = 12345;
	/* an exact-size heap copy: ASan reports any read past in_len */
	char *in = malloc(c->in_len ? c->in_len : 1);

	assert_non_null(in);
	memcpy(in, c->in, c->in_len);
	enum smtp_address_status st = smtp_address_parse(in, c->in_len, c->flags, &a, &consumed);
	free(in);

	if (st != c->status) {
		print_message("got %d (%s), want %d (%s)\n", (int)st,
		              smtp_address_status_text(st), (int)c->status,
		              smtp_address_status_text(c->status));
		return fail_case(i, c, "status");
	}
	if (st != SMTP_ADDR_OK) {
		if (consumed != 0 || a.local_len != 0 || a.domain[0] != '\0')
			return fail_case(i, c, "error leaves output set");
		return 0;
	}
	size_t want_consumed = c->consumed == ALL ? c->in_len : c->consumed;
	if (consumed != want_consumed) {
		print_message("consumed %zu, want %zu\n", consumed, want_consumed);
		return fail_case(i, c, "consumed");
	}
	if (a.local_len != strlen(c->local) || memcmp(a.local, c->local, a.local_len) != 0 ||
	    a.local[a.local_len] != '\0') {
		print_message("local \"%s\"\n", a.local);
		return fail_case(i, c, "local part");
	}
	if (a.kind != c->kind)
		return fail_case(i, c, "kind");
	if (strcmp(a.domain, c->domain) != 0) {
		print_message("domain \"%s\"\n", a.domain);
		return fail_case(i, c, "domain");
	}
	if (c->ip ? !ip_matches(&a, c->ip) : (a.kind == K_IPV4 || a.kind == K_IPV6))
		return fail_case(i, c, "ip");
	if (a.local_quoted != !!(c->props & P_Q) || a.bare_ip != !!(c->props & P_B) ||
	    a.had_source_route != !!(c->props & P_R) || a.utf8 != !!(c->props & P_U))
		return fail_case(i, c, "quoted/bare/route/utf8 flags");
	return check_round_trip(i, c, &a);
}

static void test_parse_table(void **state)
{
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		failures += check_case(i, &cases[i]);
	assert_int_equal(failures, 0);
}

/* --- smtp_address_format --- */

struct format_case {
	const char *in;
	size_t in_len;
	unsigned flags;
	const char *formatted;
};

static const struct format_case format_cases[] = {
	{ IN("<a@b.c>"), 0, "a@b.c" },
	{ IN("<>"), F_NULL, "" },
	{ IN("<Postmaster>"), F_PM, "Postmaster" },
	{ IN("<\"abc\"@d.e>"), 0, "abc@d.e" },               /* needless quotes dropped */
	{ IN("<\"\\a\\b\"@d.e>"), 0, "ab@d.e" },
	{ IN("<\"a.b\"@d.e>"), 0, "a.b@d.e" },
	{ IN("<\"a@b\"@c.d>"), 0, "\"a@b\"@c.d" },
	{ IN("<\"a b\"@c.d>"), 0, "\"a b\"@c.d" },
	{ IN("<\"a\\\"b\"@c.d>"), 0, "\"a\\\"b\"@c.d" },
	{ IN("<\"a\\\\b\"@c.d>"), 0, "\"a\\\\b\"@c.d" },
	{ IN("<\"a..b\"@c.d>"), 0, "\"a..b\"@c.d" },
	{ IN("<\".a\"@c.d>"), 0, "\".a\"@c.d" },
	{ IN("<\"a.\"@c.d>"), 0, "\"a.\"@c.d" },
	{ IN("<\"\"@c.d>"), 0, "\"\"@c.d" },
	{ IN("<\"" UE " x\"@a.b>"), F_UTF8, "\"" UE " x\"@a.b" },
	{ IN("<" UE "@" UE ".b>"), F_UTF8, UE "@" UE ".b" },
	{ IN("<@x,@y:b@c>"), 0, "b@c" },
	{ IN("<a@[1.2.3.4]>"), 0, "a@[1.2.3.4]" },
	{ IN("<a@[IPv6:::1]>"), 0, "a@[IPv6:::1]" },
	{ IN("<a@[IPv6:::ffff:1.2.3.4]>"), 0, "a@[IPv6:::ffff:1.2.3.4]" },
	{ IN("<a@[x-y:z]>"), 0, "a@[x-y:z]" },
	{ IN("<a@1.2.3.4>"), F_BARE, "a@[1.2.3.4]" },
	{ IN("<a@::1>"), F_BARE, "a@[IPv6:::1]" },
};

static void test_format_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
		const struct format_case *c = &format_cases[i];
		struct smtp_address a;
		char out[SMTP_PATH_MAX * 2];

		assert_int_equal(smtp_address_parse(c->in, c->in_len, c->flags, &a, NULL),
		                 SMTP_ADDR_OK);
		int n = smtp_address_format(&a, out, sizeof(out));
		assert_string_equal(out, c->formatted);
		assert_int_equal(n, (int)strlen(c->formatted));
	}
}

static void test_format_buffer_sizes(void **state)
{
	struct smtp_address a;
	char out[32];

	(void)state;
	assert_int_equal(smtp_address_parse(IN("<\"a b\"@c.d>"), 0, &a, NULL), SMTP_ADDR_OK);
	/* "\"a b\"@c.d" is 9 octets: 10 with the NUL fits, 9 does not */
	assert_int_equal(smtp_address_format(&a, out, 10), 9);
	assert_string_equal(out, "\"a b\"@c.d");
	memset(out, 'x', sizeof(out));
	assert_int_equal(smtp_address_format(&a, out, 9), -1);
	assert_string_equal(out, "");
	for (size_t len = 1; len < 9; len++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(smtp_address_format(&a, out, len), -1);
		assert_int_equal(out[0], '\0');
		assert_int_equal(out[len], 'x'); /* nothing written past outlen */
	}
	assert_int_equal(smtp_address_format(&a, NULL, 0), -1);

	/* the null path needs one octet, for its NUL */
	assert_int_equal(smtp_address_parse(IN("<>"), F_NULL, &a, NULL), SMTP_ADDR_OK);
	assert_int_equal(smtp_address_format(&a, out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(smtp_address_format(&a, NULL, 0), -1);
}

/* A struct built by hand (not by the parser) must never be written into an
 * envelope if the parser would not read it back. */
static void test_format_refuses_unwritable(void **state)
{
	struct smtp_address a;
	char out[SMTP_PATH_MAX * 2];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.kind = SMTP_DOMAIN_NAME;
	memcpy(a.domain, "b.c", 4);
	memcpy(a.local, "a\r\nRSET", 7);
	a.local_len = 7;
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
	assert_string_equal(out, "");

	memcpy(a.local, "a\0b", 3);
	a.local_len = 3;
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);

	memcpy(a.local, "a\x7f" "b", 3);
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);

	memcpy(a.local, "\xed\xa0\x80", 3); /* a surrogate */
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);

	memcpy(a.local, "abc", 3);
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), 7);
	a.local_len = SMTP_LOCAL_PART_MAX + 1;
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
	a.local_len = 3;

	memcpy(a.domain, "b c", 4);
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
	memcpy(a.domain, "b>c", 4);
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
	a.domain[0] = '\0';
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
	memset(a.domain, 'b', sizeof(a.domain)); /* not NUL-terminated */
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);

	memcpy(a.domain, "x:a]b", 6);
	a.kind = SMTP_DOMAIN_GENERAL;
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
	memcpy(a.domain, "x:a>b", 6);
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), 11);
	assert_string_equal(out, "abc@[x:a>b]");

	a.kind = SMTP_DOMAIN_NONE; /* only Postmaster has no domain */
	assert_int_equal(smtp_address_format(&a, out, sizeof(out)), -1);
}

static void test_status_text(void **state)
{
	(void)state;
	for (int i = SMTP_ADDR_OK; i <= SMTP_ADDR_ERR_BAD_LITERAL; i++) {
		const char *t = smtp_address_status_text((enum smtp_address_status)i);
		assert_non_null(t);
		assert_true(strlen(t) > 0);
		for (int j = SMTP_ADDR_OK; j < i; j++)
			assert_string_not_equal(t, smtp_address_status_text(
				(enum smtp_address_status)j));
	}
	assert_string_equal(smtp_address_status_text(SMTP_ADDR_ERR_LOCAL_TOO_LONG),
	                    "local part longer than 64 octets");
	assert_string_equal(smtp_address_status_text((enum smtp_address_status)99),
	                    "unknown address error");
}

static void test_null_arguments(void **state)
{
	struct smtp_address a;
	size_t consumed = 7;

	(void)state;
	assert_int_equal(smtp_address_parse(NULL, 0, F_NB | F_NULL, &a, &consumed),
	                 SMTP_ADDR_ERR_SYNTAX);
	assert_int_equal(consumed, 0);
	assert_int_equal(smtp_address_parse(IN("<a@b>"), 0, &a, NULL), SMTP_ADDR_OK);
	/* a shorter len hides the rest of the string */
	assert_int_equal(smtp_address_parse("<a@b.c>", 6, 0, &a, NULL), SMTP_ADDR_ERR_SYNTAX);
	assert_int_equal(smtp_address_parse("a@b.c>", 5, F_NB, &a, &consumed), SMTP_ADDR_OK);
	assert_int_equal(consumed, 5);
	assert_string_equal(a.domain, "b.c");
}

/* Every octet value in every position of a short local part: exactly the
 * RFC 5321 atext set is accepted unquoted, qtext plus quoted-pairs quoted. */
static void test_every_octet(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		char in[16];
		struct smtp_address a;
		bool atext = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));

		memcpy(in, "<x?y@b.c>", 9);
		in[2] = (char)c;
		enum smtp_address_status st = smtp_address_parse(in, 9, 0, &a, NULL);
		if (atext || c == '.')
			assert_int_equal(st, SMTP_ADDR_OK);
		else if (c >= 0x80)
			assert_int_equal(st, SMTP_ADDR_ERR_UTF8_NOT_ALLOWED);
		else
			assert_int_not_equal(st, SMTP_ADDR_OK);

		memcpy(in, "<\"x?y\"@b.c>", 11);
		in[3] = (char)c;
		st = smtp_address_parse(in, 11, 0, &a, NULL);
		/* a '\' there quotes the 'y' after it */
		if (c >= 32 && c <= 126 && c != '"')
			assert_int_equal(st, SMTP_ADDR_OK);
		else
			assert_int_not_equal(st, SMTP_ADDR_OK);

		memcpy(in, "<\"x\\?y\"@b.c>", 12);
		in[4] = (char)c;
		st = smtp_address_parse(in, 12, 0, &a, NULL);
		if (c >= 32 && c <= 126) {
			assert_int_equal(st, SMTP_ADDR_OK);
			assert_int_equal(a.local_len, 3);
			assert_int_equal((unsigned char)a.local[1], c);
		} else {
			assert_int_not_equal(st, SMTP_ADDR_OK);
		}
	}
}

/* RAWMAIL_SEED_DIR: one file per table input, for the fuzzer's corpus. */
static int write_seed(const char *dir, const char *name, size_t i, const char *data,
                      size_t len)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s-%03zu", dir, name, i);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	FILE *f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "test_smtp_address: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t w = fwrite(data, 1, len, f);
	if (fclose(f) != 0 || w != len) {
		fprintf(stderr, "test_smtp_address: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (write_seed(dir, "address", i, cases[i].in, cases[i].in_len) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++)
		if (write_seed(dir, "format", i, format_cases[i].in, format_cases[i].in_len) < 0)
			return -1;
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");

	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_format_table),
		cmocka_unit_test(test_format_buffer_sizes),
		cmocka_unit_test(test_format_refuses_unwritable),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_every_octet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
