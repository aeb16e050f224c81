/* Message content from the wire: the DATA stream (dot-unstuffing, end at
 * CRLF.CRLF only) and BDAT chunks (raw octets), both turned into the stored
 * form with LF line endings.  Resumable at any byte: a CRLF or the final
 * "\r\n.\r\n" may be split across any number of reads (nginx's habit), and
 * the decoded octets are the same however the input was split.
 *
 * SMTP smuggling: only CR LF "." CR LF ends DATA.  A bare LF or bare CR
 * (one not part of a CR LF pair) never ends DATA, whatever follows it.
 * Policy for bare line endings, the same for DATA and BDAT:
 *   SMTP_BARE_NORMALIZE: a bare LF or bare CR is stored as a line break (LF);
 *   SMTP_BARE_REJECT: stored the same way but counted in bare_count, so the
 *     caller refuses the message (550 5.6.0) once it has ended.
 * Dot-unstuffing applies only to a "." that begins a line after a real
 * CR LF (or at the very start of the DATA), since that is where a client
 * stuffs; a "." after a bare LF or CR is content.  Such a "." is always
 * removed unless CR LF follows it (the end): "\r\n.\n" and "\r\n.\rX" are
 * a removed stuffing dot followed by a bare line break.  content.c lists
 * what each smuggling sequence decodes to. */
#ifndef RAWMAIL_SMTP_CONTENT_H
#define RAWMAIL_SMTP_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_bare_policy { SMTP_BARE_NORMALIZE = 0, SMTP_BARE_REJECT };

struct smtp_content {
	/* private state */
	int state;
	bool dot_mode;            /* DATA (true) or BDAT (false) */
	enum smtp_bare_policy policy;
	unsigned char npend;      /* decoded octets not yet written (0..2) */
	char pend[2];
	/* results, valid at any time */
	uint64_t stored_size;     /* octets written to out so far (LF form) */
	uint64_t lines;           /* line breaks written so far */
	uint64_t bare_count;      /* bare CR / bare LF seen (SMTP_BARE_REJECT
	                           * only: stays 0 under SMTP_BARE_NORMALIZE) */
	bool nul_seen;            /* a NUL octet was in the content */
	bool done;                /* DATA: the terminating CRLF.CRLF was seen */
};

/* DATA: starts after the 354 reply. */
void smtp_content_init_data(struct smtp_content *c, enum smtp_bare_policy policy);
/* BDAT: one decoder for all chunks of a transaction (a CR at the end of one
 * chunk pairs with an LF at the start of the next). */
void smtp_content_init_bdat(struct smtp_content *c, enum smtp_bare_policy policy);

/* Decodes in[0..inlen) into out (room for at least inlen octets: output is
 * never longer than input; precisely, *outlen <= the return value).  out may
 * be in itself (decoding in place).  Returns the number of input octets
 * consumed and sets *outlen.  In DATA mode, consumption stops right after
 * the terminating CRLF.CRLF (c->done set): the rest belongs to the next
 * command; once done, further calls consume nothing.  In BDAT mode all
 * input is consumed (the caller counts the chunk size).
 * A CR is written as LF as soon as it arrives (an LF that follows it is
 * then swallowed), so nothing is held back for a split CR LF; a "." at a
 * line start, and a "." CR there, are held until the next octet decides.
 * A decoded octet may be written by the next call rather than this one when
 * this call's input was too short to make room; everything is written by
 * the time DATA is done. */
size_t smtp_content_decode(struct smtp_content *c, const char *in, size_t inlen,
                           char *out, size_t *outlen);

/* BDAT LAST: a CR at the very end of the last chunk was already written as
 * LF when it arrived; finish counts it as bare (no LF can follow any more).
 * On a DATA stream that never ended (the caller gave up on it) it does the
 * same and also writes the decoded octet that may still be pending; a held
 * "." or "." CR at a line start is dropped.  After the end of DATA it does
 * nothing.  Writes at most 1 octet to out and returns how many it wrote. */
size_t smtp_content_finish(struct smtp_content *c, char *out);

#endif
