/* Why a peer refused our mail, in words a user can act on.  Large
 * receivers refuse direct senders for a handful of reasons (no PTR, an
 * IPv6 address without PTR, SPF / DKIM / DMARC, block lists, rate limits,
 * greylisting) and say so in replies that only an expert can read.  The
 * result line of `rawmail send` adds the likely cause and the fix from one
 * table of known replies (explain.c), kept easy to extend; `rawmail
 * check` gives the same advice.  It lives in msg/ (pure, depending on
 * nothing) so that both cli/send and check/ use it without check
 * depending on the delivery engine in client/.
 *
 * Pure: no I/O, no allocation, no global state. */
#ifndef RAWMAIL_MSG_EXPLAIN_H
#define RAWMAIL_MSG_EXPLAIN_H

#include <stddef.h>

struct msg_explanation {
	const char *name;   /* stable id ("gmail-ipv6-ptr"), for tests and logs */
	const char *cause;  /* the likely cause, one short sentence */
	const char *fix;    /* what the user can do about it */
};

/* Looks a refusal up in the table; the first matching entry wins.
 * code: the reply code (only 4xx and 5xx are ever explained);
 * enhanced: the RFC 3463 code the reply parser found ("5.7.25"), "" or
 * NULL when it found none (then a code at the start of the text is used);
 * text: the reply's lines after "DDD-"/"DDD ", joined with '\n', as
 * smtp_reply_parser_feed gives it (struct smtp_server_reply.text).
 * Returns NULL when the reply is not a known deliverability refusal. */
const struct msg_explanation *msg_reply_explain(int code, const char *enhanced,
                                                      const char *text);

/* The table's entries in order, i from 0; NULL past the end (for tests
 * that check every entry is covered, and for documentation). */
const struct msg_explanation *msg_explanation_get(size_t i);

/* The advice to relay through a provider's submission server, in the
 * table's words: `rawmail check` gives it when outgoing port 25 looks
 * blocked. */
extern const char msg_explain_fix_relay[];

#endif
