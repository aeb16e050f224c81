/* The aliases file (msg/aliases.h): a line-by-line parser over the text
 * in memory, and a depth-first expansion that keeps the path it is on to
 * tell a loop from a name reached twice by different ways. */
#include "msg/aliases.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/limits.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void warn_line(msg_aliases_warn_fn warn, void *arg, size_t line, const char *why)
{
	if (warn)
		warn(arg, line, why);
}

void msg_aliases_free(struct msg_aliases *a)
{
	for (size_t i = 0; i < a->n; i++) {
		for (size_t t = 0; t < a->v[i].ntargets; t++)
			free(a->v[i].targets[t]);
		free(a->v[i].targets);
		free(a->v[i].name);
	}
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

const struct msg_alias *msg_aliases_find(const struct msg_aliases *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcasecmp(a->v[i].name, name))
			return &a->v[i];
	return NULL;
}

/* A target worth keeping: no control octets (it may become a header line
 * or an SMTP command), at most a path long.  Else why not. */
static const char *target_check(const char *t, size_t len)
{
	if (len == 0)
		return NULL;
	if (t[0] == '|')
		return "pipe targets (|command) are not supported; left out";
	if (t[0] == '/')
		return "file targets (/path) are not supported; left out";
	if (len >= 9 && !strncasecmp(t, ":include:", 9))
		return ":include: targets are not supported; left out";
	if (len > SMTP_PATH_MAX)
		return "a target longer than an address can be; left out";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			return "a target with control characters; left out";
	return "";
}

static int add_target(struct msg_alias *e, const char *t, size_t len)
{
	char **v = realloc(e->targets, (e->ntargets + 1) * sizeof(*v));
	if (!v)
		return -1;
	e->targets = v;
	if (!(v[e->ntargets] = strndup(t, len)))
		return -1;
	e->ntargets++;
	return 0;
}

/* Splits the value of one logical line at commas outside double quotes
 * into e's targets.  -1: out of memory. */
static int parse_targets(struct msg_alias *e, const char *p, size_t len,
                         msg_aliases_warn_fn warn, void *arg)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (is_space(p[i]) || p[i] == '\n' || p[i] == ','))
			i++;
		if (i >= len)
			break;
		const char *t = p + i;
		size_t tlen;
		if (p[i] == '"') {
			/* A quoted target keeps its commas and spaces. */
			size_t j = i + 1;
			while (j < len && p[j] != '"')
				j++;
			t = p + i + 1;
			tlen = j - i - 1;
			i = j < len ? j + 1 : len;
			while (i < len && p[i] != ',')
				i++;
		} else {
			size_t j = i;
			while (j < len && p[j] != ',')
				j++;
			tlen = j - i;
			while (tlen > 0 && (is_space(t[tlen - 1]) || t[tlen - 1] == '\n'))
				tlen--;
			i = j;
		}
		const char *why = target_check(t, tlen);
		if (!why)
			continue;
		if (why[0]) {
			warn_line(warn, arg, e->line, why);
			continue;
		}
		if (e->ntargets >= ALIASES_TARGETS_MAX) {
			warn_line(warn, arg, e->line, "more targets than allowed; the rest left out");
			break;
		}
		if (add_target(e, t, tlen) != 0)
			return -1;
	}
	return 0;
}

static void entry_free(struct msg_alias *e)
{
	for (size_t t = 0; t < e->ntargets; t++)
		free(e->targets[t]);
	free(e->targets);
	free(e->name);
}

/* One logical line (continuations joined, comments already gone): 0 kept
 * or left out (warned), -1 out of memory or too many entries (err). */
