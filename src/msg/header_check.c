/* The header-injection check shared by every writer. */
#include "msg/header.h"

#include <string.h>

int msg_header_check_value(const char *what, const char *value, struct msg_error *err)
{
	if (value && strpbrk(value, "\r\n"))
		return msg_error_set(err, MSG_ERR_INJECTION, 0,
		                     "%s contains a line break (CR or LF): refused, it would "
		                     "inject header fields", what);
	return 0;
}
