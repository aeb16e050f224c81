/* RFC 7208 §4.5 and §12's ABNF, strictly: anything the grammar does not
 * allow is a permerror with a reason. */
#include "dns/spf_record.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool spf_record_is_spf(const char *text, size_t len)
{
	return len >= 6 && !strncasecmp(text, "v=spf1", 6) && (len == 6 || text[6] == ' ');
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *s, size_t len)
{
	bool alpha = false, hyphen = false;
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (is_alpha(s[i]))
			alpha = true;
		else if (s[i] == '-')
			hyphen = true;
		else if (!is_digit(s[i]))
			return false;
	}
	return alpha || hyphen;
}

bool spf_macro_string_ok(const char *s, size_t len, bool domain_spec, bool exp_letters,
                         char *err, size_t errlen)
{
	size_t literal_from = 0;   /* where the literal tail after the last macro begins */
	bool ends_in_macro = false;

	if (len > SPF_MACRO_MAX) {
		snprintf(err, errlen, "macro-string of %zu octets (at most %d)", len, SPF_MACRO_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c != '%') {
			/* macro-literal = %x21-24 / %x26-7E */
			if (c < 0x21 || c > 0x7e) {
				snprintf(err, errlen, "octet 0x%02x not allowed in '%.*s'", c, (int)len, s);
				return false;
			}
			ends_in_macro = false;
			continue;
		}
		if (i + 1 >= len) {
			snprintf(err, errlen, "'%%' at the end of '%.*s'", (int)len, s);
			return false;
		}
		char n = s[i + 1];
		if (n == '%' || n == '_' || n == '-') {
			i++;
			literal_from = i + 1;
			ends_in_macro = true;
			continue;
		}
		if (n != '{') {
			snprintf(err, errlen, "'%%%c' is not a macro in '%.*s' (write %%%% for %%)", n,
			         (int)len, s);
			return false;
		}
		size_t j = i + 2;
		char letter = j < len ? s[j] : '\0';
		const char *letters = exp_letters ? "slodiphcrtv" : "slodiphv";
		if (!letter || !strchr(letters, letter | 0x20) || !is_alpha(letter)) {
			snprintf(err, errlen, "unknown macro letter '%c' in '%.*s'", letter ? letter : ' ',
			         (int)len, s);
			return false;
		}
		j++;
		/* transformers = *DIGIT [ "r" ]; §7.3: a DIGIT count is nonzero */
		size_t digits = 0;
		unsigned value = 0;
		while (j < len && is_digit(s[j])) {
			value = value * 10 + (unsigned)(s[j] - '0');
			if (++digits > 3)
				break;
			j++;
		}
		if (digits > 3 || (digits > 0 && value == 0)) {
			snprintf(err, errlen, "macro count must be 1 to 999 in '%.*s'", (int)len, s);
			return false;
		}
		if (j < len && (s[j] == 'r' || s[j] == 'R'))
			j++;
		while (j < len && strchr(".-+,/_=", s[j]) && s[j])
			j++;
		if (j >= len || s[j] != '}') {
			snprintf(err, errlen, "unterminated or malformed macro in '%.*s'", (int)len, s);
			return false;
		}
		i = j;
		literal_from = j + 1;
		ends_in_macro = true;
	}
	if (!domain_spec || ends_in_macro)
		return true;
	/* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
	size_t end = len;
	if (end > literal_from && s[end - 1] == '.')
		end--;
	size_t dot = end;
	while (dot > literal_from && s[dot - 1] != '.')
		dot--;
	if (dot <= literal_from || !toplabel_ok(s + dot, end - dot)) {
		snprintf(err, errlen, "'%.*s' does not end in a top-level label (domain-spec)", (int)len,
		         s);
		return false;
	}
	return true;
}

/* "/N" with no leading zero, N <= max; *at moves past it. */
static bool cidr_parse(const char *s, size_t len, size_t *at, unsigned max, unsigned *out)
{
	size_t i = *at + 1, start = i;
	unsigned v = 0;
	while (i < len && is_digit(s[i]) && i - start < 3)
		v = v * 10 + (unsigned)(s[i++] - '0');
	if (i == start || (i - start > 1 && s[start] == '0') || v > max ||
	    (i < len && is_digit(s[i])))
		return false;
	*out = v;
	*at = i;
	return true;
}

/* The first '/' outside a %{...} macro: where a dual-cidr-length begins
 * (a macro's delimiters may hold '/'). */
static size_t slash_find(const char *s, size_t len)
{
	bool in_macro = false;
	for (size_t i = 0; i < len; i++) {
		if (in_macro) {
			if (s[i] == '}')
				in_macro = false;
		} else if (s[i] == '%' && i + 1 < len && s[i + 1] == '{') {
			in_macro = true;
		} else if (s[i] == '%' && i + 1 < len) {
			i++;
		} else if (s[i] == '/') {
			return i;
		}
	}
	return len;
}

struct mech_name {
	const char *name;
	enum spf_mechanism mech;
};

static const struct mech_name mechs[] = {
	{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE }, { "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },   { "ptr", SPF_MECH_PTR },         { "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 }, { "exists", SPF_MECH_EXISTS },
};

/* One directive, term[0..len) in the writable copy t (NUL-terminated at
 * len by the caller). */
static bool directive_parse(char *t, size_t len, struct spf_term *term, char *err,
                            size_t errlen)
{
	const char *whole = t;
	size_t wlen = len;
	term->qualifier = SPF_QUAL_PASS;
	if (len > 0 && strchr("+-~?", t[0])) {
		term->qualifier = (enum spf_qualifier)t[0];
		t++;
		len--;
	}
	size_t nl = 0;
	while (nl < len && (is_alpha(t[nl]) || is_digit(t[nl])))
		nl++;
	const struct mech_name *m = NULL;
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == nl && !strncasecmp(t, mechs[i].name, nl))
			m = &mechs[i];
	if (!m || (nl < len && t[nl] != ':' && t[nl] != '/')) {
		snprintf(err, errlen, "unknown mechanism '%.*s'", (int)wlen, whole);
		return false;
	}
	term->mech = m->mech;
	term->cidr4 = 32;
	term->cidr6 = 128;
	term->domain = NULL;
	char *arg = t + nl;
	size_t alen = len - nl;
	bool has_arg = alen > 0 && arg[0] == ':';
	if (has_arg) {
		arg++;
		alen--;
	}
	switch (term->mech) {
	case SPF_MECH_ALL:
		if (alen > 0) {
			snprintf(err, errlen, "'all' takes no argument: '%.*s'", (int)wlen, whole);
			return false;
		}
		return true;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6: {
		bool v4 = term->mech == SPF_MECH_IP4;
		size_t slash = 0;
		while (slash < alen && arg[slash] != '/')
			slash++;
		char ip[64];
		if (!has_arg || slash == 0 || slash >= sizeof(ip)) {
			snprintf(err, errlen, "'%.*s' needs an address", (int)wlen, whole);
			return false;
		}
		memcpy(ip, arg, slash);
		ip[slash] = '\0';
		if (inet_pton(v4 ? AF_INET : AF_INET6, ip, term->addr) != 1) {
			snprintf(err, errlen, "'%s' is not an %s address in '%.*s'", ip,
			         v4 ? "IPv4" : "IPv6", (int)wlen, whole);
			return false;
		}
		if (slash < alen) {
			size_t at = slash;
			if (!cidr_parse(arg, alen, &at, v4 ? 32 : 128, v4 ? &term->cidr4 : &term->cidr6) ||
			    at != alen) {
				snprintf(err, errlen, "bad prefix length in '%.*s'", (int)wlen, whole);
				return false;
			}
		}
		return true;
	}
	default:
		break;
	}
	/* include, a, mx, ptr, exists: [":" domain-spec] [dual-cidr] */
	if (!has_arg && alen > 0 && arg[0] != '/') {
		snprintf(err, errlen, "unknown mechanism '%.*s'", (int)wlen, whole);
		return false;
	}
	size_t slash = slash_find(arg, alen);
	if (slash < alen) {
		if (term->mech != SPF_MECH_A && term->mech != SPF_MECH_MX) {
			snprintf(err, errlen, "no prefix length allowed in '%.*s'", (int)wlen, whole);
			return false;
		}
		size_t at = slash;
		bool ok = true;
		if (at + 1 < alen && arg[at + 1] != '/')
			ok = cidr_parse(arg, alen, &at, 32, &term->cidr4);
		if (ok && at < alen) {
			if (at + 1 < alen && arg[at] == '/' && arg[at + 1] == '/') {
				at++;
				ok = cidr_parse(arg, alen, &at, 128, &term->cidr6);
			} else {
				ok = false;
			}
		}
		if (!ok || at != alen) {
			snprintf(err, errlen, "bad prefix length in '%.*s'", (int)wlen, whole);
			return false;
		}
	}
	if (has_arg) {
		if (slash == 0 ||
		    !spf_macro_string_ok(arg, slash, true, false, err, errlen)) {
			if (slash == 0)
				snprintf(err, errlen, "empty domain in '%.*s'", (int)wlen, whole);
			return false;
		}
		arg[slash] = '\0';
		term->domain = arg;
	} else if (term->mech == SPF_MECH_INCLUDE || term->mech == SPF_MECH_EXISTS) {
		snprintf(err, errlen, "'%.*s' needs a domain", (int)wlen, whole);
		return false;
	}
	return true;
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) followed by "=" */
static size_t modifier_name_len(const char *t, size_t len)
{
	if (len == 0 || !is_alpha(t[0]))
		return 0;
	size_t i = 1;
	while (i < len && (is_alpha(t[i]) || is_digit(t[i]) || strchr("-_.", t[i])))
		i++;
	return i < len && t[i] == '=' ? i : 0;
}

