/* What the DKIM files of msg/ share and nobody else needs. */
#ifndef RAWMAIL_MSG_DKIM_INTERNAL_H
#define RAWMAIL_MSG_DKIM_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "msg/dkim.h"

struct dkim_key {
	EVP_PKEY *pkey;
	enum dkim_alg alg;
};

/* Base64 (RFC 4648 §4) of in[0..len) on one line, appended.  0 or -1. */
int dkim_b64_append(struct buf *out, const unsigned char *in, size_t len);

#endif
