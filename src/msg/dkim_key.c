/* DKIM private keys: read from PEM, generated, and shown as the p= value
 * of the DNS record that publishes their public half. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "msg/dkim.h"
#include "msg/dkim_internal.h"

/* A PEM key file is a few kilobytes; anything much larger is not one. */
#define DKIM_KEY_FILE_MAX (64u * 1024)

void dkim_key_free(struct dkim_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_free(key);
}

enum dkim_alg dkim_key_alg(const struct dkim_key *key)
{
	return key->alg;
}

const char *dkim_key_type_name(const struct dkim_key *key)
{
	return key->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
}

/* OpenSSL's reason for the last failure, for a message. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "unknown error";
}

/* The key checked and wrapped: 0, 1 (warning in err), -1 (err). */
static int key_take(EVP_PKEY *pkey, const char *name, struct dkim_key **out, char *err,
                    size_t errlen)
{
	int rc = 0;
	enum dkim_alg alg;
	int id = EVP_PKEY_get_base_id(pkey);
	if (id == EVP_PKEY_ED25519) {
		alg = DKIM_ALG_ED25519_SHA256;
	} else if (id == EVP_PKEY_RSA) {
		int bits = EVP_PKEY_get_bits(pkey);
		/* RFC 8301 §3.2. */
		if (bits < DKIM_RSA_BITS_MIN) {
			snprintf(err, errlen, "%s: an RSA key of %d bits is too small for DKIM "
			         "(at least %d; use 2048)", name, bits, DKIM_RSA_BITS_MIN);
			EVP_PKEY_free(pkey);
			return -1;
		}
		if (bits < DKIM_RSA_BITS_GOOD) {
			snprintf(err, errlen, "%s: an RSA key of %d bits is weak; use %d bits "
			         "(rawmail dkim keygen)", name, bits, DKIM_RSA_BITS_GOOD);
			rc = 1;
		}
		alg = DKIM_ALG_RSA_SHA256;
	} else {
		snprintf(err, errlen, "%s: a %s key cannot sign DKIM (RSA or Ed25519 only)", name,
		         OBJ_nid2sn(id));
		EVP_PKEY_free(pkey);
		return -1;
	}
	struct dkim_key *k = OPENSSL_zalloc(sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "%s: out of memory", name);
		EVP_PKEY_free(pkey);
		return -1;
	}
	k->pkey = pkey;
	k->alg = alg;
	*out = k;
	return rc;
}

int dkim_key_parse(const char *pem, size_t len, const char *name, struct dkim_key **out,
                   char *err, size_t errlen)
{
	*out = NULL;
	if (len > DKIM_KEY_FILE_MAX) {
		snprintf(err, errlen, "%s: too large for a PEM private key", name);
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	ERR_clear_error();
	/* No passphrase callback: an encrypted key is refused, not prompted
	 * for (the queue signs without a terminal). */
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (!pkey) {
		snprintf(err, errlen, "%s: not a PEM private key without passphrase (%s)", name,
		         ssl_reason());
		ERR_clear_error();
		return -1;
	}
	return key_take(pkey, name, out, err, errlen);
}

int dkim_key_load(const char *path, struct dkim_key **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read the DKIM key: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	bool loose = fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0;
	char data[DKIM_KEY_FILE_MAX + 1];
	size_t n = fread(data, 1, sizeof(data), f);
	int saved = errno;
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: cannot read the DKIM key: %s", path, strerror(saved));
		return -1;
	}
	int rc = dkim_key_parse(data, n, path, out, err, errlen);
	OPENSSL_cleanse(data, sizeof(data));
	/* A private key others may read is a key others may sign with. */
	if (rc == 0 && loose) {
		snprintf(err, errlen, "%s: the DKIM private key may be read by others (mode %04o): "
		         "chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
		rc = 1;
	}
	return rc;
}

int dkim_key_generate(enum dkim_alg alg, struct dkim_key **out, char *err, size_t errlen)
{
	*out = NULL;
	EVP_PKEY *pkey = alg == DKIM_ALG_ED25519_SHA256
	                     ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	                     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_BITS_GOOD);
	if (!pkey) {
		snprintf(err, errlen, "cannot generate the key (%s)", ssl_reason());
		return -1;
	}
	return key_take(pkey, "the new key", out, err, errlen) < 0 ? -1 : 0;
}

/* Appends what a memory BIO holds. */
static int bio_drain(BIO *bio, struct buf *out)
{
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);
	return n < 0 || buf_append(out, p, (size_t)n) < 0 ? -1 : 0;
}

int dkim_key_pem(const struct dkim_key *key, struct buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -1;
	int rc = PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) == 1
	             ? bio_drain(bio, out)
	             : -1;
	BIO_free(bio);
	return rc;
}

int dkim_b64_append(struct buf *out, const unsigned char *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		char q[4] = { tab[(v >> 18) & 63], tab[(v >> 12) & 63],
		              i + 1 < len ? tab[(v >> 6) & 63] : '=', i + 2 < len ? tab[v & 63] : '=' };
		if (buf_append(out, q, 4) < 0)
			return -1;
	}
	return 0;
}

int dkim_key_public_b64(const struct dkim_key *key, struct buf *out)
{
	if (key->alg == DKIM_ALG_ED25519_SHA256) {
		unsigned char raw[32];
		size_t n = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &n) != 1 || n != sizeof(raw))
			return -1;
		return dkim_b64_append(out, raw, n);
	}
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key->pkey, &der);
	if (n <= 0)
		return -1;
	int rc = dkim_b64_append(out, der, (size_t)n);
	OPENSSL_free(der);
	return rc;
}
