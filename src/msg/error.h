/* Errors of the message module: a status the CLI maps to a sysexits code,
 * and a sentence for people (what failed, where, what to do). */
#ifndef RAWMAIL_MSG_ERROR_H
#define RAWMAIL_MSG_ERROR_H

#include <stddef.h>

enum msg_status {
	MSG_OK = 0,
	/* CR or LF in a header value given by the user (-s, -f, a display
	 * name, a recipient): header injection.  Usage error, exit 64. */
	MSG_ERR_INJECTION,
	/* Some other unusable value from the command line (a host name or an
	 * address holding control characters).  Usage error, exit 64. */
	MSG_ERR_USAGE,
	/* RFC 5322 §2.1.1: a raw message line over 998 octets.  Exit 65:
	 * it would be refused or mangled downstream. */
	MSG_ERR_LINE_TOO_LONG,
	/* RFC 5322 §2.3: a NUL octet in a raw message.  Exit 65. */
	MSG_ERR_NUL,
	/* A raw message whose To/Cc/Bcc cannot be read as an address list
	 * (-t), or that names too many recipients.  Exit 65. */
	MSG_ERR_ADDRESS,
	/* The message would exceed the output buffer's maximum.  Exit 65. */
	MSG_ERR_TOO_BIG,
	/* An attachment could not be read.  Exit 66 (EX_NOINPUT). */
	MSG_ERR_FILE,
	/* Out of memory.  Exit 71 (EX_OSERR). */
	MSG_ERR_NOMEM,
};

struct msg_error {
	enum msg_status status;
	size_t line;      /* 1-based line of a raw message, 0 when none */
	char text[256];   /* a sentence, NUL-terminated, no line break */
};

/* Sets *err (when err is not NULL) and returns -1, so callers can write
 * "return msg_error_set(...)". */
int msg_error_set(struct msg_error *err, enum msg_status status, size_t line,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The sysexits code for a status (0 for MSG_OK). */
int msg_error_exit_code(enum msg_status status);

#endif
