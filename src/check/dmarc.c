/* DMARC records and where to look for them (RFC 9989, which replaced
 * RFC 7489: the policy is found by walking up the DNS tree instead of
 * consulting a public-suffix list).  Pure. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check/check.h"

const char *check_dmarc_policy_name(enum check_dmarc_policy p)
{
	static const char *const names[] = { "none", "quarantine", "reject" };
	return (unsigned)p < 3 ? names[p] : "?";
}

static bool policy_parse(const char *v, size_t len, enum check_dmarc_policy *out)
{
	static const char *const names[] = { "none", "quarantine", "reject" };
	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == len && !strncasecmp(v, names[i], len)) {
			*out = (enum check_dmarc_policy)i;
			return true;
		}
	return false;
}

/* [start, end) without the spaces and tabs around it (RFC 9989 §4.7: WSP
 * is allowed around '=' and ';'). */
static void trim(const char **start, const char **end)
{
	while (*start < *end && (**start == ' ' || **start == '\t'))
		(*start)++;
	while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
}

int check_dmarc_parse(const char *text, struct check_dmarc_record *out, char *why,
                      size_t whylen)
{
	struct check_dmarc_record rec = { 0 };
	bool has_p = false, first = true;
	const char *p = text, *end = text + strlen(text);
	while (p <= end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *tag_end = semi ? semi : end;
		const char *ts = p, *te = tag_end;
		trim(&ts, &te);
		p = tag_end + 1;
		if (ts == te) {
			if (first)
				return 0;
			continue;  /* "p=none;" ends in an empty term */
		}
		const char *eq = memchr(ts, '=', (size_t)(te - ts));
		const char *ns = ts, *ne = eq ? eq : te, *vs = eq ? eq + 1 : te, *ve = te;
		trim(&ns, &ne);
		trim(&vs, &ve);
		size_t nlen = (size_t)(ne - ns), vlen = (size_t)(ve - vs);
		if (first) {
			/* §4.7: v=DMARC1 must come first, exactly; a TXT record
			 * that does not start so is not a DMARC record. */
			if (!eq || nlen != 1 || *ns != 'v' || vlen != 6 || strncmp(vs, "DMARC1", 6))
				return 0;
			first = false;
			continue;
		}
		if (!eq) {
			snprintf(why, whylen, "a term without '=': \"%.*s\"", (int)(te - ts), ts);
			return -1;
		}
		if (nlen == 1 && *ns == 'p') {
			if (!policy_parse(vs, vlen, &rec.p)) {
				snprintf(why, whylen, "p=%.*s is not none, quarantine or reject",
				         (int)vlen, vs);
				return -1;
			}
			has_p = true;
		} else if (nlen == 2 && !strncmp(ns, "sp", 2)) {
			if (!policy_parse(vs, vlen, &rec.sp)) {
				snprintf(why, whylen, "sp=%.*s is not none, quarantine or reject",
				         (int)vlen, vs);
				return -1;
			}
			rec.has_sp = true;
		} else if (nlen == 3 && !strncmp(ns, "rua", 3)) {
			rec.has_rua = vlen > 0;
		}
		/* Other tags (adkim, aspf, np, psd, t, ruf, fo, ...) do not
		 * change what check reports; unknown ones are ignored (§4.7). */
	}
	if (first)
		return 0;
	if (!has_p) {
		snprintf(why, whylen, "no p= tag");
		return -1;
	}
	*out = rec;
	return 1;
}

size_t check_dmarc_walk(const char *domain, char names[][272], size_t max)
{
	const char *labels[128];
	size_t nlabels = 0;
	size_t len = strlen(domain);
	while (len && domain[len - 1] == '.')
		len--;
	if (!len || len > 253)
		return 0;
	for (const char *p = domain; p < domain + len && nlabels < 128;) {
		labels[nlabels++] = p;
		const char *dot = memchr(p, '.', (size_t)(domain + len - p));
		if (!dot)
			break;
		p = dot + 1;
	}
	size_t n = 0;
	for (size_t i = 0; i < nlabels && n < max && n < 8; i++) {
		/* §4.10: more than 8 labels: after the name itself, go on
		 * with the 7 shortest ancestors. */
		if (i > 0 && nlabels > 8 && i < nlabels - 7)
			continue;
		int w = snprintf(names[n], 272, "_dmarc.%.*s", (int)(domain + len - labels[i]),
		                 labels[i]);
		if (w < 0 || w >= 272)
			continue;
		n++;
	}
	return n;
}