static int parse_entry(struct msg_aliases *a, const char *p, size_t len, size_t line,
                       msg_aliases_warn_fn warn, void *arg, char *err, size_t errlen)
{
	size_t colon = 0;
	while (colon < len && p[colon] != ':')
		colon++;
	size_t nlen = colon;
	while (nlen > 0 && is_space(p[nlen - 1]))
		nlen--;
	if (colon == len || nlen == 0) {
		warn_line(warn, arg, line, "not 'name: target, ...'; line left out");
		return 0;
	}
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c == 0x7f || c == '@' || c == '"' || c == ',' || c == '/') {
			warn_line(warn, arg, line, "a name with spaces, '@' or control characters; "
			                           "line left out");
			return 0;
		}
	}
	struct msg_alias e = { .line = line };
	if (!(e.name = strndup(p, nlen))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char *c = e.name; *c; c++)
		*c = lower(*c);
	if (parse_targets(&e, p + colon + 1, len - colon - 1, warn, arg) != 0) {
		entry_free(&e);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (e.ntargets == 0 || msg_aliases_find(a, e.name)) {
		warn_line(warn, arg, line,
		          e.ntargets == 0 ? "no usable target; the name is its own mailbox"
		                          : "name given again; the first entry counts");
		entry_free(&e);
		return 0;
	}
	if (a->n >= ALIASES_ENTRIES_MAX) {
		entry_free(&e);
		snprintf(err, errlen, "line %zu: more than %d entries", line, ALIASES_ENTRIES_MAX);
		return -1;
	}
	struct msg_alias *v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v) {
		entry_free(&e);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->v = v;
	a->v[a->n++] = e;
	return 0;
}

int msg_aliases_parse(const char *text, size_t len, struct msg_aliases *out,
                      msg_aliases_warn_fn warn, void *arg, char *err, size_t errlen)
{
	*out = (struct msg_aliases){ 0 };
	if (len > ALIASES_FILE_MAX) {
		snprintf(err, errlen, "larger than %u octets", ALIASES_FILE_MAX);
		return -1;
	}
	if (memchr(text, '\0', len)) {
		size_t at = 1;
		for (const char *c = text; *c; c++)
			at += *c == '\n';
		snprintf(err, errlen, "line %zu: a NUL octet (not a text file)", at);
		return -1;
	}
	/* Logical lines: a physical line starting with white space continues
	 * the previous one (aliases(5)); a comment line ends nothing. */
	char *logical = malloc(ALIASES_LINE_MAX);
	if (!logical) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t llen = 0, lline = 0, lineno = 0, i = 0;
	int rc = 0;
	while (rc == 0 && i <= len) {
		const char *p = text + i;
		const char *nl = i < len ? memchr(p, '\n', len - i) : NULL;
		size_t plen = i < len ? (nl ? (size_t)(nl - p) : len - i) : 0;
		bool eof = i >= len;
		i += plen + 1;
		lineno++;
		if (!eof && plen > 0 && p[0] == '#')
			continue;
		bool cont = !eof && plen > 0 && (p[0] == ' ' || p[0] == '\t');
		if (cont && llen == 0) {
			bool blank = true;
			for (size_t k = 0; k < plen; k++)
				blank = blank && is_space(p[k]);
			if (!blank)
				warn_line(warn, arg, lineno, "continuation line without an entry; left out");
			continue;
		}
		if (cont) {
			if (llen + 1 + plen > ALIASES_LINE_MAX) {
				snprintf(err, errlen, "line %zu: an entry longer than %u octets", lline,
				         ALIASES_LINE_MAX);
				rc = -1;
				break;
			}
			logical[llen++] = '\n';
			memcpy(logical + llen, p, plen);
			llen += plen;
			continue;
		}
		/* A new entry (or the end): the one gathered so far is whole. */
		if (llen > 0)
			rc = parse_entry(out, logical, llen, lline, warn, arg, err, errlen);
		llen = 0;
		if (eof || rc != 0)
			break;
		size_t k = 0;
		while (k < plen && is_space(p[k]))
			k++;
		if (k == plen)
			continue;
		if (plen > ALIASES_LINE_MAX) {
			snprintf(err, errlen, "line %zu: an entry longer than %u octets", lineno,
			         ALIASES_LINE_MAX);
			rc = -1;
			break;
		}
		memcpy(logical, p, plen);
		llen = plen;
		lline = lineno;
	}
	free(logical);
	return rc;
}

