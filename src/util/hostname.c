#include "util/hostname.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.';
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_name_char(*s))
			return false;
	return true;
}

/* Looks for short in /etc/hosts and copies the first dotted name on the
 * same line into out. */
static bool hosts_lookup(const char *short_name, const char *hosts_path, char *out, size_t outlen)
{
	FILE *f = fopen(hosts_path, "r");
	if (!f)
		return false;
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *fields[32];
		int n = 0;
		char *save = NULL;
		for (char *tok = strtok_r(line, " \t\r\n", &save); tok && n < 32;
		     tok = strtok_r(NULL, " \t\r\n", &save))
			fields[n++] = tok;
		bool match = false;
		for (int i = 1; i < n; i++)
			if (strcasecmp(fields[i], short_name) == 0 ||
			    (strncasecmp(fields[i], short_name, strlen(short_name)) == 0 &&
			     fields[i][strlen(short_name)] == '.'))
				match = true;
		for (int i = 1; match && i < n && !found; i++) {
			if (strchr(fields[i], '.') && valid_name(fields[i]) &&
			    strcmp(fields[i], "localhost.localdomain") != 0 &&
			    strlen(fields[i]) < outlen) {
				memcpy(out, fields[i], strlen(fields[i]) + 1);
				found = true;
			}
		}
	}
	fclose(f);
	return found;
}

bool hostname_get(char *out, size_t outlen, const char *hosts_path)
{
	char name[256] = "";
	if (gethostname(name, sizeof(name) - 1) != 0 || !valid_name(name))
		snprintf(name, sizeof(name), "localhost");
	if (strchr(name, '.') && name[strlen(name) - 1] != '.') {
		snprintf(out, outlen, "%s", name);
		return true;
	}
	if (hosts_lookup(name, hosts_path, out, outlen))
		return true;
	snprintf(out, outlen, "%s", name);
	return false;
}

bool hostname_syntax_ok(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
		if (!ok || ++label > 63)
			return false;
	}
	return label > 0;
}
