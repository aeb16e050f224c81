/* The private wire format between store_client (smtp process) and the
 * store process: length-prefixed frames over a SOCK_STREAM socketpair.
 * Pure functions: no I/O, no allocation except into a caller's struct buf.
 *
 * A frame is a 5-octet header, u32 body length (big-endian) and u8 type,
 * then the body.  Integers are big-endian; a string is a u16 length and
 * that many octets, never a NUL.
 *
 *   BEGIN  client  u64 txn, str qid, str sender, u32 n (1..FRAME_RCPTS_MAX),
 *                  n x (str address, str mailbox), u32 length + received
 *                  (an empty mailbox: a relayed recipient, for the spool),
 *                  str signer (0..FRAME_SIGNER_MAX: the login's senders
 *                  field when the message may be DKIM-signed, else empty),
 *                  str client_ip (0..FRAME_CLIENT_IP_MAX: the client's
 *                  address as inet_ntop writes it, empty for local mail),
 *                  str helo (0..FRAME_HELO_MAX: its HELO/EHLO argument as
 *                  sent, any octet but NUL; both for the outbox's events)
 *   DATA   client  u64 txn, 1..FRAME_DATA_MAX content octets
 *   COMMIT client  u64 txn
 *   ABORT  client  u64 txn
 *   RESULT store   u64 txn, u8 enum store_result
 *   SPACE  store   u64 free bytes in the mailroot's filesystem
 *   ASK    client  u64 query, NEWBOX_KEY_LEN octets client key, str mailbox
 *   ANSWER store   u64 query, u8 enum store_mailbox_answer
 *
 * Each side decodes only the types the other side may send, and every
 * length is checked against its bound from the header on, before the body
 * is buffered: a frame that breaks the format is a fatal protocol error for
 * the connection.  What the format cannot say (a mailbox name that is not
 * safe as a directory name, a sender with a line break) is checked by
 * frame_begin_check, and only fails that message. */
#ifndef RAWMAIL_STORE_FRAME_H
#define RAWMAIL_STORE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/limits.h"

struct buf;

enum frame_type {
	FRAME_BEGIN = 1,
	FRAME_DATA = 2,
	FRAME_COMMIT = 3,
	FRAME_ABORT = 4,
	FRAME_RESULT = 5,
	FRAME_SPACE = 6,
	FRAME_ASK = 7,
	FRAME_ANSWER = 8,
	FRAME_TYPE_LAST = FRAME_ANSWER,
};

/* Which types a side accepts, for frame_header_decode. */
#define FRAME_FROM_CLIENT                                                                    \
	((1u << FRAME_BEGIN) | (1u << FRAME_DATA) | (1u << FRAME_COMMIT) | (1u << FRAME_ABORT) | \
	 (1u << FRAME_ASK))
#define FRAME_FROM_STORE ((1u << FRAME_RESULT) | (1u << FRAME_SPACE) | (1u << FRAME_ANSWER))

#define FRAME_HEADER_LEN 5
/* A DATA frame carries at most this much content: big enough that a header
 * per frame costs nothing, small enough to pull up into one piece. */
#define FRAME_DATA_MAX (64u * 1024u)
/* A queue id becomes part of a file name (DESIGN.md "Formats"). */
#define FRAME_QID_MAX 64
/* Sender and recipient addresses as the smtp process formats them: an RFC
 * 5321 path is at most 256 octets, but a re-quoted local part may grow, so
 * allow room without letting a peer make us buffer megabytes per string. */
#define FRAME_ADDRESS_MAX 1024
/* A mailbox is one directory name (NAME_MAX). */
#define FRAME_MAILBOX_MAX 255
/* Recipients per message: SMTP_RECIPIENTS_DEFAULT is 1000 and configurable
 * upwards; the store accepts up to ten times that. */
#define FRAME_RCPTS_MAX 10000u
#define FRAME_RECEIVED_MAX (64u * 1024u)
/* The signer: a login's senders field, at most one users file line. */
#define FRAME_SIGNER_MAX AUTH_USERS_LINE_MAX
/* The client's address (IP_TEXT_V6_MAX, with room) and its HELO argument
 * (one command line). */
#define FRAME_CLIENT_IP_MAX 64u
#define FRAME_HELO_MAX SMTP_COMMAND_LINE_MAX
#define FRAME_BEGIN_MAX (8u + 2u + FRAME_QID_MAX + 2u + FRAME_ADDRESS_MAX + 4u + \
                         FRAME_RCPTS_MAX * (2u + FRAME_ADDRESS_MAX + 2u + FRAME_MAILBOX_MAX) + \
                         4u + FRAME_RECEIVED_MAX + 2u + FRAME_SIGNER_MAX + \
                         2u + FRAME_CLIENT_IP_MAX + 2u + FRAME_HELO_MAX)
/* The fixed frames, header included. */
#define FRAME_TXN_LEN (FRAME_HEADER_LEN + 8)
#define FRAME_RESULT_LEN (FRAME_HEADER_LEN + 9)
#define FRAME_SPACE_LEN (FRAME_HEADER_LEN + 8)
#define FRAME_DATA_HEADER_LEN (FRAME_HEADER_LEN + 8)
#define FRAME_ANSWER_LEN (FRAME_HEADER_LEN + 9)
/* The client key of an ASK (newbox.h's NEWBOX_KEY_LEN). */
#define FRAME_KEY_LEN 17 /* NETKEY_LEN (util/netkey.h) */
#define FRAME_ASK_MAX (8u + FRAME_KEY_LEN + 2u + FRAME_MAILBOX_MAX)

enum frame_status {
	FRAME_ERROR = -1,
	FRAME_NEED_MORE = 0,
	FRAME_OK = 1,
};

