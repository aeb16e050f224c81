/* The bounded recipient list filled by -t. */
#include "msg/address_list.h"

#include <stdlib.h>
#include <string.h>

#include "util/limits.h"

void msg_recipients_init(struct msg_recipients *r, size_t max)
{
	r->addrs = NULL;
	r->count = 0;
	r->max = max;
}

void msg_recipients_free(struct msg_recipients *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->addrs[i]);
	free(r->addrs);
	r->addrs = NULL;
	r->count = 0;
}

int msg_recipients_add(struct msg_recipients *r, const char *addr, size_t len,
                       struct msg_error *err)
{
	if (len == 0 || len > SMTP_PATH_MAX)
		return msg_error_set(err, MSG_ERR_ADDRESS, 0,
		                     "recipient address is empty or longer than %d octets",
		                     SMTP_PATH_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)addr[i] < 32 || addr[i] == 127)
			return msg_error_set(err, MSG_ERR_ADDRESS, 0,
			                     "recipient address holds a control character");
	for (size_t i = 0; i < r->count; i++)
		if (strlen(r->addrs[i]) == len && memcmp(r->addrs[i], addr, len) == 0)
			return 0;
	if (r->count >= r->max)
		return msg_error_set(err, MSG_ERR_ADDRESS, 0,
		                     "more than %zu recipients in To/Cc/Bcc", r->max);
	char **grown = realloc(r->addrs, (r->count + 1) * sizeof(*grown));
	if (!grown)
		return msg_error_set(err, MSG_ERR_NOMEM, 0, "out of memory");
	r->addrs = grown;
	char *copy = strndup(addr, len);
	if (!copy)
		return msg_error_set(err, MSG_ERR_NOMEM, 0, "out of memory");
	r->addrs[r->count++] = copy;
	return 0;
}
