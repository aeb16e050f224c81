/* The SPF record a fix shows (check.h): the published one with the
 * source address's term added where it takes effect.  Pure. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check/check.h"

void check_spf_record_add(const char *record, const char *term, char *out, size_t outlen)
{
	size_t at = strlen(record);
	const char *p = record;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *t = p;
		while (*p && *p != ' ')
			p++;
		const char *m = t;
		/* RFC 7208 §4.6.2: a qualifier before the mechanism */
		if (*m == '+' || *m == '-' || *m == '~' || *m == '?')
			m++;
		size_t len = (size_t)(p - m);
		/* "all" ends evaluation (§5.1: terms after it are never
		 * reached); redirect= applies only when no mechanism matched
		 * (§6.1), wherever it stands */
		if ((len == 3 && !strncasecmp(m, "all", 3)) ||
		    (len > 9 && !strncasecmp(t, "redirect=", 9))) {
			at = (size_t)(t - record);
			break;
		}
	}
	while (at > 0 && record[at - 1] == ' ')
		at--;
	const char *rest = record + at;
	while (*rest == ' ')
		rest++;
	snprintf(out, outlen, "%.*s %s%s%s", (int)at, record, term, *rest ? " " : "", rest);
}
