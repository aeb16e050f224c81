/* DKIM signing for rawmail send, its sendmail entry and the queue: the
 * prepared message (send_prepare.c) gets one DKIM-Signature field per
 * configured key whose domain is the From field's domain or a parent of
 * it (d=example.org signs mail from a@example.org and a@mail.example.org:
 * the relaxed alignment DMARC checks, RFC 7489 §3.1.1).  This runs once,
 * before the message is queued, so every attempt sends the same
 * signature.  The key file is read here, by the sending command (never by
 * serve's network-facing processes). */
#include "cli/send.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "msg/dkim.h"

/* The domain of the first mailbox in the first From field, lower case,
 * or "" (no From, no readable address, an address literal). */
static void from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
	struct dkim_from f;
	dkim_from_find(msg, len, &f);
	const char *at = strrchr(f.address, '@');
	out[0] = '\0';
	if (at && at[1] != '[')
		snprintf(out, outlen, "%s", at + 1);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

int send_dkim_sign(const struct send_opts *o, struct send_prepared *p)
{
	char from[SMTP_PATH_MAX + 1];
	const char *msg = p->msg.data ? p->msg.data : "";
	from_domain(msg, p->msg.len, from, sizeof(from));
	struct buf sigs;
	buf_init(&sigs, SEND_DKIM_MAX * 8192);
	int rc = 0;
	size_t signed_count = 0;
	time_t now = time(NULL);
	for (size_t i = 0; i < o->ndkim && rc == 0; i++) {
		const struct send_dkim *g = &o->dkim[i];
		if (!from[0] || !dkim_domain_covers(g->domain, from))
			continue;
		char err[600];
		struct dkim_key *key = NULL;
		int lr = dkim_key_load(g->key, &key, err, sizeof(err));
		if (lr < 0) {
			fprintf(stderr, "%s: %s\n", o->prog, err);
			rc = SEND_EXIT_CONFIG;
			break;
		}
		if (lr > 0 && !o->quiet)
			fprintf(stderr, "%s: warning: %s\n", o->prog, err);
		if (dkim_sign(key, g->domain, g->selector, now, msg, p->msg.len, &sigs, err,
		              sizeof(err)) < 0) {
			fprintf(stderr, "%s: DKIM signing with %s: %s\n", o->prog, g->key, err);
			rc = SEND_EXIT_SOFTWARE;
		} else {
			signed_count++;
			if (o->verbose)
				fprintf(stderr, "%s: DKIM: signed for %s (selector %s, %s)\n", o->prog,
				        g->domain, g->selector, dkim_key_type_name(key));
		}
		dkim_key_free(key);
	}
	if (rc == 0 && signed_count == 0 && !o->quiet)
		fprintf(stderr, "%s: warning: not DKIM-signed: no key for the From domain %s\n",
		        o->prog, from[0] ? from : "(no From address)");
	if (rc == 0 && signed_count > 0) {
		/* The fields go in front (RFC 6376 §5.6: prepended). */
		struct buf out;
		buf_init(&out, p->msg.max + sigs.len);
		if (buf_append(&out, sigs.data, sigs.len) < 0 ||
		    buf_append(&out, msg, p->msg.len) < 0) {
			fprintf(stderr, "%s: out of memory\n", o->prog);
			buf_free(&out);
			rc = SEND_EXIT_OSERR;
		} else {
			buf_free(&p->msg);
			p->msg = out;
		}
	}
	buf_free(&sigs);
	return rc;
}
