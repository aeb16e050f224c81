/* Submission adds a missing Date and Message-ID (RFC 6409 §8.2, §8.3) as
 * the message streams to the store, without buffering it.  Input is the
 * stored form (LF line endings, dot-unstuffed: smtp/content.h's output) in
 * any chunks; output is the same octets with, when missing,
 *   "Date: VALUE\n" "Message-ID: VALUE\n"   (in that order)
 * inserted just before the end of the top-level header section (Postfix's
 * cleanup also appends its missing fields at the end of the headers).
 *
 * The header section (RFC 5322 §2.2, §3.5) is read line by line:
 *   - a field line is a name of printable ASCII except ":" (33..126),
 *     optional SP/HTAB (the obsolete form "Date :", §4.5.8, as Postfix's
 *     is_header() accepts), then ":";
 *   - a line starting with SP or HTAB continues the field before it;
 *   - the first empty line ends the section: the fields go before it;
 *   - the first other line (no colon, a CR, an 8-bit octet, a continuation
 *     with no field before it) also ends it: the message has no empty line
 *     there.  The fields go before that line, followed by an empty line, so
 *     that the line we took as the body's first is the body's first for
 *     every later reader too (otherwise the added fields would sit between
 *     two parts of what looks like one header section);
 *   - a message that ends in its header section (no body, or empty) gets
 *     the fields at finish; if its last line had no LF, an LF is added
 *     first so the fields are lines of their own.
 * The LF and the empty line are added only with a field: a message that
 * has both fields (or whose missing ones have NULL values) is unchanged.
 * Field names compare case-insensitively ("Message-Id", "DATE").  Fields
 * in the body or in MIME parts are never looked at.
 *
 * State is bounded: at most SMTP_HEADER_FILL_HOLD_MAX octets of a line's
 * start are held back (copied) while the line might still not be a field;
 * a name longer than that is taken as a field (util/limits.h says why) and
 * the rest of any line is passed through unseen.  Everything else is
 * emitted as slices of the caller's input, never copied.  Output octets =
 * input octets + the inserted text (f->inserted). */
#ifndef RAWMAIL_SMTP_HEADER_FILL_H
#define RAWMAIL_SMTP_HEADER_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

/* Receives output octets in order; n is never 0.  p is valid only during
 * the call (a slice of feed's input, the held octets, or the values). */
typedef void (*smtp_header_fill_emit_fn)(void *arg, const char *p, size_t n);

struct smtp_header_fill {
	/* private */
	const char *date_value;   /* caller's strings, kept until finish */
	const char *msgid_value;
	int state;
	unsigned char match;      /* which of "date", "message-id" the name
	                           * read so far can still be */
	size_t name_len;          /* octets of the name read so far */
	bool fields_seen;         /* a field line came before this line */
	size_t nhold;             /* octets of this line held from earlier chunks */
	char hold[SMTP_HEADER_FILL_HOLD_MAX];
	/* results, valid at any time */
	bool have_date;           /* the message has a Date: field */
	bool have_msgid;          /* ... a Message-ID: field */
	bool header_done;         /* the end of the header section was seen
	                           * (the fields, if any, are emitted) */
	uint64_t inserted;        /* octets emitted that were not input */
};

/* date_value and msgid_value (e.g. "Sun, 06 Dec 2026 17:05:00 +0000" and
 * "<ID@host>") are NUL-terminated and must live until finish returns; a
 * NULL value is never added. */
void smtp_header_fill_init(struct smtp_header_fill *f, const char *date_value,
                           const char *msgid_value);
/* Feeds data[0..len) (any chunk, len 0 allowed); emits what is decided. */
void smtp_header_fill_feed(struct smtp_header_fill *f, const char *data, size_t len,
                           smtp_header_fill_emit_fn emit, void *arg);
/* The end of the message: emits held octets and, if the header section
 * had not ended, the missing fields.  Call once; after it, feed and
 * finish emit nothing more. */
void smtp_header_fill_finish(struct smtp_header_fill *f, smtp_header_fill_emit_fn emit,
                             void *arg);

#endif
