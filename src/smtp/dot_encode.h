/* The client side of DATA: message bytes in any line-ending convention out
 * as SMTP wants them: CRLF line endings and RFC 5321 §4.5.2 dot-stuffing,
 * ending with CRLF "." CRLF.  Resumable at any byte. */
#ifndef RAWMAIL_SMTP_DOT_ENCODE_H
#define RAWMAIL_SMTP_DOT_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_dot_encoder {
	/* private */
	int state;
	uint64_t line_len;       /* octets of the current line so far */
	/* results, valid at any time */
	uint64_t lines;          /* line endings written (finish's included) */
	/* Octets of the longest message line, without its line ending and
	 * without the stuffing dot (RFC 5321 §4.5.3.1.6 does not count it);
	 * the line being written counts too, so a caller may give up early. */
	uint64_t longest_line;
};

void smtp_dot_encoder_init(struct smtp_dot_encoder *e);
/* Encodes in[0..len) into out, which must have room for 2 * len + 2
 * octets; returns the octets written.  LF, CRLF and bare CR each end a
 * line and become CRLF; a line that starts with "." gets another.  A CR at
 * the end of one call and an LF at the start of the next are one line
 * ending.  (2 * len octets are in fact enough: every input octet gives at
 * most two.) */
size_t smtp_dot_encode(struct smtp_dot_encoder *e, const char *in, size_t len, char *out);
/* The end: a CRLF if the last line had none, then ".\r\n".  out needs 5
 * octets; returns the octets written. */
size_t smtp_dot_encode_finish(struct smtp_dot_encoder *e, char *out);

#endif
