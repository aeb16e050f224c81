/* MIME types of attachments by file name extension. */
#include "msg/attach.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *ext;
	const char *type;
} attach_types[] = {
	{ "txt", "text/plain" },
	{ "html", "text/html" },
	{ "htm", "text/html" },
	{ "csv", "text/csv" },
	{ "xml", "application/xml" },     /* RFC 7303 prefers it to text/xml */
	{ "json", "application/json" },
	{ "pdf", "application/pdf" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },     /* RFC 6713 */
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
};

const char *msg_attach_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	return *base ? base : "attachment";
}

const char *msg_attach_mime_type(const char *name)
{
	const char *base = msg_attach_base_name(name);
	const char *dot = strrchr(base, '.');
	if (dot && dot != base) {
		for (size_t i = 0; i < sizeof(attach_types) / sizeof(attach_types[0]); i++)
			if (strcasecmp(dot + 1, attach_types[i].ext) == 0)
				return attach_types[i].type;
	}
	return "application/octet-stream";
}

/* RFC 6838 §4.2: restricted-name = restricted-name-first *126restricted-name-chars. */
static size_t attach_restricted_name(const char *s)
{
	size_t n = 0;
	while (n < 127) {
		unsigned char c = (unsigned char)s[n];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (n == 0 || c == 0 || !strchr("!#$&-^_.+", c)))
			break;
		n++;
	}
	return n;
}

bool msg_attach_type_ok(const char *type)
{
	size_t n = attach_restricted_name(type);
	if (n == 0 || type[n] != '/')
		return false;
	const char *sub = type + n + 1;
	size_t m = attach_restricted_name(sub);
	return m > 0 && sub[m] == '\0';
}
