/* SHA-256 certificate fingerprints: the text users give to pin a peer
 * (--tls-fingerprint SHA256:...), the text rawmail shows so a user can pin
 * what it saw, and the two digests a pin may match.
 *
 * A pin names one of two digests of the peer's leaf certificate, the same
 * pair DANE TLSA records name with selector 0 and 1 (RFC 6698 §2.1.3):
 *   - of the whole certificate's DER encoding, what
 *     `openssl x509 -noout -fingerprint -sha256` prints; it changes at
 *     every renewal;
 *   - of its SubjectPublicKeyInfo DER encoding; it survives a renewal
 *     that keeps the key.
 *
 * Parsing and formatting are pure (no OpenSSL, no allocation: fingerprint_text.c), tested by
 * tests/unit/test_net_fingerprint.c. */
#ifndef RAWMAIL_NET_FINGERPRINT_H
#define RAWMAIL_NET_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#define TLS_FINGERPRINT_LEN 32                           /* SHA-256 */
#define TLS_FINGERPRINT_PREFIX "SHA256:"
/* "SHA256:" + 64 hex digits + NUL */
#define TLS_FINGERPRINT_TEXT_SIZE (sizeof(TLS_FINGERPRINT_PREFIX) - 1 + 2 * TLS_FINGERPRINT_LEN + 1)

/* Accepts "SHA256:" (any case) followed by the 32 octets in hex (any
 * case), either as 64 digits in a row or as 32 colon-separated pairs, as
 * `openssl x509 -fingerprint -sha256` prints them (its "sha256
 * Fingerprint=" label replaced by "SHA256:").  Nothing else: no spaces, no
 * missing prefix (it names the algorithm, so another can be added later
 * without guessing), no mix of the two spellings.  On success writes out;
 * on failure out is left as it was. */
bool tls_fingerprint_parse(const char *text, unsigned char out[TLS_FINGERPRINT_LEN]);

/* "SHA256:" + 64 lower-case hex digits: the form users copy into a pin. */
void tls_fingerprint_format(const unsigned char fp[TLS_FINGERPRINT_LEN],
                            char out[TLS_FINGERPRINT_TEXT_SIZE]);

/* SHA-256 of the certificate's DER encoding.  false if OpenSSL fails. */
bool tls_fingerprint_cert(X509 *cert, unsigned char out[TLS_FINGERPRINT_LEN]);

/* SHA-256 of the certificate's SubjectPublicKeyInfo, DER-encoded.  false
 * if OpenSSL fails. */
bool tls_fingerprint_spki(X509 *cert, unsigned char out[TLS_FINGERPRINT_LEN]);

#endif