bool spf_record_parse(const char *text, size_t len, struct spf_record *rec, char *err,
                      size_t errlen)
{
	memset(rec, 0, offsetof(struct spf_record, store));
	if (len > DNS_TXT_RECORD_MAX || memchr(text, '\0', len)) {
		snprintf(err, errlen, "record too long or holding a NUL");
		return false;
	}
	if (!spf_record_is_spf(text, len)) {
		snprintf(err, errlen, "not an SPF record (no \"v=spf1\" at its start)");
		return false;
	}
	/* Two copies: terms as written (for explanations), and one cut up
	 * into the strings the terms point to. */
	char *shown = rec->store, *cut = rec->store + len + 1;
	memcpy(shown, text, len);
	shown[len] = '\0';
	memcpy(cut, text, len);
	cut[len] = '\0';
	size_t i = 6;
	while (i < len) {
		if (text[i] != ' ') {
			snprintf(err, errlen, "octet 0x%02x between terms", (unsigned char)text[i]);
			return false;
		}
		while (i < len && text[i] == ' ')
			i++;
		if (i >= len)
			break;   /* trailing spaces: record = version terms *SP */
		size_t start = i;
		while (i < len && text[i] != ' ')
			i++;
		size_t tl = i - start;
		shown[i] = '\0';
		cut[i] = '\0';
		char *t = cut + start;
		size_t nl = modifier_name_len(t, tl);
		if (nl > 0) {
			char *value = t + nl + 1;
			size_t vl = tl - nl - 1;
			bool redirect = nl == 8 && !strncasecmp(t, "redirect", 8);
			bool exp = nl == 3 && !strncasecmp(t, "exp", 3);
			if ((redirect && rec->redirect) || (exp && rec->exp)) {
				/* §6: each at most once */
				snprintf(err, errlen, "'%.*s' given twice", (int)nl, t);
				return false;
			}
			if (!spf_macro_string_ok(value, vl, redirect || exp, false, err, errlen))
				return false;
			if (redirect)
				rec->redirect = value;
			else if (exp)
				rec->exp = value;
			/* §6: unknown modifiers are ignored */
			continue;
		}
		if (rec->n >= SPF_TERMS_MAX) {
			snprintf(err, errlen, "more than %d terms", SPF_TERMS_MAX);
			return false;
		}
		struct spf_term *term = &rec->terms[rec->n];
		if (!directive_parse(t, tl, term, err, errlen))
			return false;
		term->text = shown + start;
		if (term->mech == SPF_MECH_ALL)
			rec->has_all = true;
		rec->n++;
	}
	return true;
}
