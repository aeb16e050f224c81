/* The client side's reply parser: what a peer MTA answers, read with the
 * same care as commands (DESIGN.md "Untrusted input").  Resumable at any
 * byte: a reply split across packets is the normal case. */
#ifndef RAWMAIL_SMTP_REPLY_PARSE_H
#define RAWMAIL_SMTP_REPLY_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds: a reply line may be longer than RFC 5321's 512 octets (real
 * servers send longer ones), but not without limit; a multi-line reply is
 * bounded in lines and octets so an endless reply is an error, not an
 * unbounded allocation. */
#define SMTP_REPLY_PARSE_LINE_MAX 2048
#define SMTP_REPLY_PARSE_LINES_MAX 100
#define SMTP_REPLY_PARSE_TOTAL_MAX (16 * 1024)
/* What each bound counts: LINE_MAX the octets of one line without its line
 * ending ("DDD-" included); LINES_MAX the lines of one reply (a 100th line
 * that says "DDD-", more to follow, is already TOO_LONG); TOTAL_MAX the
 * octets of the assembled text (texts plus their '\n' separators). */

struct smtp_reply_parser {
	/* private.  No separate line buffer: the code digits are checked as
	 * they arrive and each line's text goes straight into text[], so a
	 * partial line costs nothing extra (DESIGN.md "Memory"). */
	int state;
	int code;                 /* the first line's code, 0 before it */
	size_t linelen;           /* octets of this line so far, line end excluded */
	size_t nlines;            /* lines of this reply already ended */
	size_t textlen;           /* octets in text[] */
	bool last_line;           /* this line had "DDD " (or "DDD"): it ends the reply */
	/* the reply being assembled */
	char text[SMTP_REPLY_PARSE_TOTAL_MAX + 1];
};

struct smtp_server_reply {
	int code;                 /* 200..599 */
	/* RFC 3463 / RFC 2034 §4: "X.Y.Z" when the first line's text starts
	 * with one (X 2, 4 or 5 and equal to code's first digit, Y and Z of
	 * 1 to 3 digits) followed by a space or the end of the line, else "".
	 * Only the first line is looked at: RFC 2034 puts the same code on
	 * every line, and a peer that does not is still understood. */
	char enhanced[16];
	/* The lines' texts after "DDD-"/"DDD " (enhanced code kept in the
	 * text), joined with '\n', NUL-terminated; control bytes other than
	 * TAB replaced by '?' so it can be printed and logged safely. */
	const char *text;
	size_t nlines;
};

enum smtp_reply_parse_status {
	SMTP_REPLY_NEED_MORE = 0,  /* all input consumed, reply incomplete */
	SMTP_REPLY_DONE,           /* *out filled; *consumed tells where it ended */
	SMTP_REPLY_MALFORMED,      /* not "DDD[ -]..." / codes differ between lines /
	                            * code not 2xx-5xx / a NUL octet / an empty line */
	SMTP_REPLY_TOO_LONG,       /* a line, the line count or the total over its bound */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);
/* Feeds bytes; stops right after a complete reply (the rest of the input,
 * e.g. pipelined replies, is for the next call).  Lines end in CRLF; a
 * bare LF is accepted as a line end too (tolerant reader), a bare CR is
 * content.  After DONE, the parser is ready for the next reply; after an
 * error it stays in error (the connection is unusable).  out->text points
 * into the parser and is valid until the next call.
 * *consumed: after DONE, the octets up to and including the reply's last
 * LF; after NEED_MORE, len; after an error, the octets up to and including
 * the one that showed it (0 on the calls after that).  The same input gives
 * the same replies and the same error at the same offset however it is
 * split.  out is written only on DONE. */
enum smtp_reply_parse_status smtp_reply_parser_feed(struct smtp_reply_parser *p,
                                                    const char *data, size_t len,
                                                    size_t *consumed,
                                                    struct smtp_server_reply *out);

#endif