/* A string inside a decoded frame: not NUL-terminated. */
struct frame_str {
	const char *p;
	size_t len;
};

struct frame_begin {
	uint64_t txn;
	struct frame_str qid;
	struct frame_str sender;
	struct frame_str received;
	/* The login's senders field (DKIM signs relayed mail whose From
	 * it allows, store/relay_dkim.c), empty: never signed. */
	struct frame_str signer;
	/* The client (the outbox's events): empty for local mail. */
	struct frame_str client_ip;
	struct frame_str helo;
	uint32_t nrcpts;
	/* The recipients, already validated: walk them with frame_begin_rcpt. */
	const uint8_t *rcpts;
	size_t rcpts_len;
};

/* Encoders.  frame_encode_begin appends to out and returns 0, or -1 if the
 * message cannot be said in the format (a field over its bound, a NUL in a
 * string, an empty address or mailbox (a NULL mailbox is a relayed
 * recipient, sent as the empty string), no recipient, too many) or memory ran out; out is then unchanged.
 * signer is NULL or "" (not to be signed) or the login's senders field.
 * client_ip and helo: NULL or "" when unknown; a helo over FRAME_HELO_MAX
 * is cut there (it only informs the events), a client_ip over its bound
 * refuses the frame.
 * The others fill a fixed array and cannot fail. */
int frame_encode_begin(struct buf *out, uint64_t txn, const char *qid, const char *sender,
                       const struct store_recipient *rcpts, size_t nrcpts, const char *received,
                       const char *signer, const char *client_ip, const char *helo);
/* The header of a DATA frame carrying len (1..FRAME_DATA_MAX) octets; the
 * content follows it on the wire. */
void frame_encode_data_header(uint8_t out[FRAME_DATA_HEADER_LEN], uint64_t txn, size_t len);
/* COMMIT or ABORT. */
void frame_encode_txn(uint8_t out[FRAME_TXN_LEN], enum frame_type type, uint64_t txn);
void frame_encode_result(uint8_t out[FRAME_RESULT_LEN], uint64_t txn, enum store_result r);
void frame_encode_space(uint8_t out[FRAME_SPACE_LEN], uint64_t free_bytes);
/* ASK: -1 if the mailbox is empty, over FRAME_MAILBOX_MAX or holds a NUL. */
int frame_encode_ask(struct buf *out, uint64_t query, const uint8_t key[FRAME_KEY_LEN],
                     const char *mailbox);
void frame_encode_answer(uint8_t out[FRAME_ANSWER_LEN], uint64_t query,
                         enum store_mailbox_answer a);

/* Reads a header from p[0..avail): FRAME_NEED_MORE until FRAME_HEADER_LEN
 * octets are there; FRAME_ERROR (with *why) for a type not in allowed (a
 * mask of 1 << type) or a body length over that type's bound; else
 * FRAME_OK with *type and *body_len.  The body may not have arrived yet. */
enum frame_status frame_header_decode(const uint8_t *p, size_t avail, unsigned allowed,
                                      enum frame_type *type, size_t *body_len, const char **why);

/* Body decoders: FRAME_OK or FRAME_ERROR (with *why).  Strings point into
 * body. */
enum frame_status frame_decode_begin(const uint8_t *body, size_t len, struct frame_begin *out,
                                     const char **why);
enum frame_status frame_decode_data(const uint8_t *body, size_t len, uint64_t *txn,
                                    const char **data, size_t *data_len, const char **why);
enum frame_status frame_decode_txn(const uint8_t *body, size_t len, uint64_t *txn, const char **why);
enum frame_status frame_decode_result(const uint8_t *body, size_t len, uint64_t *txn,
                                      enum store_result *r, const char **why);
enum frame_status frame_decode_space(const uint8_t *body, size_t len, uint64_t *free_bytes,
                                     const char **why);

enum frame_status frame_decode_ask(const uint8_t *body, size_t len, uint64_t *query,
                                   const uint8_t **key, struct frame_str *mailbox,
                                   const char **why);
enum frame_status frame_decode_answer(const uint8_t *body, size_t len, uint64_t *query,
                                      enum store_mailbox_answer *a, const char **why);

/* The recipient at *pos (start with 0) of a decoded BEGIN; advances *pos.
 * Call it exactly b->nrcpts times. */
void frame_begin_rcpt(const struct frame_begin *b, size_t *pos, struct frame_str *address,
                      struct frame_str *mailbox);

/* What a well-formed BEGIN must still satisfy before the store uses it:
 * a qid of letters, digits, '-' and '_' (it goes into a file name), a
 * sender and addresses without control octets (they become header lines),
 * mailbox names that are one safe directory name (no '/', no leading '.',
 * no control octets: DESIGN.md "Addresses") or empty (relayed), a received text of lines
 * ending in LF without CR, a signer without control octets, a client_ip
 * empty or an IPv4 or IPv6 address in text.  Returns NULL if all is well, else the reason.
 * The smtp process already ensures all this, so a failure is its bug. */
const char *frame_begin_check(const struct frame_begin *b);

/* The mailbox rule alone, shared with the Maildir code. */
bool frame_mailbox_safe(const char *name, size_t len);

/* The next complete frame at the front of a libevent input buffer (both
 * sides read the same way): FRAME_OK with *body pointing at its body
 * (contiguous; drain FRAME_HEADER_LEN + *body_len once handled),
 * FRAME_NEED_MORE, or FRAME_ERROR with *why for a header the reader does
 * not accept. */
struct evbuffer;
enum frame_status frame_next(struct evbuffer *in, unsigned allowed, enum frame_type *type,
                             const uint8_t **body, size_t *body_len, const char **why);

#endif
