/* MIME types of attachments by file name extension. */
#include "msg/attach.h"

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
