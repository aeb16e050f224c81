/* The table of well-known deliverability refusals and its matcher.
 *
 * To add a refusal: add an entry to `rules` below, above any more general
 * entry that would also match it (first match wins), and add a test with
 * the real reply as a peer sends it to tests/unit/test_msg_explain.c.
 *
 * Matching works on a flattened copy of the reply text: each line's
 * leading enhanced code (RFC 2034 §4 repeats it on every line) is dropped,
 * the lines are joined with one space, runs of blanks become one space and
 * ASCII letters are folded to lower case.  Receivers wrap their text at
 * different columns over the years ("does not meet IPv6 sending
 * guidelines" has been cut at three different places by Gmail), so
 * phrases in the table are matched across line breaks. */
#include "msg/explain.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Only this much of the flattened text is searched.  Every known phrase
 * sits in the first few hundred octets; the reply parser allows 16 KiB. */
#define EXPLAIN_TEXT_MAX 4096

/* The rule needs the text to hold a bracketed IPv6 address: receivers put
 * the connecting client's address there, so it says we came over IPv6. */
#define EXPLAIN_IPV6_SENDER 1u

struct explain_rule {
	char reply_class;       /* '4' or '5': the reply code's first digit; 0: either */
	/* An entry matches when its enhanced code equals the reply's OR one
	 * of `any` occurs in the text (either alone when the other is
	 * absent), AND every phrase of `all` occurs, AND the flags hold. */
	const char *enhanced;   /* "X.7.25" (X: 4 or 5), "4.7.1"; NULL: no code rule */
	const char *any[8];     /* lower-case phrases, NULL-terminated */
	const char *all[3];     /* lower-case phrases, NULL-terminated */
	unsigned flags;
	struct msg_explanation out;
};

/* Shared wording, so entries for one cause give the same advice. */
/* Mail from a residential or listed address goes out through the
 * provider's submission server (RFC 6409), which rawmail can use. */
#define FIX_RELAY                                                                      \
	"relay through your ISP's or mail provider's submission server: rawmail send "    \
	"--relay smtp.example.net --auth-user USER --auth-password-file FILE (relay, "    \
	"auth-user and auth-password-file in [delivery] for the queue)"
const char msg_explain_fix_relay[] = FIX_RELAY;
#define CAUSE_GREYLIST                                                                  \
	"the receiver greylists: it refuses the first attempt from an unknown sender " \
	"and accepts a retry after a few minutes"
#define FIX_GREYLIST                                                                 \
	"nothing: the message is queued and rawmail queue run retries it (with " \
	"--no-queue, run the same command again in 5 to 15 minutes)"
#define FIX_SPF                                                                          \
	"list this host's IP address in the SPF record of the envelope sender's domain " \
	"(-f), e.g. \"v=spf1 ip4:ADDRESS -all\", or send as a domain whose SPF allows it"

/* Phrases that say "reverse DNS of the client failed", from Postfix
 * (reject_unknown_reverse_client_hostname), Gmail 5.7.25, Comcast, ImprovMX
 * and smaller providers. */
#define PTR_PHRASES                                                                \
	"ptr record", "reverse hostname", "reverse dns", "cannot find your hostname", \
	"no dns reverse", "dns ptr", "ptr resource record"

/* Most specific first: an IPv6-only cause before the general PTR one, PTR
 * before block lists, DMARC and SPF before the generic "unauthenticated",
 * named lists (PBL, Yahoo's) before "any Spamhaus list", and those before
 * "any block list". */
