/* The envelope of a queued message, env/ID in the spool (issue 9,
 * ../../notes QUEUE.md "Envelope file format", version 1), and its text
 * form.  Pure: bytes in, a struct out, and back.  The parser never trusts
 * the file (a disk error, a truncated write, a hand edit): it is strict,
 * bounded and fuzzed (tests/fuzz/fuzz_queue_envelope.c).
 *
 *   rawmail-queue 1
 *   id ID
 *   created EPOCH
 *   sender ADDR                 (<> for the null sender)
 *   size N
 *   sha256 HEX64                (lower case)
 *   flags LIST                  (smtputf8,bounce,warned in that order, or -)
 *   origin WORD                 (send | sendmail | submission | bounce | local | mqtt)
 *   rcpt STATE ATTEMPTS NEXT LASTEPOCH ADDR ORCPT LAST    (one or more)
 *   end
 *
 * LF line ends, single spaces.  Free text and addresses are percent-encoded:
 * octets <= 0x20, >= 0x7f and '%' become %XX (upper-case hex), and so does
 * a whole field that would read as a token ("<>" as a sender, "-" as an
 * ORCPT or LAST).  The "end" line is ours, beyond the lead's draft: a file
 * cut at a line boundary would otherwise parse, minus recipients. */
#ifndef RAWMAIL_QUEUE_ENVELOPE_H
#define RAWMAIL_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define QUEUE_ENV_VERSION 1
/* Bounds of the parser (and of what the formatter writes). */
#define QUEUE_ENV_LINE_MAX (64u * 1024u)     /* octets, LF excluded */
#define QUEUE_ENV_RCPTS_MAX 10000
#define QUEUE_ENV_FILE_MAX (64u * 1024u * 1024u)  /* whole file */
/* Decoded field lengths: an address longer than RFC 5321 §4.5.3.1.3's 256
 * octets is refused long before, but a hostile one must round-trip; a
 * reply is kept whole up to LAST_MAX (the formatter cuts longer ones). */
#define QUEUE_ENV_ADDR_MAX 2048
#define QUEUE_ENV_LAST_MAX 8192
#define QUEUE_ID_MAX 64                      /* [A-Za-z0-9_-], file-name safe */
#define QUEUE_SHA256_LEN 32

enum queue_rcpt_state {
	QUEUE_RCPT_QUEUED = 0,   /* to try at next */
	QUEUE_RCPT_DELIVERED,
	QUEUE_RCPT_FAILED,       /* permanent: bounce due or sent */
	QUEUE_RCPT_BOUNCED,      /* failed, and its DSN queued */
};

enum queue_flag {
	QUEUE_FLAG_SMTPUTF8 = 1,
	QUEUE_FLAG_BOUNCE = 2,   /* this is a DSN: never bounce it */
	QUEUE_FLAG_WARNED = 4,   /* a delay warning was sent */
};

enum queue_origin {
	QUEUE_ORIGIN_SEND = 0,
	QUEUE_ORIGIN_SENDMAIL,
	QUEUE_ORIGIN_SUBMISSION,
	QUEUE_ORIGIN_BOUNCE,
	QUEUE_ORIGIN_LOCAL,
	QUEUE_ORIGIN_MQTT,       /* a request on PREFIX/send (issue 12) */
};

struct queue_rcpt {
	enum queue_rcpt_state state;
	uint32_t attempts;
	int64_t next;            /* epoch of the next attempt, 0: now */
	int64_t last_attempt;    /* epoch, 0: none */
	char *addr;              /* never empty */
	char *orcpt;             /* NULL: same as addr */
	char *last;              /* last reply or reason, NULL: none */
};

struct queue_envelope {
	char id[QUEUE_ID_MAX + 1];
	int64_t created;
	char *sender;            /* "" is the null sender <> */
	uint64_t size;
	uint8_t sha256[QUEUE_SHA256_LEN];
	unsigned flags;          /* enum queue_flag */
	enum queue_origin origin;
	struct queue_rcpt *rcpts;
	size_t nrcpts;
};

/* Parses data[0..len) into env (which the caller frees with
 * queue_envelope_free, also after a failure).  0, or -1 with
 * "line N: what" in why. */
int queue_envelope_parse(const char *data, size_t len, struct queue_envelope *env, char *why,
                         size_t whylen);
/* Appends the text form to out.  0, or -1 with a reason (nothing is
 * appended then).  A LAST longer than QUEUE_ENV_LAST_MAX is cut there. */
int queue_envelope_format(const struct queue_envelope *env, struct buf *out, const char **why);

/* Builders for callers (the copies are the envelope's): 0 or -1 (ENOMEM). */
int queue_envelope_set_sender(struct queue_envelope *env, const char *sender);
int queue_envelope_add_rcpt(struct queue_envelope *env, const char *addr, const char *orcpt);
/* Whether the envelope needs SMTPUTF8 (RFC 6531): its sender or a
 * recipient is not ASCII.  Callers set QUEUE_FLAG_SMTPUTF8 from it. */
bool queue_envelope_wants_smtputf8(const struct queue_envelope *env);
/* Replaces a recipient's last reply (NULL clears it). */
int queue_rcpt_set_last(struct queue_rcpt *r, const char *last);
void queue_envelope_free(struct queue_envelope *env);   /* env is zeroed */
/* Field by field (for the fuzzer's round trip and for tests). */
bool queue_envelope_equal(const struct queue_envelope *a, const struct queue_envelope *b);
/* An id the spool accepts as a file name: 1..QUEUE_ID_MAX of [A-Za-z0-9_-]. */
bool queue_id_valid(const char *id, size_t len);
const char *queue_rcpt_state_name(enum queue_rcpt_state s);

#endif
