/* SHA-256 (FIPS 180-4), for the queue's integrity check of a message
 * (queue/spool.c): the digest stored in the envelope at enqueue and
 * checked at load.  Not OpenSSL's EVP: its first use loads openssl.cnf
 * and initialises the default provider, 0.6-0.9 ms of every sendmail
 * process here, for a checksum that needs no provider.  Portable C, no
 * secrets involved (it guards against damage, not against an attacker
 * who can write the spool). */
#ifndef RAWMAIL_UTIL_SHA256_H
#define RAWMAIL_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;          /* message length so far */
	unsigned char block[64];
	size_t used;             /* octets in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_DIGEST_LEN]);
/* The digest of data[0..len) in one call. */
void sha256_digest(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

#endif
