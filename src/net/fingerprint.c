#include "net/fingerprint.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* 0-15 for a hex digit of either case, -1 otherwise.  Not isxdigit():
 * that depends on the locale, and a fingerprint is ASCII. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool tls_fingerprint_parse(const char *text, unsigned char out[TLS_FINGERPRINT_LEN])
{
	const size_t plen = sizeof(TLS_FINGERPRINT_PREFIX) - 1;
	if (!text || strncasecmp(text, TLS_FINGERPRINT_PREFIX, plen) != 0)
		return false;
	const char *p = text + plen;
	size_t len = strlen(p);
	/* Exactly two spellings, told apart by length alone: 64 digits, or 32
	 * pairs with 31 colons between them. */
	bool colons;
	if (len == 2 * TLS_FINGERPRINT_LEN)
		colons = false;
	else if (len == 3 * TLS_FINGERPRINT_LEN - 1)
		colons = true;
	else
		return false;

	/* Decoded into a copy so a bad digit late in the text leaves out as
	 * the caller had it. */
	unsigned char fp[TLS_FINGERPRINT_LEN];
	for (size_t i = 0; i < TLS_FINGERPRINT_LEN; i++) {
		if (colons && i > 0) {
			if (*p != ':')
				return false;
			p++;
		}
		int hi = hex_value(p[0]);
		int lo = hi < 0 ? -1 : hex_value(p[1]);
		if (lo < 0)
			return false;
		fp[i] = (unsigned char)(hi << 4 | lo);
		p += 2;
	}
	memcpy(out, fp, sizeof(fp));
	return true;
}

void tls_fingerprint_format(const unsigned char fp[TLS_FINGERPRINT_LEN],
                            char out[TLS_FINGERPRINT_TEXT_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	const size_t plen = sizeof(TLS_FINGERPRINT_PREFIX) - 1;
	memcpy(out, TLS_FINGERPRINT_PREFIX, plen);
	char *p = out + plen;
	for (size_t i = 0; i < TLS_FINGERPRINT_LEN; i++) {
		*p++ = digits[fp[i] >> 4];
		*p++ = digits[fp[i] & 0x0f];
	}
	*p = '\0';
}

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
