/* RFC 5321 paths and mailboxes: the parser of every envelope address rawmail
 * reads from the network.  Sans I/O: bytes in, a struct out. */
#ifndef RAWMAIL_SMTP_ADDRESS_H
#define RAWMAIL_SMTP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/limits.h"

enum smtp_domain_kind {
	SMTP_DOMAIN_NONE,  /* no domain: the null path <>, or a bare <Postmaster> */
	SMTP_DOMAIN_NAME,  /* a host name (A-label or, with SMTPUTF8, U-label) */
	SMTP_DOMAIN_IPV4,  /* [192.0.2.1], or unbracketed 192.0.2.1 (see flags) */
	SMTP_DOMAIN_IPV6,  /* [IPv6:2001:db8::1]; the tag is case-insensitive */
	SMTP_DOMAIN_GENERAL, /* [tag:content], RFC 5321 §4.1.3: syntax only */
};

struct smtp_address {
	/* The local part with quoting removed: "a\"b"@x gives a"b.  Never
	 * holds a NUL (a NUL anywhere is a syntax error). */
	char local[SMTP_LOCAL_PART_MAX + 1];
	size_t local_len;
	bool local_quoted;        /* written as a Quoted-string */
	enum smtp_domain_kind kind;
	/* The domain as written, without brackets for literals (e.g.
	 * "example.com", "192.0.2.1", "IPv6:::1"); "" for SMTP_DOMAIN_NONE.
	 * A bare IPv6 address (SMTP_ADDR_BARE_IP, "user@::1") is stored with
	 * the tag, "IPv6:::1", as its bracketed literal reads. */
	char domain[SMTP_DOMAIN_MAX + 1];
	/* For IPV4 and IPV6: the address in binary, as inet_pton gives it
	 * (4 or 16 bytes).  An IPv4-mapped IPv6 literal [IPv6:::ffff:a.b.c.d]
	 * is reported as SMTP_DOMAIN_IPV4 with its 4 bytes, so the two spellings
	 * compare equal (DESIGN.md: literals are compared as binary). */
	unsigned char ip[16];
	bool bare_ip;             /* an IP given without brackets (flag below) */
	bool had_source_route;    /* <@a,@b:user@c>: route parsed and ignored */
	bool utf8;                /* local part or domain holds non-ASCII */
};

/* Parser flags. */
enum {
	SMTP_ADDR_NULL_OK = 1 << 0,      /* "<>" is valid (MAIL FROM reverse-path) */
	SMTP_ADDR_UTF8 = 1 << 1,         /* SMTPUTF8 given: UTF-8 allowed (RFC 6531) */
	SMTP_ADDR_BARE_IP = 1 << 2,      /* accept user@192.0.2.1 as a literal */
	SMTP_ADDR_NO_BRACKETS = 1 << 3,  /* accept a path without <>, as many
	                                    clients send (Postfix's default) */
	SMTP_ADDR_POSTMASTER_OK = 1 << 4,/* "<Postmaster>" with no domain (RCPT) */
};

enum smtp_address_status {
	SMTP_ADDR_OK = 0,
	SMTP_ADDR_ERR_SYNTAX,        /* malformed path */
	SMTP_ADDR_ERR_LOCAL_TOO_LONG,/* local part over 64 octets */
	SMTP_ADDR_ERR_DOMAIN_TOO_LONG,/* domain over 255 octets, or a label over 63 */
	SMTP_ADDR_ERR_PATH_TOO_LONG, /* path over 256 octets */
	SMTP_ADDR_ERR_UTF8_NOT_ALLOWED, /* non-ASCII without SMTPUTF8: 553 5.6.7 */
	SMTP_ADDR_ERR_BAD_UTF8,      /* invalid UTF-8 sequence */
	SMTP_ADDR_ERR_BAD_LITERAL,   /* [..] that is not a valid IPv4/IPv6/General
	                                literal, or an invalid bare IP (flags) */
};

