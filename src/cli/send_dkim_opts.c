/* DKIM signing keys as options (send.h): --dkim-key FILE --dkim-selector
 * S --dkim-domain D on the command line, key / selector / domain in
 * [dkim] of the settings file.  They come in groups of three, in any
 * order: a setting the current group already has starts the next group,
 * so "[dkim] key=a selector=s domain=d key=b selector=t domain=d" (or a
 * second [dkim] section) is two keys.  Flags replace the file's keys
 * altogether, as they do any setting.  No OpenSSL here: the sendmail
 * link's small program links this file; the key is read when signing
 * (send_dkim.c). */
#include "cli/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/mx.h"
#include "util/hostname.h"
#include "util/limits.h"

int send_dkim_set(struct send_opts *o, bool flag, const char *key, const char *value, char *err,
                  size_t errlen)
{
	bool is_key = !strcmp(key, "key"), is_sel = !strcmp(key, "selector"),
	     is_dom = !strcmp(key, "domain");
	if (!is_key && !is_sel && !is_dom)
		return 0;
	if (flag && !o->dkim_flags) {
		o->dkim_flags = true;
		o->ndkim = 0;   /* the file's groups give way to the flags' */
	}
	if (!value[0]) {
		snprintf(err, errlen, "expected a value");
		return -1;
	}
	char ascii[SMTP_DOMAIN_MAX + 1];
	if (is_dom) {
		char why[200];
		if (!dns_domain_to_ascii(value, ascii, sizeof(ascii), why, sizeof(why)) ||
		    !hostname_syntax_ok(ascii) || !strchr(ascii, '.')) {
			snprintf(err, errlen, "expected a domain name with a dot (example.org)");
			return -1;
		}
		for (char *p = ascii; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	if (is_sel) {
		/* RFC 6376 §3.1: a selector is one or more DNS labels. */
		for (const char *p = value; *p; p++) {
			char ch = *p;
			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			      ch == '-' || ch == '_' || (ch == '.' && p != value && p[1] && p[1] != '.'))) {
				snprintf(err, errlen, "a selector is DNS labels (letters, digits, '-', '_')");
				return -1;
			}
		}
	}
	struct send_dkim *g = o->ndkim ? &o->dkim[o->ndkim - 1] : NULL;
	const char **slot = !g ? NULL : is_key ? &g->key : is_sel ? &g->selector : &g->domain;
	if (!slot || *slot) {
		if (o->ndkim == SEND_DKIM_MAX) {
			snprintf(err, errlen, "at most %d DKIM keys", SEND_DKIM_MAX);
			return -1;
		}
		g = &o->dkim[o->ndkim++];
		*g = (struct send_dkim){ 0 };
		slot = is_key ? &g->key : is_sel ? &g->selector : &g->domain;
	}
	if (is_dom) {
		/* Kept with the options' other copies (freed with them). */
		char **owned = realloc(o->owned, (o->nowned + 1) * sizeof(*owned));
		if (!owned || !(owned[o->nowned] = strdup(ascii))) {
			if (owned)
				o->owned = owned;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		o->owned = owned;
		value = owned[o->nowned++];
	}
	*slot = value;
	return 1;
}

int send_dkim_check(struct send_opts *o)
{
	for (size_t i = 0; i < o->ndkim; i++) {
		const struct send_dkim *g = &o->dkim[i];
		if (g->key && g->selector && g->domain)
			continue;
		const char *missing = !g->key ? "key" : !g->selector ? "selector" : "domain";
		if (o->dkim_flags) {
			fprintf(stderr, "%s: DKIM key %zu: --dkim-%s is missing (each --dkim-key needs "
			        "--dkim-selector and --dkim-domain)\n", o->prog, i + 1, missing);
			return SEND_EXIT_USAGE;
		}
		fprintf(stderr, "%s: %s: [dkim] key %zu has no %s (each key needs selector and "
		        "domain)\n", o->prog, o->config ? o->config : "settings file", i + 1, missing);
		return SEND_EXIT_CONFIG;
	}
	return 0;
}
