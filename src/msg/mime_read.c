/* A received entity's header section: where it ends, its fields, and the
 * simple values in them (media type, first token). */
#include "msg/mime_read.h"

#include <string.h>
#include <strings.h>

void msg_mime_split(const char *p, size_t len, struct msg_mime_entity *e)
{
	size_t i = 0;
	while (i < len) {
		/* i is at a line start: an empty line ends the section. */
		if (p[i] == '\n' || (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')) {
			size_t body = i + (p[i] == '\n' ? 1 : 2);
			e->header = p;
			e->header_len = i;
			e->body = p + body;
			e->body_len = len - body;
			return;
		}
		const char *nl = memchr(p + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - p) + 1;
	}
	e->header = p;
	e->header_len = len;
	e->body = p + len;
	e->body_len = 0;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

void msg_mime_fields_find(const char *h, size_t len, struct msg_mime_field *f, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		f[k].found = false;
		f[k].value = NULL;
		f[k].len = 0;
	}
	size_t i = 0;
	while (i < len) {
		/* A field: this line and the continuation lines (starting with
		 * white space) after it. */
		size_t start = i;
		size_t end = len;
		const char *nl;
		while ((nl = memchr(h + i, '\n', len - i)) != NULL) {
			i = (size_t)(nl - h) + 1;
			if (i >= len || !is_wsp(h[i])) {
				end = i;
				break;
			}
		}
		if (!nl)
			i = len;
		if (is_wsp(h[start]))
			continue;   /* a continuation with no field: junk */
		const char *colon = memchr(h + start, ':', end - start);
		if (!colon)
			continue;
		size_t name_len = (size_t)(colon - (h + start));
		while (name_len && is_wsp(h[start + name_len - 1]))
			name_len--;
		for (size_t k = 0; k < n; k++) {
			if (f[k].found || strlen(f[k].name) != name_len ||
			    strncasecmp(f[k].name, h + start, name_len) != 0)
				continue;
			f[k].found = true;
			f[k].value = colon + 1;
			f[k].len = (size_t)(h + end - (colon + 1));
		}
	}
}

int msg_mime_unfold(struct buf *out, const char *v, size_t len)
{
	size_t start = 0;
	while (start < len && (is_wsp(v[start]) || v[start] == '\r' || v[start] == '\n'))
		start++;
	while (len > start && (is_wsp(v[len - 1]) || v[len - 1] == '\r' || v[len - 1] == '\n'))
		len--;
	size_t run = start;
	for (size_t i = start; i < len; i++) {
		if (v[i] != '\r' && v[i] != '\n')
			continue;
		if (buf_append(out, v + run, i - run) < 0)
			return -1;
		run = i + 1;
	}
	return buf_append(out, v + run, len - run);
}

/* RFC 2045 §5.1: token := 1*<any CHAR except SPACE, CTLs, or tspecials>. */
static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

static size_t skip_space(const char *v, size_t len, size_t i)
{
	while (i < len && (is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n'))
		i++;
	return i;
}

/* RFC 6838 §4.2: a type name and a subtype name are at most 127 each. */
#define TYPE_NAME_MAX 127

int msg_mime_type(struct buf *out, const char *v, size_t len, const char *def)
{
	if (!v)
		return buf_append_str(out, def);
	size_t i = skip_space(v, len, 0);
	size_t t = i;
	while (i < len && is_token_char((unsigned char)v[i]))
		i++;
	size_t type_len = i - t;
	size_t j = skip_space(v, len, i);
	if (type_len == 0 || type_len > TYPE_NAME_MAX || j >= len || v[j] != '/')
		return buf_append_str(out, def);
	j = skip_space(v, len, j + 1);
	size_t s = j;
	while (j < len && is_token_char((unsigned char)v[j]))
		j++;
	size_t sub_len = j - s;
	if (sub_len == 0 || sub_len > TYPE_NAME_MAX)
		return buf_append_str(out, def);
	char lower[2 * TYPE_NAME_MAX + 1];
	size_t n = 0;
	for (size_t k = 0; k < type_len; k++)
		lower[n++] = (char)((v[t + k] >= 'A' && v[t + k] <= 'Z') ? v[t + k] + 32 : v[t + k]);
	lower[n++] = '/';
	for (size_t k = 0; k < sub_len; k++)
		lower[n++] = (char)((v[s + k] >= 'A' && v[s + k] <= 'Z') ? v[s + k] + 32 : v[s + k]);
	return buf_append(out, lower, n);
}

int msg_mime_token(struct buf *out, const char *v, size_t len)
{
	size_t i = skip_space(v, len, 0);
	size_t t = i;
	while (i < len && is_token_char((unsigned char)v[i]))
		i++;
	for (size_t k = t; k < i; k++) {
		char c = (char)((v[k] >= 'A' && v[k] <= 'Z') ? v[k] + 32 : v[k]);
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}
