/* DKIM signing of relayed submission mail (issue 11).  The store signs,
 * not the smtp process: the private keys never reach the process that
 * parses network bytes (DESIGN.md "DKIM").  Only a login's mail is
 * signed, and only when the login's senders field (the users file's third
 * field, auth/users.h) explicitly allows the From address: a login
 * without that field may use any sender, so signing for it would let any
 * login put the domain's signature on any From.  The envelope sender is
 * already held to the same field at MAIL FROM (server/conn.c); the From
 * field can differ, and a From the login may not use goes out unsigned
 * (logged dkim_skipped), as any MTA would relay it without a signature. */
#include "store/relay.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/users.h"
#include "msg/dkim.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/log.h"

/* The From address into from (room for SMTP_PATH_MAX + 1): NULL, or why
 * there is none to sign for (RFC 5322 §3.6: exactly one From; a list of
 * several mailboxes needs a Sender, and which of them to check is a
 * guess, so that is not signed either). */
static const char *from_address(const char *msg, size_t len, char *from, size_t fromlen)
{
	struct dkim_from f;
	dkim_from_find(msg, len, &f);
	if (f.fields == 0)
		return "no From field";
	if (f.fields > 1)
		return "more than one From field";
	if (f.addresses == 0)
		return "From field without a readable address";
	if (f.addresses > 1)
		return "From field with more than one address";
	if (!f.address[0] || strlen(f.address) >= fromlen)
		return "From address too long";
	snprintf(from, fromlen, "%s", f.address);
	return NULL;
}

size_t store_relay_dkim_sign(const struct store_relay *r, const char *qid, const char *signer,
                             const char *message, size_t len, struct buf *sigs)
{
	if (!signer || !*signer || !r || r->ndkim == 0)
		return 0;
	char from[SMTP_PATH_MAX + 1] = "";
	char q[SMTP_PATH_MAX * 4 + 8];
	const char *why = from_address(message, len, from, sizeof(from));
	const char *at = why ? NULL : strrchr(from, '@');
	if (!why && (!at || at[1] == '[' || !at[1]))
		why = "From address without a domain name";
	if (!why && !auth_senders_text_allowed(signer, from))
		why = "the login may not use the From address";
	size_t n = 0;
	if (!why) {
		time_t now = time(NULL);
		for (size_t i = 0; i < r->ndkim; i++) {
			const struct store_dkim_key *k = &r->dkim[i];
			if (!dkim_domain_covers(k->domain, at + 1))
				continue;
			char err[600];
			if (dkim_sign(k->key, k->domain, k->selector, now, message, len, sigs, err,
			              sizeof(err)) < 0) {
				log_event(LOG_ERROR, "dkim_failed", "qid=%s domain=%s selector=%s reason=\"%s\"",
				          qid, k->domain, k->selector, err);
				continue;
			}
			n++;
			log_event(LOG_INFO, "dkim_signed", "qid=%s domain=%s selector=%s alg=%s", qid,
			          k->domain, k->selector, dkim_key_type_name(k->key));
		}
		if (n == 0)
			why = "no key for the From domain";
	}
	if (why)
		log_event(LOG_INFO, "dkim_skipped", "qid=%s from=%s reason=\"%s\"", qid,
		          from[0] ? log_quote(q, sizeof(q), from, strlen(from)) : "-", why);
	return n;
}