static const struct explain_rule rules[] = {
	/* Gmail, 550-5.7.1 "... does not meet IPv6 sending guidelines
	 * regarding PTR records and authentication": an IPv6 sender needs a
	 * PTR that resolves back, and SPF or DKIM. */
	{
		.reply_class = '5',
		.any = { "ipv6 sending guidelines" },
		.out = { "gmail-ipv6-guidelines",
		         "your IPv6 address has no PTR record (or the mail passed neither SPF nor "
		         "DKIM); Gmail requires both from IPv6 senders",
		         "send over IPv4 (rawmail send -4), or publish a PTR record for your IPv6 "
		         "address and an SPF record for the sender's domain" },
	},
	/* Gmail 5.7.25 (RFC 7372 §3.3: "Reverse DNS validation failed") or a
	 * reverse-DNS refusal that names an IPv6 client. */
	{
		.enhanced = "X.7.25",
		.any = { PTR_PHRASES },
		.flags = EXPLAIN_IPV6_SENDER,
		.out = { "ipv6-no-ptr",
		         "your IPv6 address has no PTR record, or its name does not resolve back "
		         "to it",
		         "send over IPv4 (rawmail send -4) or publish a PTR record for your IPv6 "
		         "address whose name has an AAAA record back to it" },
	},
	{
		.enhanced = "X.7.25",
		.any = { PTR_PHRASES },
		.out = { "no-ptr",
		         "your IP address has no PTR record (reverse DNS), or its name does not "
		         "resolve back to it",
		         "ask whoever assigned the address (ISP or hosting provider) to publish a "
		         "PTR record whose name resolves back to it; without one, " FIX_RELAY },
	},
	/* Gmail "Unauthenticated email from example.com is not accepted due
	 * to domain's DMARC policy" (5.7.26 now, 5.7.1 before 2020). */
	{
		.reply_class = '5',
		.any = { "dmarc policy" },
		.out = { "dmarc",
		         "the From: domain's DMARC policy rejects mail that passes neither SPF nor "
		         "DKIM aligned with it",
		         "send with a From: domain you control whose SPF record lists this host "
		         "(and sign with DKIM), or send through that domain's own mail server" },
	},
	/* The sender refused as an address: RFC 3463 X.1.7 "Bad sender's
	 * mailbox address syntax" (Gmail's 553 5.1.7 "The sender address
	 * <root@vm> is not a valid RFC-5321 address"), or Postfix's
	 * reject_non_fqdn_sender.  Without -f rawmail sends as login@hostname,
	 * and a machine's own name is rarely a mail domain. */
	{
		.enhanced = "X.1.7",
		.any = { "need fully-qualified address" },
		.out = { "sender-not-valid",
		         "the receiver does not take the envelope sender as an address: without -f "
		         "rawmail sends as login@hostname (such as root@vm), and a host name that is "
		         "not a public domain is not a valid mail domain",
		         "give your own address with -f (rawmail send -f you@example.com ...), at a "
		         "domain that exists in DNS" },
	},
	/* Gmail 5.7.27 / 4.7.27 "SPF does not pass".  RFC 7505 §4.2
	 * registers X.7.27 as "sender address has null MX": only the SPF
	 * wording makes it Gmail's meaning; the next entry is the RFC's. */
	{
		.enhanced = "X.7.27",
		.all = { "spf" },
		.out = { "gmail-spf",
		         "SPF did not pass: the envelope sender's domain does not list this "
		         "host's IP address",
		         FIX_SPF },
	},
	{
		.enhanced = "X.7.27",
		.out = { "sender-null-mx",
		         "the envelope sender's domain publishes a null MX (RFC 7505): it accepts "
		         "no mail, so the receiver refuses mail from it",
		         "send with -f ADDRESS at a domain that can receive replies and bounces" },
	},
	/* SPF hard failures: RFC 7372 X.7.23, policyd-spf's "SPF fail - not
	 * authorized" and its openspf.org/Why links (often with 5.7.1), and
	 * Gmail's 5.7.26 "has an SPF record with a hard fail policy". */
	{
		.enhanced = "X.7.23",
		.any = { "spf fail", "hard fail policy", "fails to pass spf", "openspf.org/why",
		         "openspf.net/why", "spf validation failed" },
		.out = { "spf-fail",
		         "the SPF check failed: the envelope sender's domain does not authorise "
		         "this host's IP address",
		         FIX_SPF },
	},
	/* Gmail 5.7.26 "This mail is unauthenticated" / "the sender is
	 * unauthenticated", and its older "does not pass authentication
	 * checks (SPF and DKIM both do not pass)", also as 421 4.7.0. */
	{
		.enhanced = "X.7.26",
		.any = { "mail is unauthenticated", "sender is unauthenticated",
		         "authentication checks" },
		.out = { "unauthenticated",
		         "the message passed neither SPF nor DKIM; Gmail and others refuse "
		         "unauthenticated mail",
		         FIX_SPF "; sign with DKIM too" },
	},
	/* Gmail 550-5.7.1 "an unusual rate of unsolicited mail originating
	 * from your IP address ... has been blocked". */
	{
		.reply_class = '5',
		.any = { "unsolicited mail" },
		.out = { "unsolicited-blocked",
		         "the receiver blocks your IP address for its reputation (an unusual rate "
		         "of unsolicited mail: often an address recycled from a spammer)",
		         "set up PTR, SPF and DKIM and send from an address with a clean history, "
		         "or " FIX_RELAY },
	},
	/* Gmail 421-4.7.0 / 4.7.28 "... has been temporarily rate limited",
	 * Microsoft 451 4.7.650 "temporarily rate limited due to IP
	 * reputation". */
	{
		.reply_class = '4',
		.any = { "unsolicited mail", "rate limited", "rate-limited" },
		.out = { "rate-limited",
		         "the receiver is rate-limiting mail from your IP address or domain "
		         "(volume, or a reputation it does not know yet)",
		         "send again later and less at once; set up PTR, SPF and DKIM so the "
		         "address earns a reputation" },
	},
	/* Outlook.com / Hotmail "... weren't sent. Please contact your
	 * Internet service provider since part of their network is on our
	 * block list (S3140)" (also S3150, AS3140). */
	{
		.reply_class = '5',
		.any = { "part of their network is on our block list" },
		.out = { "microsoft-network-block",
		         "Microsoft (Outlook, Hotmail) blocks the network range your IP address "
		         "is in: usual for residential, dynamic and cloud ranges",
		         "request delisting at https://sender.office.com, or " FIX_RELAY },
	},
	/* Exchange Online 5.7.606-649 "Access denied, banned sending IP" and
	 * 5.7.511 "Access denied, banned sender". */
	{
		.reply_class = '5',
		.any = { "banned sending ip", "banned sender" },
		.out = { "microsoft-banned",
		         "Microsoft has banned your IP address (Exchange Online 5.7.606-649, "
		         "5.7.511)",
		         "request removal at https://sender.office.com (for 5.7.511: forward the "
		         "refusal to delist@messaging.microsoft.com), or " FIX_RELAY },
	},
	/* Spamhaus answers a receiver that queries through a public resolver
	 * with an error code; Postfix then refuses every client with "blocked
	 * using zen.spamhaus.org; Error: open resolver".  Not our fault. */
	{
		.any = { "error: open resolver" },
		.out = { "spamhaus-open-resolver",
		         "the receiver's Spamhaus lookups fail (it queries through a public "
		         "resolver), so it refuses everyone: not a listing of your address",
		         "tell the recipient's postmaster; try again later" },
	},
	/* The Spamhaus PBL lists end-user ranges that should not send mail
	 * directly ("... is on the Spamhaus PBL", "blocked using
	 * pbl.spamhaus.org"). */
	{
		.any = { "spamhaus pbl", "pbl.spamhaus.org", "policy block list",
		         "spamhaus.org/pbl" },
		.out = { "spamhaus-pbl",
		         "your IP address is in the Spamhaus PBL: a residential or dynamic range "
		         "whose owner says it should not send mail directly",
		         FIX_RELAY "; for a static server address with a PTR, remove it at "
		         "https://check.spamhaus.org" },
	},
	/* Yahoo 553 5.7.1 "[BL21] Connections will not be accepted from IP,
	 * because the ip is in Spamhaus's list" and [BL23] (XBL). */
	{
		.any = { "[bl21]", "[bl23]", "ip is in spamhaus", "on spamhaus xbl" },
		.out = { "yahoo-spamhaus",
		         "Yahoo refuses connections from IP addresses on a Spamhaus list",
		         "look the address up at https://check.spamhaus.org and follow its "
		         "removal steps, or " FIX_RELAY },
	},
	/* Dynamic / residential address refusals: SORBS DUL ("Dynamic IP
	 * Addresses See: http://www.sorbs.net/lookup.shtml"), Hotmail DY-001,
	 * Comcast ES000010 and others ("blocked ... dynamic IP"). */
	{
		.reply_class = '5',
		.any = { "dynamic ip", "dynamic/residential", "residential ip", "dynamic address",
		         "dynamic or residential", "dul.dnsbl" },
		.out = { "dynamic-ip",
		         "the receiver refuses mail sent directly from dynamic or residential IP "
		         "addresses",
		         FIX_RELAY ", or send from a static address with a PTR record" },
	},
	/* Any other Spamhaus refusal: "Client host [IP] blocked using
	 * zen.spamhaus.org", "blocked using Spamhaus" (Microsoft), ... */
	{
		.any = { "spamhaus" },
		.out = { "spamhaus",
		         "your IP address is on a Spamhaus block list (SBL, XBL or PBL, together "
		         "in zen.spamhaus.org)",
		         "look it up at https://check.spamhaus.org and follow its removal steps; "
		         "on a home connection, " FIX_RELAY },
	},
	/* Any other DNS block list: Postfix's "Client host [IP] blocked using
	 * LIST", Comcast "found on one or more DNSBLs", "blacklisted" ... */
	{
		.any = { "blocked using", "dnsbl", "blacklist", "black list", "blocklist",
		         "block list" },
		.out = { "blocklist",
		         "your IP address is on a DNS block list that the receiver uses",
		         "look the address up on the list the reply names and request removal, "
		         "or " FIX_RELAY },
	},
	/* Postgrey "450 4.2.0 <rcpt>: Recipient address rejected: Greylisted,
	 * see http://postgrey.schweikert.ch/help/..." and other greylisters. */
	{
		.reply_class = '4',
		.any = { "greylist" },
		.out = { "greylisted", CAUSE_GREYLIST, FIX_GREYLIST },
	},
	/* rspamd / milter greylisting: "451 4.7.1 Try again later",
	 * "451 4.7.1 Please try again later". */
	{
		.reply_class = '4',
		.enhanced = "4.7.1",
		.all = { "try again later" },
		.out = { "greylisted-try-later", CAUSE_GREYLIST, FIX_GREYLIST },
	},
};

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The length of an RFC 3463 §2 enhanced code at s ("5.7.1", class 2, 4
 * or 5, subject and detail 1*3DIGIT) followed by a blank or the line's
 * end; 0 if there is none. */
