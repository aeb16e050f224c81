/* The list of check results and its text form: what `rawmail check`
 * prints, one line per test. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check/check.h"

const char *check_status_name(enum check_status st)
{
	static const char *const names[] = { "pass", "warn", "fail", "info" };
	return (unsigned)st < 4 ? names[st] : "?";
}

bool check_results_add(struct check_results *r, enum check_status st, const char *test,
                       const char *subject, const char *fix, const char *found_fmt, ...)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct check_result *items = realloc(r->items, cap * sizeof(*items));
		if (!items) {
			r->oom = true;
			return false;
		}
		r->items = items;
		r->cap = cap;
	}
	char *found = NULL;
	va_list ap;
	va_start(ap, found_fmt);
	int len = vasprintf(&found, found_fmt, ap);
	va_end(ap);
	struct check_result *it = &r->items[r->n];
	it->status = st;
	it->test = strdup(test);
	it->subject = strdup(subject ? subject : "");
	it->fix = strdup(fix ? fix : "");
	it->found = len < 0 ? NULL : found;
	if (!it->test || !it->subject || !it->fix || !it->found) {
		free(it->test);
		free(it->subject);
		free(it->fix);
		if (len >= 0)
			free(found);
		r->oom = true;
		return false;
	}
	r->n++;
	return true;
}

void check_results_free(struct check_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i].test);
		free(r->items[i].subject);
		free(r->items[i].found);
		free(r->items[i].fix);
	}
	free(r->items);
	memset(r, 0, sizeof(*r));
}

size_t check_results_count(const struct check_results *r, enum check_status st)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->items[i].status == st;
	return n;
}

void check_results_print(const struct check_results *r, FILE *out)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct check_result *it = &r->items[i];
		fprintf(out, "%s %s %s: %s\n", check_status_name(it->status), it->test,
		        it->subject[0] ? it->subject : "-", it->found);
		const char *p = it->fix;
		bool first = true;
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);
			fprintf(out, "  %s%.*s\n", first ? "fix: " : "     ", (int)len, p);
			first = false;
			p += len + (nl != NULL);
		}
	}
	if (r->oom)
		fputs("fail check -: out of memory: some results are missing\n", out);
}