/* Parses a path at the start of s[0..len).  *consumed receives the number of
 * octets of the path (through the closing '>' when bracketed), so the caller
 * can parse ESMTP parameters after it.  Leading spaces are not skipped.
 * Domain rules: RFC 5321 §4.1.2 Domain (letters, digits, hyphens, dots; no
 * empty label; a trailing dot is refused); with SMTP_ADDR_UTF8, UTF-8
 * labels.  Local part: Dot-string or Quoted-string (quoted-pairs resolved).
 *
 * Details of the contract:
 * - Whatever follows a bracketed path is the caller's ("<a@b>xyz" is OK with
 *   *consumed 5).  An unbracketed path (SMTP_ADDR_NO_BRACKETS) must end at a
 *   space or at the end of the input; a path starting with '<' is always
 *   parsed as bracketed.
 * - Lengths: the local part is measured without its quoting (what is
 *   stored); a literal's 255 octets include its brackets; the path's 256
 *   include "<>" (counted for an unbracketed path too) and any source route.
 * - A last label of digits is never a host name (RFC 3696 §2: TLDs are not
 *   all-numeric): "u@1.2.3.4" and "u@host.123" are SMTP_ADDR_ERR_SYNTAX,
 *   unless SMTP_ADDR_BARE_IP, where an all-numeric domain must be a dotted
 *   quad (else SMTP_ADDR_ERR_BAD_LITERAL).  With SMTP_ADDR_BARE_IP an
 *   unbracketed text holding ':' must be an IPv6 address inet_pton accepts
 *   (else SMTP_ADDR_ERR_BAD_LITERAL).  Bare addresses are not read in
 *   source routes.
 * - IPv4 literals are dotted quads without leading zeros ("[01.2.3.4]" is
 *   SMTP_ADDR_ERR_BAD_LITERAL: inet_aton would read it as octal).
 * - Source routes: each hop must be a Domain or an address literal (RFC
 *   821 allowed literals there); the route is then dropped.
 * - "<Postmaster>" (SMTP_ADDR_POSTMASTER_OK) gives local "Postmaster" as
 *   written and kind SMTP_DOMAIN_NONE; unbracketed it needs
 *   SMTP_ADDR_NO_BRACKETS as well.
 * - Errors: the first one met scanning left to right is returned, except
 *   SMTP_ADDR_ERR_PATH_TOO_LONG, known only once the path is complete.  On
 *   error *out is zeroed and *consumed is 0.  consumed may be NULL. */
enum smtp_address_status smtp_address_parse(const char *s, size_t len, unsigned flags,
                                            struct smtp_address *out, size_t *consumed);

/* A short human-readable reason for a status ("local part longer than 64
 * octets", ...), for the text of a 501/553 reply. */
const char *smtp_address_status_text(enum smtp_address_status st);

/* Writes the address as "local@domain" (re-quoting the local part when it
 * needs quotes, brackets around literals) into out; returns the length, or
 * -1 if it did not fit.  The null path gives "".  Also -1 (with out set to
 * "" when outlen > 0) for a struct the parser could not have produced: a
 * control octet or invalid UTF-8 in the local part, a domain with octets
 * not allowed for its kind, or a SMTP_DOMAIN_NONE local part other than
 * Postmaster.  Whatever it writes, smtp_address_parse reads back (inside
 * "<>", with the flags the address was parsed with) to the same local
 * part, domain and kind. */
int smtp_address_format(const struct smtp_address *a, char *out, size_t outlen);

/* A local name without a domain, as cron's MAILTO=root gives one: a
 * dot-atom (RFC 5322 §3.2.3) of at most 64 octets (RFC 5321 §4.5.3.1.1),
 * as a mailbox name is, not starting with '-' (an option put after the
 * recipients, or "-fevil"). */
bool smtp_local_name_ok(const char *s, size_t len);

#endif