static size_t enhanced_code_len(const char *s)
{
	size_t i = 0;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	i = 1;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;

		if (s[i] != '.')
			return 0;
		i++;
		while (is_digit((unsigned char)s[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return 0;
	}
	if (s[i] != '\0' && s[i] != '\n' && !is_blank((unsigned char)s[i]))
		return 0;
	return i;
}

/* Writes the flattened text (see the top of this file) into out, at most
 * cap - 1 octets and a NUL. */
static void text_flatten(const char *text, char *out, size_t cap)
{
	size_t n = 0;
	bool line_start = true;
	bool pending_space = false;

	for (const char *p = text; *p != '\0' && n + 1 < cap; p++) {
		if (line_start) {
			size_t skip;

			while (is_blank((unsigned char)*p))
				p++;
			skip = enhanced_code_len(p);
			p += skip;
			line_start = false;
			if (*p == '\0')
				break;
		}
		unsigned char c = (unsigned char)*p;
		if (c == '\n') {
			line_start = true;
			pending_space = n > 0;
			continue;
		}
		if (is_blank(c)) {
			pending_space = n > 0;
			continue;
		}
		if (pending_space) {
			out[n++] = ' ';
			pending_space = false;
			if (n + 1 >= cap)
				break;
		}
		out[n++] = (char)ascii_lower(c);
	}
	out[n] = '\0';
}

static bool is_ipv6_char(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || c == ':' || c == '.';
}

/* True if the flattened text holds "[IPV6" closed by ']' or a blank (Gmail
 * writes "[2001:db8::1 16]"), optionally with RFC 5321's "ipv6:" tag.  Two
 * colons at least: "[12:30]" is not an address. */
static bool text_has_ipv6_literal(const char *flat)
{
	for (const char *p = strchr(flat, '['); p != NULL; p = strchr(p + 1, '[')) {
		const char *q = p + 1;
		int colons = 0;

		if (strncmp(q, "ipv6:", 5) == 0)
			q += 5;
		while (is_ipv6_char((unsigned char)*q)) {
			if (*q == ':')
				colons++;
			q++;
		}
		if (colons >= 2 && (*q == ']' || *q == ' '))
			return true;
	}
	return false;
}

/* "X.7.25" matches "4.7.25" and "5.7.25"; other patterns match exactly. */
static bool enhanced_equal(const char *pattern, const char *code)
{
	if (pattern[0] == 'X')
		return (code[0] == '4' || code[0] == '5') && strcmp(pattern + 1, code + 1) == 0;
	return strcmp(pattern, code) == 0;
}

static bool rule_matches(const struct explain_rule *r, char reply_class, const char *enhanced,
                         const char *flat)
{
	bool by_code, by_text;

	if (r->reply_class != 0 && r->reply_class != reply_class)
		return false;
	by_code = r->enhanced != NULL && enhanced[0] != '\0' && enhanced_equal(r->enhanced, enhanced);
	by_text = false;
	for (size_t i = 0; i < sizeof r->any / sizeof r->any[0] && r->any[i]; i++) {
		if (strstr(flat, r->any[i])) {
			by_text = true;
			break;
		}
	}
	if ((r->enhanced || r->any[0]) && !by_code && !by_text)
		return false;
	for (size_t i = 0; i < sizeof r->all / sizeof r->all[0] && r->all[i]; i++)
		if (!strstr(flat, r->all[i]))
			return false;
	if ((r->flags & EXPLAIN_IPV6_SENDER) && !text_has_ipv6_literal(flat))
		return false;
	return true;
}

const struct msg_explanation *msg_reply_explain(int code, const char *enhanced,
                                                      const char *text)
{
	char flat[EXPLAIN_TEXT_MAX];
	char found[16];
	char reply_class;

	/* Only refusals are explained: RFC 5321 §4.2.1, 4yz transient and
	 * 5yz permanent negative completion. */
	if (code < 400 || code > 599 || text == NULL)
		return NULL;
	reply_class = (char)('0' + code / 100);
	if (enhanced == NULL || enhanced[0] == '\0') {
		/* No code from the parser (it wants one on every line): take
		 * one from the start of the text if it is there. */
		const char *t = text;
		size_t len;

		while (is_blank((unsigned char)*t))
			t++;
		len = enhanced_code_len(t);
		if (len >= sizeof found)
			len = 0;
		memcpy(found, t, len);
		found[len] = '\0';
		enhanced = found;
	}
	text_flatten(text, flat, sizeof flat);
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (rule_matches(&rules[i], reply_class, enhanced, flat))
			return &rules[i].out;
	return NULL;
}

const struct msg_explanation *msg_explanation_get(size_t i)
{
	if (i >= sizeof rules / sizeof rules[0])
		return NULL;
	return &rules[i].out;
}
