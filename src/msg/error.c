#include "msg/error.h"

#include <stdarg.h>
#include <stdio.h>

int msg_error_set(struct msg_error *err, enum msg_status status, size_t line,
                  const char *fmt, ...)
{
	if (!err)
		return -1;
	err->status = status;
	err->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

int msg_error_exit_code(enum msg_status status)
{
	switch (status) {
	case MSG_OK:
		return 0;
	case MSG_ERR_INJECTION:
	case MSG_ERR_USAGE:
		return 64;  /* EX_USAGE */
	case MSG_ERR_LINE_TOO_LONG:
	case MSG_ERR_NUL:
	case MSG_ERR_ADDRESS:
	case MSG_ERR_TOO_BIG:
		return 65;  /* EX_DATAERR */
	case MSG_ERR_FILE:
		return 66;  /* EX_NOINPUT */
	case MSG_ERR_NOMEM:
		return 71;  /* EX_OSERR */
	}
	return 70;          /* EX_SOFTWARE: a status this switch forgot */
}
