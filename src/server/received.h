/* The Received: header field rawmail serve adds (RFC 5321 §4.4). */
#ifndef RAWMAIL_SERVER_RECEIVED_H
#define RAWMAIL_SERVER_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "util/buf.h"

struct received_info {
	const char *helo;          /* as the client sent it (sanitised here) */
	const char *rdns;          /* forward-confirmed name of the peer, or NULL */
	const struct sockaddr *peer;
	const char *by;            /* our host name */
	bool esmtp, tls, smtputf8, auth;
	const char *tls_desc;      /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or NULL */
	const char *auth_user;     /* the login (AUTH), or NULL */
	const char *qid;
	const char *for_rcpt;      /* only when there is exactly one recipient */
	time_t when;
};

/* Appends the folded header field, LF line endings, ending in LF. */
int received_format(struct buf *out, const struct received_info *r);
/* Writes the peer's address as a literal: "[192.0.2.1]", "[IPv6:::1]". */
void received_literal(const struct sockaddr *sa, char *out, size_t outlen);

#endif
