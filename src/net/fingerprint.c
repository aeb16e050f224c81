/* The digests a pin matches (net/fingerprint.h); the text form is
 * fingerprint_text.c's. */
#include "net/fingerprint.h"

#include <openssl/evp.h>

bool tls_fingerprint_cert(X509 *cert, unsigned char out[TLS_FINGERPRINT_LEN])
{
	unsigned int n = 0;
	return X509_digest(cert, EVP_sha256(), out, &n) == 1 && n == TLS_FINGERPRINT_LEN;
}

bool tls_fingerprint_spki(X509 *cert, unsigned char out[TLS_FINGERPRINT_LEN])
{
	/* The SubjectPublicKeyInfo as the certificate holds it
	 * (i2d_X509_PUBKEY on the certificate's own X509_PUBKEY), not
	 * re-encoded from the parsed key (i2d_PUBKEY): the octets a DANE
	 * selector 1 record hashes, whatever encoding choices the key type
	 * allows.  For the usual RSA, EC and Ed25519 keys both are the same
	 * as `openssl x509 -pubkey | openssl pkey -pubin -outform DER`. */
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return false;
	unsigned int n = 0;
	bool ok = EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 &&
	          n == TLS_FINGERPRINT_LEN;
	OPENSSL_free(der);
	return ok;
}
