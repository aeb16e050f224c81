/* RFC 5321 §4.1.2 paths and mailboxes, with RFC 6531 (SMTPUTF8) and the
 * §4.1.3 address literals.  The grammar, for reference:
 *
 *   Path          = "<" [ A-d-l ":" ] Mailbox ">"
 *   A-d-l         = At-domain *( "," At-domain )
 *   At-domain     = "@" Domain
 *   Mailbox       = Local-part "@" ( Domain / address-literal )
 *   Local-part    = Dot-string / Quoted-string
 *   Dot-string    = Atom *( "." Atom )
 *   Quoted-string = DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE
 *   Domain        = sub-domain *( "." sub-domain )
 *   sub-domain    = Let-dig [ Ldh-str ]
 *
 * The parser walks the bytes once, left to right, with an explicit bound on
 * every element, and stops at the first error it meets.  No byte of the
 * input is ever read past len, and nothing is allocated. */
#include "smtp/address.h"

#include "util/ip_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* The longest text inet_pton(AF_INET6) accepts:
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 octets. */
/* "255.255.255.255" */
/* The "IPv6:" tag of RFC 5321 §4.1.3. */
#define IPV6_TAG "IPv6:"
#define IPV6_TAG_LEN 5

/* Where a domain sits decides which octet ends it. */
enum domain_context {
	DOMAIN_IN_ROUTE,     /* an At-domain of a source route: ',' or ':' */
	DOMAIN_IN_BRACKETS,  /* the mailbox of "<...>": '>' */
	DOMAIN_UNBRACKETED,  /* SMTP_ADDR_NO_BRACKETS: SP or the end of input */
};

struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;
	unsigned flags;
	struct smtp_address *out;
};

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Compares n octets, ASCII case folded (no locale: the tag "IPv6:" and the
 * name "Postmaster" are ASCII). */
static bool ascii_equal_nocase(const unsigned char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* RFC 5321 §4.1.2 atext (RFC 5322 §3.2.3): letters, digits and
 * ! # $ % & ' * + - / = ? ^ _ ` { | } ~ */
static bool is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '/': case '=': case '?':
	case '^': case '_': case '`': case '{': case '|': case '}':
	case '~':
		return true;
	default:
		return false;
	}
}

