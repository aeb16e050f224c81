#include "util/config_file.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct reader {
	const struct config_file_section *sections;
	size_t n;
	char *detail;
	size_t detaillen;
	bool failed;
};

static void known_sections(const struct reader *r, char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		if (!r->sections[i].name[0])
			continue;
		int k = snprintf(out + used, outlen - used, "%s[%s]", used ? ", " : "",
		                 r->sections[i].name);
		if (k < 0 || (size_t)k >= outlen - used)
			return;
		used += (size_t)k;
	}
}

static int reader_line(void *user, const char *section, const char *name, const char *value)
{
	struct reader *r = user;
	if (r->failed)
		return 0;   /* inih reports the first failing line */
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->sections[i].name, section) != 0)
			continue;
		if (!r->sections[i].set)
			return 1;
		if (r->sections[i].set(r->sections[i].arg, name, value, r->detail, r->detaillen))
			return 1;
		r->failed = true;
		return 0;
	}
	char known[200];
	known_sections(r, known, sizeof(known));
	snprintf(r->detail, r->detaillen, "unknown section [%s] (sections: %s)", section, known);
	r->failed = true;
	return 0;
}

bool config_file_read(const char *path, const struct config_file_section *sections, size_t n,
                      char *err, size_t errlen)
{
	char detail[512] = "";
	struct reader r = { sections, n, detail, sizeof(detail), false };
	int rc = ini_parse(path, reader_line, &r);
	if (rc == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (rc == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return false;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, rc,
		         detail[0] ? detail : "syntax error (expected 'key = value' or '[section]')");
		return false;
	}
	return true;
}

const char *config_file_choose(const char *given, const char *env, const char *fallback)
{
	if (given)
		return given;
	if (env && env[0])
		return env;
	if (fallback && access(fallback, F_OK) == 0)
		return fallback;
	return NULL;
}

bool config_value_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			return true;
		}
	}
	return false;
}

bool config_value_size(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	uint64_t mul = 1;
	if (*p == 'k' || *p == 'K')
		mul = 1024, p++;
	else if (*p == 'm' || *p == 'M')
		mul = 1024 * 1024, p++;
	else if (*p == 'g' || *p == 'G')
		mul = 1024 * 1024 * 1024, p++;
	if (*p != '\0' || v > max / mul)
		return false;
	*out = v * mul;
	return true;
}

void config_list_free(struct string_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

bool config_list_add(struct string_list *l, int source, const char *value)
{
	if (source > l->source) {
		config_list_free(l);
		l->source = source;
	}
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		size_t n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		char **items = realloc(l->items, (l->n + 1) * sizeof(*items));
		if (!items)
			return false;
		l->items = items;
		if (!(l->items[l->n] = strndup(p, n)))
			return false;
		l->n++;
		p += n;
	}
	return true;
}
