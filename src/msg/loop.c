#include "msg/loop.h"

#include <string.h>
#include <strings.h>

/* One header field: [name, name + namelen) and its value, the lines
 * after the colon with the folds (CRLF/LF before white space) left in. */
struct field {
	const char *name;
	size_t namelen;
	const char *value;
	size_t valuelen;
};

/* The field at *pos, or false at the end of the header section (an empty
 * line, or the end of the data).  A line with no colon is skipped. */
static bool field_next(const char *data, size_t len, size_t *pos, struct field *f)
{
	while (*pos < len) {
		size_t start = *pos;
		if (data[start] == '\n' || (data[start] == '\r' && start + 1 < len &&
		                            data[start + 1] == '\n'))
			return false;   /* the empty line: the body follows */
		/* The field runs until a line that does not start with white
		 * space (RFC 5322 §2.2.3: folding). */
		size_t end = start;
		for (;;) {
			const char *nl = memchr(data + end, '\n', len - end);
			end = nl ? (size_t)(nl - data) + 1 : len;
			if (end >= len || (data[end] != ' ' && data[end] != '\t'))
				break;
		}
		*pos = end;
		const char *colon = memchr(data + start, ':', end - start);
		if (!colon)
			continue;
		f->name = data + start;
		f->namelen = (size_t)(colon - f->name);
		f->value = colon + 1;
		f->valuelen = (size_t)(data + end - f->value);
		return true;
	}
	return false;
}

static bool name_is(const struct field *f, const char *name)
{
	size_t n = strlen(name);
	return f->namelen == n && strncasecmp(f->name, name, n) == 0;
}

size_t msg_loop_received_count(const char *data, size_t len)
{
	size_t pos = 0, n = 0;
	struct field f;
	while (field_next(data, len, &pos, &f))
		n += name_is(&f, "Received");
	return n;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool msg_loop_delivered_to(const char *data, size_t len, const char *addr)
{
	size_t pos = 0, alen = strlen(addr);
	struct field f;
	while (field_next(data, len, &pos, &f)) {
		if (!name_is(&f, "Delivered-To"))
			continue;
		const char *v = f.value, *e = f.value + f.valuelen;
		while (v < e && is_space(*v))
			v++;
		while (e > v && is_space(e[-1]))
			e--;
		if ((size_t)(e - v) == alen && strncasecmp(v, addr, alen) == 0)
			return true;
	}
	return false;
}