/* RFC 5321 §4.1.2 qtextSMTP: printable ASCII except '"' and '\'. */
static bool is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* RFC 5321 §4.1.3 dcontent: printable ASCII except '[', '\' and ']'. */
static bool is_dcontent(unsigned char c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* RFC 3629 §4: the length (2 to 4) of the well-formed UTF-8 sequence that
 * starts with the non-ASCII octet p[0], or 0 when it is ill-formed: a stray
 * continuation octet, an overlong form (C0, C1, E0 80..9F, F0 80..8F), a
 * surrogate (ED A0..BF), a code point over U+10FFFF (F4 90.., F5..FF), or a
 * sequence cut short by the end of the input. */
static size_t utf8_sequence_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd octet */
	size_t n;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c == 0xE0) {
		n = 3;
		lo = 0xA0;
	} else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
		n = 3;
	} else if (c == 0xED) {
		n = 3;
		hi = 0x9F;
	} else if (c == 0xF0) {
		n = 4;
		lo = 0x90;
	} else if (c >= 0xF1 && c <= 0xF3) {
		n = 4;
	} else if (c == 0xF4) {
		n = 4;
		hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

static bool at_end(const struct parser *p)
{
	return p->pos >= p->len;
}

static int peek(const struct parser *p)
{
	return at_end(p) ? -1 : p->s[p->pos];
}

static bool at_terminator(const struct parser *p, enum domain_context ctx)
{
	int c = peek(p);

	switch (ctx) {
	case DOMAIN_IN_ROUTE:
		return c == ',' || c == ':';
	case DOMAIN_IN_BRACKETS:
		return c == '>';
	case DOMAIN_UNBRACKETED:
		return c == -1 || c == ' ';
	}
	return false;
}

/* A non-ASCII octet where RFC 6531 allows UTF8-non-ascii: refused without
 * SMTPUTF8 (the caller answers 553 5.6.7), else it must start a well-formed
 * sequence, whose length goes to *n. */
static enum smtp_address_status take_utf8(const struct parser *p, size_t *n)
{
	if (!(p->flags & SMTP_ADDR_UTF8))
		return SMTP_ADDR_ERR_UTF8_NOT_ALLOWED;
	*n = utf8_sequence_len(p->s + p->pos, p->len - p->pos);
	if (*n == 0)
		return SMTP_ADDR_ERR_BAD_UTF8;
	return SMTP_ADDR_OK;
}

/* Appends to the unquoted local part; RFC 5321 §4.5.3.1.1 caps it at 64
 * octets.  The limit applies to the local part without its quoting, which
 * is what is stored and what smtp_address_format writes back minimally. */
static enum smtp_address_status local_append(struct parser *p, const unsigned char *b,
                                             size_t n)
{
	struct smtp_address *a = p->out;

	if (n > SMTP_LOCAL_PART_MAX - a->local_len)
		return SMTP_ADDR_ERR_LOCAL_TOO_LONG;
	memcpy(a->local + a->local_len, b, n);
	a->local_len += n;
	a->local[a->local_len] = '\0';
	return SMTP_ADDR_OK;
}

/* Dot-string = Atom *("." Atom): no empty atom, so no leading, trailing or
 * doubled dot.  RFC 6531 §3.3 adds UTF8-non-ascii to atext. */
static enum smtp_address_status parse_dot_string(struct parser *p)
{
	enum smtp_address_status st;

	for (;;) {
		size_t atom_start = p->pos;

		while (!at_end(p)) {
			unsigned char c = p->s[p->pos];
			size_t n = 1;

			if (c >= 0x80) {
				st = take_utf8(p, &n);
				if (st != SMTP_ADDR_OK)
					return st;
				p->out->utf8 = true;
			} else if (!is_atext(c)) {
				break;
			}
			st = local_append(p, p->s + p->pos, n);
			if (st != SMTP_ADDR_OK)
				return st;
			p->pos += n;
		}
		if (p->pos == atom_start)
			return SMTP_ADDR_ERR_SYNTAX;
		if (peek(p) != '.')
			return SMTP_ADDR_OK;
		st = local_append(p, p->s + p->pos, 1);
		if (st != SMTP_ADDR_OK)
			return st;
		p->pos++;
	}
}

/* Quoted-string: qtextSMTP, or quoted-pairSMTP = "\" followed by printable
 * ASCII (%d32-126; RFC 6531 does not extend quoted pairs).  RFC 6531 §3.3
 * adds UTF8-non-ascii to qtextSMTP.  An '@' inside quotes is ordinary text:
 * "a@b"@c has the local part a@b, reported faithfully for policy to judge. */
static enum smtp_address_status parse_quoted_string(struct parser *p)
{
	enum smtp_address_status st;

	p->out->local_quoted = true;
	p->pos++; /* the opening DQUOTE */
	for (;;) {
		if (at_end(p))
			return SMTP_ADDR_ERR_SYNTAX;
		unsigned char c = p->s[p->pos];
		size_t n = 1;

		if (c == '"') {
			p->pos++;
			return SMTP_ADDR_OK;
		}
		if (c == '\\') {
			if (p->len - p->pos < 2)
				return SMTP_ADDR_ERR_SYNTAX;
			c = p->s[p->pos + 1];
			if (c < 32 || c > 126)
				return SMTP_ADDR_ERR_SYNTAX;
			st = local_append(p, &c, 1);
			if (st != SMTP_ADDR_OK)
				return st;
			p->pos += 2;
			continue;
		}
		if (c >= 0x80) {
			st = take_utf8(p, &n);
			if (st != SMTP_ADDR_OK)
				return st;
			p->out->utf8 = true;
		} else if (!is_qtext(c)) {
			return SMTP_ADDR_ERR_SYNTAX;
		}
		st = local_append(p, p->s + p->pos, n);
		if (st != SMTP_ADDR_OK)
			return st;
		p->pos += n;
	}
}

/* IPv4-address-literal: a strict dotted quad (util/ip_text.h). */
static bool ipv4_from_text(const unsigned char *c, size_t n, unsigned char ip[4])
{
	return ip_text_v4((const char *)c, n, ip);
}

/* IPv6-addr of RFC 5321 §4.1.3.  An IPv4-mapped address (::ffff:a.b.c.d)
 * is reported as IPv4 with its last four octets (DESIGN.md: the two
 * spellings of one address compare equal). */
static bool ipv6_from_text(const unsigned char *c, size_t n, struct smtp_address *dst)
{
	int v = ip_text_v6((const char *)c, n, dst->ip);
	if (v == 0)
		return false;
	dst->kind = v == 4 ? SMTP_DOMAIN_IPV4 : SMTP_DOMAIN_IPV6;
	return true;
}

/* Standardized-tag = Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig */
static bool is_ldh_str(const unsigned char *c, size_t n)
{
	if (n == 0 || c[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(c[i]) && !is_digit(c[i]) && c[i] != '-')
			return false;
	return true;
}

/* Sorts the content of "[...]" (dcontent only, at most 253 octets) into an
 * IPv6, IPv4 or General-address-literal (RFC 5321 §4.1.3). */
static enum smtp_address_status classify_literal(const unsigned char *c, size_t n,
                                                 struct smtp_address *dst)
{
	if (n >= IPV6_TAG_LEN && ascii_equal_nocase(c, IPV6_TAG, IPV6_TAG_LEN)) {
		if (!ipv6_from_text(c + IPV6_TAG_LEN, n - IPV6_TAG_LEN, dst))
			return SMTP_ADDR_ERR_BAD_LITERAL;
		return SMTP_ADDR_OK;
	}
	const unsigned char *colon = memchr(c, ':', n);
	if (colon) {
		/* General-address-literal = Standardized-tag ":" 1*dcontent:
		 * syntax only, since no other tag is registered. */
		size_t tag_len = (size_t)(colon - c);
		if (!is_ldh_str(c, tag_len) || tag_len + 1 == n)
			return SMTP_ADDR_ERR_BAD_LITERAL;
		dst->kind = SMTP_DOMAIN_GENERAL;
		return SMTP_ADDR_OK;
	}
	if (!ipv4_from_text(c, n, dst->ip))
		return SMTP_ADDR_ERR_BAD_LITERAL;
	dst->kind = SMTP_DOMAIN_IPV4;
	return SMTP_ADDR_OK;
}

/* address-literal = "[" ... "]".  RFC 5321 §4.5.3.1.2 caps a domain "name
 * or number" at 255 octets: the brackets count, so the content is at most
 * 253.  Octets outside dcontent (including any non-ASCII octet: RFC 6531
 * does not extend literals) are a syntax error. */
static enum smtp_address_status parse_literal(struct parser *p, struct smtp_address *dst)
{
	size_t start = ++p->pos;
	enum smtp_address_status st;

	for (;;) {
		if (at_end(p))
			return SMTP_ADDR_ERR_SYNTAX;
		unsigned char c = p->s[p->pos];
		if (c == ']')
			break;
		if (!is_dcontent(c))
			return SMTP_ADDR_ERR_SYNTAX;
		if (p->pos - start >= SMTP_DOMAIN_MAX - 2)
			return SMTP_ADDR_ERR_DOMAIN_TOO_LONG;
		p->pos++;
	}
	size_t n = p->pos - start;
	p->pos++; /* ']' */
	st = classify_literal(p->s + start, n, dst);
	if (st != SMTP_ADDR_OK)
		return st;
	memcpy(dst->domain, p->s + start, n);
	dst->domain[n] = '\0';
	return SMTP_ADDR_OK;
}

/* SMTP_ADDR_BARE_IP: an unbracketed IPv6 address ("user@::1").  A Domain
 * never holds ':', so a run of hex digits, dots and colons that contains
 * a colon can only be meant as one.  Returns false (and consumes nothing)
 * when the run has no colon; the domain is then parsed as a name.  The
 * domain is stored with the "IPv6:" tag, as the bracketed literal reads,
 * so that formatting and re-parsing give the same domain. */
static bool parse_bare_ipv6(struct parser *p, enum domain_context ctx,
                            struct smtp_address *dst, enum smtp_address_status *st)
{
	size_t end = p->pos;
	bool colon = false;

	while (end < p->len && (is_hex(p->s[end]) || p->s[end] == ':' || p->s[end] == '.')) {
		if (p->s[end] == ':')
			colon = true;
		end++;
	}
	if (!colon)
		return false;
	size_t start = p->pos;
	size_t n = end - start;
	p->pos = end;
	if (!at_terminator(p, ctx)) {
		*st = SMTP_ADDR_ERR_SYNTAX;
	} else if (!ipv6_from_text(p->s + start, n, dst)) {
		*st = SMTP_ADDR_ERR_BAD_LITERAL;
	} else {
		memcpy(dst->domain, IPV6_TAG, IPV6_TAG_LEN);
		memcpy(dst->domain + IPV6_TAG_LEN, p->s + start, n);
		dst->domain[IPV6_TAG_LEN + n] = '\0';
		dst->bare_ip = true;
		*st = SMTP_ADDR_OK;
	}
	return true;
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]:
 * letters, digits and hyphens, no hyphen at either end of a label, no empty
 * label (so no leading, trailing or doubled dot).  RFC 6531 §3.3 allows
 * U-labels: UTF-8 octets count as Let-dig here.  Limits (RFC 5321
 * §4.5.3.1.2, RFC 1035 §2.3.4): 63 octets a label, 255 the domain.
 *
 * RFC 3696 §2: a top-level domain is never all-numeric, so a last label of
 * digits means the writer meant an address: refused as syntax, or with
 * SMTP_ADDR_BARE_IP (outside source routes) read as an IPv4 address. */
static enum smtp_address_status parse_domain_name(struct parser *p, enum domain_context ctx,
                                                  struct smtp_address *dst)
{
	size_t start = p->pos;
	bool all_numeric = true;
	bool label_numeric;
	enum smtp_address_status st;

	for (;;) {
		size_t label_start = p->pos;

		label_numeric = true;
		while (!at_end(p)) {
			unsigned char c = p->s[p->pos];
			size_t n = 1;

			if (c >= 0x80) {
				st = take_utf8(p, &n);
				if (st != SMTP_ADDR_OK)
					return st;
				dst->utf8 = true;
				label_numeric = false;
			} else if (is_alpha(c) || c == '-') {
				label_numeric = false;
			} else if (!is_digit(c)) {
				break;
			}
			p->pos += n;
			if (p->pos - label_start > 63 || p->pos - start > SMTP_DOMAIN_MAX)
				return SMTP_ADDR_ERR_DOMAIN_TOO_LONG;
		}
		if (p->pos == label_start || p->s[label_start] == '-' ||
		    p->s[p->pos - 1] == '-')
			return SMTP_ADDR_ERR_SYNTAX;
		all_numeric = all_numeric && label_numeric;
		if (peek(p) != '.')
			break;
		p->pos++;
		if (p->pos - start > SMTP_DOMAIN_MAX)
			return SMTP_ADDR_ERR_DOMAIN_TOO_LONG;
	}
	if (!at_terminator(p, ctx))
		return SMTP_ADDR_ERR_SYNTAX;

	size_t n = p->pos - start;
	if (label_numeric) {
		if (ctx == DOMAIN_IN_ROUTE || !(p->flags & SMTP_ADDR_BARE_IP) || !all_numeric)
			return SMTP_ADDR_ERR_SYNTAX;
		if (!ipv4_from_text(p->s + start, n, dst->ip))
			return SMTP_ADDR_ERR_BAD_LITERAL;
		dst->kind = SMTP_DOMAIN_IPV4;
		dst->bare_ip = true;
	} else {
		dst->kind = SMTP_DOMAIN_NAME;
	}
	memcpy(dst->domain, p->s + start, n);
	dst->domain[n] = '\0';
	return SMTP_ADDR_OK;
}

/* Domain or address-literal, ending where ctx says (not consumed). */
static enum smtp_address_status parse_domain(struct parser *p, enum domain_context ctx,
                                             struct smtp_address *dst)
{
	enum smtp_address_status st;

	if (peek(p) == '[') {
		st = parse_literal(p, dst);
		if (st == SMTP_ADDR_OK && !at_terminator(p, ctx))
			st = SMTP_ADDR_ERR_SYNTAX;
		return st;
	}
	if (ctx != DOMAIN_IN_ROUTE && (p->flags & SMTP_ADDR_BARE_IP) &&
	    parse_bare_ipv6(p, ctx, dst, &st))
		return st;
	return parse_domain_name(p, ctx, dst);
}

/* A-d-l = At-domain *( "," At-domain ), followed by ":".  RFC 5321 §3.6.1
 * and appendix C: a server SHOULD ignore the route; each hop is still
 * checked, so garbage never passes as a route.  RFC 821 allowed address
 * literals in routes, so they are accepted here too. */
static enum smtp_address_status parse_source_route(struct parser *p)
{
	struct smtp_address scratch;
	enum smtp_address_status st;

	p->out->had_source_route = true;
	for (;;) {
		p->pos++; /* '@' */
		memset(&scratch, 0, sizeof(scratch));
		st = parse_domain(p, DOMAIN_IN_ROUTE, &scratch);
		if (st != SMTP_ADDR_OK)
			return st;
		if (p->s[p->pos] == ':') {
			p->pos++;
			return SMTP_ADDR_OK;
		}
		p->pos++; /* ',' */
		if (peek(p) != '@')
			return SMTP_ADDR_ERR_SYNTAX;
	}
}

/* RFC 5321 §4.1.1.3: "<Postmaster>" (case-insensitive) with no domain. */
static bool local_is_postmaster(const struct smtp_address *a)
{
	return !a->local_quoted && a->local_len == 10 &&
	       ascii_equal_nocase((const unsigned char *)a->local, "postmaster", 10);
}

static enum smtp_address_status parse_path(struct parser *p)
{
	struct smtp_address *a = p->out;
	enum smtp_address_status st;
	bool bracketed = peek(p) == '<';
	enum domain_context ctx = bracketed ? DOMAIN_IN_BRACKETS : DOMAIN_UNBRACKETED;

	if (!bracketed && !(p->flags & SMTP_ADDR_NO_BRACKETS))
		return SMTP_ADDR_ERR_SYNTAX;
	if (bracketed) {
		p->pos++;
		/* RFC 5321 §4.1.2 Reverse-path = Path / "<>" */
		if (peek(p) == '>') {
			if (!(p->flags & SMTP_ADDR_NULL_OK))
				return SMTP_ADDR_ERR_SYNTAX;
			p->pos++;
			a->kind = SMTP_DOMAIN_NONE;
			return SMTP_ADDR_OK;
		}
	}
	if (peek(p) == '@') {
		st = parse_source_route(p);
		if (st != SMTP_ADDR_OK)
			return st;
	}

	if (peek(p) == '"')
		st = parse_quoted_string(p);
	else
		st = parse_dot_string(p);
	if (st != SMTP_ADDR_OK)
		return st;

	if (peek(p) == '@') {
		p->pos++;
		st = parse_domain(p, ctx, a);
		if (st != SMTP_ADDR_OK)
			return st;
	} else if ((p->flags & SMTP_ADDR_POSTMASTER_OK) && !a->had_source_route &&
	           local_is_postmaster(a) && at_terminator(p, ctx)) {
		a->kind = SMTP_DOMAIN_NONE;
	} else {
		return SMTP_ADDR_ERR_SYNTAX;
	}

	if (bracketed)
		p->pos++; /* '>', checked by parse_domain or at_terminator */
	/* RFC 5321 §4.5.3.1.3: 256 octets with the punctuation, source route
	 * included; an unbracketed path is measured as if it had its "<>". */
	if (p->pos + (bracketed ? 0 : 2) > SMTP_PATH_MAX)
		return SMTP_ADDR_ERR_PATH_TOO_LONG;
	return SMTP_ADDR_OK;
}

enum smtp_address_status smtp_address_parse(const char *s, size_t len, unsigned flags,
                                            struct smtp_address *out, size_t *consumed)
{
	struct parser p = {
		.s = (const unsigned char *)s,
		.len = s ? len : 0,
		.pos = 0,
		.flags = flags,
		.out = out,
	};
	enum smtp_address_status st;

	memset(out, 0, sizeof(*out));
	if (consumed)
		*consumed = 0;
	st = parse_path(&p);
	if (st != SMTP_ADDR_OK) {
		memset(out, 0, sizeof(*out));
		return st;
	}
	if (consumed)
		*consumed = p.pos;
	return SMTP_ADDR_OK;
}

const char *smtp_address_status_text(enum smtp_address_status st)
{
	switch (st) {
	case SMTP_ADDR_OK:
		return "address accepted";
	case SMTP_ADDR_ERR_SYNTAX:
		return "syntax error in address";
	case SMTP_ADDR_ERR_LOCAL_TOO_LONG:
		return "local part longer than 64 octets";
	case SMTP_ADDR_ERR_DOMAIN_TOO_LONG:
		return "domain longer than 255 octets or label longer than 63";
	case SMTP_ADDR_ERR_PATH_TOO_LONG:
		return "path longer than 256 octets";
	case SMTP_ADDR_ERR_UTF8_NOT_ALLOWED:
		return "non-ASCII address without SMTPUTF8";
	case SMTP_ADDR_ERR_BAD_UTF8:
		return "invalid UTF-8 in address";
	case SMTP_ADDR_ERR_BAD_LITERAL:
		return "invalid address literal";
	}
	return "unknown address error";
}

/* --- formatting --- */

struct writer {
	char *out;
	size_t cap;
	size_t len;
	bool overflow;
};

static void put(struct writer *w, const void *b, size_t n)
{
	/* one octet stays free for the terminating NUL */
	if (w->overflow || w->cap == 0 || n > w->cap - 1 - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->out + w->len, b, n);
	w->len += n;
}

static void put_char(struct writer *w, char c)
{
	put(w, &c, 1);
}

/* The local part can be written as a Dot-string (RFC 6531: UTF-8 is atext). */
static bool local_is_dot_string(const unsigned char *l, size_t n)
{
	bool after_dot = true; /* refuses a leading dot */

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (l[i] == '.') {
			if (after_dot)
				return false;
			after_dot = true;
		} else if (is_atext(l[i]) || l[i] >= 0x80) {
			after_dot = false;
		} else {
			return false;
		}
	}
	return !after_dot;
}

/* Everything smtp_address_parse can store: printable ASCII and well-formed
 * UTF-8.  A struct built by hand with a control octet (CR, LF, NUL) would
 * otherwise be written into an envelope. */
static bool local_is_writable(const unsigned char *l, size_t n)
{
	for (size_t i = 0; i < n;) {
		if (l[i] >= 0x80) {
			size_t k = utf8_sequence_len(l + i, n - i);
			if (k == 0)
				return false;
			i += k;
		} else if (l[i] < 32 || l[i] > 126) {
			return false;
		} else {
			i++;
		}
	}
	return true;
}

static bool domain_is_writable(const struct smtp_address *a, size_t n)
{
	const unsigned char *d = (const unsigned char *)a->domain;

	for (size_t i = 0; i < n; i++) {
		if (a->kind == SMTP_DOMAIN_NAME) {
			if (!is_alpha(d[i]) && !is_digit(d[i]) && d[i] != '-' && d[i] != '.' &&
			    d[i] < 0x80)
				return false;
		} else if (!is_dcontent(d[i])) {
			return false;
		}
	}
	return true;
}

int smtp_address_format(const struct smtp_address *a, char *out, size_t outlen)
{
	struct writer w = { .out = out, .cap = outlen, .len = 0, .overflow = false };
	const unsigned char *l = (const unsigned char *)a->local;
	size_t dlen = strnlen(a->domain, sizeof(a->domain));

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (a->local_len > SMTP_LOCAL_PART_MAX || dlen == sizeof(a->domain) ||
	    !local_is_writable(l, a->local_len) || !domain_is_writable(a, dlen))
		return -1;

	if (a->kind == SMTP_DOMAIN_NONE) {
		/* "" for the null path, the bare local part for <Postmaster> */
		if (a->local_len != 0 && !local_is_postmaster(a))
			return -1;
		put(&w, a->local, a->local_len);
	} else if (dlen == 0) {
		return -1;
	} else {
		if (local_is_dot_string(l, a->local_len)) {
			put(&w, a->local, a->local_len);
		} else {
			/* RFC 5321 §4.1.2: only '"' and '\' need a quoted-pair */
			put_char(&w, '"');
			for (size_t i = 0; i < a->local_len; i++) {
				if (l[i] == '"' || l[i] == '\\')
					put_char(&w, '\\');
				put_char(&w, (char)l[i]);
			}
			put_char(&w, '"');
		}
		put_char(&w, '@');
		if (a->kind == SMTP_DOMAIN_NAME) {
			put(&w, a->domain, dlen);
		} else {
			put_char(&w, '[');
			put(&w, a->domain, dlen);
			put_char(&w, ']');
		}
	}
	if (w.overflow) {
		out[0] = '\0';
		return -1;
	}
	out[w.len] = '\0';
	return (int)w.len;
}

bool smtp_local_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > SMTP_LOCAL_PART_MAX || s[0] == '.' || s[0] == '-' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (c == '\0' || !strchr("!#$%&'*+/=?^_`{|}~.-", c)))
			return false;
		if (c == '.' && i + 1 < len && s[i + 1] == '.')
			return false;
	}
	return true;
}