void msg_aliases_result_free(struct msg_aliases_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->addrs[i]);
	free(r->addrs);
	r->addrs = NULL;
	r->n = 0;
}

struct expansion {
	const struct msg_aliases *a;
	msg_aliases_local_fn local;
	void *arg;
	struct msg_aliases_result *out;
	const char *path[ALIASES_DEPTH_MAX + 1];
	size_t depth;
	bool oom;
	char *why;
	size_t whylen;
};

static int emit(struct expansion *x, const char *addr)
{
	for (size_t i = 0; i < x->out->n; i++)
		if (!strcasecmp(x->out->addrs[i], addr))
			return 0;
	if (x->out->n >= ALIASES_TARGETS_MAX) {
		snprintf(x->why, x->whylen, "alias %s: more than %d targets", x->path[0],
		         ALIASES_TARGETS_MAX);
		return -1;
	}
	char **v = realloc(x->out->addrs, (x->out->n + 1) * sizeof(*v));
	if (!v)
		goto oom;
	x->out->addrs = v;
	if (!(v[x->out->n] = strdup(addr)))
		goto oom;
	x->out->n++;
	return 0;
oom:
	x->oom = true;
	snprintf(x->why, x->whylen, "out of memory expanding alias %s", x->path[0]);
	return -1;
}

static void loop_text(struct expansion *x, const char *again)
{
	size_t used = (size_t)snprintf(x->why, x->whylen, "alias loop:");
	for (size_t i = 0; i < x->depth && used < x->whylen; i++)
		used += (size_t)snprintf(x->why + used, x->whylen - used, " %s ->", x->path[i]);
	if (used < x->whylen)
		snprintf(x->why + used, x->whylen - used, " %s", again);
}

static int expand(struct expansion *x, const char *name)
{
	const struct msg_alias *e = msg_aliases_find(x->a, name);
	if (!e)
		return emit(x, name);
	if (x->depth >= ALIASES_DEPTH_MAX) {
		snprintf(x->why, x->whylen, "alias %s: nested deeper than %d", x->path[0],
		         ALIASES_DEPTH_MAX);
		return -1;
	}
	x->path[x->depth++] = e->name;
	for (size_t t = 0; t < e->ntargets; t++) {
		const char *target = e->targets[t];
		char ln[SMTP_PATH_MAX + 1];
		int rc;
		if (target[0] == '\\') {
			/* sendmail: "\name" is the mailbox, not expanded again. */
			snprintf(ln, sizeof(ln), "%s", target + 1);
			for (char *c = ln; *c; c++)
				*c = lower(*c);
			rc = ln[0] && !strchr(ln, '@') ? emit(x, ln) : emit(x, target + 1);
		} else if (!strchr(target, '@') ||
		           (x->local && x->local(x->arg, target, ln, sizeof(ln)))) {
			if (!strchr(target, '@')) {
				snprintf(ln, sizeof(ln), "%s", target);
				for (char *c = ln; *c; c++)
					*c = lower(*c);
			}
			bool on_path = false;
			for (size_t i = 0; i < x->depth; i++)
				on_path = on_path || !strcmp(x->path[i], ln);
			if (!strcmp(ln, e->name))
				rc = emit(x, ln);     /* "root: root, alice": root's mailbox too */
			else if (on_path) {
				loop_text(x, ln);
				rc = -1;
			} else
				rc = expand(x, ln);
		} else {
			rc = emit(x, target);
		}
		if (rc != 0)
			return -1;
	}
	x->depth--;
	return 0;
}

int msg_aliases_expand(const struct msg_aliases *a, const char *name, msg_aliases_local_fn local,
                       void *arg, struct msg_aliases_result *out, bool *oom, char *why,
                       size_t whylen)
{
	*out = (struct msg_aliases_result){ 0 };
	struct expansion x = { .a = a, .local = local, .arg = arg, .out = out, .why = why,
	                       .whylen = whylen };
	x.path[0] = name;
	int rc = expand(&x, name);
	*oom = x.oom;
	if (rc != 0)
		msg_aliases_result_free(out);
	return rc;
}
